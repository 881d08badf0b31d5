//! The inside view: what a process sees of its machine from within its
//! container. A workload collects it with [`collect`] and prints it as JSON;
//! the harness compares it with the host view and the container's limits.
//!
//! Every source is read independently: a file that cannot be read leaves its
//! field empty and adds a line to [`InsideView::problems`], it never stops
//! the rest. The parsers are pure functions of the file text.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Everything a process can learn about its machine from inside.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InsideView {
    /// This process's PID as seen inside (1 for a container's entry).
    pub pid: i32,
    /// Every PID visible in /proc.
    pub pids: Vec<i32>,
    /// The hostname (uts namespace).
    pub hostname: String,
    /// /proc/meminfo MemTotal, in bytes.
    pub mem_total_bytes: Option<u64>,
    /// /proc/meminfo MemAvailable, in bytes.
    pub mem_available_bytes: Option<u64>,
    /// sysconf(_SC_NPROCESSORS_ONLN): what `nproc --all`, `top` and most
    /// runtimes size themselves by.
    pub nproc_online: Option<u64>,
    /// CPUs in this process's sched_getaffinity mask (what `nproc` shows).
    pub affinity_cpus: Option<u64>,
    /// Rust's `available_parallelism`, which also honours a cgroup CPU quota.
    pub available_parallelism: Option<u64>,
    /// `processor` entries in /proc/cpuinfo.
    pub cpuinfo_processors: Option<u64>,
    /// Per-CPU `cpuN` lines in /proc/stat.
    pub proc_stat_cpus: Option<u64>,
    /// /proc/uptime, first field, in seconds.
    pub uptime_secs: Option<f64>,
    /// /proc/self/mountinfo.
    pub mounts: Vec<MountEntry>,
    /// Network interfaces in /proc/self/net/dev.
    pub interfaces: Vec<String>,
    /// CLOCK_REALTIME, read inside (the time namespace does not shift it).
    pub clock_realtime: Option<Timestamp>,
    /// CLOCK_MONOTONIC, read inside (shifted by a time namespace's offset).
    pub clock_monotonic: Option<Timestamp>,
    /// Capability sets from /proc/self/status.
    pub capabilities: Option<CapabilitySets>,
    /// Seccomp mode from /proc/self/status: 0 off, 1 strict, 2 filter.
    pub seccomp_mode: Option<u8>,
    /// The no_new_privs flag from /proc/self/status.
    pub no_new_privs: Option<bool>,
    /// /proc/self/uid_map: how this user namespace maps user ids.
    pub uid_map: Vec<IdMapLine>,
    /// /proc/self/gid_map: how this user namespace maps group ids.
    pub gid_map: Vec<IdMapLine>,
    /// Namespace inode numbers by /proc/self/ns link name (`pid`, `mnt`...).
    pub namespaces: BTreeMap<String, u64>,
    /// Sources that could not be read, with the reason.
    pub problems: Vec<String>,
    /// The lists (`pids`, `mounts`, `interfaces`) that were not observed:
    /// their source could not be read, or came back empty (there is always
    /// this process in /proc, a root mount, and `lo`). An empty list is
    /// then no answer, never "none".
    #[serde(default)]
    pub unread: BTreeSet<String>,
}

/// A clock reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Timestamp {
    /// Whole seconds.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl Timestamp {
    /// The reading in seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.secs as f64 + self.nanos as f64 / 1e9
    }
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountEntry {
    /// The mount's unique id.
    pub id: u64,
    /// The id of the parent mount.
    pub parent_id: u64,
    /// The root of the mount within its filesystem.
    pub root: String,
    /// Where it is mounted, as seen inside.
    pub mount_point: String,
    /// The filesystem type.
    pub fs_type: String,
    /// The mount source.
    pub source: String,
}

/// Capability sets as bit masks (bit n = capability number n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CapabilitySets {
    /// Inherited across execve.
    pub inheritable: u64,
    /// What the process may make effective.
    pub permitted: u64,
    /// What the kernel checks now.
    pub effective: u64,
    /// The bounding set: the limit on what can ever be gained.
    pub bounding: u64,
    /// Kept across execve of an unprivileged program.
    pub ambient: u64,
}

