//! The usage and limits of one cgroup, read from cgroupfs.

use super::fsread::{read_opt, read_parsed};
use super::layout::{CgroupLayout, CgroupPath, CgroupVersion};
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
    pub fn stats(&self, cgroup: &CgroupPath) -> Result<CgroupStats> {
        let mut s = CgroupStats {
            path: cgroup.as_str().to_string(),
            ..CgroupStats::default()
        };
        self.read_cpu(cgroup, &mut s)?;
        self.read_memory(cgroup, &mut s)?;
        if let Some(dir) = self.controller_dir("pids", cgroup) {
            s.pids_current = read_parsed(&dir.join("pids.current"), parse::parse_u64)?;
            s.pids_max = read_parsed(&dir.join("pids.max"), parse::parse_max)?;
        }
        if let Some(h) = self.hierarchy_for("cpuset") {
            let file = match h.version {
                CgroupVersion::V1 => "cpuset.effective_cpus",
                CgroupVersion::V2 => "cpuset.cpus.effective",
            };
            s.cpuset_cpus_effective =
                read_parsed(&h.dir(cgroup).join(file), parse::parse_cpu_list)?;
        }
        if s.is_empty() && !self.exists(cgroup) {
            return Err(Error::CgroupNotFound(cgroup.to_string()));
        }
        Ok(s)
    }

    fn read_cpu(&self, cgroup: &CgroupPath, s: &mut CgroupStats) -> Result<()> {
        if let Some(h) = self.hierarchy_for("cpuacct") {
            if h.version == CgroupVersion::V1 {
                s.cpu_usage_ns =
                    read_parsed(&h.dir(cgroup).join("cpuacct.usage"), parse::parse_u64)?;
            }
        }
        let Some(h) = self.hierarchy_for("cpu").or_else(|| self.v2()) else {
            return Ok(());
        };
        let dir = h.dir(cgroup);
        if let Some(st) = read_parsed(&dir.join("cpu.stat"), parse::parse_cpu_stat)? {
            s.cpu_usage_ns = s.cpu_usage_ns.or(st.usage_ns);
            s.cpu_nr_periods = st.nr_periods;
            s.cpu_nr_throttled = st.nr_throttled;
            s.cpu_throttled_ns = st.throttled_ns;
        }
        // A v1 cpu hierarchy answers cpu.stat; usage may still come from v2
        // when cpuacct is not mounted at all.
        if s.cpu_usage_ns.is_none() && h.version == CgroupVersion::V1 {
            if let Some(v2) = self.v2() {
                s.cpu_usage_ns =
                    read_parsed(&v2.dir(cgroup).join("cpu.stat"), parse::parse_cpu_stat)?
                        .and_then(|st| st.usage_ns);
            }
        }
        s.cpu_max = match h.version {
            CgroupVersion::V2 => read_parsed(&dir.join("cpu.max"), parse::parse_cpu_max)?,
            CgroupVersion::V1 => self.read_cfs_quota(&dir)?,
        };
        Ok(())
    }

    /// v1 quota and period. With no quota (`-1`) the period file is not
    /// read and reported as the default 100000 µs: it then means nothing.
    fn read_cfs_quota(&self, dir: &std::path::Path) -> Result<Option<CpuMax>> {
        let quota_file = dir.join("cpu.cfs_quota_us");
        let Some(quota) = read_opt(&quota_file)? else {
            return Ok(None);
        };
        let period = if quota.trim() == "-1" {
            "100000".to_string()
        } else {
            match read_opt(&dir.join("cpu.cfs_period_us"))? {
                Some(p) => p,
                None => return Ok(None),
            }
        };
        parse::parse_cfs_quota(&quota, &period)
            .map(Some)
            .map_err(|source| Error::Parse {
                path: quota_file,
                source,
            })
    }

    fn read_memory(&self, cgroup: &CgroupPath, s: &mut CgroupStats) -> Result<()> {
        let Some(h) = self.hierarchy_for("memory") else {
            return Ok(());
        };
        let dir = h.dir(cgroup);
        match h.version {
            CgroupVersion::V1 => {
                s.memory_usage_bytes =
                    read_parsed(&dir.join("memory.usage_in_bytes"), parse::parse_u64)?;
                s.memory_limit = read_parsed(
                    &dir.join("memory.limit_in_bytes"),
                    parse::parse_v1_memory_limit,
                )?;
                s.memory_peak_bytes =
                    read_parsed(&dir.join("memory.max_usage_in_bytes"), parse::parse_u64)?;
                s.memory_failcnt = read_parsed(&dir.join("memory.failcnt"), parse::parse_u64)?;
                s.oom_kills =
                    read_parsed(&dir.join("memory.oom_control"), parse::parse_oom_control)?
                        .and_then(|o| o.oom_kill);
            }
            CgroupVersion::V2 => {
                s.memory_usage_bytes = read_parsed(&dir.join("memory.current"), parse::parse_u64)?;
                s.memory_limit = read_parsed(&dir.join("memory.max"), parse::parse_max)?;
                s.memory_peak_bytes = read_parsed(&dir.join("memory.peak"), parse::parse_u64)?;
                s.memory_events =
                    read_parsed(&dir.join("memory.events"), parse::parse_memory_events)?;
                s.oom_kills = s.memory_events.and_then(|e| e.oom_kill);
            }
        }
        Ok(())
    }

    /// `memory.stat` of `cgroup` (v1 or v2 keys, as the kernel writes
    /// them); `None` without a memory controller or cgroup.
    pub fn memory_stat(&self, cgroup: &CgroupPath) -> Result<Option<BTreeMap<String, u64>>> {
        match self.controller_dir("memory", cgroup) {
            Some(dir) => read_parsed(&dir.join("memory.stat"), parse::parse_memory_stat),
            None => Ok(None),
        }
    }
}
