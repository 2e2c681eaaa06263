//! The command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat, Overrides};
use crate::serve::ServeArgs;

/// ehrshare: electronic health record sharing.
#[derive(Debug, Parser)]
#[command(name = "ehrshare", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Also EHRSHARE_CONFIG.
    #[arg(long, global = true, env = "EHRSHARE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub flags: Flags,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags that override the file and the environment.
#[derive(Debug, Args)]
pub struct Flags {
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data folder [default: ./data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite:PATH or postgres://... [default: DATA_DIR/ehrshare.db].
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Sharing-consent rules: 2016 or 2025 [default: 2016].
    #[arg(long, global = true, value_name = "YEAR")]
    pub consent_regime: Option<String>,
    /// Public base URL [default: http:// + listen].
    #[arg(long, global = true, value_name = "URL")]
    pub public_base_url: Option<String>,
    /// Whether cookies carry Secure [default: true].
    #[arg(long, global = true, value_name = "BOOL")]
    pub cookie_secure: Option<bool>,
    /// Log format [default: text].
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,
    /// Log filter [default: info].
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

/// Log format as a flag value.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Load the demo population (once) into the configured database; `demo code USER` prints
    /// a demo account's current security code.
    Demo(DemoArgs),
    /// The eHR Office's accounts.
    #[command(subcommand)]
    Office(OfficeCommand),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the merged configuration (secrets redacted) and exit.
    PrintConfig,
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Performance workloads on a scratch database (never the configured one).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The connection component a clinic runs beside its own system: deposits what it exports
    /// (a watched folder, or standard input) through a durable local queue.
    Connect(crate::connect::ConnectArgs),
    /// A clinic's or a hospital's history in bulk: NDJSON files (one FHIR resource a line)
    /// deposited through the server's `$import`, each line decided and audited, each line's
    /// answer written beside the file. Exit 0 when every line was stored, 1 when some were
    /// refused, 2 when it cannot run as given, 4 when it stopped early (then `--resume`).
    Import(crate::import::ImportArgs),
}

/// Options of `demo`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub command: Option<DemoCommand>,
}

/// `ehrshare demo ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum DemoCommand {
    /// Print the current security code of a demo account (refused for any other account).
    Code {
        /// The demo account's user name, such as `hvc.doctor`.
        user: String,
    },
}

/// `ehrshare office ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum OfficeCommand {
    /// Create an office system administrator and print the first password (bootstrap: the
    /// first administrator then creates the other office accounts through the API).
    CreateAdmin {
        /// User name for the new account.
        #[arg(long)]
        user_name: String,
        /// The person's name in English.
        #[arg(long)]
        name: String,
        /// The person's mobile number.
        #[arg(long)]
        mobile: String,
    },
}

/// `ehrshare bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Durable audit appends from concurrent callers, beside the raw batched-insert rate.
    Audit(crate::bench::AuditBenchArgs),
    /// Concurrent authorised eHR-summary reads through the HTTP stack, beside a trivial route.
    Summary(crate::bench::SummaryBenchArgs),
    /// The alert rules over one busy user's history at two sizes: the cost a decision must not
    /// grow with the history.
    Alerts(crate::bench::AlertsBenchArgs),
    /// Validated FHIR deposits through the HTTP stack, beside a trivial route, and the
    /// validation's share of a deposit's time.
    Deposit(crate::bench::DepositBenchArgs),
}

/// `ehrshare audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the Merkle tree, check every signed checkpoint; exit 0 only if all holds.
    Verify(crate::audit_cmd::VerifyArgs),
}

impl Flags {
    fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            consent_regime: self.consent_regime.clone(),
            public_base_url: self.public_base_url.clone(),
            cookie_secure: self.cookie_secure,
            log_format: self.log_format.map(|f| match f {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            }),
            log_level: self.log_level.clone(),
        }
    }
}

/// Runs the command line; the exit code is 0 on success, 1 on a runtime failure and 2 on a
/// configuration error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), &cli.flags.overrides()) {
        Ok(c) => c,
        Err(err) => {
            eprintln!("ehrshare: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    if let Command::PrintConfig = command {
        return match config.to_printable_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("ehrshare: {err}");
                ExitCode::from(2)
            }
        };
    }
    crate::telemetry::init(config.log_format, &config.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("ehrshare: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Serve(args) => crate::serve::serve(config, &args).await.map(|()| true),
            Command::Demo(DemoArgs { command: None }) => {
                crate::serve::demo(config).await.map(|()| true)
            }
            Command::Demo(DemoArgs {
                command: Some(DemoCommand::Code { user }),
            }) => crate::serve::demo_code(config, &user).await,
            Command::Office(OfficeCommand::CreateAdmin {
                user_name,
                name,
                mobile,
            }) => crate::serve::create_office_admin(config, &user_name, &name, &mobile)
                .await
                .map(|()| true),
            Command::Migrate => crate::serve::migrate(config).await.map(|()| true),
            Command::Connect(args) => crate::connect::run(&args).await.map(|()| true),
            Command::Import(args) => crate::import::run(&args).await,
            Command::PrintConfig => Ok(true),
            Command::Audit(AuditCommand::Verify(args)) => {
                crate::audit_cmd::verify_command(&config, &args).await
            }
            Command::Bench(BenchCommand::Summary(args)) => {
                crate::bench::summary(&args).await.map(|()| true)
            }
            Command::Bench(BenchCommand::Audit(args)) => {
                crate::bench::audit(&args).await.map(|()| true)
            }
            Command::Bench(BenchCommand::Alerts(args)) => {
                crate::bench::alerts(&args).map(|()| true)
            }
            Command::Bench(BenchCommand::Deposit(args)) => {
                crate::bench::deposit(&args).await.map(|()| true)
            }
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        // A check that ran and found a problem (audit verify).
        Ok(false) => ExitCode::from(1),
        // Refused to start on a database its signed audit checkpoints contradict: not a
        // passing fault, so a distinct code that a supervisor need not retry.
        Err(err) if err.downcast_ref::<crate::serve::StartRefused>().is_some() => {
            eprintln!("ehrshare: {err}");
            ExitCode::from(3)
        }
        // An import that cannot run as given (nothing sent), as a configuration error.
        Err(err) if err.downcast_ref::<crate::import::Unusable>().is_some() => {
            eprintln!("ehrshare: {err}");
            ExitCode::from(2)
        }
        // An import that stopped early: run it again with --resume.
        Err(err) if err.downcast_ref::<crate::import::Unfinished>().is_some() => {
            eprintln!("ehrshare: {err}");
            ExitCode::from(4)
        }
        Err(err) => {
            eprintln!("ehrshare: {err:#}");
            ExitCode::FAILURE
        }
    }
}
