//! The paired estimate of a ratio between two contenders of one workload:
//! the median of the per-round ratios of their runs, with a
//! distribution-free confidence bound.
//!
//! In round `k` of a workload every contender runs once, one after another
//! ([`run_plan`]), so run `k` of one contender and run `k` of another sat
//! close in time. On a shared or virtual machine the rate of a two-thread
//! run can change by 2× from one half-second to the next (the host moves
//! the vCPUs); a ratio of *medians* then mixes runs from different
//! regimes, while the per-round ratio compares runs made under nearly the
//! same conditions. Its median is the estimate; the bound is the interval
//! between two order statistics of the ratios, the sign-test interval for
//! a median (no assumption on the distribution, only that the rounds are
//! independent and each ratio is as likely above as below the true
//! median): with `n` rounds and the `j`-th smallest and `j`-th largest
//! ratio as ends, it covers the median with probability
//! `1 − 2·P(Binomial(n, ½) < j)`. A difference is established only when
//! the bound lies wholly on one side of 1.

use super::*;

/// The confidence the bound aims for; with fewer rounds than that needs
/// (fewer than 5) the bound is the whole range of the ratios and its lower
/// confidence is recorded in [`PairedRatio::confidence`].
pub const PAIRED_CONFIDENCE: f64 = 0.9;

/// Fewest rounds from which a paired estimate may establish a difference:
/// with 3 rounds all three ratios on one side of 1 has a chance of 1 in 4
/// under no difference.
pub const PAIRED_MIN_ROUNDS: usize = 3;

/// `a ÷ b` estimated round by round (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedRatio {
    /// Rounds paired (runs of both sides, in the order they ran).
    pub rounds: usize,
    /// Median of the per-round ratios.
    pub median: f64,
    /// Lower end of the bound.
    pub low: f64,
    /// Upper end of the bound.
    pub high: f64,
    /// Probability that `[low, high]` covers the median ratio (sign test).
    pub confidence: f64,
    /// Rounds whose ratio is above 1.
    pub wins: usize,
    /// The bound contains 1, fewer than [`PAIRED_MIN_ROUNDS`] rounds were
    /// paired, or a run of either side was disturbed.
    pub within_noise: bool,
}

impl PairedRatio {
    /// `a ÷ b` from their measurements at one thread count: run `k` of `a`
    /// is paired with run `k` of `b`. `None` when the two do not have the
    /// same number of runs (a contender failed part-way) or none.
    pub fn of(a: &Measurement, b: &Measurement) -> Option<Self> {
        if a.runs.len() != b.runs.len() {
            return None;
        }
        let ratios: Vec<f64> = a
            .runs
            .iter()
            .zip(&b.runs)
            .map(|(x, y)| ratio(x.ops_per_sec, y.ops_per_sec))
            .collect();
        let mut p = Self::from_ratios(&ratios)?;
        p.within_noise |= a.is_disturbed() || b.is_disturbed();
        Some(p)
    }

    /// The estimate from per-round ratios (in any order); `None` when empty.
    pub fn from_ratios(ratios: &[f64]) -> Option<Self> {
        if ratios.is_empty() {
            return None;
        }
        let mut r = ratios.to_vec();
        r.sort_by(f64::total_cmp);
        let n = r.len();
        let median = if n % 2 == 1 {
            r[n / 2]
        } else {
            (r[n / 2 - 1] + r[n / 2]) / 2.0
        };
        // The largest j (1-based order statistic) whose interval still
        // reaches the aimed confidence; at least 1 (the whole range).
        let mut j = 1;
        while j < n.div_ceil(2) && sign_test_coverage(n, j + 1) >= PAIRED_CONFIDENCE {
            j += 1;
        }
        let (low, high) = (r[j - 1], r[n - j]);
        Some(Self {
            rounds: n,
            median,
            low,
            high,
            confidence: sign_test_coverage(n, j),
            wins: r.iter().filter(|&&x| x > 1.0).count(),
            within_noise: n < PAIRED_MIN_ROUNDS || (low <= 1.0 && 1.0 <= high),
        })
    }

    /// As a table cell: `1.12x [1.05-1.30]`, prefixed with `~` when within
    /// noise.
    pub fn cell(&self) -> String {
        format!(
            "{}{:.2}x [{:.2}-{:.2}]",
            if self.within_noise { "~" } else { "" },
            self.median,
            self.low,
            self.high
        )
    }
}

/// Probability that the interval between the `j`-th smallest and the
/// `j`-th largest of `n` samples covers their distribution's median:
/// `1 − 2·P(Binomial(n, ½) < j)`.
pub fn sign_test_coverage(n: usize, j: usize) -> f64 {
    if j == 0 || 2 * j > n + 1 {
        return 0.0;
    }
    let mut tail = 0.0;
    let mut c = 1.0; // C(n, i)
    for i in 0..j {
        tail += c;
        c = c * (n - i) as f64 / (i + 1) as f64;
    }
    (1.0 - 2.0 * tail / 2f64.powi(n as i32)).max(0.0)
}

