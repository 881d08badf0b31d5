//! Pure parsers for the kernel files the host view reads: cgroupfs (v1 and
//! v2 formats), `/proc/<pid>/cgroup` and `/proc/self/mountinfo`.
//!
//! Every function takes the file's text and returns a value or a
//! [`ParseError`]; none of them touches the filesystem or panics, whatever
//! the input (each has a proptest saying so).

use crate::error::ParseError;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// A limit that may be absent: the `max` of cgroup v2 files (`pids.max`,
/// `memory.max`), `-1` quotas and the huge "no limit" value of v1
/// `memory.limit_in_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Limit {
    /// No limit is set.
    Unlimited,
    /// The limit, in the file's unit (bytes, tasks...).
    Value(u64),
}

impl Limit {
    /// The limit as a number, `None` when unlimited.
    pub fn value(self) -> Option<u64> {
        match self {
            Limit::Unlimited => None,
            Limit::Value(v) => Some(v),
        }
    }
}

/// Values at or above this in v1 `memory.limit_in_bytes` (and
/// `memsw.limit_in_bytes`) mean "unlimited": the kernel reports
/// `PAGE_COUNTER_MAX * PAGE_SIZE` (9223372036854771712 with 4 KiB pages), which
/// no real limit gets near. 4 EiB.
pub const V1_MEMORY_UNLIMITED_AT: u64 = 1 << 62;

/// The highest CPU number [`parse_cpu_list`] accepts (the kernel's NR_CPUS
/// tops out at 8192); it keeps a hostile list from allocating gigabytes.
pub const MAX_CPU_ID: u32 = 65_535;

/// The CFS bandwidth limit of a cgroup: v2 `cpu.max`, or v1
/// `cpu.cfs_quota_us` + `cpu.cfs_period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMax {
    /// Microseconds of CPU time per period; `None` when unlimited.
    pub quota_us: Option<u64>,
    /// Length of the period in microseconds.
    pub period_us: u64,
}

impl CpuMax {
    /// The quota in cores (quota / period: 0.2 for 20000/100000); `None`
    /// when unlimited or when the period is zero.
    pub fn cores(&self) -> Option<f64> {
        let q = self.quota_us?;
        (self.period_us > 0).then(|| q as f64 / self.period_us as f64)
    }

    /// The v2 `cpu.max` text of this limit (`"max 100000"`, `"20000 100000"`).
    pub fn to_cpu_max_string(&self) -> String {
        match self.quota_us {
            Some(q) => format!("{q} {}", self.period_us),
            None => format!("max {}", self.period_us),
        }
    }
}

/// Fields of `cpu.stat`, from either version, in nanoseconds.
///
/// v2 keys: `usage_usec`, `user_usec`, `system_usec`, `nr_periods`,
/// `nr_throttled`, `throttled_usec` (the last three only with the cpu
/// controller enabled). v1 keys: `nr_periods`, `nr_throttled`,
/// `throttled_time` (ns). Unknown keys are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuStat {
    /// Total CPU time (v2 only; v1 keeps it in `cpuacct.usage`).
    pub usage_ns: Option<u64>,
    /// CPU time in user mode.
    pub user_ns: Option<u64>,
    /// CPU time in kernel mode.
    pub system_ns: Option<u64>,
    /// Enforcement periods that elapsed with runnable tasks.
    pub nr_periods: Option<u64>,
    /// Periods in which the cgroup was throttled.
    pub nr_throttled: Option<u64>,
    /// Total time the cgroup spent throttled.
    pub throttled_ns: Option<u64>,
}

/// v2 `memory.events`: how often each memory boundary was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryEvents {
    /// Times usage went below `memory.low` protection under reclaim.
    pub low: Option<u64>,
    /// Times usage went over `memory.high` and was throttled.
    pub high: Option<u64>,
    /// Times usage was about to exceed `memory.max`.
    pub max: Option<u64>,
    /// Times the cgroup's limit caused an out-of-memory situation.
    pub oom: Option<u64>,
    /// Processes killed by the OOM killer in this cgroup.
    pub oom_kill: Option<u64>,
    /// Times the whole cgroup was OOM-killed (`memory.oom.group`).
    pub oom_group_kill: Option<u64>,
}

/// A pressure stall information file (`/proc/pressure/<resource>`, v2
/// `<resource>.pressure`): the total stall time of its `some` and `full`
/// lines (kernels before 5.13 have no `full` line for cpu).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pressure {
    /// Time some tasks were stalled, in microseconds.
    pub some_us: Option<u64>,
    /// Time all non-idle tasks were stalled at once, in microseconds.
    pub full_us: Option<u64>,
}

/// I/O done by a cgroup, summed over its devices (v2 `io.stat`, v1
/// `blkio.throttle.io_service_bytes_recursive` and
/// `io_serviced_recursive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoStat {
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Read operations.
    pub reads: u64,
    /// Write operations.
    pub writes: u64,
}

/// The I/O limits of one block device (v2 `io.max`, v1
/// `blkio.throttle.{read,write}_{bps,iops}_device`): `None` where
/// unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct IoLimit {
    /// The device's major number.
    pub major: u32,
    /// The device's minor number.
    pub minor: u32,
    /// Bytes read per second.
    pub read_bps: Option<u64>,
    /// Bytes written per second.
    pub write_bps: Option<u64>,
    /// Read operations per second.
    pub read_iops: Option<u64>,
    /// Write operations per second.
    pub write_iops: Option<u64>,
}

impl IoLimit {
    /// `MAJ:MIN`, as the kernel's files name the device.
    pub fn device(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }

    fn is_unlimited(&self) -> bool {
        self.read_bps.is_none()
            && self.write_bps.is_none()
            && self.read_iops.is_none()
            && self.write_iops.is_none()
    }
}