impl CapabilitySets {
    /// Whether capability number `cap` (e.g. 25 = CAP_SYS_TIME) is effective.
    pub fn effective_has(&self, cap: u32) -> bool {
        cap < 64 && self.effective & (1u64 << cap) != 0
    }
}

/// CAP_SYS_ADMIN, one of the capability numbers the checks use.
pub const CAP_SYS_ADMIN: u32 = 21;
/// CAP_SYS_TIME: set the system clock.
pub const CAP_SYS_TIME: u32 = 25;

/// One line of a uid_map or gid_map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapLine {
    /// The first id inside the namespace.
    pub inside: u32,
    /// The id it maps to in the parent namespace.
    pub outside: u32,
    /// How many consecutive ids are mapped.
    pub count: u32,
}

/// The fields of /proc/self/status the inside view uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusFields {
    /// `CapInh`, `CapPrm`, `CapEff`, `CapBnd`, `CapAmb`.
    pub capabilities: Option<CapabilitySets>,
    /// `Seccomp`: 0 off, 1 strict, 2 filter.
    pub seccomp_mode: Option<u8>,
    /// `NoNewPrivs`.
    pub no_new_privs: Option<bool>,
}

/// Collects the inside view of the calling process.
pub fn collect() -> InsideView {
    let mut v = InsideView {
        pid: std::process::id() as i32,
        ..InsideView::default()
    };
    let mut problems = Vec::new();
    let mut read = |path: &str| match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            problems.push(format!("{path}: {e}"));
            None
        }
    };

    if let Some(text) = read("/proc/meminfo") {
        v.mem_total_bytes = meminfo_bytes(&text, "MemTotal");
        v.mem_available_bytes = meminfo_bytes(&text, "MemAvailable");
    }
    if let Some(text) = read("/proc/cpuinfo") {
        v.cpuinfo_processors = Some(cpuinfo_processors(&text));
    }
    if let Some(text) = read("/proc/stat") {
        v.proc_stat_cpus = Some(proc_stat_cpus(&text));
    }
    if let Some(text) = read("/proc/uptime") {
        v.uptime_secs = parse_uptime(&text);
    }
    if let Some(text) = read("/proc/self/mountinfo") {
        v.mounts = parse_mountinfo(&text);
    }
    if let Some(text) = read("/proc/self/net/dev") {
        v.interfaces = parse_net_dev(&text);
    }
    if let Some(text) = read("/proc/self/status") {
        let s = parse_status(&text);
        v.capabilities = s.capabilities;
        v.seccomp_mode = s.seccomp_mode;
        v.no_new_privs = s.no_new_privs;
    }
    if let Some(text) = read("/proc/self/uid_map") {
        v.uid_map = parse_id_map(&text);
    }
    if let Some(text) = read("/proc/self/gid_map") {
        v.gid_map = parse_id_map(&text);
    }

    match nix::unistd::gethostname() {
        Ok(h) => v.hostname = h.to_string_lossy().into_owned(),
        Err(e) => problems.push(format!("gethostname: {e}")),
    }
    match nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN) {
        Ok(Some(n)) if n > 0 => v.nproc_online = Some(n as u64),
        other => problems.push(format!("sysconf(_SC_NPROCESSORS_ONLN): {other:?}")),
    }
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => {
            let n = (0..nix::sched::CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count();
            v.affinity_cpus = Some(n as u64);
        }
        Err(e) => problems.push(format!("sched_getaffinity: {e}")),
    }
    v.available_parallelism = std::thread::available_parallelism()
        .ok()
        .map(|n| n.get() as u64);
    v.clock_realtime = clock(nix::time::ClockId::CLOCK_REALTIME, &mut problems);
    v.clock_monotonic = clock(nix::time::ClockId::CLOCK_MONOTONIC, &mut problems);

    match std::fs::read_dir("/proc") {
        Ok(rd) => {
            v.pids = rd
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .collect();
            v.pids.sort_unstable();
        }
        Err(e) => problems.push(format!("/proc: {e}")),
    }
    if v.mounts.is_empty() {
        problems.push("/proc/self/mountinfo: no mount could be read".into());
        v.unread.insert("mounts".into());
    }
    if v.interfaces.is_empty() {
        problems.push("/proc/self/net/dev: no interface could be read".into());
        v.unread.insert("interfaces".into());
    }
    if v.pids.is_empty() {
        problems.push("/proc: no process could be listed".into());
        v.unread.insert("pids".into());
    }
    v.namespaces = namespaces_of(Path::new("/proc/self/ns"), &mut problems);
    v.problems = problems;
    v
}

