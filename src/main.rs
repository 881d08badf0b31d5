//! The `boxwatch` command line. Thin: every subcommand parses its arguments
//! and hands over to a library crate.

mod inspect;
mod run;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::io::IsTerminal;
use std::process::ExitCode;

/// The exit status of every refusal of boxwatch's own: a bad flag or value,
/// a missing file, a failed setup (Docker's convention, clear of the codes
/// commands commonly use).
pub const REFUSED: u8 = 125;

/// The exit-status section of `--help` (`run`'s adds the command's codes).
const EXIT_STATUS: &str = "\
Exit status:
  125  boxwatch itself refused or failed: a bad flag or value (the message names it),
       a missing file, a setup step that failed
  1    scenarios: a required check failed or errored, or something regressed
  run: the command's own exit code, 128+N when it was killed by signal N,
       126 when it cannot be executed, 127 when it is not found";

#[derive(Parser)]
#[command(
    name = "boxwatch",
    version,
    about = "Proves, on a real kernel, whether container isolation and resource limits hold",
    after_help = EXIT_STATUS
)]
struct Cli {
    /// More output (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a fresh container and exit with its exit code.
    Run(run::RunArgs),
    /// Serve per-cgroup usage against quota, and the latest verdicts, to Prometheus.
    Exporter(exporter::ExporterArgs),
    /// Run the scenario catalog: which isolation and limit guarantees hold on this kernel.
    Scenarios(scenarios::cli::ScenariosArgs),
    /// Look into a running container boxwatch did not start: namespaces, /proc leaks, limits and usage.
    Inspect(inspect::InspectArgs),
    /// Run one scenario workload (inside a scenario container).
    #[command(hide = true)]
    Workload(scenarios::cli::WorkloadArgs),
}

fn main() -> ExitCode {
    // The container's setup stage re-executes this binary; it must take over
    // before any argument parsing or thread creation.
    if let Some(code) = runtime::init::dispatch() {
        return code;
    }
    if let Some(code) = runtime::oci::dispatch() {
        return code;
    }
    if let Some(code) = probes::inspect::dispatch() {
        return code;
    }
    let cli = match parse_cli(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_tracing(cli.verbose);
    let result = match cli.command {
        Command::Run(args) => run::main(args),
        Command::Exporter(args) => exporter::run(args)
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Scenarios(args) => scenarios::cli::run_scenarios(args).map_err(Into::into),
        Command::Inspect(args) => inspect::main(args),
        Command::Workload(args) => scenarios::cli::run_workload(args).map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("boxwatch: error: {e:#}");
            ExitCode::from(error_code(&e))
        }
    }
}

/// Parses the command line. A usage error (unknown flag, bad value) is
/// printed by clap and exits [`REFUSED`], not clap's 2, which commands
/// commonly use; `--help` and `--version` exit 0.
fn parse_cli(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, ExitCode> {
    let color = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        clap::ColorChoice::Auto
    } else {
        clap::ColorChoice::Never
    };
    let matches = Cli::command()
        .color(color)
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m));
    match matches {
        Ok(cli) => Ok(cli),
        Err(e) => {
            let _ = e.print();
            Err(ExitCode::from(if e.use_stderr() { REFUSED } else { 0 }))
        }
    }
}

/// Docker's convention: 127 the command was not found, 126 it could not be
/// executed, 125 boxwatch itself failed.
fn error_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<runtime::Error>() {
        Some(runtime::Error::BadEntry { missing: true, .. }) => 127,
        Some(runtime::Error::BadEntry { missing: false, .. }) => 126,
        _ => REFUSED,
    }
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BOXWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .without_time()
        .init();
}
