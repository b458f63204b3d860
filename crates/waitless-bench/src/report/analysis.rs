//! Reading a workload's results: each waitless contender against the lock and the best peer,
//! by ratio of medians and by runs paired round by round.

use super::*;

/// Compares every waitless contender with the first lock baseline (at the
/// thread counts both measured) and with the best peer at each count.
pub fn analyze_workload(contenders: &[ContenderReport]) -> Vec<WorkloadAnalysis> {
    let Some(baseline) = contenders
        .iter()
        .find(|c| c.role == Role::MutexBaseline && !c.measurements.is_empty())
    else {
        return Vec::new();
    };
    let peers: Vec<&ContenderReport> = contenders.iter().filter(|c| c.role == Role::Peer).collect();
    contenders
        .iter()
        .filter(|c| c.role == Role::Waitless && !c.measurements.is_empty())
        .filter_map(|c| {
            let (lf, mx): (Vec<Measurement>, Vec<Measurement>) = c
                .measurements
                .iter()
                .filter_map(|m| baseline.at(m.threads).map(|b| (m.clone(), b.clone())))
                .unzip();
            let cmp = ComparisonResults::from_measurements(&c.name, &baseline.name, lf, mx)?;
            let versus_best_peer = c
                .measurements
                .iter()
                .filter_map(|m| {
                    let (name, best) = peers
                        .iter()
                        .filter_map(|p| p.at(m.threads).map(|pm| (&p.name, pm)))
                        .max_by(|a, b| a.1.median_ops_per_sec.total_cmp(&b.1.median_ops_per_sec))?;
                    Some(PeerRatio {
                        threads: m.threads,
                        best_peer: name.clone(),
                        factor: ratio(m.median_ops_per_sec, best.median_ops_per_sec),
                        within_noise: within_noise(m, best),
                        paired: PairedRatio::of(m, best),
                    })
                })
                .collect();
            let paired_versus_mutex = c
                .measurements
                .iter()
                .filter_map(|m| {
                    let paired = PairedRatio::of(m, baseline.at(m.threads)?)?;
                    Some(PairedAt {
                        threads: m.threads,
                        against: baseline.name.clone(),
                        paired,
                    })
                })
                .collect();
            Some(WorkloadAnalysis {
                contender: c.name.clone(),
                baseline: baseline.name.clone(),
                versus_mutex: analyze_lock_free_benefits(&cmp),
                versus_best_peer,
                paired_versus_mutex,
            })
        })
        .collect()
}
