//! `articlebot bench`: generates a large knowledge base in the page format and measures load and
//! index time, query latency and memory.

use clap::Args;

use super::Failure;

#[derive(Args, Debug)]
pub struct BenchArgs {}

pub fn run(_args: BenchArgs) -> Result<(), Failure> {
    Err(Failure::usage("bench is not available yet"))
}
