//! `cargo xtask scenarios`: builds boxwatch (release), runs the whole
//! scenario catalog on this host, writes every report format to
//! `target/boxwatch-report/`, and fails when a required check failed or
//! errored, or something regressed against `--baseline`.

mod compare;

use crate::workspace_root;
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
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
    /// The runtime to judge: builtin, runc, crun, or all (one report per
    /// runtime in <out>/<runtime>/, and comparison.md, comparison.html and
    /// comparison.json side by side in <out>, differences highlighted).
    #[arg(long, default_value = "builtin", value_name = "RUNTIME")]
    runtime: String,
    /// The OCI runtime's binary (with --runtime runc or crun).
    #[arg(long, value_name = "PATH")]
    runtime_path: Option<PathBuf>,
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
        .clone()
        .unwrap_or_else(|| target_dir().join("boxwatch-report"));
    let runtimes: Vec<&str> = match args.runtime.as_str() {
        "all" => vec!["builtin", "runc", "crun"],
        r @ ("builtin" | "runc" | "crun") => vec![r],
        other => anyhow::bail!("unknown --runtime {other:?}: expected builtin, runc, crun or all"),
    };
    anyhow::ensure!(
        args.runtime_path.is_none() || matches!(args.runtime.as_str(), "runc" | "crun"),
        "--runtime-path needs --runtime runc or crun"
    );
    if runtimes.len() == 1 {
        return run_one(&bin, &args, runtimes[0], &out);
    }
    let mut failed = Vec::new();
    for rt in &runtimes {
        if let Err(e) = run_one(&bin, &args, rt, &out.join(rt)) {
            eprintln!("xtask: {rt}: {e:#}");
            failed.push(*rt);
        }
    }
    let mut reports = Vec::new();
    for rt in &runtimes {
        let path = out.join(rt).join("report.json");
        match reports::load_report(&path) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("xtask: {rt} wrote no usable report ({e}): left out of the comparison")
            }
        }
    }
    let cmp = compare::Comparison::build(&reports);
    let written = [
        ("comparison.md", cmp.to_markdown()),
        ("comparison.html", cmp.to_html()),
        (
            "comparison.json",
            serde_json::to_string_pretty(&cmp).context("serialising the comparison")?,
        ),
    ];
    for (name, text) in written {
        let p = out.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    let diffs: Vec<String> = cmp
        .differences()
        .map(|r| match &r.check {
            Some(c) => format!("{}/{c}", r.scenario),
            None => r.scenario.clone(),
        })
        .collect();
    eprintln!(
        "xtask: {} runtimes compared, {} difference(s){}; {}",
        reports.len(),
        diffs.len(),
        if diffs.is_empty() {
            String::new()
        } else {
            format!(": {}", diffs.join(", "))
        },
        out.join("comparison.md").display()
    );
    anyhow::ensure!(
        failed.is_empty(),
        "a required check failed or errored under {}; see the reports in {}",
        failed.join(", "),
        out.display()
    );
    Ok(())
}

/// `boxwatch scenarios --runtime <rt>` with every format written to `out`.
fn run_one(bin: &Path, args: &ScenariosArgs, rt: &str, out: &Path) -> Result<()> {
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("scenarios")
        .arg("--out")
        .arg(out)
        .arg("--jobs")
        .arg(args.jobs.to_string())
        .arg("--runtime")
        .arg(rt);
    if let Some(p) = &args.runtime_path {
        cmd.arg("--runtime-path").arg(p);
    }
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
        "xtask: scenarios ({rt}) ran in {:.1} s (after the build); reports in {}",
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
