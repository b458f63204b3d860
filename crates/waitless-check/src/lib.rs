//! # waitless-check
//!
//! Records concurrent histories, defines sequential models, and checks
//! histories for linearizability (Wing–Gong–Lowe search with memoization and
//! per-key partitioning).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
