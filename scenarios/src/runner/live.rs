//! One running container of a scenario: how it is spawned, what a sample
//! reads of it (its cgroup, its threads, where its processes are), what
//! its exit leaves, and the workload protocol's lines it sends.

use super::host::{at_limit, busy_ticks, clocks, host_can_fork};
use super::scene::Line;
use super::Runner;
use crate::catalog::Member;
use crate::error::{Error, Result};
use crate::observe::{AckView, Collected, HostSample, Mark};
use crate::workload::GUARD_ENV;
use probes::host::parse::PidStat;
use probes::host::CgroupPath;
use runtime::backend::{Kill, Running};
use runtime::{ContainerSpec, Guard, Stdio};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

impl Runner {
    fn spec_for(&self, name: &str, m: &Member, marker: &str) -> ContainerSpec {
        let c = &m.container;
        let exe = if c.host_rootfs {
            self.cfg.exe.to_string_lossy().into_owned()
        } else {
            runtime::CONTAINER_EXE.to_string()
        };
        let mut command = vec![exe];
        command.extend(m.workload.argv(marker));
        let mut spec = c.spec(name, command);
        let kind = m.workload.kind();
        let needs = kind.guard_needs();
        if !needs.is_empty() {
            spec.guard = Some(Guard {
                workload: format!("the {} workload", kind.name()),
                needs,
            });
            spec.env.push((GUARD_ENV.into(), kind.name().into()));
        }
        if let (crate::workload::WorkloadKind::Hog, Some(limit)) = (kind, c.limits.memory) {
            spec.env.push((
                crate::workload::MEMORY_LIMIT_ENV.into(),
                limit.bytes().to_string(),
            ));
        }
        spec
    }

