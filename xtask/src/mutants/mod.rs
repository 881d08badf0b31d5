//! `cargo xtask mutants`: proof that each required check can fail. Every
//! mutant of `xtask/mutants.toml` is a broken runtime (runc or crun behind
//! the `oci-mutant` wrapper, which edits config.json; or the builtin
//! runtime built with the `fault-injection` feature) and names the checks
//! it must make fail. The suite runs, per runtime, the healthy runtime and
//! then each mutant on just the scenarios the mutant names, and fails when
//! the healthy runtime does not hold every required check, when a mutant's
//! expected checks do not fail (`leaked` / `not-enforced`), or when a mutant
//! makes another required check fail. It prints, and writes as Markdown to
//! `<out>/mutants.md`, a table of mutant, expected check and status seen,
//! and the required checks of the catalog that no mutant can fail.

// The wrapper (src/bin/oci-mutant.rs) applies the edits; the suite only
// describes them.
#[allow(dead_code)]
pub mod edit;

use crate::scenarios::target_dir;
use anyhow::{bail, Context, Result};
use clap::Args;
use edit::{Edit, WrapperConfig};
use reports::{Report, Verdict};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Args)]
pub struct MutantsArgs {
    /// The runtimes to break: builtin, runc, crun (repeatable; default: all
    /// three).
    #[arg(long = "runtime", value_name = "RUNTIME")]
    runtimes: Vec<String>,
    /// Only the mutants whose name matches GLOB (repeatable).
    #[arg(long, value_name = "GLOB")]
    only: Vec<String>,
    /// The mutant list (default: xtask/mutants.toml).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Where the reports and mutants.md go (default:
    /// target/boxwatch-report/mutants).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Release builds instead of debug ones.
    #[arg(long)]
    release: bool,
    /// How long a CPU-measuring scenario waits for a quiet host (a
    /// shortfall is judged by the container's own wait anyway).
    #[arg(long, default_value = "3s", value_name = "DURATION")]
    quiet_wait: String,
}

/// The mutant list, as `xtask/mutants.toml` writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MutantFile {
    mutant: Vec<Mutant>,
}

/// One broken runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutant {
    pub name: String,
    /// What is broken, in words.
    pub about: String,
    /// builtin, runc, crun.
    pub runtimes: Vec<String>,
    /// For runc and crun: the edits the wrapper makes.
    #[serde(default)]
    pub oci: Vec<Edit>,
    /// For the builtin runtime: the fault it is built to make (see
    /// runtime/src/fault.rs).
    pub fault: Option<String>,
    /// `scenario/check` ids that must fail.
    pub expect: Vec<String>,
    /// Checks of the same scenarios that this mutant may or may not make
    /// fail, depending on the host's load (not counted either way).
    #[serde(default)]
    pub may_fail: Vec<String>,
    /// Skip (saying so) when a scenario it names is not in the catalog:
    /// only for mutants of scenarios that are still to come.
    #[serde(default)]
    pub skip_without_scenario: bool,
}

impl Mutant {
    fn scenarios(&self) -> BTreeSet<&str> {
        self.expect
            .iter()
            .filter_map(|c| c.split_once('/').map(|(s, _)| s))
            .collect()
    }

    fn describe(&self, rt: &str) -> String {
        let how = if rt == "builtin" {
            format!("fault {}", self.fault.as_deref().unwrap_or("?"))
        } else {
            self.oci
                .iter()
                .map(Edit::describe)
                .collect::<Vec<_>>()
                .join("; ")
        };
        format!("{} ({how})", self.about)
    }
}

const RUNTIMES: [&str; 3] = ["builtin", "runc", "crun"];

