//! Workloads: what runs inside a scenario's container, as the hidden
//! `boxwatch workload <name>` subcommand of the boxwatch binary bound into
//! every container.
//!
//! Protocol with the harness: one JSON object per line on stdout. Lines
//! with an `event` of `start` mark the beginning of the measured part;
//! `progress` lines report how far the workload got (a hog killed by the
//! OOM killer never writes a result); the `result` line carries the
//! outcome. A line with `"ack": true` asks the harness to look at the
//! container now: the workload waits (bounded) for a line on stdin before
//! going on. The harness merges the fields of all lines, later ones winning.

mod bomb;
mod clock;
pub mod escape;
mod orphans;
mod probe;
mod spin;

use crate::error::{Error, Result};
use runtime::LimitKind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::io::{BufRead, Write};
use std::time::Duration;

/// The environment variable the runner sets in a guarded container, naming
/// the workload whose limits the runtime checked. Dangerous workloads (hog,
/// fork bomb) refuse to start without it, so that typing
/// `boxwatch workload hog` on a host does nothing harmful.
pub const GUARD_ENV: &str = "BOXWATCH_GUARDED";

/// The environment variable the runner sets for a hog: its container's
/// memory limit in bytes. Near it (7/8) the hog stops once and asks the
/// harness to look (`near-limit`), so that the host tries to start a
/// process while the container is at its limit.
pub const MEMORY_LIMIT_ENV: &str = "BOXWATCH_MEMORY_LIMIT";

/// The kinds of workload, by their catalog and command-line name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// `spin`: threads that burn CPU for a while.
    Spin,
    /// `burst`: short CPU bursts at a fixed interval.
    Burst,
    /// `noisy`: spin threads that also stream through a cache-sized buffer.
    Noisy,
    /// `hog`: allocates and touches memory in steps.
    Hog,
    /// `fork-bomb`: forks until its deadline.
    ForkBomb,
    /// `settimeofday`: tries to set the realtime clock.
    Settimeofday,
    /// `probe-inside`: prints the container's inside view.
    ProbeInside,
    /// `orphan-maker`: makes an orphan and sees whether PID 1 reaps it.
    OrphanMaker,
    /// `escape`: harmless probes of what container escapes rely on.
    Escape,
}

impl WorkloadKind {
    /// Every kind, in catalog order.
    pub const ALL: [WorkloadKind; 9] = [
        WorkloadKind::Spin,
        WorkloadKind::Burst,
        WorkloadKind::Noisy,
        WorkloadKind::Hog,
        WorkloadKind::ForkBomb,
        WorkloadKind::Settimeofday,
        WorkloadKind::ProbeInside,
        WorkloadKind::OrphanMaker,
        WorkloadKind::Escape,
    ];

