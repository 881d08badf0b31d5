//! `cargo xtask bench runtime`: start-to-exit latency of `/bin/true` in a
//! container with pid, mount, uts, ipc and net namespaces and a cgroup with
//! limits (0.5 CPU, 64 MiB, 64 pids), side by side in one run:
//!
//! - boxwatch's builtin runtime, through the release CLI (`boxwatch run`);
//! - crun and runc (`<rt> run` on the bundle the OCI backend writes for
//!   the same spec, with `runtime::oci::bundle::write`: what the scenarios
//!   run); crun on a v1/v2 hybrid host through boxwatch's mount-namespace
//!   shim, which hides the cgroup2 mount crun refuses. That bundle also
//!   has Docker's masked and read-only paths, some 14 more mounts than the
//!   builtin makes, so each runtime runs a second time without them:
//!   like-for-like figures next to the product's;
//! - gVisor's runsc on the same bundle, with the flags the backend gives
//!   it (`--network=none --platform=ptrace`);
//! - `docker run --rm` and `podman run --rm` of the same container on a
//!   busybox image (`--network none`, the same limits), where the engine
//!   is available ([`super::engines`]);
//! - `unshare --pid --fork --mount --uts --ipc --net true`, the floor: the
//!   namespaces alone, no cgroup, no root filesystem.
//!
//! The runtimes take turns run by run, in a new shuffled order every
//! round, so a change in the host's load hits them all alike and none
//! always follows the same one (the kernel tears namespaces and cgroups
//! down after a run has exited: a fixed order would bill one runtime for
//! its predecessor's teardown). The targets are then checked on
//! the medians: builtin at or below crun's, and at most a third of runc's.
//! Then the builtin runs again with `BOXWATCH_LOG=boxwatch::timing=info`
//! and the median of each setup step is printed: where its time goes (the
//! builtin only: runc and crun are not instrumented). Everything the bench
//! creates (bundles under /run, cgroups under
//! `/boxwatch/bench-runtime-<pid>`) is removed. Last, what dead runs'
//! OCI state costs a `boxwatch run` ([`super::stale`]).

use super::common::{interrupted, percentile};
use anyhow::{bail, ensure, Context, Result};
use runtime::oci::bundle;
use runtime::{ContainerSpec, Namespace};
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
    /// Environment of each run (podman's private configuration).
    env: Vec<(String, String)>,
    times: Vec<Duration>,
}

impl Contender {
    fn env_refs(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
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
            // Engines nest deeper (`podman/conmon`): deepest first.
            remove_cgroup_tree(&m.join(self.cgroup.trim_start_matches('/')));
            // The shared parent, if nothing else uses it.
            let _ = std::fs::remove_dir(m.join("boxwatch"));
        }
    }
}

/// rmdir of a cgroup directory and every cgroup below it, deepest first.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten().filter(|e| e.path().is_dir()) {
            remove_cgroup_tree(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
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

/// The spec `boxwatch run --name bench --cpus 0.5 --memory 64M --pids 64
/// --share cgroup -- /bin/true` starts.
fn bench_spec() -> Result<ContainerSpec> {
    let mut spec = ContainerSpec::new("bench", vec!["/bin/true".into()]);
    spec.namespaces.remove(Namespace::Cgroup);
    spec.limits.cpu = Some("0.5".parse()?);
    spec.limits.memory = Some("64M".parse()?);
    spec.limits.pids = Some(64);
    Ok(spec)
}

/// Writes at `dir` the bundle the OCI backend writes for [`bench_spec`]
/// (its cgroup `cgroups_path`); `like_for_like` leaves out Docker's masked
/// and read-only paths, which the builtin runtime does not make.
fn write_bundle(dir: &Path, bin: &Path, cgroups_path: &str, like_for_like: bool) -> Result<()> {
    let opts = bundle::BundleOptions::for_host(
        bin,
        PathBuf::from(cgroups_path),
        dir,
        bundle::host_entries(),
    );
    bundle::write(dir, &bench_spec()?, &opts)?;
    if like_for_like {
        let path = dir.join("config.json");
        let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let linux = cfg["linux"]
            .as_object_mut()
            .context("the bundle has no linux section")?;
        linux.remove("maskedPaths");
        linux.remove("readonlyPaths");
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)?;
    }
    Ok(())
}