/// Loads and checks the mutant list against the catalog: ids, runtimes, an
/// edit or fault for each runtime, expected checks that exist. Returns the
/// mutants to run and the lines saying which were skipped and why.
pub fn load(
    path: &Path,
    catalog: &BTreeMap<String, Vec<(String, bool)>>,
) -> Result<(Vec<Mutant>, Vec<String>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: MutantFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut names = BTreeSet::new();
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for m in file.mutant {
        let at = |what: String| anyhow::anyhow!("{}: mutant {}: {what}", path.display(), m.name);
        if !names.insert(m.name.clone()) {
            return Err(at("the name is used twice".into()));
        }
        if m.runtimes.is_empty() || m.expect.is_empty() {
            return Err(at("needs runtimes and expected checks".into()));
        }
        for rt in &m.runtimes {
            match rt.as_str() {
                "builtin" if m.fault.is_none() => {
                    return Err(at("the builtin runtime needs a fault".into()))
                }
                "runc" | "crun" if m.oci.is_empty() => {
                    return Err(at(format!("{rt} needs oci edits")))
                }
                "builtin" | "runc" | "crun" => {}
                other => return Err(at(format!("unknown runtime {other:?}"))),
            }
        }
        let missing: Vec<&str> = m
            .scenarios()
            .into_iter()
            .filter(|s| !catalog.contains_key(*s))
            .collect();
        if !missing.is_empty() {
            if m.skip_without_scenario {
                skipped.push(format!(
                    "skipped {}: needs scenario {}, not in the catalog",
                    m.name,
                    missing.join(", ")
                ));
                continue;
            }
            return Err(at(format!(
                "scenario {} is not in the catalog",
                missing.join(", ")
            )));
        }
        for id in m.expect.iter().chain(&m.may_fail) {
            let (s, c) = id
                .split_once('/')
                .ok_or_else(|| at(format!("{id:?} is not scenario/check")))?;
            if !catalog
                .get(s)
                .is_some_and(|cs| cs.iter().any(|(check, _)| check == c))
            {
                return Err(at(format!("{s} has no check {c:?}")));
            }
        }
        run.push(m);
    }
    Ok((run, skipped))
}

/// Every scenario of the built-in catalog with its checks (id, required).
pub fn catalog() -> BTreeMap<String, Vec<(String, bool)>> {
    scenarios::builtin::load()
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|s| {
            let checks = s
                .expectations
                .iter()
                .map(|e| (e.check.clone(), e.required))
                .collect();
            (s.id, checks)
        })
        .collect()
}

/// One row of the table.
struct Row {
    runtime: String,
    mutant: String,
    edit: String,
    check: String,
    seen: String,
    ok: bool,
}

/// What one run of `boxwatch scenarios` is.
struct Run<'a> {
    bin: &'a Path,
    runtime: &'a str,
    runtime_path: Option<&'a Path>,
    env: Vec<(&'static str, String)>,
    scenarios: Vec<&'a str>,
    out: PathBuf,
    quiet_wait: &'a str,
}

impl Run<'_> {
    /// Runs it; the report it wrote (its exit code says nothing here: a
    /// mutant is meant to fail).
    fn report(&self) -> Result<Report> {
        let _ = std::fs::remove_dir_all(&self.out);
        std::fs::create_dir_all(&self.out)?;
        let mut c = Command::new(self.bin);
        c.arg("scenarios")
            .arg("--runtime")
            .arg(self.runtime)
            .arg("--out")
            .arg(&self.out)
            .arg("--format")
            .arg("json")
            .arg("--quiet-wait")
            .arg(self.quiet_wait)
            .stdout(std::process::Stdio::null());
        // Its progress and warnings go to a log next to its reports.
        let log = self.out.join("boxwatch.log");
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        c.stderr(log_file);
        if let Some(p) = self.runtime_path {
            c.arg("--runtime-path").arg(p);
        }
        for s in &self.scenarios {
            c.arg("--only").arg(s);
        }
        c.env_remove(edit::ENV)
            .env_remove(runtime::fault::ENV)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let status = c
            .status()
            .with_context(|| format!("running {}", self.bin.display()))?;
        let path = self.out.join("report.json");
        reports::load_report(&path).with_context(|| {
            format!(
                "boxwatch scenarios ({status}) wrote no usable report {}",
                path.display()
            )
        })
    }
}

