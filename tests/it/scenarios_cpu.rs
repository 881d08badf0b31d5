//! CPU quota scenarios measured for real, several at once with --jobs: the
//! CPU-measuring ones must not overlap (or their figures would be spoiled).
//! This file holds one test so that nothing else in this binary runs beside
//! the measurement.

use crate::common::{json_report, scenario_in};
use std::process::Command;

#[test]
fn cpu_quota_20_measures_a_cpu_share_of_020_even_with_jobs() {
    let _room = room!();
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "this test needs root (cgroups) and CI=true forbids skipping it"
        );
        eprintln!("skipping: needs root");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_boxwatch"))
        .args([
            "scenarios",
            "--only",
            "cpu-quota-20",
            "--only",
            "cpu-quota-50",
            "--only",
            "*-namespace",
            "--jobs",
            "4",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let report = json_report(&out);
    let scenario = |id: &str| scenario_in(&report, id);
    let s20 = scenario("cpu-quota-20");
    let share = s20["measurements"]["cpu_share"]
        .as_f64()
        .expect("cpu_share in the report");
    assert!(
        (0.18..=0.22).contains(&share),
        "cpu-quota-20 cpu_share {share}: {s20}"
    );
    let s50 = scenario("cpu-quota-50");
    let share = s50["measurements"]["cpu_share"].as_f64().unwrap();
    assert!(
        (0.48..=0.52).contains(&share),
        "cpu-quota-50 cpu_share {share}: {s50}"
    );
    assert!(report["host"]["cgroup_mode"].as_str().is_some());
    for s in report["scenarios"].as_array().unwrap() {
        assert_eq!(s["status"], "pass", "{s}");
    }
    assert!(out.status.success());
}
