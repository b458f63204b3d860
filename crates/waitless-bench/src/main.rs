//! `waitless-bench`: the comparison report.
fn main() {
    println!("usage: waitless-bench [--quick]");
}
