//! `boxwatch scenarios` and the hidden `boxwatch workload` subcommand: clap
//! arguments and the functions the thin binary calls.

use crate::catalog::{Entry, Scenario};
use crate::error::{Error, Result};
use crate::runner::{Runner, RunnerConfig, ScenarioRun};
use crate::schedule::{self, Job};
use crate::signals::{watch_signals, OnSignal};
use crate::workload::{self, Workload};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use reports::{Color, Format, Status};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Run the scenario catalog and report which guarantees hold on this host.
#[derive(Args, Debug, Clone)]
pub struct ScenariosArgs {
    /// Run only the scenarios whose id matches GLOB (repeatable; `cpu-*`).
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// What to print on stdout: human, json, markdown, junit or html.
    #[arg(long, default_value = "human", value_name = "FORMAT")]
    pub format: Format,
    /// Also write every format to DIR (report.json, report.md, junit.xml,
    /// report.html, report.txt).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// An earlier JSON report: a check that held there and not now is a
    /// regression, and fails the run.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Scenarios run side by side (those that measure CPU always run alone).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Load the scenario files of DIR instead of the built-in catalog.
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,
    /// The longest gap between host samples while a workload runs (100ms,
    /// 1s): sampling starts every 5 ms, so that a short workload is seen,
    /// and backs off to this.
    #[arg(long, default_value = "100ms", value_name = "DURATION", value_parser = parse_interval)]
    pub sample_interval: Duration,
    /// Parent cgroup for the scenario containers.
    #[arg(long, value_name = "PATH", default_value = runtime::cgroup::DEFAULT_PARENT)]
    pub cgroup_parent: String,
    /// How long a CPU-measuring scenario waits for the host's other
    /// processes to leave it the CPUs it needs (0s: do not wait).
    #[arg(long, default_value = "20s", value_name = "DURATION", value_parser = crate::catalog::parse_duration)]
    pub quiet_wait: Duration,
    /// List the selected scenarios (and refused files) without running them.
    #[arg(long)]
    pub list: bool,
    /// Let scenarios that may write the realtime clock run. Only ever inside
    /// a throwaway VM.
    #[arg(long)]
    pub allow_clock_write: bool,
    /// The runtime that starts the containers: builtin, runc, crun, runsc
    /// (gVisor, sandboxed: host-side namespace checks are not applicable),
    /// docker or podman (through the engine's CLI, with its defaults).
    #[arg(long, default_value = "builtin", value_name = "RUNTIME")]
    pub runtime: runtime::backend::BackendKind,
    /// The OCI runtime's or engine's binary (default: runc, crun, runsc,
    /// docker or podman from PATH).
    #[arg(long, value_name = "PATH")]
    pub runtime_path: Option<PathBuf>,
    /// Write what the judge observed in every scenario to
    /// DIR/RUNTIME/SCENARIO.json (the same as BOXWATCH_DUMP_OBSERVATIONS);
    /// `-` prints them on stdout as one JSON array instead of the report
    /// (how `cargo xtask vm --job` brings them back from a VM).
    #[arg(long, value_name = "DIR", hide = true)]
    pub dump_observations: Option<PathBuf>,
}

fn parse_interval(s: &str) -> std::result::Result<Duration, String> {
    let d = crate::catalog::parse_duration(s)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(10) {
        return Err(format!("{s:?} is out of range: expected 10ms to 10s"));
    }
    Ok(d)
}

/// Run one workload in this process (inside a scenario container).
#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// The workload to run, with its parameters.
    #[command(subcommand)]
    pub workload: WorkloadCommand,
}

