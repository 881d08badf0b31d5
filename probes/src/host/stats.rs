//! The usage and limits of one cgroup, read from cgroupfs.

use super::fsread::{read_parsed, Dirs, FreshDirs, Reader};
use super::layout::{CgroupLayout, CgroupPath, CgroupVersion, Controllers};
use super::parse::{self, CpuMax, Limit, MemoryEvents};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

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
}

impl CgroupStats {
    /// Whether no file at all could be read.
    pub fn is_empty(&self) -> bool {
        *self
            == CgroupStats {
                path: self.path.clone(),
                ..CgroupStats::default()
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
        self.stats_with(&mut FreshDirs::default(), cgroup, which)
    }

    /// The stats, with directories (and their files) provided by `dirs`.
    pub(crate) fn stats_with<D: Dirs>(
        &self,
        dirs: &mut D,
        cgroup: &CgroupPath,
        which: Controllers,
    ) -> Result<CgroupStats> {
        let mut s = CgroupStats {
            path: cgroup.as_str().to_string(),
            ..CgroupStats::default()
        };
        let mut found = false;
        if which.cpu {
            found |= self.read_cpu(dirs, cgroup, &mut s)?;
        }
        if which.memory {
            found |= self.read_memory(dirs, cgroup, &mut s)?;
        }
        if let Some(dir) = self.controller_dir("pids", cgroup).filter(|_| which.pids) {
            if let Some(d) = dirs.open(&dir)? {
                found = true;
                s.pids_current = d.parsed("pids.current", parse::parse_u64)?;
                s.pids_max = d.parsed("pids.max", parse::parse_max)?;
            }
        }
        if let Some(h) = self.hierarchy_for("cpuset").filter(|_| which.cpuset) {
            if let Some(d) = dirs.open(&h.dir(cgroup))? {
                found = true;
                let file = match h.version {
                    CgroupVersion::V1 => "cpuset.effective_cpus",
                    CgroupVersion::V2 => "cpuset.cpus.effective",
                };
                s.cpuset_cpus_effective = d.parsed(file, parse::parse_cpu_list)?;
            }
        }
        if (!found || s.is_empty()) && !self.exists(cgroup) {
            return Err(Error::CgroupNotFound(cgroup.to_string()));
        }
        Ok(s)
    }

    /// CPU figures; true when a directory was found.
    fn read_cpu<D: Dirs>(
        &self,
        dirs: &mut D,
        cgroup: &CgroupPath,
        s: &mut CgroupStats,
    ) -> Result<bool> {
        let mut found = false;
        if let Some(h) = self.v1_hierarchy("cpuacct") {
            if let Some(d) = dirs.open(&h.dir(cgroup))? {
                found = true;
                s.cpu_usage_ns = d.parsed("cpuacct.usage", parse::parse_u64)?;
            }
        }
        let Some(h) = self.hierarchy_for("cpu").or_else(|| self.v2()) else {
            return Ok(found);
        };
        let Some(d) = dirs.open(&h.dir(cgroup))? else {
            return Ok(found);
        };
        if let Some(st) = d.parsed("cpu.stat", parse::parse_cpu_stat)? {
            s.cpu_usage_ns = s.cpu_usage_ns.or(st.usage_ns);
            s.cpu_nr_periods = st.nr_periods;
            s.cpu_nr_throttled = st.nr_throttled;
            s.cpu_throttled_ns = st.throttled_ns;
        }
        s.cpu_max = match h.version {
            CgroupVersion::V2 => d.parsed("cpu.max", parse::parse_cpu_max)?,
            CgroupVersion::V1 => read_cfs_quota(d)?,
        };
        // A v1 cpu hierarchy without a v1 cpuacct: usage from v2's cpu.stat.
        if s.cpu_usage_ns.is_none() && h.version == CgroupVersion::V1 {
            if let Some(v2) = self.v2() {
                if let Some(d2) = dirs.open(&v2.dir(cgroup))? {
                    s.cpu_usage_ns = d2
                        .parsed("cpu.stat", parse::parse_cpu_stat)?
                        .and_then(|st| st.usage_ns);
                }
            }
        }
        Ok(true)
    }

    /// Memory figures; true when a directory was found.
    fn read_memory<D: Dirs>(
        &self,
        dirs: &mut D,
        cgroup: &CgroupPath,
        s: &mut CgroupStats,
    ) -> Result<bool> {
        let Some(h) = self.hierarchy_for("memory") else {
            return Ok(false);
        };
        let Some(d) = dirs.open(&h.dir(cgroup))? else {
            return Ok(false);
        };
        match h.version {
            CgroupVersion::V1 => {
                s.memory_usage_bytes = d.parsed("memory.usage_in_bytes", parse::parse_u64)?;
                s.memory_limit = d.parsed("memory.limit_in_bytes", parse::parse_v1_memory_limit)?;
                s.memory_peak_bytes = d.parsed("memory.max_usage_in_bytes", parse::parse_u64)?;
                s.memory_failcnt = d.parsed("memory.failcnt", parse::parse_u64)?;
                s.oom_kills = d
                    .parsed("memory.oom_control", parse::parse_oom_control)?
                    .and_then(|o| o.oom_kill);
            }
            CgroupVersion::V2 => {
                s.memory_usage_bytes = d.parsed("memory.current", parse::parse_u64)?;
                s.memory_limit = d.parsed("memory.max", parse::parse_max)?;
                s.memory_peak_bytes = d.parsed("memory.peak", parse::parse_u64)?;
                s.memory_events = d.parsed("memory.events", parse::parse_memory_events)?;
                s.oom_kills = s.memory_events.and_then(|e| e.oom_kill);
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
fn read_cfs_quota<R: Reader + ?Sized>(d: &mut R) -> Result<Option<CpuMax>> {
    let Some(quota) = d.read("cpu.cfs_quota_us")?.map(str::to_string) else {
        return Ok(None);
    };
    let period = if quota.trim() == "-1" {
        "100000".to_string()
    } else {
        match d.read("cpu.cfs_period_us")? {
            Some(p) => p.to_string(),
            None => return Ok(None),
        }
    };
    parse::parse_cfs_quota(&quota, &period)
        .map(Some)
        .map_err(|source| Error::Parse {
            path: d.path().join("cpu.cfs_quota_us"),
            source,
        })
}
