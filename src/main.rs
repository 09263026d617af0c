//! The `komek` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    komek::cli::run(komek::cli::Cli::parse())
}
