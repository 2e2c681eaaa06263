//! The `ehrshare` command.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the server allocates on tokio's threads and frees what
/// SQLite's worker threads allocated, where glibc's arenas contend (ADR 0013).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ehrshare::cli::main()
}