/// A small deterministic shuffler (xorshift64*): the bench's run order.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Fisher-Yates.
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Runs `cmd` once; its wall time.
pub(crate) fn time_once(cmd: &[String], env: &[(&str, &str)]) -> Result<(Duration, String)> {
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

pub(crate) fn ms(d: Duration) -> String {
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
        env: Vec::new(),
        times: Vec::new(),
    }];
    let hide = hybrid_cgroup2();
    for (rt, like_for_like) in [
        ("crun", false),
        ("runc", false),
        ("crun", true),
        ("runc", true),
        ("runsc", false),
    ] {
        let Some(path) = runtime::find_in_path(rt) else {
            if !like_for_like {
                eprintln!(
                    "bench: {rt} is not installed (apt-get install runc crun runsc): left out"
                );
            }
            continue;
        };
        let (name, variant) = if like_for_like {
            (format!("{rt} (no masks)"), format!("{rt}-like"))
        } else {
            (rt.to_string(), rt.to_string())
        };
        let bundle = cleanup.dir.join(&variant);
        write_bundle(
            &bundle,
            bin,
            &format!("{}/{variant}", cleanup.cgroup),
            like_for_like,
        )
        .with_context(|| format!("writing the {name} bundle"))?;
        let state = cleanup.dir.join(format!("{variant}-state"));
        let mut cmd: Vec<String> = Vec::new();
        let mut note = if like_for_like {
            format!("{rt} run, the same bundle without Docker's masked and read-only paths")
        } else {
            format!("{rt} run, the OCI backend's bundle")
        };
        if rt == "runsc" {
            note.push_str(&format!(
                " (gVisor: {})",
                runtime::oci::RUNSC_FLAGS.join(" ")
            ));
        }
        if let (Some(hide), "crun") = (&hide, rt) {
            cmd.extend([
                bin_s.clone(),
                "__boxwatch-oci-shim".into(),
                hide.to_string_lossy().into_owned(),
            ]);
            note.push_str(&format!(
                ", through boxwatch's shim hiding {}",
                hide.display()
            ));
        }
        cmd.push(path.to_string_lossy().into_owned());
        cmd.extend(["--root".into(), state.to_string_lossy().into_owned()]);
        if rt == "runsc" {
            cmd.extend(runtime::oci::RUNSC_FLAGS.map(String::from));
        }
        cmd.extend([
            "run".into(),
            "--bundle".into(),
            bundle.to_string_lossy().into_owned(),
            format!("bench-{me}"),
        ]);
        contenders.push(Contender {
            name,
            note,
            cmd,
            env: Vec::new(),
            times: Vec::new(),
        });
    }
    std::fs::create_dir_all(&cleanup.dir)?;
    let (engines, images, left_out) =
        super::engines::rows(&cleanup.dir, &cleanup.cgroup, &me.to_string());
    for why in &left_out {
        eprintln!("bench: {why}: left out");
    }
    for e in engines {
        contenders.push(Contender {
            name: e.name,
            note: e.note,
            cmd: e.cmd,
            env: e.env,
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
        env: Vec::new(),
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
            time_once(&c.cmd, &c.env_refs()).with_context(|| format!("warming up {}", c.name))?;
        }
    }
    let n = contenders.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..args.runs {
        if interrupted() {
            bail!("interrupted");
        }
        rng.shuffle(&mut order);
        for &k in &order {
            let c = &mut contenders[k];
            let (t, _) = time_once(&c.cmd, &c.env_refs())?;
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
    for other in [
        "crun",
        "runc",
        "crun (no masks)",
        "runc (no masks)",
        "runsc",
        "docker run",
        "podman run",
    ] {
        if let Some(m) = medians.get(other) {
            println!(
                "builtin / {other}: {:.2} (median over median)",
                builtin / m.as_secs_f64()
            );
        }
    }
    println!("\ntargets (medians; crun and runc with the OCI backend's bundle, as the scenarios run them):");
    for line in targets(builtin, &medians) {
        println!("  {line}");
    }

    std::fs::create_dir_all(&cleanup.dir)?;
    super::stale::rows(
        &contenders[0].cmd,
        args.runs,
        medians["boxwatch builtin"],
        &cleanup.dir,
    )?;

    for why in &left_out {
        println!("left out: {why}");
    }

    if args.profile_runs > 0 {
        profile(&contenders[0].cmd, args.profile_runs)?;
    }
    drop(images);
    drop(cleanup);
    Ok(())
}

/// Whether the targets hold: the builtin's median at or below crun's, and
/// at most a third of runc's; also against the like-for-like variants.
fn targets(builtin: f64, medians: &BTreeMap<String, Duration>) -> Vec<String> {
    let ms = |s: f64| format!("{:.1} ms", s * 1000.0);
    let verdict = |ok: bool| if ok { "HOLDS" } else { "MISSED" };
    let mut out = Vec::new();
    for (rt, extra) in [("crun", ""), ("crun (no masks)", " (like for like)")] {
        match medians.get(rt) {
            Some(m) => {
                let m = m.as_secs_f64();
                out.push(format!(
                    "builtin <= {rt}{extra}: {} vs {}: {}",
                    ms(builtin),
                    ms(m),
                    verdict(builtin <= m)
                ));
            }
            None if extra.is_empty() => out.push(format!("builtin <= {rt}: not measured")),
            None => {}
        }
    }
    for (rt, extra) in [("runc", ""), ("runc (no masks)", " (like for like)")] {
        match medians.get(rt) {
            Some(m) => {
                let m = m.as_secs_f64();
                out.push(format!(
                    "builtin <= {rt} / 3{extra}: {} vs {} / 3 = {}: {}",
                    ms(builtin),
                    ms(m),
                    ms(m / 3.0),
                    verdict(builtin <= m / 3.0)
                ));
            }
            None if extra.is_empty() => out.push(format!("builtin <= {rt} / 3: not measured")),
            None => {}
        }
    }
    out
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
        if interrupted() {
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
        percentile(v, 0.5)
    };
    println!(
        "\nwhere the time goes, builtin only (runc and crun are not instrumented): median µs over {runs} runs with timings on"
    );
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
    fn targets_hold_or_are_missed_on_the_medians() {
        let m = |pairs: &[(&str, u64)]| -> BTreeMap<String, Duration> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Duration::from_micros(*v)))
                .collect()
        };
        let t = targets(0.012, &m(&[("crun", 12_500), ("runc", 37_600)]));
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(
            t[0].starts_with("builtin <= crun: 12.0 ms vs 12.5 ms: HOLDS"),
            "{t:?}"
        );
        assert!(t[1].ends_with("= 12.5 ms: HOLDS"), "{t:?}");
        let t = targets(
            0.013,
            &m(&[
                ("crun", 12_500),
                ("crun (no masks)", 13_500),
                ("runc", 36_000),
            ]),
        );
        assert!(t[0].ends_with("MISSED") && t[1].ends_with("HOLDS"), "{t:?}");
        assert!(t[1].contains("like for like"), "{t:?}");
        assert!(t[2].ends_with("12.0 ms: MISSED"), "{t:?}");
        assert_eq!(
            targets(0.01, &m(&[])),
            [
                "builtin <= crun: not measured",
                "builtin <= runc / 3: not measured"
            ]
        );
    }

    #[test]
    fn the_bench_bundle_is_the_backends_with_and_without_masks() {
        let dir = tempfile::tempdir().unwrap();
        let bin = Path::new("/usr/local/bin/boxwatch");
        write_bundle(&dir.path().join("p"), bin, "/boxwatch/bench-1/crun", false).unwrap();
        write_bundle(
            &dir.path().join("l"),
            bin,
            "/boxwatch/bench-1/crun-like",
            true,
        )
        .unwrap();
        let read = |d: &str| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(dir.path().join(d).join("config.json")).unwrap())
                .unwrap()
        };
        let (p, l) = (read("p"), read("l"));
        assert_eq!(p["linux"]["cgroupsPath"], "/boxwatch/bench-1/crun");
        assert_eq!(p["linux"]["resources"]["cpu"]["quota"], 50000);
        assert_eq!(p["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(p["linux"]["resources"]["pids"]["limit"], 64);
        assert_eq!(p["process"]["args"][0], "/bin/true");
        let types: Vec<&str> = p["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            ["pid", "mount", "uts", "ipc", "network"],
            "--share cgroup"
        );
        assert!(p["linux"]["maskedPaths"]
            .as_array()
            .is_some_and(|a| !a.is_empty()));
        assert!(
            l["linux"].get("maskedPaths").is_none() && l["linux"].get("readonlyPaths").is_none()
        );
        let dests = |v: &serde_json::Value| -> Vec<String> {
            v["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["destination"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(dests(&p), dests(&l));
        assert!(dests(&p).contains(&"/.boxwatch/boxwatch".to_string()));
    }

    #[test]
    fn every_round_is_a_permutation_and_predecessors_vary() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut order: Vec<usize> = (0..6).collect();
        let mut before_0 = std::collections::BTreeSet::new();
        for _ in 0..200 {
            rng.shuffle(&mut order);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, (0..6).collect::<Vec<_>>());
            if let Some(p) = order.iter().position(|&k| k == 0).filter(|&p| p > 0) {
                before_0.insert(order[p - 1]);
            }
        }
        assert_eq!(
            before_0.len(),
            5,
            "every other contender comes right before 0 sometimes"
        );
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(strip_ansi("\x1b[32m INFO\x1b[0m x"), " INFO x");
    }
}
