//! The `ehrshare` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    ehrshare::cli::main()
}