    /// The kind's name in the catalog and on the command line
    /// (`fork-bomb`).
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Spin => "spin",
            WorkloadKind::Burst => "burst",
            WorkloadKind::Noisy => "noisy",
            WorkloadKind::Hog => "hog",
            WorkloadKind::ForkBomb => "fork-bomb",
            WorkloadKind::Settimeofday => "settimeofday",
            WorkloadKind::ProbeInside => "probe-inside",
            WorkloadKind::OrphanMaker => "orphan-maker",
            WorkloadKind::Escape => "escape",
        }
    }

    /// The kind of that [`name`](WorkloadKind::name), if there is one.
    pub fn from_name(name: &str) -> Option<WorkloadKind> {
        WorkloadKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The catalog parameters this workload takes (`name` aside).
    pub fn params(self) -> &'static [&'static str] {
        match self {
            WorkloadKind::Spin | WorkloadKind::Noisy => &["threads", "duration"],
            WorkloadKind::Burst => &["threads", "duration", "burst", "interval"],
            WorkloadKind::Hog => &["bytes", "step"],
            WorkloadKind::ForkBomb => &["duration"],
            WorkloadKind::Settimeofday => &["allow_clock_write", "clock_step"],
            WorkloadKind::ProbeInside => &["mount_marker"],
            WorkloadKind::OrphanMaker => &["linger"],
            WorkloadKind::Escape => &["probe", "private_mount"],
        }
    }

    /// The keys of the workload's result, usable as `workload.<key>` metrics.
    pub fn result_keys(self) -> &'static [&'static str] {
        match self {
            WorkloadKind::Spin | WorkloadKind::Noisy => {
                &["threads", "wall_secs", "cpu_secs", "cpu_share"]
            }
            WorkloadKind::Burst => &[
                "threads",
                "wall_secs",
                "cpu_secs",
                "cpu_share",
                "bursts",
                "slow_bursts",
                "slow_burst_ratio",
                "max_burst_ms",
            ],
            WorkloadKind::Hog => &["allocated_bytes", "completed"],
            WorkloadKind::ForkBomb => &["forks", "eagain", "max_procs_seen"],
            WorkloadKind::Settimeofday => &[
                "called",
                "succeeded",
                "eperm",
                "errno",
                "has_cap_sys_time",
                "stepped_secs",
                "restored",
            ],
            WorkloadKind::ProbeInside => &["mounted"],
            WorkloadKind::OrphanMaker => &["grandchild_reaped", "reap_ms", "zombies"],
            WorkloadKind::Escape => escape::RESULT_KEYS,
        }
    }

    /// Whether this workload measures CPU and so needs the machine to
    /// itself: the catalog makes its scenarios `exclusive`.
    pub fn measures_cpu(self) -> bool {
        matches!(
            self,
            WorkloadKind::Spin | WorkloadKind::Burst | WorkloadKind::Noisy
        )
    }

    /// Limits without which the runtime must refuse to start this workload.
    pub fn guard_needs(self) -> Vec<LimitKind> {
        match self {
            WorkloadKind::Spin | WorkloadKind::Burst | WorkloadKind::Noisy => vec![LimitKind::Cpu],
            WorkloadKind::Hog => vec![LimitKind::Memory],
            WorkloadKind::ForkBomb => vec![LimitKind::Pids, LimitKind::Cpu],
            _ => Vec::new(),
        }
    }
}

/// A workload with its parameters, as a scenario runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Workload {
    /// Burn CPU on `threads` threads for `duration_ms`.
    Spin {
        /// Spinning threads (1-64).
        threads: u32,
        /// How long they spin, in milliseconds.
        duration_ms: u64,
    },
    /// Every `interval_ms`, each thread does `burst_ms` of CPU work; a burst
    /// whose wall time is far beyond its CPU time counts as slow
    /// (throttled).
    Burst {
        /// Bursting threads (1-64).
        threads: u32,
        /// How long the workload runs, in milliseconds.
        duration_ms: u64,
        /// CPU time of one burst, in milliseconds.
        burst_ms: u64,
        /// Time from one burst's start to the next, in milliseconds.
        interval_ms: u64,
    },
    /// Spin while streaming through a cache-sized buffer per thread.
    Noisy {
        /// Spinning threads (1-64).
        threads: u32,
        /// How long they run, in milliseconds.
        duration_ms: u64,
    },
    /// Allocate and touch memory step by step (only in a guarded container).
    Hog {
        /// How much to allocate in all, in bytes.
        bytes: u64,
        /// How much each step allocates, in bytes (at least 4096).
        step_bytes: u64,
    },
    /// Fork until the deadline (only in a guarded container).
    ForkBomb {
        /// How long it forks, in milliseconds.
        duration_ms: u64,
    },
    /// Call settimeofday with the time just read; where it is refused it
    /// fails with EPERM.
    Settimeofday {
        /// Make the call even with CAP_SYS_TIME effective, when it would
        /// really change the clock (only ever in a throwaway VM).
        allow_clock_write: bool,
        /// Seconds to step CLOCK_REALTIME forward and back (0: write back
        /// the time just read). Only ever non-zero in a VM boxwatch booted.
        #[serde(default)]
        step_secs: u64,
    },
    /// Print the inside view for the harness.
    ProbeInside {
        /// Mount a marker tmpfs inside first, for the harness to check it
        /// stays invisible on the host.
        mount_marker: bool,
    },
    /// Orphan a grandchild and report whether PID 1 reaps it.
    OrphanMaker {
        /// Also orphan a process that sleeps a minute, which outlives the
        /// entry command unless the container's end kills it.
        linger: bool,
    },
    /// The escape probes of one group ([`escape`]).
    Escape {
        /// The group of probes to run.
        probe: escape::EscapeProbe,
        /// May mount a tmpfs in the container's own mount namespace.
        #[serde(default)]
        private_mount: bool,
    },
}