/// Reads a clock; the reading is recorded as a problem when it fails.
pub fn clock(id: nix::time::ClockId, problems: &mut Vec<String>) -> Option<Timestamp> {
    match nix::time::clock_gettime(id) {
        Ok(ts) => Some(Timestamp {
            secs: ts.tv_sec(),
            nanos: ts.tv_nsec() as u32,
        }),
        Err(e) => {
            problems.push(format!("clock_gettime({id}): {e}"));
            None
        }
    }
}

/// Namespace inodes from the links in `dir` (`/proc/<pid>/ns`).
fn namespaces_of(dir: &Path, problems: &mut Vec<String>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            return out;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        match std::fs::read_link(entry.path()) {
            Ok(target) => {
                if let Some((_, inode)) = parse_ns_link(&target.to_string_lossy()) {
                    out.insert(name, inode);
                }
            }
            Err(e) => problems.push(format!("{}/{name}: {e}", dir.display())),
        }
    }
    out
}

/// A `/proc/<pid>/ns/*` link target such as `pid:[4026531836]`.
pub fn parse_ns_link(target: &str) -> Option<(String, u64)> {
    let (kind, rest) = target.split_once(":[")?;
    let inode = rest.strip_suffix(']')?.parse().ok()?;
    if kind.is_empty() {
        return None;
    }
    Some((kind.to_string(), inode))
}

/// A /proc/meminfo field (reported in kB) in bytes.
pub fn meminfo_bytes(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name.trim() != field {
            return None;
        }
        let mut parts = rest.split_whitespace();
        let value: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") => value.checked_mul(1024),
            None => Some(value),
            Some(_) => None,
        }
    })
}

/// The number of `processor` entries in /proc/cpuinfo.
pub fn cpuinfo_processors(text: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(k, v)| k.trim() == "processor" && v.trim().parse::<u64>().is_ok())
        })
        .count() as u64
}

/// The number of per-CPU lines (`cpu0`, `cpu1`...) in /proc/stat.
pub fn proc_stat_cpus(text: &str) -> u64 {
    text.lines()
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or("");
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count() as u64
}

/// The first field of /proc/uptime, in seconds.
pub fn parse_uptime(text: &str) -> Option<f64> {
    let v: f64 = text.split_whitespace().next()?.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// Parses `/proc/<pid>/mountinfo` (with the host-side parser, the octal
/// escapes decoded and non-UTF-8 bytes replaced); malformed lines are
/// skipped: the inside view reports what it can.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| crate::host::parse::parse_mountinfo_line(l).ok())
        .map(|m| MountEntry {
            id: m.mount_id,
            parent_id: m.parent_id,
            root: m.root.to_string_lossy().into_owned(),
            mount_point: m.mount_point.to_string_lossy().into_owned(),
            fs_type: m.fs_type,
            source: m.source,
        })
        .collect()
}

/// Interface names from /proc/net/dev (two header lines, then `name: ...`).
pub fn parse_net_dev(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            let first = rest.split_whitespace().next()?;
            (!name.is_empty() && !name.contains(' ') && first.parse::<u64>().is_ok())
                .then(|| name.to_string())
        })
        .collect()
}