fn seen(c: &reports::CheckResult) -> String {
    let v = c.verdict.as_str();
    if c.held() {
        format!("{v} (held)")
    } else {
        v.to_string()
    }
}

/// A check that was judged and did not hold (not error, not unsupported).
fn broken(c: &reports::CheckResult) -> bool {
    !c.held() && !matches!(c.verdict, Verdict::Error | Verdict::Unsupported)
}

fn cargo_build(target: Option<&Path>, args: &[&str]) -> Result<()> {
    let mut c = Command::new("cargo");
    c.arg("build")
        .args(args)
        .current_dir(crate::workspace_root());
    if let Some(t) = target {
        c.env("CARGO_TARGET_DIR", t);
    }
    let status = c.status().context("running cargo build")?;
    anyhow::ensure!(status.success(), "cargo build {} failed", args.join(" "));
    Ok(())
}

/// The binaries a mutation run needs.
pub struct Bins {
    /// boxwatch as users get it.
    pub healthy: PathBuf,
    /// The oci-mutant wrapper.
    pub wrapper: PathBuf,
    /// boxwatch with the `fault-injection` feature (built only when asked).
    pub faulty: PathBuf,
}

/// Builds the healthy binary, the wrapper, and (into a target directory of
/// its own, so that no ordinary build ever has it) the fault-injecting one.
pub fn build(release: bool, with_fault: bool) -> Result<Bins> {
    let profile = if release { "release" } else { "debug" };
    let mut flags = vec!["--bin", "boxwatch"];
    if release {
        flags.push("--release");
    }
    cargo_build(None, &flags)?;
    let mut wflags = vec!["-p", "xtask", "--bin", "oci-mutant"];
    if release {
        wflags.push("--release");
    }
    cargo_build(None, &wflags)?;
    let fault_target = target_dir().join("fault-injection");
    if with_fault {
        let mut fflags = flags.clone();
        fflags.extend(["--features", "fault-injection"]);
        cargo_build(Some(&fault_target), &fflags)?;
    }
    Ok(Bins {
        healthy: target_dir().join(profile).join("boxwatch"),
        wrapper: target_dir().join(profile).join("oci-mutant"),
        faulty: fault_target.join(profile).join("boxwatch"),
    })
}