/// v1 `memory.oom_control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OomControl {
    /// The OOM killer is disabled for this cgroup.
    pub oom_kill_disable: bool,
    /// The cgroup is under OOM now (its tasks are stopped).
    pub under_oom: bool,
    /// Processes killed by the OOM killer (kernel 4.13+).
    pub oom_kill: Option<u64>,
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    /// 0 for the cgroup v2 hierarchy.
    pub hierarchy_id: u32,
    /// Controllers of a v1 hierarchy (`cpu`, `cpuacct`, `name=systemd`);
    /// empty for v2.
    pub controllers: Vec<String>,
    /// The cgroup path, relative to the reader's cgroup namespace root.
    pub path: String,
    /// The kernel marked the cgroup ` (deleted)` (v2, removed cgroup).
    pub deleted: bool,
}

/// One line of `/proc/<pid>/mountinfo`, paths with their octal escapes
/// (`\040` for a space) decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The mount's unique id.
    pub mount_id: u64,
    /// The id of the parent mount.
    pub parent_id: u64,
    /// `major:minor` of the filesystem.
    pub device: String,
    /// The root of the mount inside its filesystem (for a cgroup mount: the
    /// cgroup that appears at the mount point).
    pub root: PathBuf,
    /// Where it is mounted, relative to the reader's root.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,...`).
    pub mount_options: String,
    /// Tagged fields such as `shared:5`.
    pub optional_fields: Vec<String>,
    /// The filesystem type (`cgroup`, `cgroup2`, `proc`).
    pub fs_type: String,
    /// The mount source (`cgroup`, a device, `none`).
    pub source: String,
    /// Per-superblock options: for a v1 cgroup mount, its controllers
    /// (`rw,cpu,cpuacct`).
    pub super_options: String,
}

/// A plain unsigned decimal, surrounding whitespace allowed (`"42\n"`).
pub fn parse_u64(text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    t.parse()
        .map_err(|_| ParseError::new("an unsigned integer", t))
}

/// `max` or an unsigned integer (v2 `pids.max`, `memory.max`, v1 `pids.max`).
pub fn parse_max(text: &str) -> Result<Limit, ParseError> {
    match text.trim() {
        "max" => Ok(Limit::Unlimited),
        t => t
            .parse()
            .map(Limit::Value)
            .map_err(|_| ParseError::new("\"max\" or an unsigned integer", t)),
    }
}

/// v1 `memory.limit_in_bytes`: a byte count, [`Limit::Unlimited`] from
/// [`V1_MEMORY_UNLIMITED_AT`] up.
pub fn parse_v1_memory_limit(text: &str) -> Result<Limit, ParseError> {
    let v = parse_u64(text)?;
    Ok(if v >= V1_MEMORY_UNLIMITED_AT {
        Limit::Unlimited
    } else {
        Limit::Value(v)
    })
}

/// v2 `cpu.max`: `"$MAX $PERIOD"` where `$MAX` is `max` or microseconds.
/// A lone `$MAX` (the short form writers may use) gets the default period
/// of 100000 µs.
pub fn parse_cpu_max(text: &str) -> Result<CpuMax, ParseError> {
    let mut f = text.split_whitespace();
    let bad = || ParseError::new("\"max|QUOTA PERIOD\"", text.trim());
    let quota = f.next().ok_or_else(bad)?;
    let period_us = match f.next() {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 100_000,
    };
    if f.next().is_some() {
        return Err(bad());
    }
    let quota_us = match quota {
        "max" => None,
        q => Some(q.parse().map_err(|_| bad())?),
    };
    Ok(CpuMax {
        quota_us,
        period_us,
    })
}

/// v1 `cpu.cfs_quota_us` (`-1` = unlimited) and `cpu.cfs_period_us`.
pub fn parse_cfs_quota(quota: &str, period: &str) -> Result<CpuMax, ParseError> {
    let q = quota.trim();
    let quota_us = match q {
        "-1" => None,
        _ => Some(
            q.parse()
                .map_err(|_| ParseError::new("-1 or unsigned microseconds", q))?,
        ),
    };
    Ok(CpuMax {
        quota_us,
        period_us: parse_u64(period)?,
    })
}

/// A flat keyed file: one `key value` pair per line, values unsigned
/// (`cpu.stat`, `memory.stat`, `memory.events`, `memory.oom_control`).
/// Blank lines are skipped; anything else malformed is an error.
pub fn parse_flat_keyed(text: &str) -> Result<Vec<(&str, u64)>, ParseError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(key) = f.next() else { continue };
        let value = f
            .next()
            .and_then(|v| v.parse().ok())
            .filter(|_| f.next().is_none())
            .ok_or_else(|| ParseError::new("\"key unsigned-value\"", line))?;
        out.push((key, value));
    }
    Ok(out)
}

/// `memory.stat` (v1 or v2) as a map from key to value.
pub fn parse_memory_stat(text: &str) -> Result<BTreeMap<String, u64>, ParseError> {
    Ok(parse_flat_keyed(text)?
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect())
}

/// `cpu.stat` of either version; see [`CpuStat`] for the keys.
pub fn parse_cpu_stat(text: &str) -> Result<CpuStat, ParseError> {
    let mut s = CpuStat::default();
    let us = |v: u64| Some(v.saturating_mul(1000));
    for (k, v) in parse_flat_keyed(text)? {
        match k {
            "usage_usec" => s.usage_ns = us(v),
            "user_usec" => s.user_ns = us(v),
            "system_usec" => s.system_ns = us(v),
            "nr_periods" => s.nr_periods = Some(v),
            "nr_throttled" => s.nr_throttled = Some(v),
            "throttled_usec" => s.throttled_ns = us(v),
            "throttled_time" => s.throttled_ns = Some(v),
            _ => {}
        }
    }
    Ok(s)
}