impl Workload {
    /// The workload's kind, without its parameters.
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Workload::Spin { .. } => WorkloadKind::Spin,
            Workload::Burst { .. } => WorkloadKind::Burst,
            Workload::Noisy { .. } => WorkloadKind::Noisy,
            Workload::Hog { .. } => WorkloadKind::Hog,
            Workload::ForkBomb { .. } => WorkloadKind::ForkBomb,
            Workload::Settimeofday { .. } => WorkloadKind::Settimeofday,
            Workload::ProbeInside { .. } => WorkloadKind::ProbeInside,
            Workload::OrphanMaker { .. } => WorkloadKind::OrphanMaker,
            Workload::Escape { .. } => WorkloadKind::Escape,
        }
    }

    /// How long the workload is meant to run (0 for the quick ones).
    pub fn duration(&self) -> Duration {
        Duration::from_millis(match self {
            Workload::Spin { duration_ms, .. }
            | Workload::Burst { duration_ms, .. }
            | Workload::Noisy { duration_ms, .. }
            | Workload::ForkBomb { duration_ms } => *duration_ms,
            _ => 0,
        })
    }

    /// The arguments after the boxwatch binary: `workload <name> ...`.
    /// `marker` names the tmpfs the probe mounts inside, if it mounts one.
    pub fn argv(&self, marker: &str) -> Vec<String> {
        let mut a: Vec<String> = vec!["workload".into(), self.kind().name().into()];
        let mut push = |k: &str, v: String| {
            a.push(format!("--{k}"));
            a.push(v);
        };
        match self {
            Workload::Spin {
                threads,
                duration_ms,
            }
            | Workload::Noisy {
                threads,
                duration_ms,
            } => {
                push("threads", threads.to_string());
                push("duration-ms", duration_ms.to_string());
            }
            Workload::Burst {
                threads,
                duration_ms,
                burst_ms,
                interval_ms,
            } => {
                push("threads", threads.to_string());
                push("duration-ms", duration_ms.to_string());
                push("burst-ms", burst_ms.to_string());
                push("interval-ms", interval_ms.to_string());
            }
            Workload::Hog { bytes, step_bytes } => {
                push("bytes", bytes.to_string());
                push("step", step_bytes.to_string());
            }
            Workload::ForkBomb { duration_ms } => push("duration-ms", duration_ms.to_string()),
            Workload::Settimeofday {
                allow_clock_write,
                step_secs,
            } => {
                if *step_secs > 0 {
                    push("step-secs", step_secs.to_string());
                }
                if *allow_clock_write {
                    a.push("--allow-clock-write".into());
                }
            }
            Workload::ProbeInside { mount_marker } => {
                if *mount_marker {
                    push("mount-marker", marker.to_string());
                }
            }
            Workload::OrphanMaker { linger } => {
                if *linger {
                    a.push("--linger".into());
                }
            }
            Workload::Escape {
                probe,
                private_mount,
            } => {
                push("probe", probe.name().to_string());
                if *private_mount {
                    a.push("--private-mount".into());
                }
                // The host's facts, read here on the host side.
                a.extend(escape::HostFacts::read().args());
            }
        }
        a
    }
}

