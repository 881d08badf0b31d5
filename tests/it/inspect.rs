//! `boxwatch inspect` on containers boxwatch did not judge itself: a runc
//! container gets the same namespace, limit and /proc findings as the
//! scenario run judged through runc; a process outside any container and
//! a PID that is gone get clear messages. Needs root and runc; under
//! CI=true a missing one fails the test.

use crate::common::*;
use runtime::backend::{self, BackendKind};
use runtime::{ContainerSpec, RuntimeConfig, Stdio};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

/// The scenarios of a runc run, by id, as its JSON report has them.
fn scenarios_through_runc(only: &[&str]) -> BTreeMap<String, Value> {
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
        .map(|s| (s["id"].as_str().unwrap().to_string(), s.clone()))
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

/// The scenarios whose container inspect must see as they did: every
/// namespace scenario, and the three that set limits and judge /proc.
const AGREEING: [&str; 9] = [
    "pid-namespace",
    "mount-namespace",
    "uts-namespace",
    "ipc-namespace",
    "net-namespace",
    "time-namespace",
    "proc-meminfo-view",
    "nproc-view",
    "pids-fork-bomb",
];

/// The catalog's scenario `id`.
fn catalog_scenario(id: &str) -> scenarios::Scenario {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/catalog");
    scenarios::catalog::load_dir(&dir)
        .unwrap()
        .into_iter()
        .flatten()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no scenario {id} in {}", dir.display()))
}

/// The limits of a scenario's JSON report, as the runtime's limits (CPU
/// periods from the catalog's spec, 100 ms otherwise).
fn report_limits(scenario: &Value, catalog: &runtime::Limits) -> runtime::Limits {
    let l = &scenario["limits"];
    let period = catalog.cpu.map(|q| q.period_us()).unwrap_or(100_000);
    runtime::Limits {
        cpu: l["cpu_quota"]
            .as_f64()
            .map(|c| runtime::CpuQuota::from_cores(c, period).unwrap()),
        memory: l["memory_bytes"]
            .as_u64()
            .map(|b| runtime::MemoryBytes::new(b).unwrap()),
        pids: l["pids_max"].as_u64(),
        cpuset: catalog.cpuset.clone(),
    }
}

/// For every scenario of [`AGREEING`]: a runc container started from the
/// scenario's own container spec (the catalog's) with the limits of the
/// scenario run's JSON report, kept running, and inspected. inspect must
/// find what the scenario run found: every namespace this kernel has
/// isolated exactly as the spec asks and as the scenario measured it, the
/// limits the report states in force (and what the scenario read back),
/// and /proc leaking where the scenario's checks found it leaking. A
/// scenario runc cannot run (unsupported) must fail to start the same way.
#[test]
fn inspect_of_a_runc_container_agrees_with_the_scenario_run() {
    let _room = room!();
    if !oci_or_skip(
        "inspect_of_a_runc_container_agrees_with_the_scenario_run",
        runtime::backend::BackendKind::Runc,
    ) {
        return;
    }
    let judged = scenarios_through_runc(&AGREEING);
    let kernel_has = |ns: &str| std::path::Path::new("/proc/self/ns").join(ns).exists();
    let b = backend::open(BackendKind::Runc, RuntimeConfig::new(BIN.into()), None).unwrap();
    let mut compared = 0;
    for id in AGREEING {
        let run = &judged[id];
        let scenario = catalog_scenario(id);
        let container = &scenario.main.container;
        let mut spec = container.spec(&format!("in-{id}"), vec!["/bin/sleep".into(), "60".into()]);
        spec.limits = report_limits(run, &container.limits);
        assert_eq!(
            spec.limits, container.limits,
            "{id}: the report's limits are not the catalog's"
        );
        let measured = |k: &str| run["measurements"][k].as_f64();
        let verdict = |check: &str| {
            run["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == check)
                .map(|c| c["verdict"].as_str().unwrap().to_string())
        };
        if run["status"] == "unsupported" {
            let e = b.spawn(&spec, Stdio::default()).unwrap_err();
            assert!(
                matches!(e, runtime::Error::OciUnsupported { .. }),
                "{id} is unsupported under runc, but its container: {e}"
            );
            continue;
        }
        assert_eq!(run["status"], "pass", "{id}: {run}");
        let c = b.spawn(&spec, Stdio::default()).unwrap();
        let pid = c.host_pid().to_string();
        let (code, out, err) = inspect(&["--pid", &pid, "--format", "json"]);
        let (hcode, human, _) = inspect(&["--cgroup", c.cgroup_path().to_str().unwrap()]);
        drop(c);
        assert_eq!(code, 0, "{id}: {err}");
        assert_eq!(hcode, 0, "{id}");
        assert!(human.contains(&format!("PID {pid}")), "{human}");
        let found: Value = serde_json::from_str(&out).unwrap();

        // Namespaces, each one this kernel has.
        for n in found["namespaces"].as_array().unwrap() {
            let ns = n["namespace"].as_str().unwrap();
            if !kernel_has(ns) {
                assert!(n["isolated"].is_null(), "{id}: {n}");
                continue;
            }
            let wanted = spec.namespaces.iter().any(|s| s.proc_name() == ns);
            assert_eq!(n["isolated"], wanted, "{id}: {ns} against the spec: {n}");
            if let Some(m) = measured(&format!("ns_differs.{ns}")) {
                assert_eq!(m == 1.0, wanted, "{id}: ns_differs.{ns} = {m}");
            }
        }
        // The limits in force: the report's, and what the scenario read.
        let l = &found["limits"];
        let lim = &run["limits"];
        assert_eq!(
            l["memory_limit_bytes"].as_u64(),
            lim["memory_bytes"].as_u64(),
            "{id}"
        );
        assert_eq!(
            l["cpu_quota_cores"].as_f64(),
            lim["cpu_quota"].as_f64(),
            "{id}"
        );
        assert_eq!(l["pids_max"].as_u64(), lim["pids_max"].as_u64(), "{id}");
        for (key, metric) in [
            ("memory_limit_bytes", "memory_limit_bytes"),
            ("cpu_quota_cores", "cpu_quota"),
            ("pids_max", "pids_limit"),
        ] {
            if let Some(m) = measured(metric) {
                assert_eq!(l[key].as_f64(), Some(m), "{id}: {key} against {metric}");
            }
        }
        // /proc against the limits: leaked where the scenario found a leak.
        for (finding, check) in [
            ("meminfo", "memtotal"),
            ("nproc", "nproc-online"),
            ("available-parallelism", "available-parallelism"),
        ] {
            let Some(v) = verdict(check) else { continue };
            let leaked = found["proc_findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["check"] == finding)
                .unwrap_or_else(|| panic!("{id}: no {finding} finding: {found}"))["leaked"]
                .as_bool()
                .unwrap();
            assert_eq!(
                leaked,
                v == "leaked",
                "{id}: {finding} against {check} ({v})"
            );
        }
        // The inside view is the container's.
        let pid_ns = spec.namespaces.contains(runtime::Namespace::Pid);
        if pid_ns {
            assert_eq!(found["security"]["pid_inside"], 1, "{id}");
        }
        assert_eq!(found["inside"]["hostname"], spec.hostname(), "{id}");
        compared += 1;
    }
    drop(b);
    assert!(compared >= 8, "only {compared} scenarios could be compared");
}

#[test]
fn inspect_names_a_pid_that_is_gone_and_a_process_outside_any_container() {
    let _room = room!();
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

/// `inspect --pid 1`: PID 1 exists. Where its namespace links can be read
/// it shares them with itself and is "not in a container"; where they
/// cannot (a machine whose init is not ours to read), inspect says what it
/// could not read, judges the rest and exits 3, never "does not exist".
#[test]
fn inspect_of_pid_1_says_what_it_could_not_read() {
    let _room = room!();
    if !root_or_skip("inspect_of_pid_1_says_what_it_could_not_read") {
        return;
    }
    let (code, out, err) = inspect(&["--pid", "1"]);
    assert!(!err.contains("does not exist"), "{err}");
    match std::fs::read_link("/proc/1/ns/pid") {
        Ok(_) => {
            assert_eq!(code, 125, "{err}");
            assert!(
                err.contains("process 1 (") && err.contains("is not in a container"),
                "{err}"
            );
        }
        Err(e) => {
            assert_eq!(code, 3, "{out}{err}");
            let why = format!("reading /proc/1/ns/pid: {e}");
            assert!(
                out.contains(&format!("note: the namespaces of process 1 could not be read ({why}): they are not judged")),
                "{out}"
            );
            assert!(out.contains("pid     not judged: unreadable"), "{out}");
            assert!(out.contains("limits in force, and usage:"), "{out}");
        }
    }
}

/// A user-namespaced container whose root directory its own root cannot
/// search (owned by the host's root, mode 0700 once it runs): the host
/// side is still inspected, entering fails, and inspect says why and
/// exits 3 instead of passing for a complete inspection.
#[test]
fn inspect_that_cannot_enter_says_why_and_exits_3() {
    let _room = room!();
    let test = "inspect_that_cannot_enter_says_why_and_exits_3";
    if !oci_or_skip(test, runtime::backend::BackendKind::Runc) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let busybox = std::path::Path::new("/bin/busybox");
    if !present_or_skip(
        busybox.is_file(),
        test,
        "a static /bin/busybox (apt-get install busybox-static)",
    ) {
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
    // The root is locked only once the entry runs: runc's init still has to
    // reach it on a busy host, and a locked root would stop it there.
    let comm = format!("/proc/{}/comm", c.host_pid());
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&comm)
        .map(|t| t.trim() != "busybox")
        .unwrap_or(true)
        && std::time::Instant::now() < until
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
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
