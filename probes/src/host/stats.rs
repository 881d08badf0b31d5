//! The usage and limits of one cgroup, read from cgroupfs.

use super::fsread::{read_parsed, CgroupFiles, FreshDirs, RecordingDirs};
use super::layout::{CgroupLayout, CgroupPath, CgroupVersion, Controllers, Hierarchy};
use super::parse::{self, CpuMax, IoLimit, IoStat, Limit, MemoryEvents, Pressure};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Usage and limits of one cgroup, from whichever hierarchy serves each
/// controller (v1 file names and v2 file names are both understood).
/// Every field is `None` when its file does not exist (controller not
/// mounted or not enabled, kernel too old, cgroup removed during the read).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CgroupStats {
    /// The cgroup these figures belong to.
    pub path: String,
    /// Total CPU time: v1 `cpuacct.usage`, v2 `cpu.stat` `usage_usec`.
    pub cpu_usage_ns: Option<u64>,
    /// `cpu.stat` `nr_periods`.
    pub cpu_nr_periods: Option<u64>,
    /// `cpu.stat` `nr_throttled`.
    pub cpu_nr_throttled: Option<u64>,
    /// v1 `cpu.stat` `throttled_time`, v2 `throttled_usec`.
    pub cpu_throttled_ns: Option<u64>,
    /// v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`, v2 `cpu.max`.
    pub cpu_max: Option<CpuMax>,
    /// v1 `memory.usage_in_bytes`, v2 `memory.current`.
    pub memory_usage_bytes: Option<u64>,
    /// v1 `memory.limit_in_bytes`, v2 `memory.max`.
    pub memory_limit: Option<Limit>,
    /// v1 `memory.max_usage_in_bytes`, v2 `memory.peak`.
    pub memory_peak_bytes: Option<u64>,
    /// v1 `memory.failcnt`: times usage hit the limit.
    pub memory_failcnt: Option<u64>,
    /// v2 `memory.events`.
    pub memory_events: Option<MemoryEvents>,
    /// OOM kills in this cgroup: v1 `memory.oom_control` `oom_kill`, v2
    /// `memory.events` `oom_kill`.
    pub oom_kills: Option<u64>,
    /// `pids.current`.
    pub pids_current: Option<u64>,
    /// `pids.max`.
    pub pids_max: Option<Limit>,
    /// v1 `cpuset.effective_cpus`, v2 `cpuset.cpus.effective`.
    pub cpuset_cpus_effective: Option<Vec<u32>>,
    /// The directories of this cgroup that do not exist in a hierarchy
    /// whose figures were to be read: the fields from there are `None`
    /// because the cgroup is not there, which is not an absent feature.
    pub missing_dirs: Vec<PathBuf>,
    /// CFS burst: v1 `cpu.cfs_burst_us`, v2 `cpu.max.burst` (µs).
    pub cpu_burst_us: Option<u64>,
    /// `memory.stat` inactive file pages (v1 `total_inactive_file`, the
    /// hierarchy's; v2 `inactive_file`): what the working set leaves out.
    pub memory_inactive_file_bytes: Option<u64>,
    /// Swap used: v2 `memory.swap.current`; v1 `memory.memsw.usage_in_bytes`
    /// less `memory.usage_in_bytes` (where swap accounting is on).
    pub memory_swap_bytes: Option<u64>,
    /// v2 `memory.high`: where the kernel starts throttling and reclaiming.
    pub memory_high: Option<Limit>,
    /// Pressure stall information of the cgroup (v2 `cpu.pressure`,
    /// `memory.pressure`, `io.pressure`; on a hybrid host from the v2
    /// hierarchy when the cgroup exists there).
    pub cpu_pressure: Option<Pressure>,
    /// Memory pressure (v2 `memory.pressure`).
    pub memory_pressure: Option<Pressure>,
    /// I/O pressure (v2 `io.pressure`).
    pub io_pressure: Option<Pressure>,
    /// I/O done: v2 `io.stat`, v1 blkio's throttle statistics.
    pub io: Option<IoStat>,
    /// I/O limits per device: v2 `io.max`, v1
    /// `blkio.throttle.{read,write}_{bps,iops}_device` (empty: none set).
    pub io_limits: Option<Vec<IoLimit>>,
}

