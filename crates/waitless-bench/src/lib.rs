//! # waitless-bench
//!
//! The performance analyzer: measures, on your machine, when lock-free beats
//! a lock.
//!
//! - [`LockFreePerformanceAnalyzer`] compares a lock-free implementation with
//!   a lock-based one across thread counts
//!   ([`compare_implementations`](LockFreePerformanceAnalyzer::compare_implementations)),
//!   reads the result ([`analyze_lock_free_benefits`]: crossover thread count,
//!   best improvement factor, recommendations) and profiles contention
//!   ([`profile_contention`](LockFreePerformanceAnalyzer::profile_contention):
//!   CAS success rate, retries per operation, hot spots, hardware cache
//!   misses where exposed).
//! - [`measure`] is the measurement core ([`run_workload`]): OS threads, a
//!   start barrier, warm-up, a fixed window, sampled latency in an HDR
//!   histogram; [`Measurement`] summarises repeated runs by their median.
//! - [`workloads`] lists every structure's benchmark with its mutex baseline
//!   and its crates.io peers; [`report`] runs them and writes the report
//!   folder (JSON, SVG plots, `index.html`) that the `waitless-bench` CLI
//!   produces.
//! - [`micro`] holds the one-thread probes and cost measurements outside the
//!   report (`waitless-bench micro …`).
//!
//! Methodology: `docs/benchmarking.md`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod analyzer;
pub mod machine;
pub mod measure;
pub mod micro;
pub mod perf;
pub mod proofs;
pub mod report;
pub mod svg;
pub mod verdict;
pub mod workloads;

pub use analyzer::{
    analyze_lock_free_benefits, within_noise, BenefitAnalysis, ComparisonPoint, ComparisonResults,
    ContentionProfile, HotSpot, LockFreePerformanceAnalyzer, ThreadRatio,
};
pub use machine::Machine;
pub use measure::{run_workload, Measurement, Percentiles, RunConfig, RunResult};