/// Runs a workload in this process, writing its protocol lines to stdout.
pub fn run(w: &Workload, mount_marker: Option<&str>) -> Result<()> {
    let out = Emitter::stdout();
    match w {
        Workload::Spin {
            threads,
            duration_ms,
        } => spin::spin(&out, *threads, Duration::from_millis(*duration_ms), false),
        Workload::Noisy {
            threads,
            duration_ms,
        } => spin::spin(&out, *threads, Duration::from_millis(*duration_ms), true),
        Workload::Burst {
            threads,
            duration_ms,
            burst_ms,
            interval_ms,
        } => spin::burst(
            &out,
            *threads,
            Duration::from_millis(*duration_ms),
            Duration::from_millis(*burst_ms),
            Duration::from_millis(*interval_ms),
        ),
        Workload::Hog { bytes, step_bytes } => {
            require_guard(WorkloadKind::Hog)?;
            spin::hog(&out, *bytes, *step_bytes)
        }
        Workload::ForkBomb { duration_ms } => {
            require_guard(WorkloadKind::ForkBomb)?;
            bomb::fork_bomb(&out, Duration::from_millis(*duration_ms))
        }
        Workload::Settimeofday {
            allow_clock_write,
            step_secs,
        } => clock::settimeofday(&out, *allow_clock_write, *step_secs),
        Workload::ProbeInside { .. } => probe::probe_inside(&out, mount_marker),
        Workload::OrphanMaker { linger } => orphans::orphan_maker(&out, *linger),
        // Without host facts: the command line (`cli::run_workload`) is
        // how a container's escape workload gets them.
        Workload::Escape {
            probe,
            private_mount,
        } => escape::run(
            &out,
            *probe,
            &escape::EscapeOptions {
                facts: escape::HostFacts::default(),
                private_mount: *private_mount,
            },
        ),
    }
}

fn require_guard(kind: WorkloadKind) -> Result<()> {
    match std::env::var(GUARD_ENV) {
        Ok(v) if v == kind.name() => Ok(()),
        _ => Err(Error::Workload {
            workload: kind.name(),
            message: format!(
                "refusing to run outside a boxwatch container that limits it ({GUARD_ENV}={} is not set); run it through `boxwatch scenarios`",
                kind.name()
            ),
        }),
    }
}

/// Writes protocol lines, one flushed line each: to stdout in a
/// container, to a buffer in tests.
pub struct Emitter {
    out: std::sync::Mutex<Box<dyn Write + Send>>,
}

impl Emitter {
    /// An emitter to this process's stdout (in a container: the pipe the
    /// harness reads).
    pub fn stdout() -> Emitter {
        Emitter {
            out: std::sync::Mutex::new(Box::new(std::io::stdout())),
        }
    }

    /// An emitter into `buf` (for tests).
    pub fn to_buffer(buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>) -> Emitter {
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("buffer lock").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        Emitter {
            out: std::sync::Mutex::new(Box::new(Shared(buf))),
        }
    }

    /// Writes `{"event": event, ...fields}`.
    pub fn emit(&self, event: &str, fields: Value) {
        let mut obj = Map::new();
        obj.insert("event".into(), json!(event));
        if let Value::Object(m) = fields {
            obj.extend(m);
        }
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{}", Value::Object(obj));
            let _ = out.flush();
        }
    }

    /// Emits a line asking the harness to look now, then waits until the
    /// harness answers on stdin (or closes it, or `max` passes).
    pub fn emit_and_wait(&self, event: &str, fields: Value, max: Duration) {
        let mut fields = fields;
        if let Value::Object(m) = &mut fields {
            m.insert("ack".into(), json!(true));
        }
        self.emit(event, fields);
        wait_for_ack(max);
    }
}

/// Waits for a line on stdin, EOF, or `max`. Returns at once when stdin is
/// a terminal (a person running the workload by hand).
fn wait_for_ack(max: Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    if nix::unistd::isatty(0).unwrap_or(false) {
        return;
    }
    let ms = max.as_millis().min(i32::MAX as u128) as i32;
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    if matches!(poll(&mut fds, timeout), Ok(n) if n > 0) {
        let mut line = String::new();
        let _ = stdin.lock().read_line(&mut line);
    }
}

