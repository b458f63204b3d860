//! The machine a report was measured on.

use serde::{Deserialize, Serialize};

/// What the report says about the machine. Every field degrades to
/// `"unknown"` rather than failing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model (from `/proc/cpuinfo` on Linux).
    pub cpu_model: String,
    /// Hardware threads this process may use.
    pub logical_cores: usize,
    /// Operating system (`PRETTY_NAME` from `/etc/os-release`, else the
    /// target OS) and kernel release.
    pub os: String,
    /// Target architecture.
    pub arch: String,
    /// The compiler that built this binary (`rustc -V` at build time).
    pub rustc: String,
    /// Cargo profile of this binary (`release` for meaningful numbers).
    pub profile: String,
    /// Whether hardware performance counters could be opened.
    pub hardware_counters: bool,
    /// Whether waitless's CAS-attempt counters were compiled in (the
    /// `contention` feature of `waitless-bench`): contention profiles have
    /// CAS numbers only then, and every CAS of a waitless structure pays a
    /// relaxed increment.
    #[serde(default)]
    pub contention_counters: bool,
}

impl Machine {
    /// Describes the machine this process runs on.
    pub fn detect() -> Self {
        Self {
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: os_description(),
            arch: std::env::consts::ARCH.to_owned(),
            rustc: env!("WAITLESS_BENCH_RUSTC").to_owned(),
            profile: env!("WAITLESS_BENCH_PROFILE").to_owned(),
            hardware_counters: crate::perf::CacheMissCounter::open_inherited().is_some(),
            contention_counters: waitless::contention::is_compiled_in(),
        }
    }

    /// One line: `"AMD EPYC 7B13, 2 hardware threads, Debian 12, rustc 1.x"`.
    pub fn summary(&self) -> String {
        format!(
            "{}, {} hardware thread{}, {} ({}), {}, {} build, contention counters {}",
            self.cpu_model,
            self.logical_cores,
            if self.logical_cores == 1 { "" } else { "s" },
            self.os,
            self.arch,
            self.rustc,
            self.profile,
            if self.contention_counters {
                "on"
            } else {
                "off"
            }
        )
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    parse_cpu_model(&info)
}

/// The first `model name` (x86), `Model`/`Hardware` (Arm) or `cpu` (POWER)
/// line of a `/proc/cpuinfo` text.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    for key in ["model name", "Model", "Hardware", "cpu model", "cpu"] {
        for line in cpuinfo.lines() {
            if let Some((k, v)) = line.split_once(':') {
                if k.trim() == key && !v.trim().is_empty() {
                    return Some(v.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
        }
    }
    None
}

fn os_description() -> String {
    let name = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    match std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        Ok(k) => format!("{name}, kernel {}", k.trim()),
        Err(_) => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_x86_and_arm_cpuinfo() {
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7B13 64-Core Processor\n";
        assert_eq!(
            parse_cpu_model(x86).as_deref(),
            Some("AMD EPYC 7B13 64-Core Processor")
        );
        let arm = "processor : 0\nBogoMIPS : 50.00\n\nHardware : BCM2835\nModel : Raspberry Pi 4\n";
        assert_eq!(parse_cpu_model(arm).as_deref(), Some("Raspberry Pi 4"));
        assert_eq!(parse_cpu_model("nothing here"), None);
    }

    #[test]
    fn detect_fills_every_field() {
        let m = Machine::detect();
        assert!(m.logical_cores >= 1);
        assert!(!m.cpu_model.is_empty() && !m.os.is_empty() && !m.rustc.is_empty());
        assert!(m.summary().contains(&m.cpu_model));
    }
}
