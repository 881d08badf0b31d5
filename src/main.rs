//! The `boxwatch` command line. Thin: every subcommand parses its arguments
//! and hands over to a library crate.

mod inspect;
mod run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "boxwatch",
    version,
    about = "Proves, on a real kernel, whether container isolation and resource limits hold"
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
    Exporter(exporter::cli::ExporterArgs),
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
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let result = match cli.command {
        Command::Run(args) => run::main(args),
        Command::Exporter(args) => exporter::cli::run(args)
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

/// Docker's convention: 127 the command was not found, 126 it could not be
/// executed, 125 boxwatch itself failed.
fn error_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<runtime::Error>() {
        Some(runtime::Error::BadEntry { why, .. }) if why.contains("not executable") => 126,
        Some(runtime::Error::BadEntry { .. }) => 127,
        _ => 125,
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
        .without_time()
        .init();
}