    pub(super) fn spawn<'a>(
        &self,
        idx: usize,
        prefix: &'static str,
        name: &str,
        member: &'a Member,
        marker: &str,
        tx: Sender<Line>,
    ) -> Result<Live<'a>> {
        let mut spec = self.spec_for(name, member, marker);
        if member.container.lxcfs {
            spec.lxcfs = Some(self.lxcfs()?);
        }
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (in_r, in_w) = pipe()?;
        let container = self.rt.spawn(
            &spec,
            Stdio {
                stdin: Some(in_r),
                stdout: Some(out_w),
                stderr: Some(err_w),
            },
        )?;
        let t0 = Instant::now();
        let pid = container.host_pid();
        // The judge finds the cgroup itself, from /proc/<pid>/cgroup, and
        // never takes the runtime's word for it: an entry already gone, or
        // in the root cgroup, leaves nothing to judge (an error), and the
        // placement check holds the processes to the cgroup the runtime
        // reported.
        let cgroup = self.judge_cgroup(pid);
        let reported = CgroupPath::new(&container.cgroup_path().to_string_lossy()).ok();
        forward_lines(idx, out_r, tx);
        let stderr = keep_stderr_tail(err_r);
        let mut l = Live {
            prefix,
            name: name.to_string(),
            member,
            killer: container.killer(),
            container: Some(container),
            pid,
            expected_cgroup: reported.or_else(|| cgroup.clone()),
            cgroup,
            last_stats: None,
            stdin: Some(File::from(in_w)),
            t0,
            collected: Collected {
                host_pid: pid,
                ..Collected::default()
            },
            exited: false,
            eof: false,
            stderr: Some(stderr),
            latest: None,
        };
        l.collected.spawn_ns = self.container_ns(pid);
        // An engine removes the cgroup as soon as the entry ends: what the
        // kernel offers there is read now, while it exists.
        if let (true, Some(cg)) = (self.rt.cgroup_goes_with_entry(), &l.cgroup) {
            l.collected.facts = Some(crate::facts::CgroupFacts::gather(
                &self.layout,
                cg,
                std::path::Path::new("/proc/cgroups"),
            ));
        }
        l.collected.first = Some(self.mark(&mut l));
        self.watch_placement_and_limits(&mut l);
        Ok(l)
    }

    /// The cgroup of a live `pid`, from /proc/<pid>/cgroup. A process that
    /// has already exited shows the root cgroup there, so the answer is only
    /// taken from a process that is not a zombie, and never the root.
    fn judge_cgroup(&self, pid: i32) -> Option<CgroupPath> {
        let cg = ["cpu", "memory", "pids", "cpuacct"]
            .iter()
            .find_map(|c| self.host.pid_cgroup(&self.layout, pid, c).ok().flatten())?;
        if cg.as_str() == "/" {
            return None;
        }
        match process_state(pid) {
            Some(state) if state != 'Z' && state != 'X' => Some(cg),
            _ => None,
        }
    }

    fn container_ns(&self, pid: i32) -> BTreeMap<String, u64> {
        self.harness_ns
            .keys()
            .filter_map(|ns| Some((ns.clone(), self.host.ns_inode(pid, ns).ok()?)))
            .collect()
    }

    /// Reads the cgroup now, records a sample, returns it as a mark.
    fn mark(&self, l: &mut Live) -> Mark {
        let at = l.t0.elapsed();
        let (realtime, monotonic) = clocks();
        l.collected.host_clock_offsets.push(realtime - monotonic);
        let busy = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| busy_ticks(&t));
        let stats = l.cgroup.as_ref().map(|cg| self.layout.stats(cg));
        l.last_stats = None;
        l.collected.threads.sample(l.pid);
        let sched =
            l.collected
                .threads
                .totals()
                .map(|(run_ns, wait_ns)| crate::contention::SchedMark {
                    run_ns,
                    wait_ns,
                    throttled_ns: match &stats {
                        Some(Ok(s)) => s.cpu_throttled_ns,
                        _ => None,
                    },
                });
        let cpu = record_stats(l, at.as_millis() as u64, stats);
        self.keep_latest(l);
        Mark {
            at_secs: at.as_secs_f64(),
            cpu_usage_ns: cpu,
            host_busy_ticks: busy,
            sched,
        }
    }

    pub(super) fn sample(&self, l: &mut Live) {
        let m = self.mark(l);
        l.collected.last = Some(m);
        self.watch_placement_and_limits(l);
    }

    /// What a sample watches besides the figures, while the container
    /// runs: where its processes are, a pids.current of 0, and the host's
    /// fork while the container is at a limit.
    fn watch_placement_and_limits(&self, l: &mut Live) {
        match &l.expected_cgroup {
            Some(expected) => crate::placement::sample(
                &mut l.collected.placement,
                &self.layout,
                l.member.container.limits.cpuset.is_some(),
                l.pid,
                expected,
            ),
            None => {
                l.collected.placement.errors.insert(format!(
                    "the runtime reported no usable cgroup path for pid {}",
                    l.pid
                ));
            }
        }
        let Some((t_ms, stats)) = l.last_stats.take() else {
            return;
        };
        if stats.pids_current == Some(0) && l.collected.zero_pids_at_ms.is_none() && !l.has_exited()
        {
            l.collected.zero_pids_at_ms = Some(t_ms);
        }
        if l.collected.fork_at_limit.is_none() {
            if let Some(limit) = at_limit(&stats) {
                l.collected.fork_at_limit = Some((t_ms, limit, host_can_fork()));
            }
        }
    }

    /// For an engine: keeps the figures of the mark just taken, and the
    /// pids limit hits (with a pids limit), for when the cgroup is gone by
    /// the time the exit is read ([`Runner::on_exit`]).
    fn keep_latest(&self, l: &mut Live) {
        if !self.rt.cgroup_goes_with_entry() {
            return;
        }
        let Some((_, s)) = &l.last_stats else {
            return;
        };
        let hits = match (&l.cgroup, l.member.container.limits.pids) {
            (Some(cg), Some(_)) => self.layout.pids_limit_hits(cg).ok().flatten(),
            _ => None,
        };
        l.latest = Some((s.clone(), hits));
    }

    /// The entry has exited (not yet reaped): last figures before cleanup.
    pub(super) fn on_exit(&self, l: &mut Live) {
        l.exited = true;
        let m = self.mark(l);
        l.collected.last = Some(m);
        let at_exit = l.last_stats.as_ref().map(|(_, s)| s.clone());
        let gone = self.rt.cgroup_goes_with_entry();
        if let Some(cg) = &l.cgroup {
            // An engine's facts were gathered while its cgroup was there.
            if !(gone && l.collected.facts.is_some()) {
                l.collected.facts = Some(crate::facts::CgroupFacts::gather(
                    &self.layout,
                    cg,
                    std::path::Path::new("/proc/cgroups"),
                ));
            }
            match self.layout.stats(cg) {
                Ok(s) => l.collected.final_stats = Some(s),
                // An engine removes the cgroup as soon as its entry ends:
                // the figures the exit mark read just now are the final
                // ones, else the last ones read while it ran.
                Err(_) if at_exit.is_some() => l.collected.final_stats = at_exit,
                Err(_) if gone && l.latest.is_some() => {
                    l.collected.final_stats = l.latest.as_ref().map(|(s, _)| s.clone())
                }
                Err(e) => {
                    l.collected.stats_error = Some(format!(
                        "reading the container's cgroup after its exit: {e}"
                    ))
                }
            }
            let latest_hits = l.latest.as_ref().and_then(|(_, h)| *h);
            match self.layout.pids_limit_hits(cg) {
                Ok(None) | Err(_) if gone && latest_hits.is_some() => {
                    l.collected.pids_limit_hits = latest_hits
                }
                Ok(hits) => l.collected.pids_limit_hits = hits,
                Err(e) => l.collected.pids_limit_hits_error = Some(e.to_string()),
            }
            let mut pids: Vec<i32> = self
                .layout
                .existing_dirs(cg)
                .iter()
                .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
                .flat_map(|t| {
                    t.lines()
                        .filter_map(|p| p.trim().parse().ok())
                        .collect::<Vec<i32>>()
                })
                .collect();
            pids.sort_unstable();
            pids.dedup();
            pids.retain(|p| *p != l.pid);
            l.collected.survivors = Some(pids.len());
            l.collected.survivor_pids = pids
                .iter()
                .filter_map(|&p| Some((p, process_stat(p)?.start_time?)))
                .collect();
        }
    }

    pub(super) fn handle_line(&self, l: &mut Live, line: &str, marker: &str) {
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(line)
        else {
            tracing::debug!(container = %l.name, "non-protocol output: {line}");
            return;
        };
        match obj.get("event").and_then(|e| e.as_str()) {
            Some("start") => l.collected.start = Some(self.mark(l)),
            Some("result") => l.collected.end = Some(self.mark(l)),
            Some("near-limit") => {
                // The workload waits for the ack: look while it is there.
                let m = self.mark(l);
                l.collected.last = Some(m);
                self.watch_placement_and_limits(l);
            }
            _ => {}
        }
        if obj.get("ack").and_then(|a| a.as_bool()) == Some(true) {
            // The workload waits for the answer: it is surely running now.
            self.watch_placement_and_limits(l);
            l.collected.ack = Some(self.ack_view(l.pid, marker));
            if let Some(stdin) = l.stdin.as_mut() {
                let _ = stdin.write_all(b"\n");
            }
        }
        for (k, v) in obj {
            if k != "event" && k != "ack" {
                l.collected.fields.insert(k, v);
            }
        }
    }

    fn ack_view(&self, pid: i32, marker: &str) -> AckView {
        let (realtime, monotonic) = clocks();
        let (mounts, mounts_error) = match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(t) if !t.trim().is_empty() => (probes::inside::parse_mountinfo(&t), None),
            Ok(_) => (Vec::new(), Some("/proc/self/mountinfo: empty".to_string())),
            Err(e) => (Vec::new(), Some(format!("/proc/self/mountinfo: {e}"))),
        };
        AckView {
            mounts_error,
            host_realtime: realtime,
            host_monotonic: monotonic,
            host_sees_marker: mounts
                .iter()
                .any(|m| m.source == marker || m.mount_point.contains(marker)),
            host_mount_points: mounts.into_iter().map(|m| m.mount_point).collect(),
            container_ns: self.container_ns(pid),
        }
    }
}