pub fn main(args: MutantsArgs) -> Result<()> {
    let started = Instant::now();
    let runtimes: Vec<String> = if args.runtimes.is_empty() {
        RUNTIMES.iter().map(|s| s.to_string()).collect()
    } else {
        args.runtimes.clone()
    };
    for rt in &runtimes {
        anyhow::ensure!(
            RUNTIMES.contains(&rt.as_str()),
            "unknown --runtime {rt:?}: expected builtin, runc or crun"
        );
    }
    let catalog = catalog();
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| crate::workspace_root().join("xtask/mutants.toml"));
    let (mut mutants, skipped) = load(&file, &catalog)?;
    if !args.only.is_empty() {
        let pats = args
            .only
            .iter()
            .map(|g| glob::Pattern::new(g).with_context(|| format!("--only {g:?}")))
            .collect::<Result<Vec<_>>>()?;
        mutants.retain(|m| pats.iter().any(|p| p.matches(&m.name)));
        anyhow::ensure!(!mutants.is_empty(), "--only matches no mutant");
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| target_dir().join("boxwatch-report").join("mutants"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let Bins {
        healthy,
        wrapper,
        faulty,
    } = build(args.release, runtimes.iter().any(|r| r == "builtin"))?;

    let mut rows: Vec<Row> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut covered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rt in &runtimes {
        let mine: Vec<&Mutant> = mutants.iter().filter(|m| m.runtimes.contains(rt)).collect();
        if mine.is_empty() {
            continue;
        }
        let real = if rt == "builtin" {
            None
        } else {
            Some(runtime::find_in_path(rt).with_context(|| {
                format!("{rt} is not installed (not in PATH, /usr/sbin, /usr/bin): the {rt} mutants cannot run")
            })?)
        };
        let union: BTreeSet<&str> = mine.iter().flat_map(|m| m.scenarios()).collect();
        eprintln!(
            "xtask mutants: {rt}: the healthy runtime on {} scenario(s)",
            union.len()
        );
        let control = Run {
            bin: &healthy,
            runtime: rt,
            runtime_path: None,
            env: Vec::new(),
            scenarios: union.iter().copied().collect(),
            out: out.join(rt).join("healthy"),
            quiet_wait: &args.quiet_wait,
        }
        .report()?;
        let not_held = |want_broken: bool| -> Vec<String> {
            control
                .scenarios
                .iter()
                .flat_map(|s| {
                    s.checks
                        .iter()
                        .filter(move |c| c.required && !c.held() && broken(c) == want_broken)
                        .map(move |c| format!("{}/{} {}", s.id, c.id, seen(c)))
                })
                .collect()
        };
        // A failure of the healthy runtime fails the suite; a check it left
        // unjudged (an inconclusive measurement after its retries, or an
        // unsupported feature) is shown.
        let bad = not_held(true);
        let unjudged = not_held(false);
        let required = control
            .scenarios
            .iter()
            .flat_map(|s| s.checks.iter())
            .filter(|c| c.required)
            .count();
        rows.push(Row {
            runtime: rt.clone(),
            mutant: "(healthy)".into(),
            edit: "none".into(),
            check: format!("all {required} required checks"),
            seen: match (bad.is_empty(), unjudged.is_empty()) {
                (true, true) => "held".into(),
                (true, false) => format!("held, except not judged: {}", unjudged.join(", ")),
                _ => bad.join(", "),
            },
            ok: bad.is_empty(),
        });
        if !bad.is_empty() {
            problems.push(format!(
                "{rt}: the healthy runtime did not hold {}",
                bad.join(", ")
            ));
        }
        for m in mine {
            let dir = out.join(rt).join(&m.name);
            let log = dir.join("wrapper.log");
            let mut env = Vec::new();
            let (bin, runtime_path) = match &real {
                None => {
                    env.push((runtime::fault::ENV, m.fault.clone().unwrap_or_default()));
                    (faulty.as_path(), None)
                }
                Some(real) => {
                    let cfg = WrapperConfig {
                        mutant: m.name.clone(),
                        runtime: real.clone(),
                        edits: m.oci.clone(),
                        log: log.clone(),
                    };
                    env.push((edit::ENV, serde_json::to_string(&cfg)?));
                    (healthy.as_path(), Some(wrapper.as_path()))
                }
            };
            let t0 = Instant::now();
            let run = Run {
                bin,
                runtime: rt,
                runtime_path,
                env,
                scenarios: m.scenarios().into_iter().collect(),
                out: dir.clone(),
                quiet_wait: &args.quiet_wait,
            };
            let report = run.report()?;
            let edit = m.describe(rt);
            // The wrapper logs each edit it made: a mutant that changed
            // nothing proves nothing.
            if real.is_some() {
                let applied = std::fs::read_to_string(&log).unwrap_or_default();
                if !applied.lines().any(|l| l.contains("\tapplied\t")) {
                    problems.push(format!(
                        "{rt}/{}: the wrapper applied no edit (nothing in {})",
                        m.name,
                        log.display()
                    ));
                }
            }
            let mut caught = true;
            for id in &m.expect {
                let (s, c) = id.split_once('/').unwrap_or((id, ""));
                let check = report
                    .scenarios
                    .iter()
                    .find(|r| r.id == s)
                    .and_then(|r| r.checks.iter().find(|k| k.id == c));
                let (seen_s, ok) = match check {
                    Some(k) => (seen(k), broken(k)),
                    None => ("not in the report".into(), false),
                };
                if ok {
                    covered.entry(id.clone()).or_default().insert(rt.clone());
                } else {
                    caught = false;
                    let why = report
                        .scenarios
                        .iter()
                        .find(|r| r.id == s)
                        .and_then(|r| r.error.clone())
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default();
                    problems.push(format!(
                        "{rt}/{}: {id} was {seen_s}, expected it to fail{why}",
                        m.name
                    ));
                }
                rows.push(Row {
                    runtime: rt.clone(),
                    mutant: m.name.clone(),
                    edit: edit.clone(),
                    check: id.clone(),
                    seen: seen_s,
                    ok,
                });
            }
            for s in &report.scenarios {
                for k in s.checks.iter().filter(|k| k.required && !k.held()) {
                    let id = format!("{}/{}", s.id, k.id);
                    if m.expect.contains(&id) {
                        continue;
                    }
                    // A check the mutant may fail, or one it left
                    // unjudged (error): shown, not counted. Another
                    // required check it broke fails the suite.
                    let (label, ok) = if m.may_fail.contains(&id) {
                        (format!("{id} (may fail)"), true)
                    } else if broken(k) {
                        problems.push(format!(
                            "{rt}/{}: also made {id} {} (not one of its expected checks)",
                            m.name,
                            seen(k)
                        ));
                        (format!("{id} (not expected)"), false)
                    } else {
                        (format!("{id} (other check, not judged)"), true)
                    };
                    rows.push(Row {
                        runtime: rt.clone(),
                        mutant: m.name.clone(),
                        edit: edit.clone(),
                        check: label,
                        seen: seen(k),
                        ok,
                    });
                }
            }
            eprintln!(
                "xtask mutants: {rt}/{:<28} {} in {:.1} s",
                m.name,
                if caught { "caught" } else { "NOT CAUGHT" },
                t0.elapsed().as_secs_f64()
            );
        }
    }

    let uncovered: Vec<String> = catalog
        .iter()
        .flat_map(|(s, checks)| {
            checks
                .iter()
                .filter(|(_, req)| *req)
                .map(move |(c, _)| format!("{s}/{c}"))
        })
        .filter(|id| !covered.contains_key(id))
        .collect();
    let md = markdown(&rows, &covered, &uncovered, &skipped, &runtimes);
    let md_path = out.join("mutants.md");
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    print!("{}", text_table(&rows));
    for s in &skipped {
        println!("{s}");
    }
    println!(
        "required checks no mutant {}can fail ({} of {}):",
        if args.only.is_empty() && runtimes.len() == RUNTIMES.len() {
            ""
        } else {
            "of this selection "
        },
        uncovered.len(),
        catalog
            .values()
            .flat_map(|c| c.iter())
            .filter(|(_, r)| *r)
            .count()
    );
    for u in &uncovered {
        println!("  {u}: no mutant covers it");
    }
    eprintln!(
        "xtask mutants: {} mutant run(s) in {:.0} s; {}",
        rows.iter()
            .filter(|r| r.mutant != "(healthy)")
            .map(|r| (&r.runtime, &r.mutant))
            .collect::<BTreeSet<_>>()
            .len(),
        started.elapsed().as_secs_f64(),
        md_path.display()
    );
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("xtask mutants: {p}");
        }
        bail!(
            "{} problem(s): see above and {}",
            problems.len(),
            md_path.display()
        );
    }
    Ok(())
}