/// CPU time used by this process so far.
pub(crate) fn process_cpu_time() -> Duration {
    cpu_clock(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time used by the calling thread so far.
pub(crate) fn thread_cpu_time() -> Duration {
    cpu_clock(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
}

fn cpu_clock(id: nix::time::ClockId) -> Duration {
    nix::time::clock_gettime(id)
        .map(|ts| Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for k in WorkloadKind::ALL {
            assert_eq!(WorkloadKind::from_name(k.name()), Some(k));
        }
        assert_eq!(WorkloadKind::from_name("bitcoin"), None);
    }

    #[test]
    fn dangerous_workloads_need_limits() {
        assert!(WorkloadKind::Hog.guard_needs().contains(&LimitKind::Memory));
        assert!(WorkloadKind::ForkBomb
            .guard_needs()
            .contains(&LimitKind::Pids));
        assert!(WorkloadKind::Spin.guard_needs().contains(&LimitKind::Cpu));
        assert!(WorkloadKind::Burst.guard_needs().contains(&LimitKind::Cpu));
        assert!(WorkloadKind::Noisy.guard_needs().contains(&LimitKind::Cpu));
    }

    #[test]
    fn the_hog_and_the_bomb_refuse_to_run_unguarded() {
        // Never set in the test environment: nothing is allocated or forked.
        assert!(std::env::var(GUARD_ENV).is_err());
        let e = run(
            &Workload::Hog {
                bytes: 1 << 40,
                step_bytes: 1 << 20,
            },
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains(GUARD_ENV), "{e}");
        let e = run(&Workload::ForkBomb { duration_ms: 1000 }, None).unwrap_err();
        assert!(e.to_string().contains("refusing"), "{e}");
    }

    #[test]
    fn argv_names_the_workload_and_its_parameters() {
        let w = Workload::Burst {
            threads: 2,
            duration_ms: 3000,
            burst_ms: 20,
            interval_ms: 200,
        };
        assert_eq!(
            w.argv("m").join(" "),
            "workload burst --threads 2 --duration-ms 3000 --burst-ms 20 --interval-ms 200"
        );
        assert_eq!(
            Workload::ProbeInside { mount_marker: true }
                .argv("bw-1")
                .join(" "),
            "workload probe-inside --mount-marker bw-1"
        );
    }

    /// Runs a workload function into a buffer; returns its protocol lines.
    fn lines_of(f: impl FnOnce(&Emitter) -> Result<()>) -> Vec<serde_json::Value> {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        f(&Emitter::to_buffer(buf.clone())).unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn spin_reports_its_cpu_time() {
        let lines = lines_of(|o| spin::spin(o, 2, Duration::from_millis(200), false));
        assert_eq!(lines[0]["event"], "start");
        let r = lines.last().unwrap();
        assert_eq!(r["event"], "result");
        assert_eq!(r["threads"], 2);
        let wall = r["wall_secs"].as_f64().unwrap();
        let share = r["cpu_share"].as_f64().unwrap();
        assert!((0.2..1.0).contains(&wall), "{r}");
        // Two spinning threads get more than nothing and at most two CPUs.
        assert!(share > 0.05 && share <= 2.05, "{r}");
        for key in WorkloadKind::Spin.result_keys() {
            assert!(r.get(*key).is_some(), "{key} missing from {r}");
        }
    }

    #[test]
    fn burst_counts_its_bursts() {
        let lines = lines_of(|o| {
            spin::burst(
                o,
                1,
                Duration::from_millis(300),
                Duration::from_millis(5),
                Duration::from_millis(50),
            )
        });
        let r = lines.last().unwrap();
        let bursts = r["bursts"].as_u64().unwrap();
        assert!((3..=6).contains(&bursts), "{r}");
        assert!(r["slow_burst_ratio"].as_f64().unwrap() <= 1.0);
        for key in WorkloadKind::Burst.result_keys() {
            assert!(r.get(*key).is_some(), "{key} missing from {r}");
        }
    }

    #[test]
    fn settimeofday_never_calls_with_the_capability_unless_allowed() {
        let before = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).unwrap();
        let lines = lines_of(|o| clock::settimeofday(o, false, 0));
        let r = lines.last().unwrap();
        if r["has_cap_sys_time"] == true {
            // Root with CAP_SYS_TIME (the usual test host): no call at all.
            assert_eq!(r["called"], false, "{r}");
        } else {
            // Without the capability the call is made and refused.
            assert_eq!(r["called"], true, "{r}");
            assert_eq!(r["eperm"], true, "{r}");
        }
        let after = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).unwrap();
        assert!(after >= before, "the realtime clock went backwards");
    }
}