impl CgroupStats {
    /// Times the usage hit the hard memory limit, where the kernel counts
    /// them: v2 `memory.events` `max`; else v1 `memory.failcnt`, unless the
    /// cgroup's own figures show it did not count them. A v1 cgroup whose
    /// `memory.memsw.limit_in_bytes` is set fails its charges on the memsw
    /// counter first, so `memory.failcnt` stays 0 (and kernel 6.18 keeps
    /// `memory.memsw.failcnt` at 0 too) while its tasks are OOM-killed at
    /// the limit: a failcnt of 0 next to an OOM kill, or next to a peak at
    /// the limit, counts nothing and is `None`.
    pub fn memory_limit_hits(&self) -> Option<u64> {
        if let Some(n) = self.memory_events.and_then(|e| e.max) {
            return Some(n);
        }
        let failcnt = self.memory_failcnt?;
        let reached = match (self.memory_limit, self.memory_peak_bytes) {
            (Some(Limit::Value(l)), Some(peak)) => peak >= l,
            _ => false,
        };
        if failcnt == 0 && (self.oom_kills.unwrap_or(0) > 0 || reached) {
            return None;
        }
        Some(failcnt)
    }

    /// The working set as cAdvisor and the kubelet compute it: usage less
    /// inactive file pages, at least 0.
    pub fn memory_working_set_bytes(&self) -> Option<u64> {
        let usage = self.memory_usage_bytes?;
        Some(usage.saturating_sub(self.memory_inactive_file_bytes.unwrap_or(0)))
    }
}

impl CgroupStats {
    /// Whether no file at all could be read.
    pub fn is_empty(&self) -> bool {
        let CgroupStats {
            path: _,
            cpu_usage_ns,
            cpu_nr_periods,
            cpu_nr_throttled,
            cpu_throttled_ns,
            cpu_max,
            memory_usage_bytes,
            memory_limit,
            memory_peak_bytes,
            memory_failcnt,
            memory_events,
            oom_kills,
            pids_current,
            pids_max,
            cpuset_cpus_effective,
            missing_dirs: _,
            cpu_burst_us,
            memory_inactive_file_bytes,
            memory_swap_bytes,
            memory_high,
            cpu_pressure,
            memory_pressure,
            io_pressure,
            io,
            io_limits,
        } = self;
        cpu_usage_ns.is_none()
            && cpu_nr_periods.is_none()
            && cpu_nr_throttled.is_none()
            && cpu_throttled_ns.is_none()
            && cpu_max.is_none()
            && memory_usage_bytes.is_none()
            && memory_limit.is_none()
            && memory_peak_bytes.is_none()
            && memory_failcnt.is_none()
            && memory_events.is_none()
            && oom_kills.is_none()
            && pids_current.is_none()
            && pids_max.is_none()
            && cpuset_cpus_effective.is_none()
            && cpu_burst_us.is_none()
            && memory_inactive_file_bytes.is_none()
            && memory_swap_bytes.is_none()
            && memory_high.is_none()
            && cpu_pressure.is_none()
            && memory_pressure.is_none()
            && io_pressure.is_none()
            && io.is_none()
            && io_limits.is_none()
    }
}

/// Where each figure of [`CgroupStats`] comes from in a layout: the
/// hierarchy serving each controller, as a position in
/// [`CgroupLayout::hierarchies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatPlan {
    /// The v1 cpuacct hierarchy.
    cpuacct: Option<usize>,
    /// The hierarchy of cpu.stat and the quota (v1 cpu, else v2).
    cpu: Option<usize>,
    /// The v2 hierarchy (usage when v1 cpu has no v1 cpuacct beside it).
    v2: Option<usize>,
    memory: Option<usize>,
    pids: Option<usize>,
    cpuset: Option<usize>,
    io: Option<usize>,
}

