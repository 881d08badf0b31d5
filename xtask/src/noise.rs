//! `cargo xtask noise`: how often the CPU scenarios give a false alarm on a
//! host with a noisy neighbour. N runs of cpu-quota-20, cpu-quota-50 and
//! cpu-quota-150 next to a background load (one process keeping one CPU
//! busy 25-75% of the time, changing every second), counted as pass, fail
//! and error; then the same with a runtime that drops the CPU quota, which
//! must fail every time. A benchmark, not a test: the figures are printed
//! and written to `<out>/noise.md`; the task fails when the targets (0
//! fail and at most 2 error per scenario for the healthy runtime, N of N
//! fail for the mutant) are missed.

use crate::mutants::edit::{self, Edit, WrapperConfig};
use crate::scenarios::target_dir;
use anyhow::{Context, Result};
use clap::Args;
use reports::Status;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCENARIOS: [&str; 3] = ["cpu-quota-20", "cpu-quota-50", "cpu-quota-150"];

#[derive(Args)]
pub struct NoiseArgs {
    /// Runs of each scenario, for the healthy runtime and for the mutant.
    #[arg(long, default_value_t = 50, value_name = "N")]
    runs: u32,
    /// Runs with the quota-dropping mutant (default: --runs).
    #[arg(long, value_name = "N")]
    mutant_runs: Option<u32>,
    /// The runtime: builtin, runc or crun.
    #[arg(long, default_value = "builtin", value_name = "RUNTIME")]
    runtime: String,
    /// How long a scenario waits for a quiet host before measuring anyway.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    quiet_wait: String,
    /// Where noise.md and the runs' reports go (default:
    /// target/boxwatch-report/noise).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Release builds instead of debug ones.
    #[arg(long)]
    release: bool,
}

/// The background load: one CPU busy a fraction of each 100 ms, the
/// fraction drawn from 25-75% every second. Runs until killed, or until
/// the xtask that started it dies.
pub fn load() -> ! {
    let parent = nix::unistd::getppid();
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        std::process::exit(0);
    }
    let mut x: u64 = u64::from(std::process::id()) | 1;
    loop {
        // xorshift: a new duty cycle every second.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let duty = 0.25 + 0.5 * (x % 1000) as f64 / 1000.0;
        for _ in 0..10 {
            let t0 = Instant::now();
            let busy = Duration::from_secs_f64(0.1 * duty);
            while t0.elapsed() < busy {
                std::hint::spin_loop();
            }
            std::thread::sleep(Duration::from_millis(100).saturating_sub(t0.elapsed()));
        }
    }
}

/// The load process, killed (by its PID) and reaped when dropped.
struct Load(Child);

