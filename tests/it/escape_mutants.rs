//! Each broken escape guarantee is caught as `leaked`, with the check
//! named: runc through a wrapper that edits the bundle before exec'ing
//! runc (every device allowed; masked and read-only paths removed; the
//! seccomp profile removed; CAP_SYS_ADMIN added), and the builtin runtime
//! with `seccomp = "unconfined"` and CAP_SYS_ADMIN kept. The unbroken
//! runtimes are the control: every escape check holds. Needs root, runc and
//! jq; under CI=true a missing one fails the test.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// (scenario id, check id) -> verdict, for `escape-*` run with `args`.
fn escape_verdicts(args: &[&str]) -> BTreeMap<(String, String), String> {
    let out = Command::new(BIN)
        .args(["scenarios", "--only", "escape-*", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let report = json_report(&out);
    let mut v = BTreeMap::new();
    for s in report["scenarios"].as_array().unwrap() {
        for c in s["checks"].as_array().unwrap() {
            // Every scenario's placement check: none of these breaks moves
            // the container out of its cgroup.
            if c["id"] == "placement" {
                assert_eq!(c["verdict"], "enforced", "{}: {c}", s["id"]);
                continue;
            }
            v.insert(
                (
                    s["id"].as_str().unwrap().to_string(),
                    c["id"].as_str().unwrap().to_string(),
                ),
                c["verdict"].as_str().unwrap().to_string(),
            );
        }
    }
    assert_eq!(v.len(), 15, "every escape check is judged: {v:?}");
    v
}

fn leaked(v: &BTreeMap<(String, String), String>) -> Vec<String> {
    v.iter()
        .filter(|(_, verdict)| *verdict != "isolated")
        .map(|((s, c), verdict)| format!("{s}/{c}={verdict}"))
        .collect()
}

/// A runc that runs `jq FILTER` on the bundle's config.json first.
fn runc_wrapper(dir: &Path, name: &str, filter: &str) -> std::path::PathBuf {
    let runc = runtime::find_in_path("runc").expect("checked by the caller");
    bundle_editing_wrapper(
        dir,
        name,
        &runc,
        &format!("jq '{filter}' \"$cfg\" > \"$cfg.new\" && mv \"$cfg.new\" \"$cfg\""),
    )
}

#[test]
fn every_broken_guarantee_of_runc_is_caught_as_leaked() {
    let _room = room!();
    let test = "every_broken_guarantee_of_runc_is_caught_as_leaked";
    if !oci_or_skip(test, runtime::backend::BackendKind::Runc)
        || !present_or_skip(
            runtime::find_in_path("jq").is_some(),
            test,
            "jq (apt-get install jq)",
        )
    {
        return;
    }
    let control = escape_verdicts(&["--runtime", "runc"]);
    assert!(leaked(&control).is_empty(), "{:?}", leaked(&control));

    let dir = tempfile::tempdir().unwrap();
    let mutants: [(&str, &str, &[&str]); 4] = [
        (
            "all-devices",
            r#".linux.resources.devices = [{"allow": true, "access": "rwm"}]"#,
            &["escape-devices/host-block-device"],
        ),
        (
            "no-masked-readonly",
            "del(.linux.maskedPaths) | del(.linux.readonlyPaths)",
            &[
                "escape-proc-paths/masked-paths",
                "escape-proc-paths/readonly-paths",
            ],
        ),
        (
            "no-seccomp",
            "del(.linux.seccomp)",
            &[
                "escape-seccomp/seccomp-mode",
                "escape-seccomp/dangerous-syscalls-blocked",
            ],
        ),
        (
            "cap-sys-admin",
            r#".process.capabilities.bounding += ["CAP_SYS_ADMIN"] | .process.capabilities.effective += ["CAP_SYS_ADMIN"] | .process.capabilities.permitted += ["CAP_SYS_ADMIN"]"#,
            &[
                "escape-capabilities/no-dangerous-caps",
                "escape-capabilities/effective-default",
                "escape-capabilities/bounding-default",
            ],
        ),
    ];
    for (name, filter, must_leak) in mutants {
        let wrapper = runc_wrapper(dir.path(), &format!("runc-{name}"), filter);
        let v = escape_verdicts(&[
            "--runtime",
            "runc",
            "--runtime-path",
            wrapper.to_str().unwrap(),
        ]);
        for check in must_leak {
            let (s, c) = check.split_once('/').unwrap();
            assert_eq!(
                v[&(s.to_string(), c.to_string())],
                "leaked",
                "{name}: {check} not caught: {:?}",
                leaked(&v)
            );
        }
    }
}

#[test]
fn the_builtin_runtime_unconfined_with_cap_sys_admin_is_caught_as_leaked() {
    let _room = room!();
    if !root_or_skip("the_builtin_runtime_unconfined_with_cap_sys_admin_is_caught_as_leaked") {
        return;
    }
    let control = escape_verdicts(&[]);
    assert!(leaked(&control).is_empty(), "{:?}", leaked(&control));

    // The same catalog with the seccomp filter off and CAP_SYS_ADMIN kept.
    let dir = tempfile::tempdir().unwrap();
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/catalog");
    for e in std::fs::read_dir(&catalog).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("escape-") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        let text = text.replacen(
            "\n[workload]",
            "\n[container]\nseccomp = \"unconfined\"\nkeep_caps = [\"sys_admin\"]\n\n[workload]",
            1,
        );
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let v = escape_verdicts(&["--catalog", dir.path().to_str().unwrap()]);
    for (s, c) in [
        ("escape-seccomp", "seccomp-mode"),
        ("escape-seccomp", "dangerous-syscalls-blocked"),
        ("escape-capabilities", "no-dangerous-caps"),
        ("escape-capabilities", "effective-default"),
    ] {
        assert_eq!(
            v[&(s.to_string(), c.to_string())],
            "leaked",
            "{s}/{c} not caught: {:?}",
            leaked(&v)
        );
    }
}
