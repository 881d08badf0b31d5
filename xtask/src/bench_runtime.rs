//! `cargo xtask bench runtime`: start-to-exit latency of `/bin/true` in a
//! container with pid, mount, uts, ipc and net namespaces and a cgroup with
//! limits (0.5 CPU, 64 MiB, 64 pids), side by side in one run:
//!
//! - boxwatch's builtin runtime, through the release CLI (`boxwatch run`);
//! - crun and runc (`<rt> run` on a bundle with the same namespaces,
//!   limits, capabilities and minimal root as the builtin's); crun on a
//!   v1/v2 hybrid host through boxwatch's mount-namespace shim, which
//!   hides the cgroup2 mount crun refuses;
//! - `unshare --pid --fork --mount --uts --ipc --net true`, the floor: the
//!   namespaces alone, no cgroup, no root filesystem.
//!
//! The runtimes take turns run by run (the order rotates), so a change in
//! the host's load hits them all alike. Then the builtin runs again with
//! `BOXWATCH_LOG=boxwatch::timing=info` and the median of each setup step
//! is printed: where its time goes. Everything the bench creates (a bundle
//! under /run, cgroups under /boxwatch/bench-runtime-<pid>) is removed.

use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct RuntimeBenchArgs {
    /// Timed runs per runtime (at least 100 for the figures to mean much).
    #[arg(long, default_value_t = 100)]
    runs: usize,
    /// Extra builtin runs with per-step timings (not in the table).
    #[arg(long, default_value_t = 40)]
    profile_runs: usize,
}

/// One contender: a name and the command that starts and ends a container.
struct Contender {
    name: String,
    note: String,
    cmd: Vec<String>,
    times: Vec<Duration>,
}

/// What the bench made and must remove.
struct Cleanup {
    dir: PathBuf,
    cgroup: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        for m in cgroup_mounts() {
            let base = m.join(self.cgroup.trim_start_matches('/'));
            if let Ok(rd) = std::fs::read_dir(&base) {
                for e in rd.flatten().filter(|e| e.path().is_dir()) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
            let _ = std::fs::remove_dir(&base);
            // The shared parent, if nothing else uses it.
            let _ = std::fs::remove_dir(m.join("boxwatch"));
        }
    }
}

/// Mount points of every cgroup hierarchy's root (v1, named, cgroup2).
fn cgroup_mounts() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fs = post.split(' ').next()?;
            let f: Vec<&str> = pre.split(' ').collect();
            let mp = f.get(4)?;
            (matches!(fs, "cgroup" | "cgroup2") && f.get(3) == Some(&"/"))
                .then(|| PathBuf::from(mp))
        })
        .collect()
}

/// The cgroup2 mount of a hybrid host (v1 controllers and a cgroup2
/// mount side by side), which crun must not see.
fn hybrid_cgroup2() -> Option<PathBuf> {
    let layout = probes::host::detect().ok()?;
    (layout.mode() == probes::host::CgroupMode::Hybrid)
        .then(|| layout.v2().map(|h| h.mount_point.clone()))
        .flatten()
}

fn find(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Docker's capability set, as the builtin runtime keeps it.
const CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Writes an OCI bundle at `dir` that does what the builtin does for
/// `boxwatch run --cpus 0.5 --memory 64M --pids 64 --share cgroup -- /bin/true`.
fn write_bundle(dir: &Path, cgroups_path: &str) -> Result<()> {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(&root)?;
    let mut mounts = vec![
        serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        serde_json::json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        serde_json::json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        serde_json::json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        serde_json::json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}),
    ];
    for d in [
        "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc",
    ] {
        let host = Path::new("/").join(d);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                std::os::unix::fs::symlink(std::fs::read_link(&host)?, root.join(d))?
            }
            Ok(m) if m.is_dir() => {
                std::fs::create_dir_all(root.join(d))?;
                mounts.push(serde_json::json!({"destination": format!("/{d}"), "type": "bind", "source": host, "options": ["rbind", "ro"]}));
            }
            _ => {}
        }
    }
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "bench",
        "mounts": mounts,
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "noNewPrivileges": true,
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS, "inheritable": [], "ambient": []},
        },
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}],
            "cgroupsPath": cgroups_path,
            "resources": {
                "devices": [{"allow": false, "access": "rwm"}],
                "cpu": {"quota": 50000, "period": 100000},
                "memory": {"limit": 64 << 20, "swap": 64 << 20},
                "pids": {"limit": 64},
            },
        },
    });
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    Ok(())
}