impl StatPlan {
    /// The plan for reading `which` in `layout`.
    pub(crate) fn new(layout: &CgroupLayout, which: Controllers) -> Self {
        let index = |h: Option<&Hierarchy>| {
            h.and_then(|h| layout.hierarchies().position(|x| std::ptr::eq(x, h)))
        };
        StatPlan {
            cpuacct: index(layout.v1_hierarchy("cpuacct").filter(|_| which.cpu)),
            cpu: index(
                layout
                    .hierarchy_for("cpu")
                    .or_else(|| layout.v2())
                    .filter(|_| which.cpu),
            ),
            v2: index(layout.v2().filter(|_| which.cpu)),
            memory: index(layout.hierarchy_for("memory").filter(|_| which.memory)),
            pids: index(layout.hierarchy_for("pids").filter(|_| which.pids)),
            cpuset: index(layout.hierarchy_for("cpuset").filter(|_| which.cpuset)),
            io: index(layout.hierarchy_for("blkio").filter(|_| which.io)),
        }
    }
}

impl CgroupLayout {
    /// Reads the [`CgroupStats`] of `cgroup`. A cgroup that exists in no
    /// hierarchy (or vanished before any file was read) gives
    /// [`Error::CgroupNotFound`]; one that vanishes half-way gives the
    /// fields read so far. Unreadable or malformed files are errors.
    ///
    /// Each hierarchy's directory is opened once and its files are read
    /// relative to it (`openat`). To read the same cgroups repeatedly,
    /// [`StatsCache`](super::StatsCache) is much cheaper.
    pub fn stats(&self, cgroup: &CgroupPath) -> Result<CgroupStats> {
        self.stats_of(cgroup, Controllers::ALL)
    }

    /// [`Self::stats`] reading only the selected controllers' files (the
    /// other fields stay `None`).
    pub fn stats_of(&self, cgroup: &CgroupPath, which: Controllers) -> Result<CgroupStats> {
        let plan = StatPlan::new(self, which);
        self.stats_with(&mut FreshDirs::default(), &plan, cgroup)
    }

    /// Every file [`Self::stats_of`] reads for `cgroup` (and can read now),
    /// in the order it reads them: what a reader of these figures cannot
    /// do without.
    pub fn stat_files(&self, cgroup: &CgroupPath, which: Controllers) -> Result<Vec<PathBuf>> {
        let plan = StatPlan::new(self, which);
        let mut dirs = RecordingDirs::default();
        self.stats_with(&mut dirs, &plan, cgroup)?;
        Ok(dirs.read)
    }

    /// The hierarchy at position `index` of [`Self::hierarchies`].
    pub(crate) fn nth(&self, index: usize) -> &Hierarchy {
        self.hierarchies()
            .nth(index)
            .expect("a plan's positions come from this layout")
    }

    /// Enters hierarchy `index` (if any) of `cgroup` in `dirs`.
    /// A directory that does not exist is noted in `s.missing_dirs`.
    fn enter<D: CgroupFiles>(
        &self,
        dirs: &mut D,
        index: Option<usize>,
        cgroup: &CgroupPath,
        s: &mut CgroupStats,
    ) -> Result<Option<CgroupVersion>> {
        let Some(i) = index else {
            return Ok(None);
        };
        let h = self.nth(i);
        if dirs.enter(i, h, cgroup)? {
            return Ok(Some(h.version));
        }
        let dir = h.dir(cgroup);
        if !s.missing_dirs.contains(&dir) {
            s.missing_dirs.push(dir);
        }
        Ok(None)
    }

