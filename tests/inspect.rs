//! `boxwatch inspect` on containers boxwatch did not judge itself: a runc
//! container gets the same namespace, limit and /proc findings as the
//! scenario run judged through runc; a process outside any container and
//! a PID that is gone get clear messages. Needs root and runc; under
//! CI=true a missing one fails the test.

mod common;
use common::*;
use runtime::backend::{self, BackendKind};
use runtime::{ContainerSpec, RuntimeConfig, Stdio};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

fn runc_installed() -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("runc").is_file()))
        .unwrap_or(false)
        || std::path::Path::new("/usr/sbin/runc").is_file();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "this test needs runc (apt-get install runc crun) and CI=true forbids skipping it"
        );
        eprintln!("skipping: runc is not installed (apt-get install runc crun)");
    }
    found
}

/// scenario id -> (measurements, check id -> verdict) of a runc run.
type Judged = BTreeMap<String, (BTreeMap<String, f64>, BTreeMap<String, String>)>;

fn scenarios_through_runc(only: &[&str]) -> Judged {
    let mut cmd = Command::new(BIN);
    cmd.args(["scenarios", "--runtime", "runc", "--format", "json"]);
    for o in only {
        cmd.args(["--only", o]);
    }
    let out = cmd.output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let m = s["measurements"]
                .as_object()
                .unwrap()
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect();
            let c = s["checks"]
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
            (s["id"].as_str().unwrap().to_string(), (m, c))
        })
        .collect()
}

