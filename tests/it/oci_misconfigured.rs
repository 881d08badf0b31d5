//! A runtime that silently drops the CPU quota is caught: the same
//! cpu-quota-20 scenario judged through runc and through a wrapper that
//! deletes `linux.resources.cpu` from the bundle before exec'ing runc.
//! The judge reads the quota and the usage from cgroupfs itself, so the
//! runtime's word ("created") cannot pass the check. Needs root and runc;
//! under CI=true a missing one fails the test.

use crate::common::*;
use std::path::Path;
use std::process::Command;

/// The checks of cpu-quota-20 run through runc (or `runtime_path`):
/// (scenario status, [(check id, verdict)], runtime version).
fn cpu_quota_20(runtime_path: Option<&Path>) -> (String, Vec<(String, String)>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "scenarios",
        "--runtime",
        "runc",
        "--only",
        "cpu-quota-20",
        "--format",
        "json",
        "--quiet-wait",
        "10s",
    ]);
    if let Some(p) = runtime_path {
        cmd.arg("--runtime-path").arg(p);
    }
    let out = cmd.output().unwrap();
    let report = json_report(&out);
    let s = &report["scenarios"][0];
    assert_eq!(s["id"], "cpu-quota-20");
    let checks = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (
        s["status"].as_str().unwrap().to_string(),
        checks,
        report["runtime"]["version"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

fn verdict<'a>(checks: &'a [(String, String)], id: &str) -> &'a str {
    checks
        .iter()
        .find(|(c, _)| c == id)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no check {id} in {checks:?}"))
}

#[test]
fn a_runtime_that_drops_the_cpu_quota_is_judged_not_enforced() {
    let _room = room!();
    if !root_or_skip("a_runtime_that_drops_the_cpu_quota_is_judged_not_enforced") {
        return;
    }
    if !oci_or_skip(
        "a_runtime_that_drops_the_cpu_quota_is_judged_not_enforced",
        runtime::backend::BackendKind::Runc,
    ) {
        return;
    }
    let runc = runtime::find_in_path("runc").expect("checked above");
    let dir = tempfile::tempdir().unwrap();
    // A broken runtime: linux.resources.cpu never reaches runc.
    let wrapper = bundle_editing_wrapper(
        dir.path(),
        "runc-without-cpu-limits",
        &runc,
        "sed -i 's/\"cpu\": {/\"x-dropped-cpu\": {/' \"$cfg\"",
    );

    let (status, checks, version) = cpu_quota_20(Some(&wrapper));
    assert_eq!(status, "fail", "{checks:?}");
    // Read back from cgroupfs: no quota, and so never throttled. These do
    // not depend on how busy the host is.
    assert_eq!(verdict(&checks, "quota-applied"), "not-enforced");
    assert_eq!(verdict(&checks, "throttled"), "not-enforced");
    // The spin loop got far more than 20% (or, on a crowded host, the
    // measurement is inconclusive): it never passes.
    assert_ne!(verdict(&checks, "cpu-share"), "enforced");
    assert!(version.contains("runc"), "{version}");

    // The control: plain runc applies the quota, and the same checks hold.
    let (_, checks, _) = cpu_quota_20(None);
    assert_eq!(verdict(&checks, "quota-applied"), "enforced");
    assert_eq!(verdict(&checks, "throttled"), "enforced");
}
