//! # waitless-bench
//!
//! The performance analyzer: measures, on your machine, when lock-free beats
//! a lock.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod measure;
pub mod workloads;
