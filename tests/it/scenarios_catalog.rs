//! The scenario catalog as users meet it through `boxwatch scenarios`: the
//! built-in catalog loads, bad files are refused with file, line and reason,
//! and a broken file never stops the others.

use crate::common::{root_or_skip, scenario_in};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_boxwatch");

fn boxwatch(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running boxwatch")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const ISSUE_IDS: [&str; 18] = [
    "cpu-quota-20",
    "cpu-quota-50",
    "cpu-quota-150",
    "cpu-burst-throttling",
    "memory-hog",
    "pids-fork-bomb",
    "settimeofday",
    "pid-namespace",
    "uts-namespace",
    "mount-namespace",
    "net-namespace",
    "ipc-namespace",
    "time-namespace",
    "proc-meminfo-view",
    "nproc-view",
    "cpuinfo-view",
    "orphan-reaping",
    "noisy-neighbour",
];

#[test]
fn the_builtin_catalog_loads_with_every_scenario_of_the_issue() {
    let _room = room!();
    let out = boxwatch(&["scenarios", "--list"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(!stdout.contains("REFUSED"), "{stdout}");
    for id in ISSUE_IDS {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(id)),
            "{id} missing from:\n{stdout}"
        );
    }
}

#[test]
fn the_catalog_directory_in_the_source_tree_loads_too() {
    let _room = room!();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/catalog");
    let out = boxwatch(&["scenarios", "--list", "--catalog", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml"))
        })
        .count();
    assert!(files >= 20, "the catalog has only {files} files");
    assert_eq!(text(&out.stdout).lines().count(), files);
}

const GOOD: &str = r#"id = "probe-ok"
title = "a probe"

[workload]
name = "probe-inside"

[[expect]]
check = "pid-1"
metric = "inside.pid"
equals = 1
pass = "isolated"
fail = "leaked"
"#;

/// A catalog directory with one good scenario and three bad ones.
fn broken_catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-good.toml"), GOOD).unwrap();
    let hog = "id = \"bad-memory\"\ntitle = \"t\"\n\n[container]\nmemory = '64Q'\n\n[workload]\nname = \"hog\"\nbytes = \"1G\"\nstep = \"4M\"\n\n[[expect]]\ncheck = \"c\"\nmetric = \"oom_killed\"\nequals = true\n";
    std::fs::write(dir.path().join("bad-memory.toml"), hog).unwrap();
    let unknown = GOOD
        .replace("probe-ok", "bad-workload")
        .replace("name = \"probe-inside\"", "name = \"mine-bitcoin\"");
    std::fs::write(dir.path().join("bad-workload.toml"), unknown).unwrap();
    let zero = "id = \"bad-quota\"\ntitle = \"t\"\n\n[container]\ncpu = 0\n\n[workload]\nname = \"spin\"\nduration = \"1s\"\n\n[[expect]]\ncheck = \"c\"\nmetric = \"cpu_share\"\nat_most = 1\n";
    std::fs::write(dir.path().join("bad-quota.toml"), zero).unwrap();
    dir
}

