//! Helpers shared by the integration tests: the real `boxwatch` binary, the
//! root requirement (never skipped under CI=true), and host-side lookups
//! that read cgroupfs directly.

pub mod engines;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_boxwatch");

/// True when `what` the test needs is there (`ok`). Otherwise the test is
/// skipped with a message, except under CI=true, where a missing
/// prerequisite fails it: the rule the exporter's tests keep, one
/// definition ([`crate::promtool::require`]).
pub fn present_or_skip(ok: bool, test: &str, what: &str) -> bool {
    crate::promtool::require(ok, test, what)
}

/// True when the test may run: root (namespaces, cgroups).
pub fn root_or_skip(test: &str) -> bool {
    present_or_skip(
        nix::unistd::geteuid().is_root(),
        test,
        "root (namespaces, cgroups)",
    )
}

/// True when a test of the OCI runtime `kind` may run: root and the
/// runtime installed.
pub fn oci_or_skip(test: &str, kind: runtime::backend::BackendKind) -> bool {
    root_or_skip(test)
        && present_or_skip(
            runtime::find_in_path(kind.as_str()).is_some(),
            test,
            &format!("{kind} (apt-get install runc crun)"),
        )
}

/// `boxwatch <args>` with output captured.
pub fn boxwatch(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running boxwatch")
}

/// `boxwatch run <opts> -- sh -c <script>`: (exit code, stdout, stderr).
pub fn run_sh(opts: &[&str], script: &str) -> (i32, String, String) {
    let mut args = vec!["run"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    let out = boxwatch(&args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The mount points of the host's cgroup hierarchies (v1 ones and cgroup2).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fs = post.split(' ').next()?;
            let mp = pre.split(' ').nth(4)?;
            (fs == "cgroup" || fs == "cgroup2").then(|| PathBuf::from(mp))
        })
        .collect()
}

/// Every cgroup directory under a `boxwatch` parent whose run id starts
/// with `<pid>-` (runs of the boxwatch process `pid`).
pub fn cgroups_of_boxwatch_pid(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("{pid}-");
    cgroup_mounts()
        .iter()
        .map(|m| m.join("boxwatch"))
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// The directory holding the CPU usage of container `name`: (dir, v2?).
pub fn find_container_cgroup(controller_file: &str, name: &str) -> Option<(PathBuf, bool)> {
    for m in cgroup_mounts() {
        let base = m.join("boxwatch");
        let Ok(runs) = std::fs::read_dir(&base) else {
            continue;
        };
        for run in runs.flatten() {
            let d = run.path().join(name);
            if d.join(controller_file).exists() {
                return Some((d, false));
            }
            if d.join("cpu.stat").exists() && d.join("cgroup.controllers").exists() {
                return Some((d, true));
            }
        }
    }
    None
}

/// CPU time used by the cgroup at `dir`, in nanoseconds.
pub fn cpu_usage_ns(dir: &Path, v2: bool) -> Option<u64> {
    if v2 {
        let stat = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
        let usec: u64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))?
            .trim()
            .parse()
            .ok()?;
        Some(usec * 1000)
    } else {
        std::fs::read_to_string(dir.join("cpuacct.usage"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// `readlink /proc/self/ns/<ns>` of the test process.
pub fn host_ns(ns: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Runs `spec` on `backend` (the builtin `Runtime` is one too) to its end
/// with stdout captured: (outcome, stdout).
pub fn run_captured(
    backend: &dyn runtime::backend::Backend,
    spec: &runtime::ContainerSpec,
) -> (runtime::Outcome, String) {
    use std::io::Read;
    let (r, w) = nix::unistd::pipe().unwrap();
    let c = backend
        .spawn(
            spec,
            runtime::Stdio {
                stdout: Some(w),
                ..runtime::Stdio::default()
            },
        )
        .unwrap_or_else(|e| panic!("{} spawn: {e}", backend.name()));
    let outcome = c.wait().unwrap();
    let mut text = String::new();
    std::fs::File::from(r).read_to_string(&mut text).unwrap();
    (outcome, text)
}

/// A wrapper around the OCI runtime at `runtime` that runs the shell
/// command `edit` on the bundle's config.json (as `$cfg`) before exec'ing
/// the runtime: a broken runtime, for tests that must catch it.
pub fn bundle_editing_wrapper(dir: &Path, name: &str, runtime: &Path, edit: &str) -> PathBuf {
    let wrapper = dir.join(name);
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             prev=\n\
             for a in \"$@\"; do\n\
             \x20   if [ \"$prev\" = --bundle ]; then\n\
             \x20       cfg=\"$a/config.json\"\n\
             \x20       {edit} || exit 1\n\
             \x20   fi\n\
             \x20   prev=$a\n\
             done\n\
             exec {} \"$@\"\n",
            runtime.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    wrapper
}

/// The JSON report a `boxwatch scenarios --format json` run printed, or a
/// panic that shows its stdout and stderr.
/// Scenario `id` of a JSON report (`json_report`); panics, naming it,
/// when the report has no such scenario.
pub fn scenario_in<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["scenarios"]
        .as_array()
        .expect("a report has a scenarios array")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the report"))
}

pub fn json_report(out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