/// A pressure file: `some avg10=0.00 avg60=0.00 avg300=0.00 total=N`
/// and the same for `full`.
pub fn parse_pressure(text: &str) -> Result<Pressure, ParseError> {
    let mut p = Pressure::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || ParseError::new("\"some|full avg10=.. avg60=.. avg300=.. total=N\"", line);
        let mut f = line.split_whitespace();
        let slot = match f.next() {
            Some("some") => &mut p.some_us,
            Some("full") => &mut p.full_us,
            _ => return Err(bad()),
        };
        let total = f
            .find_map(|kv| kv.strip_prefix("total="))
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        *slot = Some(total);
    }
    Ok(p)
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N
/// dios=N` per device, summed (keys it does not know are skipped).
pub fn parse_io_stat(text: &str) -> Result<IoStat, ParseError> {
    let mut io = IoStat::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || ParseError::new("\"MAJ:MIN key=value ...\"", line);
        let mut f = line.split_whitespace();
        let dev = f.next().ok_or_else(bad)?;
        if !dev.contains(':') {
            return Err(bad());
        }
        for kv in f {
            let (k, v) = kv.split_once('=').ok_or_else(bad)?;
            let v: u64 = v.parse().map_err(|_| bad())?;
            let slot = match k {
                "rbytes" => &mut io.read_bytes,
                "wbytes" => &mut io.write_bytes,
                "rios" => &mut io.reads,
                "wios" => &mut io.writes,
                _ => continue,
            };
            *slot = slot.saturating_add(v);
        }
    }
    Ok(io)
}

/// `MAJ:MIN` of a block device.
fn parse_device(dev: &str) -> Option<(u32, u32)> {
    let (ma, mi) = dev.split_once(':')?;
    Some((ma.parse().ok()?, mi.parse().ok()?))
}

/// v2 `io.max`: `MAJ:MIN rbps=N|max wbps=N|max riops=N|max wiops=N|max`
/// per limited device (keys a newer kernel adds are ignored). Sorted by
/// device; a device left with no limit is left out.
pub fn parse_io_max(text: &str) -> Result<Vec<IoLimit>, ParseError> {
    let mut out: Vec<IoLimit> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || ParseError::new("\"MAJ:MIN rbps=N|max wbps=... riops=... wiops=...\"", line);
        let mut f = line.split_whitespace();
        let (major, minor) = f.next().and_then(parse_device).ok_or_else(bad)?;
        let mut l = IoLimit {
            major,
            minor,
            ..IoLimit::default()
        };
        for kv in f {
            let (k, v) = kv.split_once('=').ok_or_else(bad)?;
            let v = match v {
                "max" => None,
                n => Some(n.parse::<u64>().map_err(|_| bad())?),
            };
            match k {
                "rbps" => l.read_bps = v,
                "wbps" => l.write_bps = v,
                "riops" => l.read_iops = v,
                "wiops" => l.write_iops = v,
                _ => {}
            }
        }
        if !l.is_unlimited() {
            out.push(l);
        }
    }
    out.sort();
    Ok(out)
}

/// One line of a v1 `blkio.throttle.*_device` file: the device's
/// `(major, minor)` and its limit.
pub type DeviceLimit = ((u32, u32), u64);

/// A v1 `blkio.throttle.*_device` limit file: `MAJ:MIN N` per limited
/// device.
pub fn parse_blkio_throttle_device(text: &str) -> Result<Vec<DeviceLimit>, ParseError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let bad = || ParseError::new("\"MAJ:MIN N\"", line);
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                [dev, v] => Ok((
                    parse_device(dev).ok_or_else(bad)?,
                    v.parse().map_err(|_| bad())?,
                )),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// The four v1 throttle files (`read_bps`, `write_bps`, `read_iops`,
/// `write_iops`, each parsed by [`parse_blkio_throttle_device`]) as one
/// limit per device, sorted by device.
pub fn merge_blkio_throttle(files: [&[DeviceLimit]; 4]) -> Vec<IoLimit> {
    let mut by_dev: std::collections::BTreeMap<(u32, u32), IoLimit> = Default::default();
    for (i, file) in files.iter().enumerate() {
        for &((major, minor), v) in file.iter() {
            let l = by_dev.entry((major, minor)).or_insert(IoLimit {
                major,
                minor,
                ..IoLimit::default()
            });
            let slot = match i {
                0 => &mut l.read_bps,
                1 => &mut l.write_bps,
                2 => &mut l.read_iops,
                _ => &mut l.write_iops,
            };
            *slot = Some(v);
        }
    }
    by_dev.into_values().filter(|l| !l.is_unlimited()).collect()
}