fn inspect(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("inspect")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_of_a_runc_container_agrees_with_the_scenario_run() {
    if !root_or_skip("inspect_of_a_runc_container_agrees_with_the_scenario_run")
        || !runc_installed()
    {
        return;
    }
    let judged = scenarios_through_runc(&[
        "pid-namespace",
        "mount-namespace",
        "uts-namespace",
        "ipc-namespace",
        "net-namespace",
        "proc-meminfo-view",
        "nproc-view",
        "pids-fork-bomb",
    ]);
    let m = |s: &str, k: &str| -> f64 {
        *judged[s]
            .0
            .get(k)
            .unwrap_or_else(|| panic!("{s} measured no {k}: {:?}", judged[s].0))
    };
    let verdict = |s: &str, c: &str| judged[s].1[c].clone();

    // The same settings as those scenarios, on a container started with
    // runc and left running for inspect.
    let b = backend::open(BackendKind::Runc, RuntimeConfig::new(BIN.into()), None).unwrap();
    let mut spec = ContainerSpec::new("inspected", vec!["/bin/sleep".into(), "60".into()]);
    spec.limits.memory = Some("128M".parse().unwrap());
    spec.limits.cpu = Some("1".parse().unwrap());
    spec.limits.pids = Some(64);
    let c = b.spawn(&spec, Stdio::default()).unwrap();
    let pid = c.host_pid().to_string();

    let (code, out, err) = inspect(&["--pid", &pid, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let found: Value = serde_json::from_str(&out).unwrap();
    let (code, human, _) = inspect(&["--cgroup", c.cgroup_path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(human.contains(&format!("PID {pid}")), "{human}");
    drop(c);
    drop(b);

    // Namespaces: isolated exactly where the scenarios found them to differ.
    for (ns, scenario) in [
        ("pid", "pid-namespace"),
        ("mnt", "mount-namespace"),
        ("uts", "uts-namespace"),
        ("ipc", "ipc-namespace"),
        ("net", "net-namespace"),
    ] {
        let isolated = found["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["namespace"] == ns)
            .unwrap()["isolated"]
            .as_bool()
            .unwrap();
        assert_eq!(
            isolated,
            m(scenario, &format!("ns_differs.{ns}")) == 1.0,
            "{ns}"
        );
        assert!(isolated, "{ns} should be isolated under runc");
    }
    // Limits in force: what the scenarios read back from cgroupfs.
    let l = &found["limits"];
    assert_eq!(
        l["memory_limit_bytes"].as_f64().unwrap(),
        m("proc-meminfo-view", "memory_limit_bytes")
    );
    assert_eq!(
        l["cpu_quota_cores"].as_f64().unwrap(),
        m("nproc-view", "cpu_quota")
    );
    assert_eq!(
        l["pids_max"].as_f64().unwrap(),
        m("pids-fork-bomb", "pids_limit")
    );
    // /proc against the limits: leaked where the scenarios found a leak.
    let proc_leak = |check: &str| {
        found["proc_findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["check"] == check)
            .unwrap_or_else(|| panic!("no {check} finding: {found}"))["leaked"]
            .as_bool()
            .unwrap()
    };
    assert_eq!(
        proc_leak("meminfo"),
        verdict("proc-meminfo-view", "memtotal") == "leaked"
    );
    assert_eq!(
        proc_leak("nproc"),
        verdict("nproc-view", "nproc-online") == "leaked"
    );
    assert_eq!(
        proc_leak("available-parallelism"),
        verdict("nproc-view", "available-parallelism") == "leaked"
    );
    // The inside view is the container's: PID 1 there, its hostname.
    assert_eq!(found["security"]["pid_inside"], 1);
    assert_eq!(found["inside"]["hostname"], "inspected");
    assert_eq!(found["inside"]["pids"].as_array().unwrap().len(), 1);
}

#[test]
fn inspect_names_a_pid_that_is_gone_and_a_process_outside_any_container() {
    let (code, _, err) = inspect(&["--pid", "2147483647"]);
    assert_ne!(code, 0);
    assert!(err.contains("process 2147483647 does not exist"), "{err}");
    if !root_or_skip("inspect_names_a_pid_that_is_gone_and_a_process_outside_any_container") {
        return;
    }
    let me = std::process::id().to_string();
    let (code, _, err) = inspect(&["--pid", &me]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("process {me}")) && err.contains("is not in a container"),
        "{err}"
    );
    let (code, _, err) = inspect(&["--cgroup", "/boxwatch/no-such-cgroup"]);
    assert_ne!(code, 0);
    assert!(err.contains("does not exist"), "{err}");
}

/// A user-namespaced container whose root directory its own root cannot
/// search (owned by the host's root, mode 0700 once it runs): the host
/// side is still inspected, entering fails, and inspect says why and
/// exits 3 instead of passing for a complete inspection.
#[test]
fn inspect_that_cannot_enter_says_why_and_exits_3() {
    if !root_or_skip("inspect_that_cannot_enter_says_why_and_exits_3") || !runc_installed() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let busybox = std::path::Path::new("/bin/busybox");
    if !busybox.is_file() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "this test needs a static busybox (apt-get install busybox-static) and CI=true forbids skipping it"
        );
        eprintln!("skipping: no /bin/busybox (apt-get install busybox-static)");
        return;
    }
    // Every directory on the way must be searchable from the container's
    // user namespace while it starts.
    let dir = tempfile::Builder::new()
        .prefix("boxwatch-inspect-")
        .tempdir_in("/tmp")
        .unwrap();
    let rootfs = dir.path().join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc", ".boxwatch"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::write(rootfs.join("etc/hostname"), "x\n").unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode(dir.path(), 0o755);

    let b = backend::open(BackendKind::Runc, RuntimeConfig::new(BIN.into()), None).unwrap();
    let mut spec = ContainerSpec::new(
        "unenterable",
        vec!["/bin/busybox".into(), "sleep".into(), "60".into()],
    );
    spec.rootfs = runtime::RootfsSpec::Dir(rootfs.clone());
    spec.namespaces.insert(runtime::Namespace::User);
    let c = b.spawn(&spec, Stdio::default()).unwrap();
    mode(&rootfs, 0o700);
    let pid = c.host_pid().to_string();
    let (code, out, err) = inspect(&["--pid", &pid, "--format", "json"]);
    let (hcode, human, _) = inspect(&["--pid", &pid]);
    mode(&rootfs, 0o755);
    drop(c);
    drop(b);

    assert_eq!(code, 3, "{err}");
    assert_eq!(hcode, 3);
    assert!(
        err.contains(&format!("the inside view of PID {pid} was not collected"))
            && err.contains("Permission denied"),
        "{err}"
    );
    let found: Value = serde_json::from_str(&out).unwrap();
    assert!(found["inside"].is_null(), "{found}");
    let why = found["inside_error"].as_str().unwrap();
    assert!(why.contains("chdir / in the container"), "{why}");
    // The host side was inspected all the same.
    let user = found["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["namespace"] == "user")
        .unwrap();
    assert_eq!(user["isolated"], true, "{found}");
    assert!(
        human.contains("inside: NOT COLLECTED") && human.contains("Permission denied"),
        "{human}"
    );
}