/// Runs `cmd` once; its wall time.
fn time_once(cmd: &[String], env: &[(&str, &str)]) -> Result<(Duration, String)> {
    let t = Instant::now();
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {}", cmd[0]))?;
    let took = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            cmd.join(" "),
            out.status,
            stderr.trim()
        );
    }
    Ok((took, stderr))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

pub fn main(bin: &Path, args: RuntimeBenchArgs) -> Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    let me = std::process::id();
    let cleanup = Cleanup {
        dir: PathBuf::from(format!("/run/boxwatch-bench-runtime-{me}")),
        cgroup: format!("/boxwatch/bench-runtime-{me}"),
    };
    let bin_s = bin.to_string_lossy().into_owned();
    let mut contenders = vec![Contender {
        name: "boxwatch builtin".into(),
        note: "boxwatch run (release CLI)".into(),
        cmd: [
            bin_s.as_str(),
            "run",
            "--name",
            "bench",
            "--cpus",
            "0.5",
            "--memory",
            "64M",
            "--pids",
            "64",
            "--share",
            "cgroup",
            "--",
            "/bin/true",
        ]
        .map(String::from)
        .to_vec(),
        times: Vec::new(),
    }];
    let hide = hybrid_cgroup2();
    for rt in ["crun", "runc"] {
        let Some(path) = find(rt) else {
            eprintln!("bench: {rt} is not installed (apt-get install runc crun): left out");
            continue;
        };
        let bundle = cleanup.dir.join(rt);
        write_bundle(&bundle, &format!("{}/{rt}", cleanup.cgroup))
            .with_context(|| format!("writing the {rt} bundle"))?;
        let state = cleanup.dir.join(format!("{rt}-state"));
        let mut cmd: Vec<String> = Vec::new();
        let mut note = format!("{rt} run");
        if let (Some(hide), "crun") = (&hide, rt) {
            cmd.extend([
                bin_s.clone(),
                "__boxwatch-oci-shim".into(),
                hide.to_string_lossy().into_owned(),
            ]);
            note = format!(
                "crun run, through boxwatch's shim hiding {} (hybrid host)",
                hide.display()
            );
        }
        cmd.push(path.to_string_lossy().into_owned());
        cmd.extend([
            "--root".into(),
            state.to_string_lossy().into_owned(),
            "run".into(),
            "--bundle".into(),
            bundle.to_string_lossy().into_owned(),
            format!("bench-{me}"),
        ]);
        contenders.push(Contender {
            name: rt.into(),
            note,
            cmd,
            times: Vec::new(),
        });
    }
    contenders.push(Contender {
        name: "unshare (floor)".into(),
        note: "unshare --pid --fork --mount --uts --ipc --net true".into(),
        cmd: [
            "unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "true",
        ]
        .map(String::from)
        .to_vec(),
        times: Vec::new(),
    });

    eprintln!(
        "bench: {} runs each of {}, taking turns",
        args.runs,
        contenders
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for c in &contenders {
        for _ in 0..5 {
            time_once(&c.cmd, &[]).with_context(|| format!("warming up {}", c.name))?;
        }
    }
    let n = contenders.len();
    for round in 0..args.runs {
        if crate::bench_exporter::interrupted() {
            bail!("interrupted");
        }
        for k in 0..n {
            let c = &mut contenders[(round + k) % n];
            let (t, _) = time_once(&c.cmd, &[])?;
            c.times.push(t);
        }
    }

    let floor = {
        let mut t = contenders[n - 1].times.clone();
        t.sort();
        percentile(&t, 0.5)
    };
    println!(
        "\nstart-to-exit of /bin/true: pid, mount, uts, ipc, net namespaces; cgroup with 0.5 CPU, 64 MiB, 64 pids"
    );
    println!(
        "{:<18} {:>5} {:>11} {:>8} {:>9}  how",
        "runtime", "runs", "median ms", "p90 ms", "vs floor"
    );
    let mut medians = BTreeMap::new();
    for c in &contenders {
        let mut t = c.times.clone();
        t.sort();
        let med = percentile(&t, 0.5);
        medians.insert(c.name.clone(), med);
        println!(
            "{:<18} {:>5} {:>11} {:>8} {:>8.1}x  {}",
            c.name,
            t.len(),
            ms(med),
            ms(percentile(&t, 0.9)),
            med.as_secs_f64() / floor.as_secs_f64().max(1e-9),
            c.note
        );
    }
    let builtin = medians["boxwatch builtin"].as_secs_f64();
    for other in ["crun", "runc"] {
        if let Some(m) = medians.get(other) {
            println!(
                "builtin / {other}: {:.2} (median over median)",
                builtin / m.as_secs_f64()
            );
        }
    }

    if args.profile_runs > 0 {
        profile(&contenders[0].cmd, args.profile_runs)?;
    }
    drop(cleanup);
    Ok(())
}