/// The workloads, as `boxwatch workload <name>` spells them.
#[derive(Subcommand, Debug, Clone)]
pub enum WorkloadCommand {
    /// Spin THREADS threads for a while.
    Spin {
        /// Threads (1-64).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        threads: u32,
        /// How long it runs, in milliseconds.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        duration_ms: u64,
    },
    /// Spin and stream through a cache-sized buffer per thread.
    Noisy {
        /// Threads (1-64).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        threads: u32,
        /// How long it runs, in milliseconds.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        duration_ms: u64,
    },
    /// Short CPU bursts at a fixed interval.
    Burst {
        /// Threads (1-64).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        threads: u32,
        /// How long it runs, in milliseconds.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        duration_ms: u64,
        /// CPU time of one burst, in milliseconds.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        burst_ms: u64,
        /// Time from one burst's start to the next, in milliseconds.
        #[arg(long, value_parser = clap::value_parser!(u64).range(2..=60_000))]
        interval_ms: u64,
    },
    /// Allocate and touch BYTES in steps (only in a guarded container).
    Hog {
        /// How much to allocate in all, in bytes.
        #[arg(long)]
        bytes: u64,
        /// How much each step allocates, in bytes (at least 4096).
        #[arg(long)]
        step: u64,
    },
    /// Fork until the deadline (only in a guarded container).
    ForkBomb {
        /// How long it forks, in milliseconds.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=60_000))]
        duration_ms: u64,
    },
    /// Call settimeofday with the time just read; expect EPERM.
    Settimeofday {
        /// Make the call even with CAP_SYS_TIME effective, when it would
        /// really change the clock (only ever in a throwaway VM).
        #[arg(long)]
        allow_clock_write: bool,
        /// Step the clock forward by this many seconds and back (only in a
        /// VM boxwatch booted, with --allow-clock-write).
        #[arg(long, default_value_t = 0)]
        step_secs: u64,
    },
    /// Print the inside view; optionally mount a marker tmpfs first.
    ProbeInside {
        /// Mount a tmpfs named NAME on /tmp/NAME first (letters, digits,
        /// '-' or '_'), for the harness to check it stays invisible on the
        /// host.
        #[arg(long, value_name = "NAME")]
        mount_marker: Option<String>,
    },
    /// Make an orphan and check PID 1 reaps it.
    OrphanMaker {
        /// Also orphan a process that sleeps a minute.
        #[arg(long)]
        linger: bool,
    },
    /// Probe, harmlessly, the guarantees container escapes rely on.
    Escape {
        /// The group of probes to run.
        #[arg(long, value_enum)]
        probe: workload::escape::EscapeProbe,
        /// A block device of the host, MAJOR:MINOR (the harness reads it
        /// from the host's /proc/partitions).
        #[arg(long, value_name = "MAJOR:MINOR", value_parser = workload::escape::parse_dev)]
        block_dev: Option<(u64, u64)>,
        /// An engine socket present on the host (repeatable).
        #[arg(long, value_name = "PATH")]
        host_socket: Vec<std::path::PathBuf>,
        /// May mount a small tmpfs (only in a container's own mount namespace).
        #[arg(long)]
        private_mount: bool,
    },
}

impl WorkloadCommand {
    fn workload(&self) -> Workload {
        match self.clone() {
            WorkloadCommand::Spin {
                threads,
                duration_ms,
            } => Workload::Spin {
                threads,
                duration_ms,
            },
            WorkloadCommand::Noisy {
                threads,
                duration_ms,
            } => Workload::Noisy {
                threads,
                duration_ms,
            },
            WorkloadCommand::Burst {
                threads,
                duration_ms,
                burst_ms,
                interval_ms,
            } => Workload::Burst {
                threads,
                duration_ms,
                burst_ms,
                interval_ms,
            },
            WorkloadCommand::Hog { bytes, step } => Workload::Hog {
                bytes,
                step_bytes: step,
            },
            WorkloadCommand::ForkBomb { duration_ms } => Workload::ForkBomb { duration_ms },
            WorkloadCommand::Settimeofday {
                allow_clock_write,
                step_secs,
            } => Workload::Settimeofday {
                allow_clock_write,
                step_secs,
            },
            WorkloadCommand::ProbeInside { mount_marker } => Workload::ProbeInside {
                mount_marker: mount_marker.is_some(),
            },
            WorkloadCommand::OrphanMaker { linger } => Workload::OrphanMaker { linger },
            WorkloadCommand::Escape {
                probe,
                private_mount,
                ..
            } => Workload::Escape {
                probe,
                private_mount,
            },
        }
    }
}

