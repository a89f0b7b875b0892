//! The faultline binary: parse arguments, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

// The shipped binary's allocator: see `faultline::cli::alloc`.
#[global_allocator]
static ALLOC: faultline::cli::alloc::Fast = faultline::cli::alloc::Fast;

fn main() -> ExitCode {
    faultline::cli::alloc::tune();
    let cli = faultline::cli::args::Cli::parse();
    match faultline::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
