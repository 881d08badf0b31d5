//! `cargo xtask scenarios`: builds boxwatch (release), runs the whole
//! scenario catalog on this host, writes every report format to
//! `target/boxwatch-report/`, and fails when a required check failed or
//! errored, or something regressed against `--baseline`.

use crate::workspace_root;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct ScenariosArgs {
    /// An earlier JSON report (report.json): checks that held there and not
    /// now are regressions and fail the task.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Run only the scenarios whose id matches GLOB (repeatable).
    #[arg(long, value_name = "GLOB")]
    only: Vec<String>,
    /// Scenarios run side by side (CPU measurements always run alone).
    #[arg(long, default_value_t = 1, value_name = "N")]
    jobs: u16,
    /// Where every report format is written (default: target/boxwatch-report).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Use a debug build instead of a release one.
    #[arg(long)]
    debug: bool,
}

/// The cargo target directory (CARGO_TARGET_DIR, else `<workspace>/target`).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        None => workspace_root().join("target"),
    }
}

pub fn main(args: ScenariosArgs) -> Result<()> {
    let profile = if args.debug { "debug" } else { "release" };
    let mut build = vec!["build", "--bin", "boxwatch"];
    if !args.debug {
        build.push("--release");
    }
    crate::cmd("cargo", &build)?;
    let bin = target_dir().join(profile).join("boxwatch");
    let out = args
        .out
        .unwrap_or_else(|| target_dir().join("boxwatch-report"));
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("scenarios")
        .arg("--out")
        .arg(&out)
        .arg("--jobs")
        .arg(args.jobs.to_string());
    if let Some(b) = &args.baseline {
        let b = std::path::absolute(b).with_context(|| format!("baseline {}", b.display()))?;
        anyhow::ensure!(b.is_file(), "the baseline {} does not exist", b.display());
        cmd.arg("--baseline").arg(b);
    }
    for glob in &args.only {
        cmd.arg("--only").arg(glob);
    }
    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    eprintln!(
        "xtask: scenarios ran in {:.1} s (after the build); reports in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    anyhow::ensure!(
        status.success(),
        "boxwatch scenarios: a required check failed or errored, or a check regressed ({status}); see {}",
        out.join("report.md").display()
    );
    Ok(())
}
