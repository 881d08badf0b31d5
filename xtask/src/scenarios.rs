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
    /// An earlier JSON report (report.json) of the same runtime: checks
    /// that held there and not now are regressions and fail the task. A
    /// baseline belongs to one runtime: with --runtime all, give a
    /// directory holding one per runtime, `<runtime>.json` or
    /// `<runtime>/report.json` (what --runtime all writes).
    #[arg(long, value_name = "FILE|DIR")]
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
    /// The runtime to judge: builtin, runc, crun, runsc (gVisor), or all (one report per
    /// runtime in `<out>/<runtime>/`, and comparison.md, comparison.html and
    /// comparison.json side by side in `<out>`, differences highlighted).
    #[arg(long, default_value = "builtin", value_name = "RUNTIME")]
    runtime: String,
    /// The OCI runtime's or engine's binary (with --runtime runc, crun, runsc, docker or podman).
    #[arg(long, value_name = "PATH")]
    runtime_path: Option<PathBuf>,
    /// With --runtime all: the runtimes whose failed or errored checks fail
    /// the task (comma-separated; default: every runtime run). The others
    /// still run, must write a report, and are compared side by side; what
    /// their checks found is reported, not gated on (gVisor's known
    /// findings on a host, say).
    #[arg(long, value_name = "RUNTIMES", value_delimiter = ',')]
    gate: Vec<String>,
}