    /// The stats by `plan` (made for this layout), with directories (and
    /// their files) provided by `dirs`.
    pub(crate) fn stats_with<D: CgroupFiles>(
        &self,
        dirs: &mut D,
        plan: &StatPlan,
        cgroup: &CgroupPath,
    ) -> Result<CgroupStats> {
        let mut s = CgroupStats {
            path: cgroup.as_str().to_string(),
            ..CgroupStats::default()
        };
        let mut found = false;
        found |= self.read_cpu(dirs, plan, cgroup, &mut s)?;
        found |= self.read_memory(dirs, plan, cgroup, &mut s)?;
        if self.enter(dirs, plan.pids, cgroup, &mut s)?.is_some() {
            found = true;
            s.pids_current = dirs.parsed("pids.current", parse::parse_u64)?;
            s.pids_max = dirs.parsed("pids.max", parse::parse_max)?;
        }
        if let Some(version) = self.enter(dirs, plan.cpuset, cgroup, &mut s)? {
            found = true;
            let file = match version {
                CgroupVersion::V1 => "cpuset.effective_cpus",
                CgroupVersion::V2 => "cpuset.cpus.effective",
            };
            s.cpuset_cpus_effective = dirs.parsed(file, parse::parse_cpu_list)?;
        }
        if let Some(version) = self.enter(dirs, plan.io, cgroup, &mut s)? {
            found = true;
            s.io = match version {
                CgroupVersion::V2 => dirs.parsed("io.stat", parse::parse_io_stat)?,
                CgroupVersion::V1 => {
                    let bytes = dirs.parsed(
                        "blkio.throttle.io_service_bytes_recursive",
                        parse::parse_blkio_v1,
                    )?;
                    let ops = dirs.parsed(
                        "blkio.throttle.io_serviced_recursive",
                        parse::parse_blkio_v1,
                    )?;
                    bytes.zip(ops).map(|((rb, wb), (r, w))| IoStat {
                        read_bytes: rb,
                        write_bytes: wb,
                        reads: r,
                        writes: w,
                    })
                }
            };
            s.io_limits = match version {
                CgroupVersion::V2 => dirs.parsed("io.max", parse::parse_io_max)?,
                CgroupVersion::V1 => {
                    let mut files = Vec::with_capacity(4);
                    for f in [
                        "blkio.throttle.read_bps_device",
                        "blkio.throttle.write_bps_device",
                        "blkio.throttle.read_iops_device",
                        "blkio.throttle.write_iops_device",
                    ] {
                        files.push(dirs.parsed(f, parse::parse_blkio_throttle_device)?);
                    }
                    match files.as_slice() {
                        [Some(rb), Some(wb), Some(ri), Some(wi)] => {
                            Some(parse::merge_blkio_throttle([rb, wb, ri, wi]))
                        }
                        _ => None,
                    }
                }
            };
        }
        // Pressure: in the v2 hierarchy, wherever the controllers are.
        if (plan.cpu.is_some() || plan.memory.is_some() || plan.io.is_some())
            && self.enter(dirs, plan.v2, cgroup, &mut s)?.is_some()
        {
            found = true;
            if plan.cpu.is_some() {
                s.cpu_pressure = dirs.parsed("cpu.pressure", parse::parse_pressure)?;
            }
            if plan.memory.is_some() {
                s.memory_pressure = dirs.parsed("memory.pressure", parse::parse_pressure)?;
            }
            if plan.io.is_some() {
                s.io_pressure = dirs.parsed("io.pressure", parse::parse_pressure)?;
            }
        }
        if (!found || s.is_empty()) && !self.exists(cgroup) {
            return Err(Error::CgroupNotFound(cgroup.to_string()));
        }
        Ok(s)
    }

