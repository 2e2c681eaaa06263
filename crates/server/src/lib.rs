//! ehrshare, the binary: configuration, telemetry, wiring, and the subcommands
//! `serve`, `migrate`, `print-config` and `audit verify`.
//!
//! Invariant: this crate only wires. Rules live in `ehrshare-core`, use cases in `ehrshare-app`,
//! HTTP in `ehrshare-web`.

pub mod audit_cmd;
pub mod bench;
pub mod cli;
pub mod config;
pub mod demo;
pub mod listener;
pub mod serve;
pub mod telemetry;
