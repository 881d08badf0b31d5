//! gVisor (runsc) as a backend: named as gVisor with its version, the
//! workload's exit status comes back, the helpers runsc leaves to boxwatch
//! (its gofer, re-parented by PR_SET_CHILD_SUBREAPER) are reaped, a time
//! namespace is refused as unsupported with the reason, a sentry crash is
//! an error with its panic line, and nothing is left in the state root.
//! Needs root and runsc; under CI=true a missing one fails the test.

use crate::common::*;
use runtime::backend::{self, BackendKind};
use runtime::{ContainerSpec, Exit, Namespace, RuntimeConfig};

/// The tests take turns: each one checks that no child of this process
/// is left a zombie, which another's container would disturb.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This process's children that are zombies (what nobody reaped).
fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| runtime::cleanup::proc_stat(p).is_some_and(|s| s.ppid == me && s.state == 'Z'))
        .collect()
}

#[test]
fn runsc_runs_reaps_its_helpers_and_reports_crashes() {
    let _room = room!();
    const TEST: &str = "runsc_runs_reaps_its_helpers_and_reports_crashes";
    if !oci_or_skip(TEST, BackendKind::Runsc) {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let b = backend::open(BackendKind::Runsc, RuntimeConfig::new(BIN.into()), None).unwrap();
    assert!(b.sandboxed());
    assert!(
        b.version().starts_with("gVisor (runsc) "),
        "{}",
        b.version()
    );
    assert!(b.notes().iter().any(|n| n.contains("sandboxed")));

    // The workload's exit status, through the sandbox.
    let spec = ContainerSpec::new(
        "exit3",
        vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo in-gvisor; exit 3".into(),
        ],
    );
    let (outcome, out) = run_captured(b.as_ref(), &spec);
    assert_eq!(outcome.exit, Exit::Code(3));
    assert_eq!(out.trim(), "in-gvisor");
    // Every helper runsc left to us was reaped with the container.
    assert_eq!(zombie_children(), Vec::<i32>::new());

    // No `features` command: a time namespace is not assumed.
    let mut timens = ContainerSpec::new("timens", vec!["/bin/true".into()]);
    timens.namespaces.insert(Namespace::Time);
    let e = b.spawn(&timens, runtime::Stdio::default()).unwrap_err();
    assert!(
        matches!(e, runtime::Error::OciUnsupported { .. }) && e.to_string().contains("features"),
        "{e}"
    );

    // The sentry cannot start its threads under a tiny pids limit: that
    // is the sandbox crashing, an error with its panic line, not an exit.
    let mut crash = ContainerSpec::new("crash", vec!["/bin/true".into()]);
    crash.limits.pids = Some(4);
    let r = b
        .spawn(&crash, runtime::Stdio::default())
        .and_then(|c| c.wait());
    match r {
        Err(runtime::Error::SandboxCrashed { line, .. }) => {
            assert!(line.contains("panic") || line.contains("fatal"), "{line}")
        }
        // The sentry may die before it wrote its panic: `create` fails.
        Err(runtime::Error::OciCommand { step: "create", .. }) => {}
        other => panic!("a sentry that cannot start is not a workload exit: {other:?}"),
    }
    assert_eq!(zombie_children(), Vec::<i32>::new());
    drop(b);
    let root = std::path::Path::new("/run/boxwatch/oci/runsc");
    let left: Vec<_> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name())
                .filter(|n| {
                    n.to_string_lossy()
                        .starts_with(&format!("bw-{}-", std::process::id()))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "runsc state left: {left:?}");
}

/// `boxwatch inspect` pointed at a gVisor container (its sandbox's PID, or
/// its cgroup) says it is sandboxed, and does not present the sandbox's
/// host-side view as the workload's.
#[test]
fn inspect_says_a_gvisor_container_is_sandboxed() {
    let _room = room!();
    const TEST: &str = "inspect_says_a_gvisor_container_is_sandboxed";
    if !oci_or_skip(TEST, BackendKind::Runsc) {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let b = backend::open(BackendKind::Runsc, RuntimeConfig::new(BIN.into()), None).unwrap();
    let spec = ContainerSpec::new("inspected", vec!["/bin/sleep".into(), "60".into()]);
    let c = b.spawn(&spec, runtime::Stdio::default()).unwrap();
    let pid = c.host_pid().to_string();
    let cgroup = c.cgroup_path().to_string_lossy().into_owned();
    let by_pid = boxwatch(&["inspect", "--pid", &pid]);
    let by_cgroup = boxwatch(&["inspect", "--cgroup", &cgroup]);
    c.killer().kill().unwrap();
    drop(c);
    for (how, out) in [("--pid", by_pid), ("--cgroup", by_cgroup)] {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{how}: {out:?}");
        assert!(
            text.contains("sandboxed: PID") && text.contains("gVisor's sandbox"),
            "{how}: {text}"
        );
    }
    assert_eq!(zombie_children(), Vec::<i32>::new());
}