    /// CPU figures; true when a directory was found.
    fn read_cpu<D: CgroupFiles>(
        &self,
        dirs: &mut D,
        plan: &StatPlan,
        cgroup: &CgroupPath,
        s: &mut CgroupStats,
    ) -> Result<bool> {
        let mut found = false;
        if self.enter(dirs, plan.cpuacct, cgroup, s)?.is_some() {
            found = true;
            s.cpu_usage_ns = dirs.parsed("cpuacct.usage", parse::parse_u64)?;
        }
        let Some(version) = self.enter(dirs, plan.cpu, cgroup, s)? else {
            return Ok(found);
        };
        if let Some(st) = dirs.parsed("cpu.stat", parse::parse_cpu_stat)? {
            s.cpu_usage_ns = s.cpu_usage_ns.or(st.usage_ns);
            s.cpu_nr_periods = st.nr_periods;
            s.cpu_nr_throttled = st.nr_throttled;
            s.cpu_throttled_ns = st.throttled_ns;
        }
        s.cpu_max = match version {
            CgroupVersion::V2 => dirs.parsed("cpu.max", parse::parse_cpu_max)?,
            CgroupVersion::V1 => read_cfs_quota(dirs)?,
        };
        s.cpu_burst_us = match version {
            CgroupVersion::V2 => dirs.parsed("cpu.max.burst", parse::parse_u64)?,
            CgroupVersion::V1 => dirs.parsed("cpu.cfs_burst_us", parse::parse_u64)?,
        };
        // A v1 cpu hierarchy without a v1 cpuacct: usage from v2's cpu.stat.
        if s.cpu_usage_ns.is_none()
            && version == CgroupVersion::V1
            && self.enter(dirs, plan.v2, cgroup, s)?.is_some()
        {
            s.cpu_usage_ns = dirs
                .parsed("cpu.stat", parse::parse_cpu_stat)?
                .and_then(|st| st.usage_ns);
        }
        Ok(true)
    }

    /// Memory figures; true when a directory was found.
    fn read_memory<D: CgroupFiles>(
        &self,
        dirs: &mut D,
        plan: &StatPlan,
        cgroup: &CgroupPath,
        s: &mut CgroupStats,
    ) -> Result<bool> {
        let Some(version) = self.enter(dirs, plan.memory, cgroup, s)? else {
            return Ok(false);
        };
        let d = dirs;
        match version {
            CgroupVersion::V1 => {
                s.memory_usage_bytes = d.parsed("memory.usage_in_bytes", parse::parse_u64)?;
                s.memory_limit = d.parsed("memory.limit_in_bytes", parse::parse_v1_memory_limit)?;
                s.memory_peak_bytes = d.parsed("memory.max_usage_in_bytes", parse::parse_u64)?;
                s.memory_failcnt = d.parsed("memory.failcnt", parse::parse_u64)?;
                s.oom_kills = d
                    .parsed("memory.oom_control", parse::parse_oom_control)?
                    .and_then(|o| o.oom_kill);
                s.memory_inactive_file_bytes = d
                    .parsed("memory.stat", |t| {
                        parse::parse_keyed_value(t, "total_inactive_file")
                    })?
                    .flatten();
                s.memory_swap_bytes = d
                    .parsed("memory.memsw.usage_in_bytes", parse::parse_u64)?
                    .zip(s.memory_usage_bytes)
                    .map(|(memsw, usage)| memsw.saturating_sub(usage));
            }
            CgroupVersion::V2 => {
                s.memory_usage_bytes = d.parsed("memory.current", parse::parse_u64)?;
                s.memory_limit = d.parsed("memory.max", parse::parse_max)?;
                s.memory_peak_bytes = d.parsed("memory.peak", parse::parse_u64)?;
                s.memory_events = d.parsed("memory.events", parse::parse_memory_events)?;
                s.oom_kills = s.memory_events.and_then(|e| e.oom_kill);
                s.memory_high = d.parsed("memory.high", parse::parse_max)?;
                s.memory_inactive_file_bytes = d
                    .parsed("memory.stat", |t| {
                        parse::parse_keyed_value(t, "inactive_file")
                    })?
                    .flatten();
                s.memory_swap_bytes = d.parsed("memory.swap.current", parse::parse_u64)?;
            }
        }
        Ok(true)
    }