/// The `name=+Nµs` pairs and `total=Nµs` of a timing line.
fn parse_steps(line: &str) -> Vec<(String, u64)> {
    line.split_whitespace()
        .filter_map(|w| {
            let (k, v) = w.split_once('=')?;
            let v = v.trim_start_matches('+').strip_suffix("µs")?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Samples (µs) of each step of one phase, in first-seen order.
type StepSamples = Vec<(String, Vec<u64>)>;

/// Where the builtin's time goes: the median of every step over `runs`.
fn profile(cmd: &[String], runs: usize) -> Result<()> {
    let env = [("BOXWATCH_LOG", "boxwatch::timing=info"), ("NO_COLOR", "1")];
    // phase -> step -> samples (µs), in first-seen order.
    let mut phases: Vec<(String, StepSamples)> = Vec::new();
    let mut walls = Vec::new();
    let mut entry = Vec::new();
    for _ in 0..runs {
        if crate::bench_exporter::interrupted() {
            bail!("interrupted");
        }
        let (wall, stderr) = time_once(cmd, &env)?;
        walls.push(wall.as_micros() as u64);
        for line in stderr.lines() {
            let line = strip_ansi(line);
            let Some((_, rest)) = line.split_once("boxwatch::timing: ") else {
                continue;
            };
            let Some((phase, steps)) = rest.split_once(": ") else {
                continue;
            };
            let phase = match phase.split_once(" (entry ran ") {
                Some((p, ran)) => {
                    if let Some(us) = ran.strip_suffix("µs)").and_then(|u| u.parse().ok()) {
                        entry.push(us);
                    }
                    p.to_string()
                }
                None => phase.to_string(),
            };
            let idx = match phases.iter().position(|(p, _)| *p == phase) {
                Some(i) => i,
                None => {
                    phases.push((phase, Vec::new()));
                    phases.len() - 1
                }
            };
            for (step, us) in parse_steps(steps) {
                let list = &mut phases[idx].1;
                match list.iter_mut().find(|(s, _)| *s == step) {
                    Some((_, v)) => v.push(us),
                    None => list.push((step, vec![us])),
                }
            }
        }
    }
    let median = |v: &mut Vec<u64>| -> u64 {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    println!("\nwhere the builtin's time goes (median µs over {runs} runs with timings on):");
    println!(
        "  steps prefixed init: run in the setup stage, concurrently with the parent's until `go`;\n  \
         each figure is the time since the step before it, whichever process took it."
    );
    let mut totals = 0;
    for (phase, steps) in &mut phases {
        let mut line = Vec::new();
        let mut total = 0;
        for (step, v) in steps.iter_mut() {
            let m = median(v);
            if step == "total" {
                total = m;
            } else {
                line.push(format!("{step} {m}"));
            }
        }
        totals += total;
        println!("  {phase:<13} {total:>6} µs = {}", line.join(", "));
    }
    let entry_m = median(&mut entry);
    let wall_m = median(&mut walls);
    println!(
        "  {:<13} {entry_m:>6} µs = exec of /bin/true to its exit seen (incl. namespace teardown)",
        "entry"
    );
    println!(
        "  {:<13} {:>6} µs = CLI start, Runtime::new (cgroup layout, stale-run scan), process exit",
        "outside",
        wall_m.saturating_sub(totals + entry_m)
    );
    println!(
        "  {:<13} {wall_m:>6} µs   (median wall time of these runs)",
        "all"
    );
    Ok(())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_lines_parse() {
        let steps = parse_steps("checks=+102µs cgroup-create=+870µs init:go=+58µs total=33074µs");
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[1], ("cgroup-create".into(), 870));
        assert_eq!(steps[3], ("total".into(), 33074));
        assert!(parse_steps("nothing here").is_empty());
    }

    #[test]
    fn percentiles_and_ansi() {
        let t: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile(&t, 0.5), Duration::from_millis(6));
        assert_eq!(percentile(&t, 0.9), Duration::from_millis(9));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        assert_eq!(strip_ansi("\x1b[32m INFO\x1b[0m x"), " INFO x");
    }
}