/// A v1 blkio statistics file (`MAJ:MIN Read N`, `MAJ:MIN Write N`, ...
/// per device, then `Total N`): the reads and writes summed over devices.
pub fn parse_blkio_v1(text: &str) -> Result<(u64, u64), ParseError> {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || ParseError::new("\"MAJ:MIN Op N\" or \"Total N\"", line);
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["Total", v] => {
                v.parse::<u64>().map_err(|_| bad())?;
            }
            [dev, op, v] if dev.contains(':') => {
                let v: u64 = v.parse().map_err(|_| bad())?;
                match *op {
                    "Read" => read = read.saturating_add(v),
                    "Write" => write = write.saturating_add(v),
                    _ => {}
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok((read, write))
}

/// The value of `key` in a flat-keyed file such as `memory.stat`
/// (`None` when absent), without building the whole map.
pub fn parse_keyed_value(text: &str, key: &str) -> Result<Option<u64>, ParseError> {
    for line in text.lines() {
        let mut f = line.split_whitespace();
        if f.next() == Some(key) {
            return f
                .next()
                .and_then(|v| v.parse().ok())
                .filter(|_| f.next().is_none())
                .map(Some)
                .ok_or_else(|| ParseError::new("\"key unsigned-value\"", line));
        }
    }
    Ok(None)
}

/// v2 `memory.events` (or `memory.events.local`).
pub fn parse_memory_events(text: &str) -> Result<MemoryEvents, ParseError> {
    let mut e = MemoryEvents::default();
    for (k, v) in parse_flat_keyed(text)? {
        match k {
            "low" => e.low = Some(v),
            "high" => e.high = Some(v),
            "max" => e.max = Some(v),
            "oom" => e.oom = Some(v),
            "oom_kill" => e.oom_kill = Some(v),
            "oom_group_kill" => e.oom_group_kill = Some(v),
            _ => {}
        }
    }
    Ok(e)
}

/// The `max` count of `pids.events` (v1 and v2: forks refused at a pids
/// limit); 0 when the kernel lists no `max` line.
pub fn parse_pids_events_max(text: &str) -> Result<u64, ParseError> {
    Ok(parse_flat_keyed(text)?
        .into_iter()
        .find_map(|(k, v)| (k == "max").then_some(v))
        .unwrap_or(0))
}

/// v1 `memory.oom_control`.
pub fn parse_oom_control(text: &str) -> Result<OomControl, ParseError> {
    let mut o = OomControl::default();
    for (k, v) in parse_flat_keyed(text)? {
        match k {
            "oom_kill_disable" => o.oom_kill_disable = v != 0,
            "under_oom" => o.under_oom = v != 0,
            "oom_kill" => o.oom_kill = Some(v),
            _ => {}
        }
    }
    Ok(o)
}

/// A CPU list such as `0-1,3` (cpuset files): sorted, without duplicates.
/// The empty list (`""`, a cpuset with no CPUs) is valid.
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, ParseError> {
    let t = text.trim();
    let mut cpus = Vec::new();
    if t.is_empty() {
        return Ok(cpus);
    }
    let bad = || ParseError::new("a CPU list like \"0-1,3\"", t);
    for part in t.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>(), b.parse::<u32>()),
            None => (part.parse(), part.parse()),
        };
        let (lo, hi) = (lo.map_err(|_| bad())?, hi.map_err(|_| bad())?);
        if lo > hi || hi > MAX_CPU_ID {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The kernel's compact form of a CPU list: `[0, 1, 3]` -> `"0-1,3"`.
/// The input need not be sorted; duplicates are dropped.
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut v = cpus.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// `/proc/<pid>/cgroup`: one [`ProcCgroup`] per line.
pub fn parse_proc_cgroup(text: &str) -> Result<Vec<ProcCgroup>, ParseError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let bad = || ParseError::new("\"id:controllers:path\"", line);
        let mut f = line.splitn(3, ':');
        let id = f.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let ctrls = f.next().ok_or_else(bad)?;
        let raw_path = f.next().ok_or_else(bad)?;
        if !raw_path.starts_with('/') {
            return Err(bad());
        }
        let (path, deleted) = match raw_path.strip_suffix(" (deleted)") {
            Some(p) => (p, true),
            None => (raw_path, false),
        };
        out.push(ProcCgroup {
            hierarchy_id: id,
            controllers: ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            path: path.to_string(),
            deleted,
        });
    }
    Ok(out)
}

/// What the judge reads of `/proc/<pid>/stat`: the state letter (field 3),
/// the task flags (field 9), the CPU time in user and kernel mode (fields
/// 14 and 15, clock ticks) and the start time in clock ticks since boot
/// (field 22); the numbers are `None` when the line stops before them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidStat {
    /// `R`, `S`, `D`, `Z` (zombie), `X` (dead)...
    pub state: char,
    /// The kernel's `PF_*` task flags.
    pub flags: Option<u64>,
    /// CPU time in user mode, in clock ticks.
    pub utime: Option<u64>,
    /// CPU time in kernel mode, in clock ticks.
    pub stime: Option<u64>,
    /// Clock ticks since boot when the process started: with the PID, it
    /// names one process (a PID may be reused, never with its start time).
    pub start_time: Option<u64>,
}

/// `/proc/<pid>/stat`. The command (field 2) may hold spaces and
/// parentheses, so the fields are counted from its last `)`.
pub fn parse_pid_stat(text: &str) -> Result<PidStat, ParseError> {
    let bad = || ParseError::new("\"pid (comm) state ...\"", text);
    let rest = text.rsplit_once(')').ok_or_else(bad)?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields
        .first()
        .and_then(|s| s.chars().next())
        .ok_or_else(bad)?;
    let number = |i: usize| fields.get(i).and_then(|f| f.parse().ok());
    Ok(PidStat {
        state,
        flags: number(6),
        utime: number(11),
        stime: number(12),
        start_time: number(19),
    })
}