/// `boxwatch workload ...`: runs the workload, its protocol on stdout.
pub fn run_workload(args: WorkloadArgs) -> Result<ExitCode> {
    if let WorkloadCommand::Escape {
        probe,
        block_dev,
        host_socket,
        private_mount,
    } = &args.workload
    {
        let opts = workload::escape::EscapeOptions {
            facts: workload::escape::HostFacts {
                block_dev: *block_dev,
                sockets: host_socket.clone(),
            },
            private_mount: *private_mount,
        };
        workload::escape::run(&workload::Emitter::stdout(), *probe, &opts)?;
        return Ok(ExitCode::SUCCESS);
    }
    let marker = match &args.workload {
        WorkloadCommand::ProbeInside { mount_marker } => mount_marker.clone(),
        _ => None,
    };
    if let Some(m) = &marker {
        if m.is_empty()
            || !m
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::Workload {
                workload: "probe-inside",
                message: format!("--mount-marker {m:?} must be letters, digits, '-' or '_'"),
            });
        }
    }
    workload::run(&args.workload.workload(), marker.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// The id an entry goes by (a refused file: its file name).
fn entry_id(e: &Entry) -> &str {
    match e {
        Ok(s) => &s.id,
        Err(le) => &le.id,
    }
}

/// The entries whose id matches one of `globs` (all when there is none).
pub fn select(entries: Vec<Entry>, globs: &[String]) -> Result<Vec<Entry>> {
    if globs.is_empty() {
        return Ok(entries);
    }
    let patterns = globs
        .iter()
        .map(|g| {
            glob::Pattern::new(g).map_err(|e| Error::BadGlob {
                pattern: g.clone(),
                reason: e.msg.to_string(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let selected: Vec<Entry> = entries
        .into_iter()
        .filter(|e| patterns.iter().any(|p| p.matches(entry_id(e))))
        .collect();
    if selected.is_empty() {
        return Err(Error::NothingSelected(globs.join(", ")));
    }
    Ok(selected)
}

/// Loads the catalog: `dir`, or the built-in one.
pub fn load_catalog(dir: Option<&std::path::Path>) -> Result<Vec<Entry>> {
    match dir {
        Some(d) => crate::catalog::load_dir(d),
        None => Ok(crate::builtin::load()),
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "FAIL",
        Status::Unsupported => "unsupported",
        Status::NotApplicable => "not-applicable",
        Status::Error => "ERROR",
    }
}

/// One line per finished scenario, for the progress output.
fn progress_line(run: &ScenarioRun) -> String {
    let mut line = format!(
        "{:<11} {:<28} {:>6.1}s",
        status_word(run.status()),
        run.id,
        run.duration.as_secs_f64()
    );
    if let Some(share) = run.measurements.get("cpu_share") {
        line.push_str(&format!("  cpu_share {share:.4}"));
    }
    if let Some(e) = &run.error {
        line.push_str(&format!("  ({e})"));
    }
    line
}

/// `boxwatch scenarios`: runs the selected scenarios, prints the report in
/// `--format`, writes every format to `--out`. Exit code 1 when a required
/// check failed or errored, or something regressed against `--baseline`.
pub fn run_scenarios(args: ScenariosArgs) -> Result<ExitCode> {
    let catalog = load_catalog(args.catalog.as_deref()).map_err(flag("--catalog"))?;
    let entries = select(catalog, &args.only)?;
    if args.list {
        return Ok(list(&entries));
    }
    if let Some(dir) = &args.out {
        reports::check_out_dir(dir).map_err(|source| Error::Out {
            dir: dir.clone(),
            source,
        })?;
    }
    let baseline = load_baseline(&args)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    watch_signals(
        interrupted.clone(),
        OnSignal {
            message:
                "boxwatch: interrupted: stopping the running scenarios (again to quit at once)",
            exit_on_second: Some(130),
        },
    )?;
    let runner = Runner::new(runner_config(&args, interrupted)?)?;
    let runs = run_entries(&runner, &entries, args.jobs as usize);

    let mut report = crate::report::build_report(runner.layout(), runner.runtime(), &runs);
    if let Some(b) = &baseline {
        report = report.with_baseline(b);
    }
    let recorded = runner.recorded();
    drop(runner);
    if let Some(dir) = &args.out {
        let written = reports::write_all(&report, dir).map_err(|source| Error::Out {
            dir: dir.clone(),
            source,
        })?;
        for p in written {
            eprintln!("boxwatch: wrote {}", p.display());
        }
    }
    print_report(&args, &report, &recorded)?;
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// An error of a value given to `flag`.
fn flag(flag: &'static str) -> impl Fn(Error) -> Error {
    move |e| Error::Flag {
        flag,
        source: Box::new(e),
    }
}

/// `--list`: the selected scenarios and the refused files; failure when a
/// file was refused.
fn list(entries: &[Entry]) -> ExitCode {
    for e in entries {
        match e {
            Ok(s) => println!(
                "{:<28} {}{}",
                s.id,
                s.title,
                if s.exclusive { "  [runs alone]" } else { "" }
            ),
            Err(le) => println!("{:<28} REFUSED {le}", le.id),
        }
    }
    if entries.iter().any(|e| e.is_err()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--baseline`'s report, which must be of the runtime judged now.
fn load_baseline(args: &ScenariosArgs) -> Result<Option<reports::Report>> {
    let baseline = args
        .baseline
        .as_deref()
        .map(reports::load_report)
        .transpose()
        .map_err(Error::Baseline)?;
    if let Some(b) = &baseline {
        let (of, now) = (b.runtime.name.as_str(), args.runtime.as_str());
        if of != now {
            return Err(Error::Report(format!(
                "the baseline {} is a report of {of}, not of {now}: a baseline belongs to the runtime it was made with",
                args.baseline.as_deref().unwrap_or_else(|| std::path::Path::new("")).display()
            )));
        }
    }
    Ok(baseline)
}

/// The runner's configuration from the flags.
fn runner_config(args: &ScenariosArgs, interrupted: Arc<AtomicBool>) -> Result<RunnerConfig> {
    let exe = std::env::current_exe()
        .map_err(Error::io("locating the boxwatch binary", "/proc/self/exe"))?;
    let mut cfg = RunnerConfig::new(exe);
    cfg.cgroup_parent = Some(
        runtime::cgroup::parse_parent(&args.cgroup_parent)
            .map_err(|e| flag("--cgroup-parent")(Error::from(e)))?,
    );
    cfg.sample_interval = args.sample_interval;
    cfg.allow_clock_write = args.allow_clock_write;
    cfg.interrupted = Some(interrupted);
    cfg.quiet_wait = args.quiet_wait;
    cfg.runtime = args.runtime;
    cfg.runtime_path = args.runtime_path.clone();
    if let Some(d) = &args.dump_observations {
        cfg.dump_observations = Some(d.clone());
    }
    Ok(cfg)
}

/// Runs the entries, `jobs` at a time (exclusive ones alone), with
/// progress; a refused file is an `error` scenario.
fn run_entries(runner: &Runner, entries: &[Entry], jobs: usize) -> Vec<ScenarioRun> {
    let schedule: Vec<Job> = entries
        .iter()
        .map(|e| match e {
            Ok(s) => Job {
                exclusive: s.exclusive,
                lock: s.lock.clone(),
            },
            Err(_) => Job {
                exclusive: false,
                lock: None,
            },
        })
        .collect();
    let progress = Progress::new(entries.len());
    let runs = schedule::run_all(&schedule, jobs, |i| {
        let run = match &entries[i] {
            Ok(s) => {
                progress.started(&s.id);
                runner.run(s)
            }
            Err(le) => ScenarioRun::from_load_error(le),
        };
        progress.finished(progress_line(&run));
        run
    });
    progress.done();
    runs
}

/// The report on stdout in `--format` (the observations as JSON with
/// `--dump-observations -`).
fn print_report(
    args: &ScenariosArgs,
    report: &reports::Report,
    recorded: &[crate::runner::RecordedObservations],
) -> Result<()> {
    let text = match args.format {
        _ if args.dump_observations.as_deref() == Some(std::path::Path::new("-")) => {
            serde_json::to_string_pretty(recorded)
                .map_err(|e| Error::Report(format!("the observations as JSON: {e}")))?
        }
        Format::Human => {
            let color = if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            {
                Color::Always
            } else {
                Color::Never
            };
            reports::human(report, color)
        }
        f => f.render(report),
    };
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(())
}

/// Progress while scenarios run: a bar on a terminal, else one plain line
/// per finished scenario on stderr (what CI logs want).
enum Progress {
    Bar(ProgressBar),
    Plain,
}

impl Progress {
    fn new(len: usize) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::Plain;
        }
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress::Bar(bar)
    }

    fn started(&self, id: &str) {
        if let Progress::Bar(b) = self {
            b.set_message(id.to_string());
        }
    }

    fn finished(&self, line: String) {
        match self {
            Progress::Bar(b) => {
                b.println(line);
                b.inc(1);
            }
            Progress::Plain => eprintln!("{line}"),
        }
    }

    fn done(&self) {
        if let Progress::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

/// Scenario ids of `entries` (refused files by file name), for listings.
pub fn ids(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| entry_id(e).to_string()).collect()
}

/// The valid scenarios of `entries`.
pub fn scenarios(entries: &[Entry]) -> Vec<&Scenario> {
    entries.iter().filter_map(|e| e.as_ref().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ScenariosArgs,
    }

    #[test]
    fn arguments_parse_with_their_defaults() {
        let a = Cli::parse_from(["x"]).args;
        assert_eq!(a.format, Format::Human);
        assert_eq!(a.jobs, 1);
        assert_eq!(a.sample_interval, Duration::from_millis(100));
        let a = Cli::parse_from([
            "x",
            "--only",
            "cpu-*",
            "--format",
            "junit",
            "--jobs",
            "3",
            "--sample-interval",
            "50ms",
        ])
        .args;
        assert_eq!(a.only, vec!["cpu-*"]);
        assert_eq!(a.format, Format::Junit);
        assert_eq!(a.jobs, 3);
        assert_eq!(a.sample_interval, Duration::from_millis(50));
        assert!(Cli::try_parse_from(["x", "--jobs", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "--format", "pdf"]).is_err());
        assert!(Cli::try_parse_from(["x", "--sample-interval", "1ms"]).is_err());
    }

    #[test]
    fn only_selects_by_glob_and_refuses_nothing() {
        let entries = crate::builtin::load();
        let n = entries.len();
        let cpu = select(crate::builtin::load(), &["cpu-quota-*".into()]).unwrap();
        assert_eq!(
            ids(&cpu),
            vec!["cpu-quota-150", "cpu-quota-20", "cpu-quota-50"]
        );
        let two = select(
            crate::builtin::load(),
            &["memory-hog".into(), "*-namespace".into()],
        )
        .unwrap();
        assert_eq!(two.len(), 7);
        assert_eq!(select(entries, &[]).unwrap().len(), n);
        assert!(matches!(
            select(crate::builtin::load(), &["nope*".into()]),
            Err(Error::NothingSelected(_))
        ));
        assert!(matches!(
            select(crate::builtin::load(), &["[".into()]),
            Err(Error::BadGlob { .. })
        ));
    }
}
