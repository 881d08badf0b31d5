//! Developer workflows: `cargo xtask <task>`. No shell scripts.

mod bench_exporter;
mod bench_runtime;
mod bench_stale;
mod scenarios;
mod vm;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run clippy (-D warnings) and fmt --check.
    Lint,
    /// Run the scenarios inside VMs on other kernels and cgroup layouts.
    Vm(vm::VmArgs),
    /// Benchmarks: `bench exporter` (scrape cost over N cgroups, next to
    /// prometheus-node-exporter), `bench exporter-load` (200 concurrent
    /// scrapers, slow clients, malformed requests), `bench runtime`
    /// (container start-to-exit: builtin, crun, runc, unshare).
    Bench(bench_exporter::BenchArgs),
    /// Build (release), run every scenario on this host, write every report
    /// format to target/boxwatch-report/; fails on a required failure or a
    /// regression against --baseline.
    Scenarios(scenarios::ScenariosArgs),
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Lint => lint(),
        Task::Vm(args) => vm::main(args),
        Task::Bench(args) => bench_exporter::main(args),
        Task::Scenarios(args) => scenarios::main(args),
    }
}

fn lint() -> Result<()> {
    cmd("cargo", &["fmt", "--all", "--", "--check"])?;
    cmd(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )
}

/// Runs a command in the workspace root, failing on a non-zero exit.
pub fn cmd(program: &str, args: &[&str]) -> Result<()> {
    let status = std::process::Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()?;
    anyhow::ensure!(
        status.success(),
        "`{program} {}` failed: {status}",
        args.join(" ")
    );
    Ok(())
}

pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