/// Records a reading of the container's cgroup `t_ms` after its start as
/// a sample (and for [`Runner::watch_placement_and_limits`]), or why there
/// is none; returns the CPU usage read.
fn record_stats(
    l: &mut Live,
    t_ms: u64,
    stats: Option<probes::Result<probes::host::CgroupStats>>,
) -> Option<u64> {
    match stats {
        Some(Ok(s)) => {
            l.collected.samples.push(HostSample::from_stats(t_ms, &s));
            l.collected.stats_error = None;
            let cpu = s.cpu_usage_ns;
            l.last_stats = Some((t_ms, s));
            cpu
        }
        Some(Err(e)) => {
            l.collected.stats_error = Some(format!(
                "reading the container's cgroup: {}",
                runtime::error::chain(&e)
            ));
            None
        }
        None => {
            l.collected.stats_error = Some(format!(
                "the container's cgroup could not be found: /proc/{}/cgroup showed the root cgroup, or the process had exited, when it started",
                l.pid
            ));
            None
        }
    }
}

/// One running container of a scenario.
pub(super) struct Live<'a> {
    pub(super) prefix: &'static str,
    pub(super) name: String,
    pub(super) member: &'a Member,
    pub(super) container: Option<Box<dyn Running>>,
    pub(super) killer: Arc<dyn Kill>,
    pub(super) pid: i32,
    /// The cgroup the judge reads: the entry's, from /proc/<pid>/cgroup.
    pub(super) cgroup: Option<CgroupPath>,
    /// The cgroup the runtime reported: every process must be in it.
    pub(super) expected_cgroup: Option<CgroupPath>,
    /// The figures of the last mark (ms since start), for [`Runner::watch_placement_and_limits`].
    pub(super) last_stats: Option<(u64, probes::host::CgroupStats)>,
    pub(super) stdin: Option<File>,
    pub(super) t0: Instant,
    pub(super) collected: Collected,
    pub(super) exited: bool,
    pub(super) eof: bool,
    pub(super) stderr: Option<JoinHandle<String>>,
    /// The last cgroup figures read, and pids limit hits (with a pids
    /// limit), for an engine whose cgroup is gone when the exit is read.
    pub(super) latest: Option<(probes::host::CgroupStats, Option<u64>)>,
}

