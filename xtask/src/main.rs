//! Developer workflows: `cargo xtask <task>`. No shell scripts.

mod bench_engines;
mod bench_exporter;
mod bench_runtime;
mod bench_stale;
mod mutants;
mod noise;
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
    /// The kernel matrix from columns run elsewhere: `matrix merge DIR...`.
    #[command(subcommand)]
    Matrix(MatrixTask),
    /// One scenario (and check) on one kernel image, for `git bisect run`:
    /// exit 0 good, 1 bad, 125 skip (did not boot, inconclusive).
    Bisect(vm::bisect::BisectArgs),
    /// Benchmarks: `bench exporter` (scrape cost over N cgroups, next to
    /// prometheus-node-exporter), `bench exporter-load` (200 concurrent
    /// scrapers, slow clients, malformed requests), `bench runtime`
    /// (container start-to-exit: builtin, crun, runc, unshare).
    Bench(bench_exporter::BenchArgs),
    /// Build (release), run every scenario on this host, write every report
    /// format to target/boxwatch-report/; fails on a required failure or a
    /// regression against --baseline.
    Scenarios(scenarios::ScenariosArgs),
    /// The mutation suite: broken runtimes (runc/crun behind a wrapper that
    /// edits config.json, the builtin runtime with fault injection) must
    /// each make their expected checks fail, and the healthy ones none;
    /// writes target/boxwatch-report/mutants/mutants.md.
    Mutants(mutants::MutantsArgs),
    /// CPU verdicts under a noisy neighbour: N runs each of cpu-quota-20,
    /// -50 and -150 next to a background load, healthy and with a
    /// quota-dropping mutant; pass/fail/error counts to
    /// target/boxwatch-report/noise/noise.md.
    Noise(noise::NoiseArgs),
    /// The background load of `noise` (runs until killed).
    #[command(hide = true)]
    NoiseLoad,
}

#[derive(Subcommand)]
enum MatrixTask {
    /// Merge column results (`cargo xtask vm --out DIR`, one per CI job)
    /// into the matrix in JSON, Markdown, JUnit and HTML.
    Merge(vm::MergeArgs),
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Lint => lint(),
        Task::Vm(args) => vm::main(args),
        Task::Matrix(MatrixTask::Merge(args)) => vm::merge(args),
        Task::Bisect(args) => std::process::exit(vm::bisect::main(args)),
        Task::Bench(args) => bench_exporter::main(args),
        Task::Scenarios(args) => scenarios::main(args),
        Task::Mutants(args) => mutants::main(args),
        Task::Noise(args) => noise::main(args),
        Task::NoiseLoad => noise::load(),
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