#[test]
fn bad_files_are_refused_with_file_line_and_reason() {
    let _room = room!();
    let dir = broken_catalog();
    let out = boxwatch(&[
        "scenarios",
        "--list",
        "--catalog",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(
        !out.status.success(),
        "a refused file must fail --list:\n{stdout}"
    );
    let line_of = |id: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{stdout}"))
            .to_string()
    };
    let d = dir.path().display();
    let mem = line_of("bad-memory");
    assert!(
        mem.contains(&format!(
            "REFUSED {d}/bad-memory.toml:5: invalid memory limit \"64Q\""
        )),
        "{mem}"
    );
    let wl = line_of("bad-workload");
    assert!(
        wl.contains(&format!(
            "REFUSED {d}/bad-workload.toml:5: unknown workload \"mine-bitcoin\""
        )),
        "{wl}"
    );
    let q = line_of("bad-quota");
    assert!(
        q.contains(&format!(
            "REFUSED {d}/bad-quota.toml:5: invalid cpu quota \"0\""
        )),
        "{q}"
    );
    assert!(!line_of("probe-ok").contains("REFUSED"));
}

#[test]
fn a_broken_scenario_never_stops_the_others() {
    let _room = room!();
    if !root_or_skip("a_broken_scenario_never_stops_the_others") {
        return;
    }
    let dir = broken_catalog();
    let out = boxwatch(&[
        "scenarios",
        "--catalog",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "errors must fail the run:\n{}",
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    let status = |id: &str| scenario_in(&report, id);
    let good = status("probe-ok");
    assert_eq!(good["status"], "pass", "{good}");
    for id in ["bad-memory", "bad-workload", "bad-quota"] {
        let s = status(id);
        assert_eq!(s["status"], "error", "{s}");
        let err = s["error"].as_str().unwrap();
        assert!(err.contains(&format!("{id}.toml:5:")), "{err}");
    }
    assert_eq!(report["summary"]["errored"], 3);
}

#[test]
fn a_check_that_held_in_the_baseline_and_not_now_is_a_regression() {
    let _room = room!();
    if !root_or_skip("a_check_that_held_in_the_baseline_and_not_now_is_a_regression") {
        return;
    }
    let orphans = |init: bool| {
        format!(
            "id = \"orphans\"\ntitle = \"t\"\n\n[container]\ninit = {init}\n\n[workload]\nname = \"orphan-maker\"\n\n[[expect]]\ncheck = \"orphan-reaped\"\nmetric = \"workload.grandchild_reaped\"\nequals = true\n"
        )
    };
    let before = tempfile::tempdir().unwrap();
    std::fs::write(before.path().join("orphans.toml"), orphans(true)).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = boxwatch(&[
        "scenarios",
        "--catalog",
        before.path().to_str().unwrap(),
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    for f in [
        "report.json",
        "report.md",
        "junit.xml",
        "report.html",
        "report.txt",
    ] {
        assert!(out_dir.path().join(f).is_file(), "{f} not written");
    }
    // Without a reaping PID 1 the same check no longer holds.
    let after = tempfile::tempdir().unwrap();
    std::fs::write(after.path().join("orphans.toml"), orphans(false)).unwrap();
    let baseline = out_dir.path().join("report.json");
    let out = boxwatch(&[
        "scenarios",
        "--catalog",
        after.path().to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let regressions = report["regressions"].as_array().unwrap();
    assert!(
        regressions
            .iter()
            .any(|r| r["scenario_id"] == "orphans" && r["check_id"] == "orphan-reaped"),
        "{regressions:?}"
    );
    // A baseline belongs to the runtime it was made with: this builtin
    // report is refused as runc's before anything runs.
    let out = boxwatch(&[
        "scenarios",
        "--catalog",
        after.path().to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
        "--runtime",
        "runc",
    ]);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(err.contains("a report of builtin, not of runc"), "{err}");
}

#[test]
fn the_lxcfs_fix_for_the_proc_leaks_is_applied_and_verified() {
    let _room = room!();
    if !root_or_skip("the_lxcfs_fix_for_the_proc_leaks_is_applied_and_verified") {
        return;
    }
    let out = boxwatch(&["scenarios", "--only", "proc-*", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    let scenario = |id: &str| scenario_in(&report, id);
    let fixed = scenario("proc-view-lxcfs");
    if fixed["status"] == "unsupported" {
        // Only where lxcfs cannot be installed; CI installs it.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "lxcfs is missing and CI=true forbids skipping: {fixed}"
        );
        return;
    }
    assert_eq!(fixed["status"], "pass", "{fixed}");
    for check in fixed["checks"].as_array().unwrap() {
        // Every /proc check isolated; the placement every scenario has
        // is a limit's check.
        let want = if check["id"] == "placement" {
            "enforced"
        } else {
            "isolated"
        };
        assert_eq!(check["verdict"], want, "{check}");
    }
    // The same limit without lxcfs leaks: the fix is what closed it.
    let leaky = scenario("proc-meminfo-view");
    let memtotal = leaky["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "memtotal")
        .unwrap();
    assert_eq!(memtotal["verdict"], "leaked", "{memtotal}");
    assert!(out.status.success(), "{}", text(&out.stderr));
}
