//! The judge's verdicts on observations recorded on real hosts (with
//! `BOXWATCH_DUMP_OBSERVATIONS`, see `scenarios::runner::OBSERVATIONS_ENV`),
//! fed to the built-in catalog's expectations. A change in judgement (an
//! expectation, a condition, the contention rule, the status rules) shows
//! up as a snapshot diff; a recording whose scenario or checks left the
//! catalog fails.
//!
//! Recordings live in `tests/fixtures/observations/<host>/<runtime>/`:
//! `<host>` is the cgroup mode and kernel of the machine they came from.

use reports::{scenario_status, CheckResult, Status};
use scenarios::expect::evaluate_all;
use scenarios::expect::{Observed, Value};
use scenarios::runner::RecordedObservations;
use scenarios::Scenario;
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn catalog() -> Vec<Scenario> {
    scenarios::builtin::load()
        .into_iter()
        .map(|e| e.expect("the built-in catalog loads"))
        .collect()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/observations")
}

/// Every recording under `dir`, sorted by path.
fn recordings(dir: &Path) -> Vec<(PathBuf, RecordedObservations)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let rec: RecordedObservations =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, rec)
        })
        .collect()
}

/// The checks and status of `s` judged on `rec`.
fn judge(s: &Scenario, rec: &RecordedObservations) -> (Vec<CheckResult>, Status) {
    let judgements = evaluate_all(&s.expectations, &rec.observations);
    let checks: Vec<CheckResult> = judgements
        .iter()
        .map(scenarios::report::check_result)
        .collect();
    let status = scenario_status(&checks, None);
    (checks, status)
}

/// The verdicts of every recording of one host and runtime, as text.
fn verdicts(host: &str, runtime: &str) -> String {
    let catalog = catalog();
    let mut out = String::new();
    for (path, rec) in recordings(&fixtures().join(host).join(runtime)) {
        assert_eq!(rec.runtime, runtime, "{}", path.display());
        let s = catalog
            .iter()
            .find(|s| s.id == rec.scenario)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no scenario {} in the catalog",
                    path.display(),
                    rec.scenario
                )
            });
        let (checks, status) = judge(s, &rec);
        let _ = writeln!(out, "{}: {status}", s.id);
        for c in &checks {
            let _ = writeln!(
                out,
                "  {} [{}] {} (expected {}): {}",
                c.id,
                if c.required { "required" } else { "info" },
                c.verdict,
                c.expected,
                c.observed
            );
            if let Some(e) = &c.evidence {
                let _ = writeln!(out, "    evidence: {e}");
            }
        }
    }
    out
}

#[test]
fn judge_on_a_hybrid_6_18_host_with_builtin() {
    insta::assert_snapshot!(verdicts("hybrid-6.18", "builtin"));
}

#[test]
fn judge_on_a_hybrid_6_18_host_with_runc() {
    insta::assert_snapshot!(verdicts("hybrid-6.18", "runc"));
}

#[test]
fn judge_on_a_hybrid_6_18_host_with_crun() {
    insta::assert_snapshot!(verdicts("hybrid-6.18", "crun"));
}

/// Recorded in a VM: `cargo xtask vm --kernel 6.12 --cgroup v2 --job
/// "scenarios --allow-clock-write --dump-observations -"` (Debian
/// 6.12.118, pure cgroup v2, TCG; no lxcfs in the VM).
#[test]
fn judge_on_a_v2_6_12_vm_with_builtin() {
    insta::assert_snapshot!(verdicts("v2-6.12", "builtin"));
}

/// Every recorded scenario has every check of its catalog entry observed
/// (none judged on a metric nobody recorded).
#[test]
fn every_check_of_a_recorded_scenario_was_observed() {
    let catalog = catalog();
    for host in std::fs::read_dir(fixtures()).unwrap() {
        for rt in std::fs::read_dir(host.unwrap().path()).unwrap() {
            for (path, rec) in recordings(&rt.unwrap().path()) {
                let s = catalog.iter().find(|s| s.id == rec.scenario).unwrap();
                for e in &s.expectations {
                    assert!(
                        rec.observations.contains_key(&e.metric),
                        "{}: {} ({}) was not recorded",
                        path.display(),
                        e.metric,
                        e.check
                    );
                }
            }
        }
    }
}

fn recording(host: &str, runtime: &str, id: &str) -> RecordedObservations {
    let p = fixtures()
        .join(host)
        .join(runtime)
        .join(format!("{id}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// The recording of a healthy fork bomb, edited into a container that was
/// never placed in its pids cgroup: the process in the root of the pids
/// hierarchy, its pids directory missing. It must not pass, with any
/// runtime's recording.
#[test]
fn a_fork_bomb_never_placed_in_its_pids_cgroup_is_not_a_pass() {
    let catalog = catalog();
    let s = catalog.iter().find(|s| s.id == "pids-fork-bomb").unwrap();
    for runtime in ["builtin", "runc", "crun"] {
        let mut rec = recording("hybrid-6.18", runtime, "pids-fork-bomb");
        assert_eq!(
            judge(s, &rec).1,
            Status::Pass,
            "{runtime}: the healthy recording passes"
        );
        let gone = "/sys/fs/cgroup/pids/boxwatch/run/pids-fork-bomb: ENOENT (No such file or directory): the container's cgroup is not in the pids hierarchy";
        for k in ["pids_limit", "pids_limit_hits", "pids_peak"] {
            rec.observations
                .insert(k.into(), Observed::Missing(gone.into()));
        }
        rec.observations.insert(
            "placement".into(),
            Observed::Value(Value::Text(
                "pid 4242 is in the root cgroup of /sys/fs/cgroup/pids, not in /boxwatch/run/pids-fork-bomb".into(),
            )),
        );
        let (checks, status) = judge(s, &rec);
        assert_eq!(status, Status::Fail, "{runtime}: {checks:#?}");
        let placement = checks.iter().find(|c| c.id == "placement").unwrap();
        assert_eq!(placement.verdict, reports::Verdict::NotEnforced);
        // Without the placement check, the blind pids checks still make it
        // an error, never a pass.
        let rest: Vec<CheckResult> = checks.into_iter().filter(|c| c.id != "placement").collect();
        assert_eq!(scenario_status(&rest, None), Status::Error, "{runtime}");
    }
}

/// A pids.current of 0 while the bomb ran is an error, not "within the
/// limit".
#[test]
fn a_fork_bomb_counted_at_zero_is_an_error() {
    let catalog = catalog();
    let s = catalog.iter().find(|s| s.id == "pids-fork-bomb").unwrap();
    let mut rec = recording("hybrid-6.18", "runc", "pids-fork-bomb");
    rec.observations.insert(
        "pids_peak".into(),
        Observed::Missing("pids.current read 0 at 300 ms while the container ran".into()),
    );
    let (checks, status) = judge(s, &rec);
    assert_eq!(status, Status::Error);
    let c = checks.iter().find(|c| c.id == "pids-within-limit").unwrap();
    assert_eq!(c.verdict, reports::Verdict::Error);
}