/// The cargo target directory (CARGO_TARGET_DIR, else `<workspace>/target`).
pub fn target_dir() -> PathBuf {
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
        "all" => vec!["builtin", "runc", "crun", "runsc", "docker", "podman"],
        r @ ("builtin" | "runc" | "crun" | "runsc" | "docker" | "podman") => vec![r],
        other => {
            anyhow::bail!(
                "unknown --runtime {other:?}: expected builtin, runc, crun, runsc, docker, podman or all"
            )
        }
    };
    anyhow::ensure!(
        args.runtime_path.is_none()
            || matches!(
                args.runtime.as_str(),
                "runc" | "crun" | "runsc" | "docker" | "podman"
            ),
        "--runtime-path needs --runtime runc, crun, runsc, docker or podman"
    );
    let baselines = resolve_baselines(args.baseline.as_deref(), &runtimes)?;
    if runtimes.len() == 1 {
        return run_one(&bin, &args, runtimes[0], baselines[0].as_deref(), &out);
    }
    for g in &args.gate {
        anyhow::ensure!(
            runtimes.contains(&g.as_str()),
            "--gate {g:?}: not a runtime of this run (expected some of {})",
            runtimes.join(", ")
        );
    }
    let gated = |rt: &str| args.gate.is_empty() || args.gate.iter().any(|g| g == rt);
    let mut failed = Vec::new();
    for (rt, baseline) in runtimes.iter().zip(&baselines) {
        if let Err(e) = run_one(&bin, &args, rt, baseline.as_deref(), &out.join(rt)) {
            if gated(rt) {
                eprintln!("xtask: {rt}: {e:#}");
                failed.push(*rt);
            } else {
                eprintln!("xtask: {rt} (reported, not gated on): {e:#}");
            }
        }
    }
    let mut reports = Vec::new();
    for rt in &runtimes {
        let path = out.join(rt).join("report.json");
        match reports::load_report(&path) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!(
                    "xtask: {rt} wrote no usable report ({}): left out of the comparison",
                    reports::error::chain(&e)
                );
                // Not gated on its findings, but it must have run.
                if !failed.contains(rt) {
                    failed.push(*rt);
                }
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

/// The baseline of each of `runtimes`, in order. A file is one runtime's
/// report and is refused for several runtimes; a directory holds
/// `<runtime>.json` or `<runtime>/report.json` for every runtime. Each
/// baseline must be a report of the runtime it is the baseline of.
fn resolve_baselines(baseline: Option<&Path>, runtimes: &[&str]) -> Result<Vec<Option<PathBuf>>> {
    let Some(b) = baseline else {
        return Ok(vec![None; runtimes.len()]);
    };
    let b = std::path::absolute(b).with_context(|| format!("baseline {}", b.display()))?;
    let files: Vec<PathBuf> = if b.is_dir() {
        let mut files = Vec::new();
        let mut missing = Vec::new();
        for rt in runtimes {
            let candidates = [b.join(format!("{rt}.json")), b.join(rt).join("report.json")];
            match candidates.iter().find(|p| p.is_file()) {
                Some(p) => files.push(p.clone()),
                None => missing.push(format!(
                    "{rt} (neither {} nor {})",
                    candidates[0].display(),
                    candidates[1].display()
                )),
            }
        }
        anyhow::ensure!(
            missing.is_empty(),
            "the baseline directory {} has no report for {}: a baseline belongs to one runtime, give one per runtime",
            b.display(),
            missing.join(", ")
        );
        files
    } else {
        anyhow::ensure!(b.is_file(), "the baseline {} does not exist", b.display());
        anyhow::ensure!(
            runtimes.len() == 1,
            "--baseline {} is one report, but --runtime all judges {}: a baseline belongs to one runtime. \
             Give a directory holding <runtime>.json (or <runtime>/report.json, as --runtime all writes) for each of them",
            b.display(),
            runtimes.join(", ")
        );
        vec![b]
    };
    for (rt, file) in runtimes.iter().zip(&files) {
        let report = reports::load_report(file)
            .with_context(|| format!("reading the {rt} baseline {}", file.display()))?;
        let of = report.runtime.name.as_str();
        anyhow::ensure!(
            of == *rt,
            "the baseline {} is a report of {of}, not of {rt}: a baseline belongs to the runtime it was made with",
            file.display()
        );
    }
    Ok(files.into_iter().map(Some).collect())
}

/// `boxwatch scenarios --runtime <rt>` with every format written to `out`.
fn run_one(
    bin: &Path,
    args: &ScenariosArgs,
    rt: &str,
    baseline: Option<&Path>,
    out: &Path,
) -> Result<()> {
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
    if let Some(b) = baseline {
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

#[cfg(test)]
mod tests {
    use super::*;
    use reports::RuntimeName;

    fn write_report(path: &Path, rt: RuntimeName) {
        let mut r = reports::fixture::sample_report();
        r.runtime.name = rt;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, serde_json::to_string(&r).unwrap()).unwrap();
    }

    const ALL: [&str; 3] = ["builtin", "runc", "crun"];

    #[test]
    fn one_report_is_refused_for_all_runtimes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("report.json");
        write_report(&f, RuntimeName::Builtin);
        let e = resolve_baselines(Some(&f), &ALL).unwrap_err().to_string();
        assert!(
            e.contains("a baseline belongs to one runtime") && e.contains("<runtime>.json"),
            "{e}"
        );
        // For its own runtime alone it is fine.
        assert_eq!(
            resolve_baselines(Some(&f), &["builtin"]).unwrap(),
            vec![Some(f.clone())]
        );
    }

    #[test]
    fn a_directory_gives_each_runtime_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_report(&d.join("builtin.json"), RuntimeName::Builtin);
        write_report(&d.join("runc/report.json"), RuntimeName::Runc);
        let e = resolve_baselines(Some(d), &ALL).unwrap_err().to_string();
        assert!(e.contains("no report for crun"), "{e}");
        write_report(&d.join("crun.json"), RuntimeName::Crun);
        let got = resolve_baselines(Some(d), &ALL).unwrap();
        assert_eq!(
            got,
            vec![
                Some(d.join("builtin.json")),
                Some(d.join("runc/report.json")),
                Some(d.join("crun.json")),
            ]
        );
        assert_eq!(
            resolve_baselines(Some(d), &["runc"]).unwrap(),
            vec![Some(d.join("runc/report.json"))]
        );
    }

    #[test]
    fn another_runtimes_report_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("runc.json");
        write_report(&f, RuntimeName::Crun);
        let e = resolve_baselines(Some(&f), &["runc"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("a report of crun, not of runc"), "{e}");
        let e = resolve_baselines(Some(dir.path()), &["runc"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("a report of crun, not of runc"), "{e}");
    }

    #[test]
    fn no_baseline_is_none_for_each() {
        assert_eq!(
            resolve_baselines(None, &ALL).unwrap(),
            vec![None, None, None]
        );
        let e = resolve_baselines(Some(Path::new("/no/such/baseline.json")), &["builtin"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
