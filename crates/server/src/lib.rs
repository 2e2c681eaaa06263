//! ehrshare, the binary: configuration, telemetry, wiring, and the subcommands
//! `serve`, `migrate`, `print-config`, `audit verify`, `bench`, `connect` (the clinic's
//! connection component) and `import` (a clinic's history in bulk).
//!
//! Invariant: this crate only wires. Rules live in `ehrshare-core`, use cases in `ehrshare-app`,
//! HTTP in `ehrshare-web`.

pub mod audit_cmd;
pub mod bench;
pub mod cli;
pub mod config;
pub mod connect;
pub mod demo;
pub mod import;
pub mod listener;
pub mod serve;
pub mod smart_client;
pub mod telemetry;
