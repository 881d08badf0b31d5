//! `cargo xtask bench <target>`: the benchmarks, one module each
//! ([`exporter`]: `exporter` and `exporter-load`; [`runtime`], with the
//! stale-state rows of [`stale`]), and what they share ([`common`]: the
//! interrupt flag, the release binary, the percentile). Every bench runs
//! as root against the release `boxwatch`, built first; SIGINT/SIGTERM
//! stop it and it removes what it made.

mod common;
mod engines;
mod exporter;
mod facts;
mod runtime;
mod stale;

use anyhow::{ensure, Result};

/// `cargo xtask bench <target>`.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    target: BenchTarget,
}

#[derive(clap::Subcommand)]
enum BenchTarget {
    /// Scrape latency, CPU per scrape and RSS of the exporter over N
    /// cgroups, next to prometheus-node-exporter.
    Exporter(exporter::ExporterBenchArgs),
    /// Start-to-exit latency of a container running /bin/true: the
    /// builtin runtime, crun, runc and unshare side by side.
    Runtime(runtime::RuntimeBenchArgs),
    /// 200 concurrent scrapers, slow clients and malformed requests.
    ExporterLoad(exporter::ExporterLoadArgs),
}

pub fn main(args: BenchArgs) -> Result<()> {
    ensure!(
        nix::unistd::geteuid().is_root(),
        "the benches create cgroups: run them as root"
    );
    common::watch_signals()?;
    let bin = common::build_boxwatch()?;
    match args.target {
        BenchTarget::Exporter(args) => exporter::main(&bin, args),
        BenchTarget::Runtime(args) => runtime::main(&bin, args),
        BenchTarget::ExporterLoad(args) => exporter::main_load(&bin, args),
    }
}