impl Live<'_> {
    /// Whether the entry has exited, without reaping it (the runtime does).
    pub(super) fn has_exited(&self) -> bool {
        match &self.container {
            Some(c) => c.has_exited(),
            None => true,
        }
    }
}

/// What the judge reads of /proc/<pid>/stat (probes' parser); None when
/// the process is gone.
pub(super) fn process_stat(pid: i32) -> Option<PidStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    probes::host::parse::parse_pid_stat(&text).ok()
}

/// The state letter of /proc/<pid>/stat (R, S, Z...); None when gone.
fn process_state(pid: i32) -> Option<char> {
    process_stat(pid).map(|s| s.state)
}

/// How many of `procs` (pid, start time) still run: the same PID with the
/// same start time, not a zombie (a zombie is dead, waiting for its parent).
pub(super) fn still_alive(procs: &[(i32, u64)]) -> usize {
    procs
        .iter()
        .filter(|&&(pid, start)| {
            matches!(process_stat(pid), Some(s) if s.start_time == Some(start) && s.state != 'Z' && s.state != 'X')
        })
        .count()
}

/// Sends container `idx`'s stdout to the runner line by line, then its
/// end (`None`), from a thread of its own.
fn forward_lines(idx: usize, stdout: OwnedFd, tx: Sender<Line>) {
    std::thread::spawn(move || {
        for line in BufReader::new(File::from(stdout)).lines() {
            match line {
                Ok(l) => {
                    if tx.send((idx, Some(l))).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send((idx, None));
    });
}

/// Reads a container's stderr to its end in a thread; the thread's answer
/// is the last 2000 bytes (at a character boundary).
fn keep_stderr_tail(stderr: OwnedFd) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = File::from(stderr).read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        let start = text.len().saturating_sub(2000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    })
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|source| Error::Sys {
        step: "creating a pipe for the container's stdio",
        source,
    })
}