impl Load {
    fn start() -> Result<Load> {
        let exe = std::env::current_exe().context("locating xtask")?;
        let child = Command::new(exe)
            .arg("noise-load")
            .stdin(Stdio::null())
            .spawn()
            .context("starting the background load")?;
        Ok(Load(child))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Per scenario: statuses counted, tries beyond the first, cpu_share range.
#[derive(Default)]
struct Tally {
    by_status: BTreeMap<&'static str, u32>,
    retries: u32,
    shares: Vec<f64>,
    /// CPUs the host's other processes kept busy, per run.
    host_busy: Vec<f64>,
    failures: Vec<String>,
}

impl Tally {
    fn count(&self, s: &str) -> u32 {
        self.by_status.get(s).copied().unwrap_or(0)
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Error => "error",
        Status::Unsupported => "unsupported",
        Status::NotApplicable => "not-applicable",
    }
}

struct Setup<'a> {
    bin: &'a Path,
    runtime: &'a str,
    runtime_path: Option<&'a Path>,
    env: Vec<(&'static str, String)>,
    quiet_wait: &'a str,
}

/// `runs` runs of the three scenarios, each tallied.
fn measure(
    setup: &Setup,
    runs: u32,
    out: &Path,
    label: &str,
) -> Result<BTreeMap<&'static str, Tally>> {
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let started = Instant::now();
    for i in 1..=runs {
        let dir = out.join(label).join(i.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("boxwatch.log"))?;
        let mut c = Command::new(setup.bin);
        c.arg("scenarios")
            .arg("--runtime")
            .arg(setup.runtime)
            .arg("--out")
            .arg(&dir)
            .arg("--format")
            .arg("json")
            .arg("--quiet-wait")
            .arg(setup.quiet_wait)
            .stdout(Stdio::null())
            .stderr(log)
            .env_remove(edit::ENV)
            .env_remove(runtime::fault::ENV)
            .envs(setup.env.iter().map(|(k, v)| (k, v)));
        if let Some(p) = setup.runtime_path {
            c.arg("--runtime-path").arg(p);
        }
        for s in SCENARIOS {
            c.arg("--only").arg(s);
        }
        c.status()
            .with_context(|| format!("running {}", setup.bin.display()))?;
        let report = reports::load_report(&dir.join("report.json"))
            .with_context(|| format!("run {i} wrote no report in {}", dir.display()))?;
        let mut line = Vec::new();
        for id in SCENARIOS {
            let t = tallies.entry(id).or_default();
            let Some(s) = report.scenarios.iter().find(|s| s.id == id) else {
                *t.by_status.entry("missing").or_default() += 1;
                continue;
            };
            *t.by_status.entry(status_name(s.status)).or_default() += 1;
            t.retries += s.earlier_tries.len() as u32;
            if let Some(v) = s.measurements.get("cpu_share") {
                t.shares.push(*v);
            }
            if let Some(v) = s.measurements.get("host_busy_cpus") {
                t.host_busy.push(*v);
            }
            if s.status != Status::Pass {
                let why: Vec<String> = s
                    .checks
                    .iter()
                    .filter(|c| c.required && !c.held())
                    .map(|c| format!("{} {}: {}", c.id, c.verdict, c.observed))
                    .collect();
                t.failures.push(format!("run {i}: {}", why.join("; ")));
            }
            line.push(format!(
                "{id} {}{}",
                status_name(s.status),
                if s.earlier_tries.is_empty() {
                    String::new()
                } else {
                    format!(" (after {} retries)", s.earlier_tries.len())
                }
            ));
        }
        eprintln!(
            "xtask noise: {label} run {i}/{runs} ({:.0} s in): {}",
            started.elapsed().as_secs_f64(),
            line.join(", ")
        );
    }
    Ok(tallies)
}

fn table(label: &str, runs: u32, t: &BTreeMap<&'static str, Tally>) -> String {
    let mut s = format!(
        "\n### {label} (N = {runs})\n\n| scenario | pass | fail | error | retries | cpu_share min | max | other load (CPUs, median) |\n|---|---|---|---|---|---|---|---|\n"
    );
    for (id, t) in t {
        let min = t.shares.iter().copied().fold(f64::INFINITY, f64::min);
        let max = t.shares.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut busy = t.host_busy.clone();
        busy.sort_by(f64::total_cmp);
        let median = busy.get(busy.len() / 2).copied().unwrap_or(f64::NAN);
        s.push_str(&format!(
            "| {id} | {} | {} | {} | {} | {min:.4} | {max:.4} | {median:.2} |\n",
            t.count("pass"),
            t.count("fail"),
            t.count("error"),
            t.retries
        ));
    }
    s
}

pub fn main(args: NoiseArgs) -> Result<()> {
    let rt = args.runtime.as_str();
    anyhow::ensure!(
        matches!(rt, "builtin" | "runc" | "crun"),
        "unknown --runtime {rt:?}: expected builtin, runc or crun"
    );
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| target_dir().join("boxwatch-report").join("noise"));
    std::fs::create_dir_all(&out)?;
    let bins = crate::mutants::build(args.release, rt == "builtin")?;
    let mutant_runs = args.mutant_runs.unwrap_or(args.runs);

    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let load_before = loadavg();
    let t0 = Instant::now();
    let load = Load::start()?;
    eprintln!(
        "xtask noise: background load pid {} (one CPU, 25-75% busy); {} healthy and {mutant_runs} mutant run(s) of {}",
        load.0.id(),
        args.runs,
        SCENARIOS.join(", ")
    );
    let healthy = Setup {
        bin: &bins.healthy,
        runtime: rt,
        runtime_path: None,
        env: Vec::new(),
        quiet_wait: &args.quiet_wait,
    };
    let h = measure(&healthy, args.runs, &out, "healthy")?;
    let (mutant_setup, what) = if rt == "builtin" {
        (
            Setup {
                bin: &bins.faulty,
                runtime: rt,
                runtime_path: None,
                env: vec![(runtime::fault::ENV, "drop-cpu-limit".into())],
                quiet_wait: &args.quiet_wait,
            },
            "fault drop-cpu-limit".to_string(),
        )
    } else {
        let real = runtime::find_in_path(rt).with_context(|| format!("{rt} is not installed"))?;
        let cfg = WrapperConfig {
            mutant: "cpu-quota-dropped".into(),
            runtime: real,
            edits: vec![Edit::Remove("/linux/resources/cpu/quota".into())],
            log: out.join("mutant-wrapper.log"),
        };
        (
            Setup {
                bin: &bins.healthy,
                runtime: rt,
                runtime_path: Some(&bins.wrapper),
                env: vec![(edit::ENV, serde_json::to_string(&cfg)?)],
                quiet_wait: &args.quiet_wait,
            },
            "oci-mutant: remove /linux/resources/cpu/quota".to_string(),
        )
    };
    let m = measure(&mutant_setup, mutant_runs, &out, "mutant")?;
    drop(load);
    let elapsed = t0.elapsed();

    let mut md = format!(
        "# CPU verdicts under a noisy neighbour\n\nRuntime {rt}; background load: one process keeping one CPU busy 25-75% of the time (a new duty cycle every second); --quiet-wait {}; an inconclusive CPU measurement is tried again at most twice (`retries`).\n",
        args.quiet_wait
    );
    md.push_str(&format!(
        "Load average before: {load_before}, after: {}; {:.0} min in all. `other load` is the CPUs the host's other processes (the background load among them) kept busy during the measurement.\n",
        loadavg(),
        elapsed.as_secs_f64() / 60.0
    ));
    md.push_str(&table("healthy runtime", args.runs, &h));
    md.push_str(&table(
        &format!("quota-dropping mutant ({what})"),
        mutant_runs,
        &m,
    ));
    let mut missed = Vec::new();
    for (id, t) in &h {
        if t.count("fail") > 0 || t.count("error") > 2 {
            missed.push(format!(
                "healthy {id}: {} fail, {} error (target 0 fail, at most 2 error)",
                t.count("fail"),
                t.count("error")
            ));
        }
        if !t.failures.is_empty() {
            md.push_str(&format!("\nhealthy {id}, not passed:\n\n"));
            for f in &t.failures {
                md.push_str(&format!("- {}\n", reports::markdown_cell(f)));
            }
        }
    }
    for (id, t) in &m {
        if t.count("fail") != mutant_runs {
            missed.push(format!(
                "mutant {id}: {} fail of {mutant_runs} (target all)",
                t.count("fail")
            ));
        }
    }
    let path = out.join("noise.md");
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    print!("{md}");
    anyhow::ensure!(missed.is_empty(), "targets missed: {}", missed.join("; "));
    Ok(())
}
