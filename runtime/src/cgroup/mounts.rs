//! Where the cgroup hierarchies are mounted, read from /proc/self/mountinfo.

use crate::error::{Error, Result};
use serde::Serialize;
use std::path::PathBuf;

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// Controllers on v1 hierarchies only.
    V1,
    /// One unified (cgroup2) hierarchy.
    V2,
    /// v1 controllers plus a cgroup2 mount (systemd's hybrid layout).
    Hybrid,
}

impl std::fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CgroupMode::V1 => "v1",
            CgroupMode::V2 => "v2",
            CgroupMode::Hybrid => "hybrid",
        })
    }
}

/// A v1 hierarchy: where it is mounted and which controllers it carries
/// (one, as `cpu`, or several co-mounted, as `cpu,cpuacct`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where the hierarchy is mounted.
    pub mount_point: PathBuf,
    /// The controllers bound to it (`cpu`, `cpuacct`, ...).
    pub controllers: Vec<String>,
}

/// The cgroup mounts of this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    /// The v1 hierarchies.
    pub v1: Vec<V1Hierarchy>,
    /// Where cgroup2 is mounted, if it is.
    pub unified: Option<PathBuf>,
}

/// The fields of one mountinfo line that cgroup detection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountInfoLine {
    pub root: String,
    pub mount_point: String,
    pub fs_type: String,
    pub super_options: String,
}

/// Parses one line of `/proc/<pid>/mountinfo` (see proc(5)); None if malformed.
pub fn parse_mountinfo_line(line: &str) -> Option<MountInfoLine> {
    let (pre, post) = line.split_once(" - ")?;
    let pre: Vec<&str> = pre.split(' ').collect();
    if pre.len() < 6 {
        return None;
    }
    let mut post = post.split(' ');
    let fs_type = post.next()?.to_string();
    let _source = post.next()?;
    let super_options = post.next().unwrap_or("").to_string();
    Some(MountInfoLine {
        root: unescape(pre[3]),
        mount_point: unescape(pre[4]),
        fs_type,
        super_options,
    })
}

/// Undoes the kernel's octal escapes in mountinfo paths (`\040` is a space).
pub(crate) fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Mounts {
    /// The cgroup mounts of this process's mount namespace (/proc/self/mountinfo).
    pub fn from_proc() -> Result<Mounts> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(Error::io("reading /proc/self/mountinfo"))?;
        Ok(Mounts::parse(&text))
    }

    /// Cgroup hierarchies from mountinfo text. Only mounts of a hierarchy's
    /// root count (a bind of a sub-cgroup is not a place to create cgroups);
    /// the first mount of each hierarchy wins.
    pub fn parse(mountinfo: &str) -> Mounts {
        let mut m = Mounts::default();
        for line in mountinfo.lines().filter_map(parse_mountinfo_line) {
            if line.root != "/" {
                continue;
            }
            match line.fs_type.as_str() {
                "cgroup2" if m.unified.is_none() => m.unified = Some(line.mount_point.into()),
                "cgroup" => {
                    let controllers: Vec<String> = line
                        .super_options
                        .split(',')
                        .filter(|o| KNOWN_V1_CONTROLLERS.contains(o))
                        .map(String::from)
                        .collect();
                    let dup =
                        m.v1.iter()
                            .any(|h| h.controllers.iter().any(|c| controllers.contains(c)));
                    if !controllers.is_empty() && !dup {
                        m.v1.push(V1Hierarchy {
                            mount_point: line.mount_point.into(),
                            controllers,
                        });
                    }
                }
                _ => {}
            }
        }
        m
    }

    /// The layout these mounts make (None: no cgroup filesystem).
    pub fn mode(&self) -> Option<CgroupMode> {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (false, true) => Some(CgroupMode::Hybrid),
            (false, false) => Some(CgroupMode::V1),
            (true, true) => Some(CgroupMode::V2),
            (true, false) => None,
        }
    }

    /// The v1 hierarchy carrying `controller`.
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }
}

/// v1 controller names as they appear in mount options.
pub(crate) const KNOWN_V1_CONTROLLERS: [&str; 13] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "freezer",
    "devices",
    "blkio",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HYBRID: &str = "\
25 1 0:23 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:24 / /sys/fs/cgroup/cpu rw,relatime shared:5 - cgroup cgroup rw,cpu
27 25 0:25 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
28 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
29 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
30 25 0:28 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
31 25 0:26 /sub /mnt/membind rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn a_hybrid_host_has_separate_v1_controllers_and_a_cgroup2_mount() {
        let m = Mounts::parse(HYBRID);
        assert_eq!(m.mode(), Some(CgroupMode::Hybrid));
        assert_eq!(m.v1.len(), 3, "{m:?}");
        assert_eq!(
            m.v1_hierarchy("cpuacct").unwrap().mount_point,
            PathBuf::from("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(m.unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn co_mounted_controllers_share_a_hierarchy() {
        let m = Mounts::parse(
            "26 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        );
        assert_eq!(m.mode(), Some(CgroupMode::V1));
        assert_eq!(m.v1[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(m.v1_hierarchy("cpu"), m.v1_hierarchy("cpuacct"));
    }

    #[test]
    fn a_pure_v2_host_is_v2() {
        let m = Mounts::parse("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        assert_eq!(m.mode(), Some(CgroupMode::V2));
    }

    #[test]
    fn no_cgroup_mounts_means_no_mode() {
        assert_eq!(
            Mounts::parse("1 0 8:1 / / rw - ext4 /dev/sda rw\n").mode(),
            None
        );
    }

    #[test]
    fn escaped_mount_points_are_unescaped() {
        let l = parse_mountinfo_line("36 35 98:0 / /mnt/a\\040b rw - ext3 /dev/x rw").unwrap();
        assert_eq!(l.mount_point, "/mnt/a b");
    }

    proptest! {
        #[test]
        fn mountinfo_parser_never_panics(s in "\\PC{0,120}") {
            let _ = parse_mountinfo_line(&s);
            let _ = Mounts::parse(&s);
        }

        #[test]
        fn mount_points_round_trip_through_escaping(p in "/[a-z \\t\\\\]{1,20}") {
            let escaped: String = p.chars().map(|c| match c {
                ' ' => "\\040".to_string(),
                '\t' => "\\011".to_string(),
                '\\' => "\\134".to_string(),
                c => c.to_string(),
            }).collect();
            let line = format!("1 0 0:1 / {escaped} rw - cgroup2 cgroup2 rw");
            prop_assert_eq!(parse_mountinfo_line(&line).unwrap().mount_point, p);
        }
    }
}