fn text_table(rows: &[Row]) -> String {
    let w = |f: &dyn Fn(&Row) -> usize, min: usize| rows.iter().map(f).max().unwrap_or(0).max(min);
    let (wr, wm, wc) = (
        w(&|r| r.runtime.len(), 7),
        w(&|r| r.mutant.len(), 6),
        w(&|r| r.check.len(), 14),
    );
    let mut s = format!(
        "{:<wr$}  {:<wm$}  {:<wc$}  {}\n",
        "runtime", "mutant", "expected check", "status seen"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<wr$}  {:<wm$}  {:<wc$}  {}{}\n",
            r.runtime,
            r.mutant,
            r.check,
            r.seen,
            if r.ok { "" } else { "  <-- PROBLEM" }
        ));
    }
    s
}

fn markdown(
    rows: &[Row],
    covered: &BTreeMap<String, BTreeSet<String>>,
    uncovered: &[String],
    skipped: &[String],
    runtimes: &[String],
) -> String {
    let cell = reports::markdown_cell;
    let mut s = String::from("# Mutation suite\n\n");
    s.push_str(&format!(
        "Runtimes: {}. A mutant is caught when each expected check fails (`leaked` or `not-enforced`) and no other required check does; the healthy runtime must hold every required check.\n\n",
        runtimes.join(", ")
    ));
    s.push_str("| runtime | mutant | edit | expected check | status seen | ok |\n|---|---|---|---|---|---|\n");
    let mut last: Option<(&str, &str)> = None;
    for r in rows {
        // The mutant and its edit once, on its first row.
        let first = last != Some((&r.runtime, &r.mutant));
        last = Some((&r.runtime, &r.mutant));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            cell(&r.runtime),
            if first {
                cell(&r.mutant)
            } else {
                String::new()
            },
            if first { cell(&r.edit) } else { String::new() },
            cell(&r.check),
            cell(&r.seen),
            if r.ok { "yes" } else { "**no**" }
        ));
    }
    if !skipped.is_empty() {
        s.push_str("\n## Skipped\n\n");
        for k in skipped {
            s.push_str(&format!("- {}\n", cell(k)));
        }
    }
    s.push_str("\n## Coverage of the catalog's required checks\n\n| check | failed by a mutant on |\n|---|---|\n");
    for (id, rts) in covered {
        s.push_str(&format!(
            "| {} | {} |\n",
            cell(id),
            rts.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    for id in uncovered {
        s.push_str(&format!("| {} | no mutant covers it |\n", cell(id)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_knows_the_guard_the_workloads_set() {
        assert_eq!(edit::GUARD_ENV, scenarios::workload::GUARD_ENV);
    }

    #[test]
    fn the_mutant_list_loads_against_the_catalog() {
        let path = crate::workspace_root().join("xtask/mutants.toml");
        let (mutants, skipped) = load(&path, &catalog()).unwrap();
        assert!(!mutants.is_empty());
        // Only mutants marked for it may be skipped, each with its reason.
        for s in &skipped {
            assert!(s.contains("not in the catalog"), "{s}");
        }
    }

    #[test]
    fn a_bad_mutant_list_is_refused_with_the_reason() {
        let cat = catalog();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        let write = |t: &str| std::fs::write(&p, t).unwrap();
        write("[[mutant]]\nname='a'\nabout='x'\nruntimes=['runc']\nexpect=['cpu-quota-20/cpu-share']\n");
        assert!(load(&p, &cat)
            .unwrap_err()
            .to_string()
            .contains("runc needs oci edits"));
        write("[[mutant]]\nname='a'\nabout='x'\nruntimes=['builtin']\nfault='drop-cpu-limit'\nexpect=['cpu-quota-20/nope']\n");
        assert!(load(&p, &cat)
            .unwrap_err()
            .to_string()
            .contains("no check \"nope\""));
        write("[[mutant]]\nname='a'\nabout='x'\nruntimes=['runc']\noci=[{remove='/x/y'}]\nexpect=['no-such/check']\n");
        assert!(load(&p, &cat)
            .unwrap_err()
            .to_string()
            .contains("not in the catalog"));
        write("[[mutant]]\nname='a'\nabout='x'\nruntimes=['runc']\noci=[{remove='/x/y'}]\nexpect=['no-such/check']\nskip_without_scenario=true\n");
        let (run, skipped) = load(&p, &cat).unwrap();
        assert!(run.is_empty());
        assert_eq!(
            skipped,
            vec!["skipped a: needs scenario no-such, not in the catalog"]
        );
        write("[[mutant]]\nname='a'\nabout='x'\nruntimes=['runc']\noci=['escape_cgroup', {scale={path='/a/b', by=2.0}}]\nexpect=['cpu-quota-20/cpu-share']\n");
        let (run, _) = load(&p, &cat).unwrap();
        assert_eq!(run[0].oci[0], Edit::EscapeCgroup);
    }
}
