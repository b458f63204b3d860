//! Checking time for recorded histories (filled in by the checker work).
fn main() {}