/// Decodes the kernel's octal escapes (`\040` space, `\011` tab, `\012`
/// newline, `\134` backslash). A backslash not followed by three octal
/// digits (or by a value above 255) is kept as is.
pub fn unescape_octal(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(oct) = bytes.get(i + 1..i + 4) {
                if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                    let v = oct.iter().fold(0u32, |a, b| a * 8 + u32::from(b - b'0'));
                    if let Ok(byte) = u8::try_from(v) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Escapes bytes the way the kernel does in mountinfo paths: space, tab,
/// newline and backslash become `\ooo`. Non-UTF-8 bytes are escaped too so
/// that the result is a `String`. The inverse of [`unescape_octal`].
pub fn escape_octal(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\\') || !b.is_ascii() {
            out.push_str(&format!("\\{b:03o}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

fn path_from(escaped: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape_octal(escaped)))
}

/// `/proc/<pid>/mountinfo`: one [`MountInfo`] per non-empty line.
pub fn parse_mountinfo(text: &str) -> Result<Vec<MountInfo>, ParseError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_mountinfo_line)
        .collect()
}

/// One line of `/proc/<pid>/mountinfo`.
pub(crate) fn parse_mountinfo_line(line: &str) -> Result<MountInfo, ParseError> {
    let bad = || ParseError::new("a mountinfo line", line);
    let f: Vec<&str> = line.split(' ').collect();
    // Six fixed fields, optional fields, "-", then fs type, source, options.
    let sep = f
        .iter()
        .skip(6)
        .position(|s| *s == "-")
        .map(|p| p + 6)
        .ok_or_else(bad)?;
    if f.len() < sep + 3 {
        return Err(bad());
    }
    Ok(MountInfo {
        mount_id: f[0].parse().map_err(|_| bad())?,
        parent_id: f[1].parse().map_err(|_| bad())?,
        device: f[2].to_string(),
        root: path_from(f[3]),
        mount_point: path_from(f[4]),
        mount_options: f[5].to_string(),
        optional_fields: f[6..sep].iter().map(|s| s.to_string()).collect(),
        fs_type: f[sep + 1].to_string(),
        source: String::from_utf8_lossy(&unescape_octal(f[sep + 2])).into_owned(),
        super_options: f[sep + 3..].join(" "),
    })
}

/// The controllers of a v1 cgroup mount, from its super options
/// (`rw,cpu,cpuacct` -> `cpu`, `cpuacct`). Generic mount flags are dropped;
/// a named hierarchy keeps its `name=...` entry.
pub fn v1_controllers(super_options: &str) -> Vec<String> {
    const NOT_CONTROLLERS: &[&str] = &[
        "rw",
        "ro",
        "noprefix",
        "clone_children",
        "xattr",
        "cpuset_v2_mode",
        "favordynmods",
        "nofavordynmods",
    ];
    super_options
        .split(',')
        .filter(|o| {
            !o.is_empty() && !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent=")
        })
        .map(str::to_string)
        .collect()
}

/// A `/proc/<pid>/ns/<name>` link target (`net:[4026531992]`) as
/// (`"net"`, inode).
pub fn parse_ns_link(target: &str) -> Result<(String, u64), ParseError> {
    let bad = || ParseError::new("\"type:[inode]\"", target);
    let (kind, rest) = target.split_once(":[").ok_or_else(bad)?;
    let inode = rest
        .strip_suffix(']')
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    if kind.is_empty() {
        return Err(bad());
    }
    Ok((kind.to_string(), inode))
}

#[cfg(test)]
mod tests {
    proptest! {
        #[test]
        fn pressure_totals_are_read_back(some in any::<u64>(), full in proptest::option::of(any::<u64>()), a in 0u32..10000) {
            let mut text = format!("some avg10={}.{:02} avg60=0.00 avg300=0.00 total={some}\n", a / 100, a % 100);
            if let Some(f) = full {
                text.push_str(&format!("full avg10=0.00 avg60=0.00 avg300=0.00 total={f}\n"));
            }
            let p = parse_pressure(&text).unwrap();
            prop_assert_eq!(p.some_us, Some(some));
            prop_assert_eq!(p.full_us, full);
        }

        #[test]
        fn io_stat_sums_every_device(devs in proptest::collection::vec((0u32..300, 0u32..64, 0u64..1 << 50, 0u64..1 << 50, 0u64..1 << 40, 0u64..1 << 40), 0..5)) {
            let text: String = devs.iter().map(|(ma, mi, rb, wb, r, w)| {
                format!("{ma}:{mi} rbytes={rb} wbytes={wb} rios={r} wios={w} dbytes=0 dios=0\n")
            }).collect();
            let io = parse_io_stat(&text).unwrap();
            prop_assert_eq!(io.read_bytes, devs.iter().map(|d| d.2).sum::<u64>());
            prop_assert_eq!(io.write_bytes, devs.iter().map(|d| d.3).sum::<u64>());
            prop_assert_eq!(io.reads, devs.iter().map(|d| d.4).sum::<u64>());
            prop_assert_eq!(io.writes, devs.iter().map(|d| d.5).sum::<u64>());
        }

        #[test]
        fn blkio_v1_sums_reads_and_writes(devs in proptest::collection::vec((0u32..300, 0u32..64, 0u64..1 << 50, 0u64..1 << 50), 0..5)) {
            let mut text = String::new();
            for (ma, mi, r, w) in &devs {
                text.push_str(&format!("{ma}:{mi} Read {r}\n{ma}:{mi} Write {w}\n{ma}:{mi} Sync {r}\n{ma}:{mi} Async 0\n{ma}:{mi} Discard 0\n{ma}:{mi} Total {}\n", r + w));
            }
            text.push_str(&format!("Total {}\n", devs.iter().map(|d| d.2 + d.3).sum::<u64>()));
            let (r, w) = parse_blkio_v1(&text).unwrap();
            prop_assert_eq!(r, devs.iter().map(|d| d.2).sum::<u64>());
            prop_assert_eq!(w, devs.iter().map(|d| d.3).sum::<u64>());
        }

        #[test]
        fn keyed_value_finds_its_key(pairs in proptest::collection::btree_map("[a-z_]{1,20}", any::<u64>(), 0..30), key in "[a-z_]{1,20}") {
            let text: String = pairs.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
            prop_assert_eq!(parse_keyed_value(&text, &key).unwrap(), pairs.get(&key).copied());
        }

        #[test]
        fn io_max_gives_each_limited_device(devs in proptest::collection::btree_map((0u32..300, 0u32..64), proptest::array::uniform4(proptest::option::of(0u64..1 << 50)), 0..6)) {
            let show = |v: &Option<u64>| v.map_or("max".to_string(), |n| n.to_string());
            let text: String = devs
                .iter()
                .map(|((ma, mi), [rb, wb, ri, wi])| {
                    format!("{ma}:{mi} rbps={} wbps={} riops={} wiops={}\n", show(rb), show(wb), show(ri), show(wi))
                })
                .collect();
            let got = parse_io_max(&text).unwrap();
            let want: Vec<IoLimit> = devs
                .iter()
                .map(|(&(major, minor), &[read_bps, write_bps, read_iops, write_iops])| IoLimit { major, minor, read_bps, write_bps, read_iops, write_iops })
                .filter(|l| !l.is_unlimited())
                .collect();
            prop_assert_eq!(&got, &want);
            // v1 gives the same limits in four files.
            let file = |f: fn(&IoLimit) -> Option<u64>| -> String {
                want.iter().filter_map(|l| f(l).map(|v| format!("{}:{} {v}\n", l.major, l.minor))).collect()
            };
            let parsed: Vec<Vec<DeviceLimit>> = [
                file(|l| l.read_bps),
                file(|l| l.write_bps),
                file(|l| l.read_iops),
                file(|l| l.write_iops),
            ]
            .iter()
            .map(|t| parse_blkio_throttle_device(t).unwrap())
            .collect();
            prop_assert_eq!(merge_blkio_throttle([&parsed[0], &parsed[1], &parsed[2], &parsed[3]]), want);
        }

        #[test]
        fn new_parsers_never_panic(text in "\\PC{0,200}") {
            let _ = parse_io_max(&text);
            let _ = parse_blkio_throttle_device(&text);
            let _ = parse_pressure(&text);
            let _ = parse_io_stat(&text);
            let _ = parse_blkio_v1(&text);
            let _ = parse_keyed_value(&text, "inactive_file");
        }
    }

    #[test]
    fn real_pressure_io_and_blkio_files() {
        let p = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=717\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=576\n").unwrap();
        assert_eq!((p.some_us, p.full_us), (Some(717), Some(576)));
        let io = parse_io_stat("254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n7:0 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n").unwrap();
        assert_eq!(
            (io.read_bytes, io.write_bytes, io.reads, io.writes),
            (4097, 8192, 2, 2)
        );
        assert_eq!(parse_blkio_v1("254:0 Read 4096\n254:0 Write 512\n254:0 Sync 0\n254:0 Async 4608\n254:0 Discard 0\n254:0 Total 4608\nTotal 4608\n").unwrap(), (4096, 512));
        assert_eq!(parse_blkio_v1("Total 0\n").unwrap(), (0, 0));
        assert!(parse_pressure("none total=1\n").is_err());
        assert!(parse_io_stat("rbytes=1\n").is_err());
        // io.max of kernel 6.12 with one device limited, and v1's.
        assert_eq!(
            parse_io_max("254:0 rbps=1048576 wbps=max riops=max wiops=120\n").unwrap(),
            vec![IoLimit {
                major: 254,
                minor: 0,
                read_bps: Some(1048576),
                write_bps: None,
                read_iops: None,
                write_iops: Some(120)
            }]
        );
        assert_eq!(parse_io_max("").unwrap(), vec![]);
        assert!(parse_io_max("254:0 rbps=fast\n").is_err());
        assert!(parse_io_max("sda rbps=1\n").is_err());
        assert_eq!(
            parse_blkio_throttle_device("254:0 2097152\n").unwrap(),
            vec![((254, 0), 2097152)]
        );
        assert!(parse_blkio_throttle_device("254:0\n").is_err());
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn max_values() {
        assert_eq!(parse_max("max\n"), Ok(Limit::Unlimited));
        assert_eq!(parse_max("4096\n"), Ok(Limit::Value(4096)));
        assert!(parse_max("-1").is_err());
        assert!(parse_max("").is_err());
        assert_eq!(
            parse_v1_memory_limit("9223372036854771712\n"),
            Ok(Limit::Unlimited)
        );
        assert_eq!(
            parse_v1_memory_limit("67108864\n"),
            Ok(Limit::Value(67_108_864))
        );
    }

    #[test]
    fn cpu_max_known_values() {
        let m = parse_cpu_max("max 100000\n").unwrap();
        assert_eq!((m.quota_us, m.period_us, m.cores()), (None, 100_000, None));
        let m = parse_cpu_max("20000 100000\n").unwrap();
        assert_eq!(m.quota_us, Some(20_000));
        assert_eq!(m.cores(), Some(0.2));
        assert_eq!(parse_cpu_max("max").unwrap().period_us, 100_000);
        for bad in ["", "max max", "1 2 3", "-1 100000", "20000 x"] {
            assert!(parse_cpu_max(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cfs_quota_known_values() {
        let m = parse_cfs_quota("-1\n", "100000\n").unwrap();
        assert_eq!((m.quota_us, m.period_us), (None, 100_000));
        let m = parse_cfs_quota("150000\n", "100000\n").unwrap();
        assert_eq!(m.cores(), Some(1.5));
        assert!(parse_cfs_quota("-2", "100000").is_err());
        assert!(parse_cfs_quota("1000", "").is_err());
    }

    #[test]
    fn cpu_stat_v1_and_v2() {
        let v1 = "nr_periods 50\nnr_throttled 40\nthrottled_time 3000000000\nnr_bursts 0\nburst_time 0\n";
        let s = parse_cpu_stat(v1).unwrap();
        assert_eq!(s.usage_ns, None);
        assert_eq!(s.nr_periods, Some(50));
        assert_eq!(s.nr_throttled, Some(40));
        assert_eq!(s.throttled_ns, Some(3_000_000_000));
        let v2 = "usage_usec 387121651\nuser_usec 274357938\nsystem_usec 112763712\n\
                  nice_usec 0\nnr_periods 7\nnr_throttled 3\nthrottled_usec 1500\n\
                  nr_bursts 0\nburst_usec 0\n";
        let s = parse_cpu_stat(v2).unwrap();
        assert_eq!(s.usage_ns, Some(387_121_651_000));
        assert_eq!(s.user_ns, Some(274_357_938_000));
        assert_eq!(s.system_ns, Some(112_763_712_000));
        assert_eq!(s.throttled_ns, Some(1_500_000));
        assert!(parse_cpu_stat("usage_usec x\n").is_err());
        assert!(parse_cpu_stat("usage_usec 1 2\n").is_err());
    }

    #[test]
    fn memory_files() {
        let ev =
            parse_memory_events("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n")
                .unwrap();
        assert_eq!(ev.max, Some(12));
        assert_eq!(ev.oom_kill, Some(1));
        assert_eq!(ev.oom_group_kill, Some(0));
        let old = parse_memory_events("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n").unwrap();
        assert_eq!(old.oom_group_kill, None);
        let oc = parse_oom_control("oom_kill_disable 0\nunder_oom 1\noom_kill 3\n").unwrap();
        assert_eq!(
            oc,
            OomControl {
                oom_kill_disable: false,
                under_oom: true,
                oom_kill: Some(3)
            }
        );
        assert_eq!(
            parse_oom_control("oom_kill_disable 1\nunder_oom 0\n")
                .unwrap()
                .oom_kill,
            None
        );
        let st = parse_memory_stat("cache 4096\nrss 8192\ntotal_rss 8192\n").unwrap();
        assert_eq!(st.get("rss"), Some(&8192));
        assert_eq!(st.len(), 3);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1,3\n").unwrap(), vec![0, 1, 3]);
        assert_eq!(parse_cpu_list("\n").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("5,0-2,1").unwrap(), vec![0, 1, 2, 5]);
        for bad in ["1-0", "a", "0-", ",", "0,,1", "0-70000", "-1"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_cpu_list(&[3, 0, 1, 7, 8, 9]), "0-1,3,7-9");
        assert_eq!(format_cpu_list(&[]), "");
    }

    #[test]
    fn proc_cgroup_lines() {
        let text =
            "9:name=systemd:/\n4:memory:/process_api/fd96\n2:cpu,cpuacct:/a:b\n0::/x (deleted)\n";
        let v = parse_proc_cgroup(text).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].controllers, vec!["name=systemd"]);
        assert_eq!(v[1].path, "/process_api/fd96");
        assert_eq!(v[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(v[2].path, "/a:b");
        assert_eq!(
            (v[3].hierarchy_id, v[3].path.as_str(), v[3].deleted),
            (0, "/x", true)
        );
        assert!(v[3].controllers.is_empty());
        assert!(parse_proc_cgroup("x::/\n").is_err());
        assert!(parse_proc_cgroup("0::relative\n").is_err());
    }

    #[test]
    fn mountinfo_lines() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 master:2 - cgroup2 cgroup2 rw,nsdelegate\n\
                    50 23 8:1 /with\\040space /mnt/a\\134b rw - ext4 /dev/sda1 rw\n";
        let m = parse_mountinfo(text).unwrap();
        assert_eq!(m[0].fs_type, "cgroup");
        assert_eq!(m[0].mount_point, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(v1_controllers(&m[0].super_options), vec!["cpu"]);
        assert_eq!(m[1].optional_fields, vec!["shared:9", "master:2"]);
        assert_eq!(m[1].fs_type, "cgroup2");
        assert_eq!(m[2].root, PathBuf::from("/with space"));
        assert_eq!(m[2].mount_point, PathBuf::from("/mnt/a\\b"));
        assert!(parse_mountinfo("1 2 3\n").is_err());
        assert_eq!(
            v1_controllers("rw,noprefix,release_agent=/x,cpu,cpuacct"),
            vec!["cpu", "cpuacct"]
        );
    }

    #[test]
    fn proc_stat_lines() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 1 0 987654 1000 100\n";
        assert_eq!(
            parse_pid_stat(line).unwrap(),
            PidStat {
                state: 'S',
                flags: Some(4194560),
                utime: Some(17),
                stime: Some(5),
                start_time: Some(987654)
            }
        );
        assert_eq!(parse_pid_stat("4242 (x) S 1 2 3").unwrap().start_time, None);
        assert!(parse_pid_stat("garbage").is_err());
        // This thread is running while it reads its own line.
        let me = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        assert_eq!(parse_pid_stat(&me).unwrap().state, 'R');
    }

    #[test]
    fn ns_links() {
        assert_eq!(
            parse_ns_link("net:[4026531992]"),
            Ok(("net".to_string(), 4_026_531_992))
        );
        for bad in ["net", ":[1]", "net:[x]", "net:[1"] {
            assert!(parse_ns_link(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_u64(&s);
            let _ = parse_max(&s);
            let _ = parse_v1_memory_limit(&s);
            let _ = parse_cpu_max(&s);
            let _ = parse_cfs_quota(&s, &s);
            let _ = parse_cpu_stat(&s);
            let _ = parse_memory_stat(&s);
            let _ = parse_memory_events(&s);
            let _ = parse_oom_control(&s);
            let _ = parse_pids_events_max(&s);
            let _ = parse_cpu_list(&s);
            let _ = parse_proc_cgroup(&s);
            let _ = parse_pid_stat(&s);
            let _ = parse_mountinfo(&s);
            let _ = parse_ns_link(&s);
            let _ = v1_controllers(&s);
            let _ = unescape_octal(&s);
        }

        #[test]
        fn kernel_shaped_text_never_panics(s in "[0-9a-z_:/ ,\\-\\n\\\\]{0,200}") {
            let _ = parse_cpu_stat(&s);
            let _ = parse_cpu_list(&s);
            let _ = parse_proc_cgroup(&s);
            let _ = parse_mountinfo(&s);
        }

        #[test]
        fn pids_events_max_is_found_with_or_without_the_newer_keys(
            max in any::<u64>(),
            local in proptest::option::of(any::<u64>()),
        ) {
            let text = match local {
                Some(l) => format!("max {max}\nmax.imposed {l}\n"),
                None => format!("max {max}\n"),
            };
            prop_assert_eq!(parse_pids_events_max(&text), Ok(max));
        }

        #[test]
        fn max_round_trip(v in any::<u64>()) {
            prop_assert_eq!(parse_max(&format!("{v}\n")), Ok(Limit::Value(v)));
        }

        #[test]
        fn cpu_max_round_trip(q in proptest::option::of(1u64..10_000_000), p in 1000u64..1_000_000) {
            let m = CpuMax { quota_us: q, period_us: p };
            prop_assert_eq!(parse_cpu_max(&format!("{}\n", m.to_cpu_max_string())), Ok(m));
        }

        #[test]
        fn flat_keyed_round_trip(pairs in proptest::collection::vec(("[a-z_]{1,20}", any::<u64>()), 0..30)) {
            let text: String = pairs.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
            let parsed = parse_flat_keyed(&text).unwrap();
            let expected: Vec<(&str, u64)> = pairs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            prop_assert_eq!(parsed, expected);
        }

        #[test]
        fn cpu_stat_v2_scales_usec(u in 0u64..u64::MAX / 1000, t in 0u64..u64::MAX / 1000) {
            let s = parse_cpu_stat(&format!("usage_usec {u}\nthrottled_usec {t}\n")).unwrap();
            prop_assert_eq!(s.usage_ns, Some(u * 1000));
            prop_assert_eq!(s.throttled_ns, Some(t * 1000));
        }

        #[test]
        fn cpu_list_round_trip(cpus in proptest::collection::vec(0u32..512, 0..64)) {
            let text = format_cpu_list(&cpus);
            let mut expected = cpus.clone();
            expected.sort_unstable();
            expected.dedup();
            prop_assert_eq!(parse_cpu_list(&text).unwrap(), expected);
            prop_assert_eq!(format_cpu_list(&parse_cpu_list(&text).unwrap()), text);
        }

        #[test]
        fn proc_cgroup_round_trip(id in 0u32..64, ctrls in proptest::collection::vec("[a-z]{1,8}", 0..3), path in "(/[a-zA-Z0-9_.:-]{1,12}){0,4}") {
            let path = if path.is_empty() { "/".to_string() } else { path };
            let line = format!("{id}:{}:{path}\n", ctrls.join(","));
            let v = parse_proc_cgroup(&line).unwrap();
            prop_assert_eq!(v.len(), 1);
            prop_assert_eq!(&v[0].controllers, &ctrls);
            prop_assert_eq!(&v[0].path, &path);
            prop_assert_eq!(v[0].hierarchy_id, id);
        }

        #[test]
        fn pid_stat_gives_state_flags_and_start_time_whatever_the_command(
            comm in "[ -~]{0,16}",
            state in proptest::sample::select(vec!['R', 'S', 'D', 'Z', 'T', 'I', 'X']),
            flags in any::<u32>(),
            start in any::<u64>(),
            pid in 1i32..4_000_000,
        ) {
            // Fields 4..=8, the flags (9), 10..=21, then starttime (22), as
            // the kernel writes them.
            let before: Vec<String> = (4..=8).map(|n| (n * 7).to_string()).collect();
            let after: Vec<String> = (10..=21).map(|n| (n * 7).to_string()).collect();
            let line = format!(
                "{pid} ({comm}) {state} {} {flags} {} {start} 1234 5678\n",
                before.join(" "),
                after.join(" ")
            );
            // Fields 14 and 15 (utime, stime) are 14 * 7 and 15 * 7.
            let want = PidStat { state, flags: Some(flags.into()), utime: Some(98), stime: Some(105), start_time: Some(start) };
            prop_assert_eq!(parse_pid_stat(&line).unwrap(), want);
            // A line cut after the state still gives the state.
            let short = format!("{pid} ({comm}) {state} 1");
            let cut = PidStat { state, flags: None, utime: None, stime: None, start_time: None };
            prop_assert_eq!(parse_pid_stat(&short).unwrap(), cut);
        }

        #[test]
        fn octal_escape_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let escaped = escape_octal(&bytes);
            prop_assert!(!escaped.contains(' ') && !escaped.contains('\n'));
            prop_assert_eq!(unescape_octal(&escaped), bytes);
        }

        #[test]
        fn mountinfo_round_trip(mp in proptest::collection::vec(any::<u8>(), 1..40), root in "/[a-z ]{0,10}", opt in proptest::collection::vec("shared:[0-9]{1,3}", 0..2)) {
            let mut mp_bytes = b"/".to_vec();
            mp_bytes.extend(mp.iter().filter(|b| **b != 0));
            let line = format!(
                "7 1 0:5 {} {} rw {}{}- cgroup cgroup rw,cpu,cpuacct\n",
                escape_octal(root.as_bytes()),
                escape_octal(&mp_bytes),
                opt.join(" "),
                if opt.is_empty() { "" } else { " " },
            );
            let m = parse_mountinfo(&line).unwrap();
            prop_assert_eq!(m.len(), 1);
            prop_assert_eq!(m[0].mount_point.as_os_str().as_encoded_bytes(), &mp_bytes[..]);
            prop_assert_eq!(&m[0].root, &PathBuf::from(&root));
            prop_assert_eq!(&m[0].optional_fields, &opt);
            prop_assert_eq!(v1_controllers(&m[0].super_options), vec!["cpu", "cpuacct"]);
        }
    }
}