/// Capability sets, seccomp mode and no_new_privs from `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> StatusFields {
    let mut caps = CapabilitySets::default();
    let mut seen = 0;
    let mut out = StatusFields::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let hex = || u64::from_str_radix(value, 16).ok();
        let slot = match key {
            "CapInh" => &mut caps.inheritable,
            "CapPrm" => &mut caps.permitted,
            "CapEff" => &mut caps.effective,
            "CapBnd" => &mut caps.bounding,
            "CapAmb" => &mut caps.ambient,
            "Seccomp" => {
                out.seccomp_mode = value.parse().ok();
                continue;
            }
            "NoNewPrivs" => {
                out.no_new_privs = match value {
                    "0" => Some(false),
                    "1" => Some(true),
                    _ => None,
                };
                continue;
            }
            _ => continue,
        };
        if let Some(v) = hex() {
            *slot = v;
            seen += 1;
        }
    }
    if seen > 0 {
        out.capabilities = Some(caps);
    }
    out
}

/// Parses a uid_map or gid_map.
pub fn parse_id_map(text: &str) -> Vec<IdMapLine> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let line = IdMapLine {
                inside: f.next()?.parse().ok()?,
                outside: f.next()?.parse().ok()?,
                count: f.next()?.parse().ok()?,
            };
            f.next().is_none().then_some(line)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MEMINFO: &str = "MemTotal:       16318412 kB\nMemFree:         1000 kB\nMemAvailable:   8000000 kB\nHugePages_Total:       0\n";

    #[test]
    fn meminfo_fields_are_read_in_bytes() {
        assert_eq!(meminfo_bytes(MEMINFO, "MemTotal"), Some(16318412 * 1024));
        assert_eq!(meminfo_bytes(MEMINFO, "MemAvailable"), Some(8000000 * 1024));
        assert_eq!(meminfo_bytes(MEMINFO, "HugePages_Total"), Some(0));
        assert_eq!(meminfo_bytes(MEMINFO, "Mem"), None);
        assert_eq!(meminfo_bytes("MemTotal: x kB", "MemTotal"), None);
    }

    #[test]
    fn cpu_counts_come_from_cpuinfo_and_stat() {
        let cpuinfo =
            "processor\t: 0\nvendor_id\t: X\n\nprocessor\t: 1\nmodel name\t: processor 9\n";
        assert_eq!(cpuinfo_processors(cpuinfo), 2);
        let stat = "cpu  1 2 3\ncpu0 1 2 3\ncpu1 4 5 6\nintr 1\nctxt 5\ncpufreq 1\n";
        assert_eq!(proc_stat_cpus(stat), 2);
    }

    #[test]
    fn mountinfo_lines_are_parsed_and_unescaped() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    35 22 0:30 / /mnt/with\\040space rw - tmpfs my\\040src rw,size=4k\n\
                    garbage line\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, "/");
        assert_eq!(m[0].fs_type, "ext4");
        assert_eq!(m[1].mount_point, "/mnt/with space");
        assert_eq!(m[1].source, "my src");
        assert_eq!((m[1].id, m[1].parent_id), (35, 22));
    }

    #[test]
    fn status_gives_caps_seccomp_and_nnp() {
        let text = "Name:\tboxwatch\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n";
        let s = parse_status(text);
        let c = s.capabilities.unwrap();
        assert_eq!(c.effective, 0xa80425fb);
        assert!(!c.effective_has(CAP_SYS_TIME));
        assert!(!c.effective_has(CAP_SYS_ADMIN));
        assert!(c.effective_has(0)); // CAP_CHOWN
        assert_eq!(s.seccomp_mode, Some(2));
        assert_eq!(s.no_new_privs, Some(true));
        assert_eq!(parse_status("Name: x\n"), StatusFields::default());
    }

    #[test]
    fn net_dev_lists_interfaces() {
        let text = "Inter-|   Receive                            |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes\n    lo:     100       1    0    0    0     0          0         0      100\n  eth0: 5 6 0 0 0 0 0 0 7\n";
        assert_eq!(parse_net_dev(text), vec!["lo", "eth0"]);
    }

    #[test]
    fn id_maps_and_ns_links_parse() {
        assert_eq!(
            parse_id_map("         0     100000      65536\nbad\n"),
            vec![IdMapLine {
                inside: 0,
                outside: 100000,
                count: 65536
            }]
        );
        assert_eq!(
            parse_ns_link("pid:[4026531836]"),
            Some(("pid".into(), 4026531836))
        );
        assert_eq!(parse_ns_link("pid:4026531836"), None);
        assert_eq!(parse_ns_link(":[1]"), None);
    }

    #[test]
    fn uptime_is_the_first_field() {
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350735.47));
        assert_eq!(parse_uptime("nan 1"), None);
        assert_eq!(parse_uptime(""), None);
    }

    #[test]
    fn collecting_on_this_machine_fills_the_view() {
        let v = collect();
        assert!(v.pid > 0);
        assert!(v.pids.contains(&v.pid));
        assert!(v.mem_total_bytes.unwrap() > 0);
        assert!(v.nproc_online.unwrap() >= 1);
        assert!(v.affinity_cpus.unwrap() >= 1);
        assert!(v.cpuinfo_processors.unwrap() >= 1);
        assert!(v.proc_stat_cpus.unwrap() >= 1);
        assert!(v.mounts.iter().any(|m| m.mount_point == "/"));
        assert!(v.interfaces.iter().any(|i| i == "lo"));
        assert!(v.clock_monotonic.unwrap().as_secs_f64() > 0.0);
        assert!(v.namespaces.contains_key("pid") && v.namespaces.contains_key("mnt"));
        assert!(v.capabilities.is_some());
        let json = serde_json::to_string(&v).unwrap();
        let back: InsideView = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
    }

    fn escape(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b' ' | b'\t' | b'\n' | b'\\' => format!("\\{b:03o}"),
                _ => (b as char).to_string(),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn meminfo_round_trips(total in 0u64..1u64 << 40, avail in 0u64..1u64 << 40) {
            let text = format!("MemTotal: {total:>14} kB\nMemFree: 1 kB\nMemAvailable: {avail} kB\n");
            prop_assert_eq!(meminfo_bytes(&text, "MemTotal"), Some(total * 1024));
            prop_assert_eq!(meminfo_bytes(&text, "MemAvailable"), Some(avail * 1024));
        }

        #[test]
        fn mount_paths_round_trip_through_escaping(path in "/[a-z \\t\\\\]{0,20}", src in "[a-z ]{1,10}") {
            let line = format!("40 1 0:5 / {} rw - tmpfs {} rw", escape(&path), escape(&src));
            let m = parse_mountinfo(&line);
            prop_assert_eq!(m.len(), 1);
            prop_assert_eq!(&m[0].mount_point, &path);
            prop_assert_eq!(&m[0].source, &src);
        }

        #[test]
        fn cpu_line_counts_match(n in 0usize..300) {
            let stat: String = std::iter::once("cpu 1 2 3\n".to_string())
                .chain((0..n).map(|i| format!("cpu{i} 1 2 3\n")))
                .chain(std::iter::once("intr 5\n".to_string()))
                .collect();
            prop_assert_eq!(proc_stat_cpus(&stat), n as u64);
            let cpuinfo: String = (0..n).map(|i| format!("processor\t: {i}\nflags\t: fpu\n\n")).collect();
            prop_assert_eq!(cpuinfo_processors(&cpuinfo), n as u64);
        }

        #[test]
        fn status_caps_round_trip(eff: u64, prm: u64, bnd: u64) {
            let text = format!("CapPrm:\t{prm:016x}\nCapEff:\t{eff:016x}\nCapBnd:\t{bnd:016x}\n");
            let c = parse_status(&text).capabilities.unwrap();
            prop_assert_eq!((c.effective, c.permitted, c.bounding), (eff, prm, bnd));
        }

        #[test]
        fn ns_links_round_trip(kind in "[a-z_]{1,20}", inode: u64) {
            prop_assert_eq!(parse_ns_link(&format!("{kind}:[{inode}]")), Some((kind, inode)));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,200}") {
            let _ = meminfo_bytes(&s, "MemTotal");
            let _ = parse_mountinfo(&s);
            let _ = parse_status(&s);
            let _ = parse_net_dev(&s);
            let _ = parse_id_map(&s);
            let _ = parse_ns_link(&s);
            let _ = parse_uptime(&s);
            let _ = cpuinfo_processors(&s);
            let _ = proc_stat_cpus(&s);
        }
    }
}