    /// `memory.stat` of `cgroup` (v1 or v2 keys, as the kernel writes
    /// them); `None` without a memory controller or cgroup.
    pub fn memory_stat(&self, cgroup: &CgroupPath) -> Result<Option<BTreeMap<String, u64>>> {
        match self.controller_dir("memory", cgroup) {
            Some(dir) => read_parsed(&dir.join("memory.stat"), parse::parse_memory_stat),
            None => Ok(None),
        }
    }

    /// How many forks the kernel refused at a pids limit: `pids.events`
    /// `max` (v1 and v2); `None` without a pids controller or the file.
    pub fn pids_limit_hits(&self, cgroup: &CgroupPath) -> Result<Option<u64>> {
        match self.controller_dir("pids", cgroup) {
            Some(dir) => read_parsed(&dir.join("pids.events"), parse::parse_pids_events_max),
            None => Ok(None),
        }
    }
}

/// v1 quota and period from an open cpu directory. With no quota (`-1`)
/// the period file is not read and reported as the default 100000 µs: it
/// then means nothing.
fn read_cfs_quota<D: CgroupFiles>(d: &mut D) -> Result<Option<CpuMax>> {
    // The quota is parsed alone first, so the text of one file is all
    // that is held at a time.
    let Some(quota) = d.parsed("cpu.cfs_quota_us", |q| {
        parse::parse_cfs_quota(q, "100000").map(|m| m.quota_us)
    })?
    else {
        return Ok(None);
    };
    if quota.is_none() {
        // -1: no quota; the period then means nothing.
        return Ok(Some(CpuMax {
            quota_us: None,
            period_us: 100_000,
        }));
    }
    Ok(d.parsed("cpu.cfs_period_us", parse::parse_u64)?
        .map(|period_us| CpuMax {
            quota_us: quota,
            period_us,
        }))
}

#[cfg(test)]
mod limit_hits_tests {
    use super::*;

    /// The figures of an OOM-killed hog under a 32 MiB limit, as this host
    /// (kernel 6.18, v1) gave them: failcnt 80 without a memsw limit, 0
    /// with one; v2 counts `max` events.
    #[test]
    fn limit_hits_are_counted_where_the_kernel_counts_them() {
        let limit = 32 << 20;
        let v1 = CgroupStats {
            memory_limit: Some(Limit::Value(limit)),
            memory_peak_bytes: Some(limit),
            memory_failcnt: Some(80),
            oom_kills: Some(1),
            ..CgroupStats::default()
        };
        assert_eq!(v1.memory_limit_hits(), Some(80));
        let memsw = CgroupStats {
            memory_failcnt: Some(0),
            ..v1.clone()
        };
        assert_eq!(memsw.memory_limit_hits(), None, "0 next to an OOM kill");
        let at_limit = CgroupStats {
            oom_kills: Some(0),
            ..memsw.clone()
        };
        assert_eq!(
            at_limit.memory_limit_hits(),
            None,
            "0 next to a peak at the limit"
        );
        let below = CgroupStats {
            memory_peak_bytes: Some(limit / 2),
            ..at_limit.clone()
        };
        assert_eq!(below.memory_limit_hits(), Some(0));
        let unlimited = CgroupStats {
            memory_limit: Some(Limit::Unlimited),
            ..at_limit
        };
        assert_eq!(unlimited.memory_limit_hits(), Some(0));
        let v2 = CgroupStats {
            memory_events: Some(MemoryEvents {
                max: Some(35),
                oom_kill: Some(1),
                ..MemoryEvents::default()
            }),
            oom_kills: Some(1),
            ..CgroupStats::default()
        };
        assert_eq!(v2.memory_limit_hits(), Some(35));
    }
}