/// A paired estimate against one other contender at one thread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedAt {
    /// Threads that ran.
    pub threads: usize,
    /// The contender divided by.
    pub against: String,
    /// The estimate.
    pub paired: PairedRatio,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Percentiles;

    fn run(ops_per_sec: f64) -> RunResult {
        RunResult {
            threads: 2,
            ops: ops_per_sec as u64,
            elapsed: Duration::from_secs(1),
            ops_per_sec,
            latency: Percentiles {
                p50_ns: 1,
                p99_ns: 1,
                p999_ns: 1,
                max_ns: 1,
                samples: 1,
            },
            cpu: None,
        }
    }

    fn m(rates: &[f64]) -> Measurement {
        Measurement::from_runs(rates.iter().map(|&r| run(r)).collect())
    }

    #[test]
    fn coverage_is_the_sign_test_interval() {
        // n = 5, j = 1: 1 - 2/32.
        assert!((sign_test_coverage(5, 1) - 0.9375).abs() < 1e-12);
        // n = 7: j = 1 → 1 - 2/128, j = 2 → 1 - 16/128.
        assert!((sign_test_coverage(7, 1) - (1.0 - 2.0 / 128.0)).abs() < 1e-12);
        assert!((sign_test_coverage(7, 2) - (1.0 - 16.0 / 128.0)).abs() < 1e-12);
        // n = 9, j = 2: 1 - 2·10/512.
        assert!((sign_test_coverage(9, 2) - (1.0 - 20.0 / 512.0)).abs() < 1e-12);
        assert_eq!(sign_test_coverage(3, 0), 0.0);
        assert_eq!(sign_test_coverage(3, 3), 0.0);
    }

    #[test]
    fn a_common_drift_cancels_in_the_pairs() {
        // The machine's speed changes 4× from round to round, for both
        // sides alike; `a` is 10 % faster in every round. The ranges of the
        // two sides overlap, so the ratio of medians is "within noise"; the
        // pairs establish it.
        let drift = [1.0, 3.0, 0.8, 2.5, 4.0, 1.2, 0.9];
        let a: Vec<f64> = drift.iter().map(|d| 110.0 * d).collect();
        let b: Vec<f64> = drift.iter().map(|d| 100.0 * d).collect();
        let (a, b) = (m(&a), m(&b));
        assert!(crate::analyzer::within_noise(&a, &b));
        let p = PairedRatio::of(&a, &b).unwrap();
        assert_eq!(p.rounds, 7);
        assert!((p.median - 1.1).abs() < 1e-9, "{p:?}");
        assert!((p.low - 1.1).abs() < 1e-9 && (p.high - 1.1).abs() < 1e-9);
        assert!(!p.within_noise);
        assert_eq!(p.wins, 7);
        assert!(p.confidence >= PAIRED_CONFIDENCE);
        // The other way round: 1/1.1, still established, and symmetric.
        let q = PairedRatio::of(&b, &a).unwrap();
        assert!((q.median - 1.0 / 1.1).abs() < 1e-9);
        assert!(!q.within_noise);
        assert_eq!(q.wins, 0);
    }

    #[test]
    fn ratios_on_both_sides_of_one_are_within_noise() {
        // The lead's quiet run of 23:00 (waitless spsc ÷ rtrb, M msg/s).
        let a = m(&[239.0, 167.0, 129.0, 255.0, 444.0, 204.0, 109.0]);
        let b = m(&[212.0, 271.0, 221.0, 464.0, 190.0, 136.0, 146.0]);
        let p = PairedRatio::of(&a, &b).unwrap();
        assert!(p.within_noise, "{p:?}");
        assert!(p.low < 0.6 && p.high > 2.3, "{p:?}");
        assert_eq!(p.wins, 3);
        // Median of 1.127, 0.616, 0.584, 0.550, 2.337, 1.5, 0.747.
        assert!((p.median - 109.0 / 146.0).abs() < 1e-9, "{p:?}");
        assert!(p.cell().starts_with("~0.75x ["), "{}", p.cell());
    }

    #[test]
    fn one_outlier_round_does_not_decide() {
        // Nine rounds, one of them the other way: the bound drops the most
        // extreme ratio at each end (j = 2) and stays above 1.
        let p =
            PairedRatio::from_ratios(&[1.2, 1.1, 1.15, 0.5, 1.3, 1.05, 1.1, 1.25, 1.2]).unwrap();
        assert!(
            (p.low - 1.05).abs() < 1e-12 && (p.high - 1.25).abs() < 1e-12,
            "{p:?}"
        );
        assert!(!p.within_noise);
        assert!((p.median - 1.15).abs() < 1e-12);
        assert_eq!(p.wins, 8);
    }

    #[test]
    fn too_few_rounds_or_mismatched_runs_establish_nothing() {
        let p = PairedRatio::from_ratios(&[2.0, 2.1]).unwrap();
        assert!(p.within_noise);
        assert!(PairedRatio::from_ratios(&[]).is_none());
        // Three rounds may establish a difference, at the lower confidence.
        let p = PairedRatio::from_ratios(&[2.0, 2.1, 1.9]).unwrap();
        assert!(!p.within_noise);
        assert!((p.confidence - 0.75).abs() < 1e-12);
        // A contender that failed part-way has fewer runs: no pairing.
        assert!(PairedRatio::of(&m(&[1.0, 2.0]), &m(&[1.0])).is_none());
    }

    #[test]
    fn a_disturbed_run_makes_it_within_noise() {
        let a = m(&[2.0, 2.0, 2.0]);
        let mut b = m(&[1.0, 1.0, 1.0]);
        assert!(!PairedRatio::of(&a, &b).unwrap().within_noise);
        b.disturbed_runs = 1;
        assert!(PairedRatio::of(&a, &b).unwrap().within_noise);
    }
}
