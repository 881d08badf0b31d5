//! The host reader against fake v1, v2 and hybrid trees in a tempdir.

use super::fake::FakeTree;
use super::StatsCache;
use super::*;

fn cg(p: &str) -> CgroupPath {
    CgroupPath::new(p).unwrap()
}

/// A pure v2 tree with one limited container and one unlimited sibling.
fn v2_tree(dir: &Path) -> FakeTree {
    let t = FakeTree::new(dir)
        .v2(&["cpuset", "cpu", "io", "memory", "pids"])
        .build()
        .unwrap();
    let c = "/boxwatch/r1/c1";
    t.write("", c, "cpu.stat", "usage_usec 2000000\nuser_usec 1500000\nsystem_usec 500000\nnr_periods 40\nnr_throttled 30\nthrottled_usec 800000\n").unwrap();
    t.write("", c, "cpu.max", "20000 100000\n").unwrap();
    t.write("", c, "memory.current", "1048576\n").unwrap();
    t.write("", c, "memory.max", "67108864\n").unwrap();
    t.write("", c, "memory.peak", "67108864\n").unwrap();
    t.write(
        "",
        c,
        "memory.events",
        "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\noom_group_kill 0\n",
    )
    .unwrap();
    t.write("", c, "memory.stat", "anon 4096\nfile 0\n")
        .unwrap();
    t.write("", c, "pids.current", "3\n").unwrap();
    t.write("", c, "pids.max", "max\n").unwrap();
    t.write("", c, "cpuset.cpus.effective", "0-1\n").unwrap();
    t.write("", "/boxwatch/r1/c2", "cpu.stat", "usage_usec 5\n")
        .unwrap();
    t.write("", "/boxwatch/r1/c2", "cpu.max", "max 100000\n")
        .unwrap();
    t.write("", "/boxwatch/r1/c2", "memory.max", "max\n")
        .unwrap();
    t
}

#[test]
fn v2_layout_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    let l = t.host().layout().unwrap();
    assert_eq!(l.mode(), CgroupMode::V2);
    assert!(l.v2().unwrap().has("memory"));
    assert_eq!(l.v1_hierarchies().len(), 0);

    let s = l.stats(&cg("/boxwatch/r1/c1")).unwrap();
    assert_eq!(s.path, "/boxwatch/r1/c1");
    assert_eq!(s.cpu_usage_ns, Some(2_000_000_000));
    assert_eq!(s.cpu_nr_periods, Some(40));
    assert_eq!(s.cpu_nr_throttled, Some(30));
    assert_eq!(s.cpu_throttled_ns, Some(800_000_000));
    assert_eq!(s.cpu_max.and_then(|m| m.cores()), Some(0.2));
    assert_eq!(s.memory_usage_bytes, Some(1_048_576));
    assert_eq!(s.memory_limit, Some(Limit::Value(67_108_864)));
    assert_eq!(s.memory_peak_bytes, Some(67_108_864));
    assert_eq!(s.memory_events.and_then(|e| e.max), Some(9));
    assert_eq!(s.oom_kills, Some(1));
    assert_eq!(s.memory_failcnt, None);
    assert_eq!(s.pids_current, Some(3));
    assert_eq!(s.pids_max, Some(Limit::Unlimited));
    assert_eq!(s.cpuset_cpus_effective, Some(vec![0, 1]));
    let stat = l.memory_stat(&cg("/boxwatch/r1/c1")).unwrap().unwrap();
    assert_eq!(stat.get("anon"), Some(&4096));

    let s2 = l.stats(&cg("/boxwatch/r1/c2")).unwrap();
    assert_eq!(s2.cpu_usage_ns, Some(5000));
    assert_eq!(s2.cpu_max.map(|m| m.quota_us), Some(None));
    assert_eq!(s2.memory_limit, Some(Limit::Unlimited));
    assert_eq!(s2.memory_usage_bytes, None);
    assert_eq!(s2.pids_current, None);
}

#[test]
fn v2_subtree_walk_is_sorted_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    let l = t.host().layout().unwrap();
    let all = l.list_subtree(&cg("/boxwatch"), 100).unwrap();
    let names: Vec<&str> = all.cgroups.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "/boxwatch",
            "/boxwatch/r1",
            "/boxwatch/r1/c1",
            "/boxwatch/r1/c2"
        ]
    );
    assert!(!all.truncated);
    let some = l.list_subtree(&cg("/boxwatch"), 2).unwrap();
    assert_eq!(some.cgroups.len(), 2);
    assert!(some.truncated);
    let none = l.list_subtree(&cg("/nope"), 10).unwrap();
    assert!(none.cgroups.is_empty() && !none.truncated);
}

#[test]
fn missing_and_vanishing_cgroups() {
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    let l = t.host().layout().unwrap();
    assert!(matches!(
        l.stats(&cg("/boxwatch/never")),
        Err(Error::CgroupNotFound(p)) if p == "/boxwatch/never"
    ));
    std::fs::remove_dir_all(t.mkdir("", "/boxwatch/r1/c2").unwrap()).unwrap();
    assert!(matches!(
        l.stats(&cg("/boxwatch/r1/c2")),
        Err(Error::CgroupNotFound(_))
    ));
    // An empty directory (a cgroup with no readable files) still exists.
    t.mkdir("", "/boxwatch/empty").unwrap();
    assert!(l.stats(&cg("/boxwatch/empty")).unwrap().is_empty());
}

#[test]
fn malformed_files_are_parse_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    t.write("", "/boxwatch/bad", "memory.max", "lots\n")
        .unwrap();
    let err = t
        .host()
        .layout()
        .unwrap()
        .stats(&cg("/boxwatch/bad"))
        .unwrap_err();
    match err {
        Error::Parse { path, .. } => assert!(path.ends_with("boxwatch/bad/memory.max")),
        other => panic!("unexpected {other}"),
    }
}

/// This machine's shape: every v1 controller separate, plus a v2 mount
/// without controllers.
fn hybrid_tree(dir: &Path) -> FakeTree {
    let t = FakeTree::new(dir)
        .v1(&["cpu"])
        .v1(&["cpuacct"])
        .v1(&["cpuset"])
        .v1(&["memory"])
        .v1(&["pids"])
        .v1(&["name=systemd"])
        .v2(&[])
        .build()
        .unwrap();
    let c = "/boxwatch/r1/c1";
    t.write("cpuacct", c, "cpuacct.usage", "3000000000\n")
        .unwrap();
    t.write(
        "cpu",
        c,
        "cpu.stat",
        "nr_periods 50\nnr_throttled 45\nthrottled_time 2000000000\nnr_bursts 0\nburst_time 0\n",
    )
    .unwrap();
    t.write("cpu", c, "cpu.cfs_quota_us", "20000\n").unwrap();
    t.write("cpu", c, "cpu.cfs_period_us", "100000\n").unwrap();
    t.write("memory", c, "memory.usage_in_bytes", "4096\n")
        .unwrap();
    t.write(
        "memory",
        c,
        "memory.limit_in_bytes",
        "9223372036854771712\n",
    )
    .unwrap();
    t.write("memory", c, "memory.max_usage_in_bytes", "8192\n")
        .unwrap();
    t.write("memory", c, "memory.failcnt", "2\n").unwrap();
    t.write(
        "memory",
        c,
        "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
    )
    .unwrap();
    t.write("pids", c, "pids.current", "1\n").unwrap();
    t.write("pids", c, "pids.max", "64\n").unwrap();
    t.write("cpuset", c, "cpuset.effective_cpus", "1\n")
        .unwrap();
    // A v2 cpu.stat exists in the unified tree too; v1 must win.
    t.write("unified", c, "cpu.stat", "usage_usec 1\n").unwrap();
    t
}

#[test]
fn hybrid_layout_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let t = hybrid_tree(dir.path());
    let l = t.host().layout().unwrap();
    assert_eq!(l.mode(), CgroupMode::Hybrid);
    assert_eq!(
        l.v1_mount("memory"),
        Some(dir.path().join("sys/fs/cgroup/memory").as_path())
    );
    let s = l.stats(&cg("/boxwatch/r1/c1")).unwrap();
    assert_eq!(s.cpu_usage_ns, Some(3_000_000_000));
    assert_eq!(s.cpu_nr_throttled, Some(45));
    assert_eq!(s.cpu_throttled_ns, Some(2_000_000_000));
    assert_eq!(s.cpu_max.and_then(|m| m.cores()), Some(0.2));
    assert_eq!(s.memory_limit, Some(Limit::Unlimited));
    assert_eq!(s.memory_peak_bytes, Some(8192));
    assert_eq!(s.memory_failcnt, Some(2));
    assert_eq!(s.oom_kills, Some(4));
    assert_eq!(s.memory_events, None);
    assert_eq!(s.pids_max, Some(Limit::Value(64)));
    assert_eq!(s.cpuset_cpus_effective, Some(vec![1]));
    // The walk unions the stat hierarchies: a cgroup only in pids shows up.
    t.mkdir("pids", "/boxwatch/r1/only-pids").unwrap();
    let walk = l.list_subtree(&cg("/boxwatch/r1"), 10).unwrap();
    let names: Vec<&str> = walk.cgroups.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        ["/boxwatch/r1", "/boxwatch/r1/c1", "/boxwatch/r1/only-pids"]
    );
}

#[test]
fn comounted_v1_cpu_cpuacct() {
    let dir = tempfile::tempdir().unwrap();
    let t = FakeTree::new(dir.path())
        .v1(&["cpu", "cpuacct"])
        .v1(&["memory"])
        .build()
        .unwrap();
    let m = t.mount_name("cpuacct").unwrap().to_string();
    assert_eq!(m, "cpu,cpuacct");
    t.write(&m, "/x", "cpuacct.usage", "7\n").unwrap();
    t.write(&m, "/x", "cpu.cfs_quota_us", "-1\n").unwrap();
    let l = t.host().layout().unwrap();
    assert_eq!(l.mode(), CgroupMode::V1);
    let s = l.stats(&cg("/x")).unwrap();
    assert_eq!(s.cpu_usage_ns, Some(7));
    assert_eq!(s.cpu_max.map(|m| m.quota_us), Some(None));
}

#[test]
fn pid_cgroups_and_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let t = hybrid_tree(dir.path());
    let host = t.host();
    let l = host.layout().unwrap();
    let proc42 = dir.path().join("proc/42");
    std::fs::create_dir_all(proc42.join("ns")).unwrap();
    std::fs::write(
        proc42.join("cgroup"),
        "7:name=systemd:/\n4:memory:/boxwatch/r1/c1\n1:cpu:/boxwatch/r1/c1\n0::/\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("net:[4026532000]", proc42.join("ns/net")).unwrap();
    assert_eq!(host.pid_cgroups(42).unwrap().len(), 4);
    assert_eq!(
        host.pid_cgroup(&l, 42, "memory").unwrap(),
        Some(cg("/boxwatch/r1/c1"))
    );
    assert_eq!(host.pid_cgroup(&l, 42, "pids").unwrap(), None);
    assert_eq!(host.ns_inode(42, "net").unwrap(), 4_026_532_000);
    assert!(matches!(
        host.ns_inode(43, "net"),
        Err(Error::NoSuchProcess(43))
    ));
    assert!(matches!(
        host.pid_cgroups(43),
        Err(Error::NoSuchProcess(43))
    ));
    assert!(host.ns_inode(42, "../x").is_err());
}

#[test]
fn missing_mountinfo_or_no_cgroups() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Host::with_root(dir.path()).layout(),
        Err(Error::Io { .. })
    ));
    let t = FakeTree::new(dir.path()).build().unwrap();
    assert!(matches!(t.host().layout(), Err(Error::NoCgroupMounts(_))));
}

#[test]
fn stats_cache_matches_fresh_reads_and_follows_changes() {
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    let l = t.host().layout().unwrap();
    let mut cache = StatsCache::new(Controllers::ALL, 1000);
    let c1 = cg("/boxwatch/r1/c1");
    for _ in 0..2 {
        assert_eq!(cache.stats(&l, &c1).unwrap(), l.stats(&c1).unwrap());
        cache.sweep();
    }
    let held = cache.open_files();
    assert!(held >= 9, "{held} files open");
    // Rewritten in place: the held file sees the new text.
    t.write("", "/boxwatch/r1/c1", "memory.current", "2097152\n")
        .unwrap();
    assert_eq!(
        cache.stats(&l, &c1).unwrap().memory_usage_bytes,
        Some(2_097_152)
    );
    // Not read in a round: closed by the sweep.
    cache.sweep();
    cache.sweep();
    assert_eq!(cache.open_files(), 0);
    // Removed: not found. (With files held, only cgroupfs notices: reads of
    // a removed cgroup fail with ENODEV there, see tests/host_real.rs; a
    // tmpfs fake keeps serving unlinked files.)
    std::fs::remove_dir_all(t.mkdir("", "/boxwatch/r1/c1").unwrap()).unwrap();
    assert!(matches!(
        cache.stats(&l, &c1),
        Err(Error::CgroupNotFound(_))
    ));
}

#[test]
fn stats_cache_respects_its_file_budget() {
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    let l = t.host().layout().unwrap();
    let mut cache = StatsCache::new(Controllers::ALL, 3);
    let c1 = cg("/boxwatch/r1/c1");
    let c2 = cg("/boxwatch/r1/c2");
    assert_eq!(cache.stats(&l, &c1).unwrap(), l.stats(&c1).unwrap());
    assert_eq!(cache.stats(&l, &c2).unwrap(), l.stats(&c2).unwrap());
    assert_eq!(cache.open_files(), 3);
}

#[test]
fn beyond_the_budget_files_are_read_through_their_parent() {
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    let h = hybrid_tree(&dir.path().join("hybrid"));
    for (t, cgroups) in [
        (&t, ["/boxwatch/r1/c1", "/boxwatch/r1/c2", "/boxwatch", "/"]),
        (&h, ["/boxwatch/r1/c1", "/boxwatch/r1", "/boxwatch", "/"]),
    ] {
        let l = t.host().layout().unwrap();
        let mut cache = StatsCache::new(Controllers::ALL, 0);
        for _ in 0..2 {
            for c in cgroups.map(cg) {
                assert_eq!(cache.stats(&l, &c).unwrap(), l.stats(&c).unwrap(), "{c}");
            }
            cache.sweep();
        }
        assert_eq!(cache.open_files(), 0);
    }
    // The reader keeps /boxwatch/r1 open; it is removed and made again
    // with other figures: those are read, not "gone".
    let l = t.host().layout().unwrap();
    let mut cache = StatsCache::new(Controllers::ALL, 0);
    let c1 = cg("/boxwatch/r1/c1");
    assert_eq!(
        cache.stats(&l, &c1).unwrap().memory_usage_bytes,
        Some(1_048_576)
    );
    std::fs::remove_dir_all(t.mkdir("", "/boxwatch/r1").unwrap()).unwrap();
    t.write("", "/boxwatch/r1/c1", "memory.current", "123\n")
        .unwrap();
    let s = cache.stats(&l, &c1).unwrap();
    assert_eq!(s.memory_usage_bytes, Some(123));
    assert_eq!(s.memory_limit, None, "memory.max is not there any more");
    // Gone for good: not found.
    std::fs::remove_dir_all(t.mkdir("", "/boxwatch/r1").unwrap()).unwrap();
    assert!(matches!(
        cache.stats(&l, &c1),
        Err(Error::CgroupNotFound(_))
    ));
}

#[test]
fn a_cached_walk_is_the_walk() {
    use super::{FileBudget, WalkCache};
    let dir = tempfile::tempdir().unwrap();
    let t = hybrid_tree(dir.path());
    let l = t.host().layout().unwrap();
    let cpu = l.hierarchy_for("cpu").unwrap();
    let budget = FileBudget::new(1000);
    let mut cache = WalkCache::new(&budget);
    let root = cg("/boxwatch");
    let check = |cache: &mut WalkCache| {
        let cached = l.list_subtree_cached(cpu, &root, 100, cache).unwrap();
        assert_eq!(cached, l.list_subtree_in(cpu, &root, 100).unwrap());
        cached
    };
    for i in 0..5 {
        t.mkdir("cpu", &format!("/boxwatch/r1/leaf{i}")).unwrap();
    }
    check(&mut cache);
    assert!(cache.len() >= 6, "{} held", cache.len());
    assert_eq!(budget.open_files(), cache.len());
    check(&mut cache);
    // A leaf gets a child; another is removed and made again with one;
    // one goes; one comes.
    t.mkdir("cpu", "/boxwatch/r1/leaf0/sub").unwrap();
    std::fs::remove_dir_all(t.mkdir("cpu", "/boxwatch/r1/leaf1").unwrap()).unwrap();
    t.mkdir("cpu", "/boxwatch/r1/leaf1/sub").unwrap();
    std::fs::remove_dir_all(t.mkdir("cpu", "/boxwatch/r1/leaf2").unwrap()).unwrap();
    t.mkdir("cpu", "/boxwatch/r1/leaf9").unwrap();
    let walk = check(&mut cache);
    let names: Vec<&str> = walk.cgroups.iter().map(|c| c.as_str()).collect();
    assert!(names.contains(&"/boxwatch/r1/leaf0/sub"), "{names:?}");
    assert!(names.contains(&"/boxwatch/r1/leaf1/sub"), "{names:?}");
    assert!(!names.contains(&"/boxwatch/r1/leaf2"), "{names:?}");
    check(&mut cache);
    // No room: the same walk, nothing held.
    cache.shrink_to(0);
    assert_eq!(budget.open_files(), 0);
    budget.set_max(0);
    check(&mut cache);
    assert!(cache.is_empty());
    // Another hierarchy: the cache starts afresh.
    budget.set_max(1000);
    let memory = l.hierarchy_for("memory").unwrap();
    let cached = l
        .list_subtree_cached(memory, &root, 100, &mut cache)
        .unwrap();
    assert_eq!(cached, l.list_subtree_in(memory, &root, 100).unwrap());
    drop(cache);
    assert_eq!(budget.open_files(), 0);
}

#[test]
fn walking_one_hierarchy_sees_only_its_cgroups() {
    let dir = tempfile::tempdir().unwrap();
    let t = hybrid_tree(dir.path());
    t.mkdir("pids", "/boxwatch/r1/only-pids").unwrap();
    let l = t.host().layout().unwrap();
    let cpu = l.hierarchy_for("cpu").unwrap();
    let names: Vec<String> = l
        .list_subtree_in(cpu, &cg("/boxwatch"), 10)
        .unwrap()
        .cgroups
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(names, ["/boxwatch", "/boxwatch/r1", "/boxwatch/r1/c1"]);
}

/// The cgroup directory `rel` (bytes, below the mount) of a pure v2 tree.
fn raw_dir(t: &FakeTree, rel: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let d = t
        .mkdir("", "/")
        .unwrap()
        .join(std::ffi::OsStr::from_bytes(rel));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn names_that_are_not_utf8_are_walked_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    // Four siblings whose bytes differ only where UTF-8 breaks, and a
    // child below one of them.
    let names: [&[u8]; 4] = [b"x\xff", b"x\xfe", b"x\\\xff", b"x\xff\xfe"];
    for (i, n) in names.iter().enumerate() {
        let mut rel = b"boxwatch/odd/".to_vec();
        rel.extend_from_slice(n);
        let d = raw_dir(&t, &rel);
        std::fs::write(d.join("cpu.stat"), format!("usage_usec {}\n", i + 1)).unwrap();
    }
    raw_dir(&t, b"boxwatch/odd/x\xff/inner\x80");
    let l = t.host().layout().unwrap();
    let walked = l.list_subtree(&cg("/boxwatch/odd"), 100).unwrap();
    assert!(walked.unreadable.is_empty(), "{:?}", walked.unreadable);
    let texts: Vec<&str> = walked.cgroups.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        texts,
        [
            "/boxwatch/odd",
            "/boxwatch/odd/x\\x5c\\xff",
            "/boxwatch/odd/x\\xfe",
            "/boxwatch/odd/x\\xff",
            "/boxwatch/odd/x\\xff/inner\\x80",
            "/boxwatch/odd/x\\xff\\xfe",
        ]
    );
    // Each one reads its own files.
    for (i, n) in names.iter().enumerate() {
        let mut p = b"/boxwatch/odd/".to_vec();
        p.extend_from_slice(n);
        let c = CgroupPath::from_bytes(&p).unwrap();
        assert!(walked.cgroups.contains(&c));
        let s = l.stats(&c).unwrap();
        assert_eq!(s.cpu_usage_ns, Some((i as u64 + 1) * 1000), "{c}");
        assert_eq!(s.path, c.as_str());
    }
}

/// Runs `f` on a thread without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
/// (capabilities are per thread), so that root too gets EACCES from
/// directories with mode 000.
pub(crate) fn without_dac_override<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            caps::clear(None, caps::CapSet::Effective).expect("dropping capabilities");
            f()
        })
        .join()
        .unwrap()
    })
}

#[test]
fn an_unreadable_directory_skips_only_its_subtree() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    t.mkdir("", "/boxwatch/r1/locked/inner").unwrap();
    t.mkdir("", "/boxwatch/r2/c3").unwrap();
    let locked = t.mkdir("", "/boxwatch/r1/locked").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let l = t.host().layout().unwrap();
    let (walked, at_locked) = without_dac_override(|| {
        (
            l.list_subtree(&cg("/boxwatch"), 100).unwrap(),
            l.list_subtree(&cg("/boxwatch/r1/locked"), 100).unwrap(),
        )
    });
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let texts: Vec<&str> = walked.cgroups.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        texts,
        [
            "/boxwatch",
            "/boxwatch/r1",
            "/boxwatch/r1/c1",
            "/boxwatch/r1/c2",
            "/boxwatch/r2",
            "/boxwatch/r2/c3",
        ]
    );
    assert_eq!(walked.unreadable.len(), 1, "{:?}", walked.unreadable);
    assert_eq!(walked.unreadable[0].dir, locked);
    assert!(
        walked.unreadable[0].error.contains("Permission denied"),
        "{}",
        walked.unreadable[0]
    );
    // An unreadable starting point: nothing found, one unreadable dir.
    assert!(at_locked.cgroups.is_empty());
    assert_eq!(at_locked.unreadable.len(), 1);
    // With the capability back, everything is found.
    let all = l.list_subtree(&cg("/boxwatch"), 100).unwrap();
    assert_eq!(all.cgroups.len(), 8);
    assert!(all.unreadable.is_empty());
}

/// Every directory below `dir`, as cgroup paths under `prefix`, listed
/// with plain std::fs (no link-count shortcuts): the walk's reference.
fn reference_walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    out.push(prefix.to_string());
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            let name = e.file_name().into_string().unwrap();
            reference_walk(&e.path(), &format!("{prefix}/{name}"), out);
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Leaves are known from their link count and not listed; a directory
    /// stops listing once it has found all its subdirectories. Whatever the
    /// shape (deep chains, wide fan-outs, control files next to children),
    /// the walk finds exactly the directories a plain listing finds.
    #[test]
    fn the_walk_finds_every_cgroup_whatever_the_tree_shape(
        paths in proptest::collection::vec(
            proptest::collection::vec("[a-e]", 1..5),
            0..40,
        ),
        files in proptest::collection::vec(("[a-e]{1,3}", "[a-z]{1,8}\\.[a-z_]{1,10}"), 0..30),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let t = FakeTree::new(dir.path()).v2(&["cpu", "memory", "pids"]).build().unwrap();
        t.mkdir("", "/boxwatch").unwrap();
        for p in &paths {
            t.mkdir("", &format!("/boxwatch/{}", p.join("/"))).unwrap();
        }
        // Control files in some cgroups, as cgroupfs has next to children.
        for (cgroup, file) in &files {
            let dir = t.mkdir("", &format!("/boxwatch/{}", cgroup.chars().map(String::from).collect::<Vec<_>>().join("/"))).unwrap();
            std::fs::write(dir.join(file), "0\n").unwrap();
        }
        let mut expected = Vec::new();
        let top = t.mkdir("", "/boxwatch").unwrap();
        reference_walk(&top, "/boxwatch", &mut expected);
        expected.sort();
        let walked = t.host().layout().unwrap().list_subtree(&cg("/boxwatch"), 10_000).unwrap();
        let mut got: Vec<String> = walked.cgroups.iter().map(|c| c.as_str().to_string()).collect();
        got.sort();
        proptest::prop_assert_eq!(got, expected);
        proptest::prop_assert!(!walked.truncated);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// A walk through a cache of directories held from the walk before
    /// finds what a walk by name finds, whatever changed in between:
    /// directories made, removed, or removed and made again with other
    /// children.
    #[test]
    fn a_cached_walk_follows_any_change(
        before in proptest::collection::vec(proptest::collection::vec("[a-d]", 1..4), 0..30),
        removed in proptest::collection::vec(proptest::collection::vec("[a-d]", 1..3), 0..6),
        after in proptest::collection::vec(proptest::collection::vec("[a-d]", 1..4), 0..15),
        room in 0usize..40,
    ) {
        use super::{FileBudget, WalkCache};
        let dir = tempfile::tempdir().unwrap();
        let t = FakeTree::new(dir.path()).v2(&["cpu", "memory", "pids"]).build().unwrap();
        let l = t.host().layout().unwrap();
        let h = l.v2().unwrap();
        let root = cg("/boxwatch");
        let budget = FileBudget::new(room);
        let mut cache = WalkCache::new(&budget);
        t.mkdir("", "/boxwatch").unwrap();
        for p in &before {
            t.mkdir("", &format!("/boxwatch/{}", p.join("/"))).unwrap();
        }
        for _ in 0..2 {
            let cached = l.list_subtree_cached(h, &root, 10_000, &mut cache).unwrap();
            proptest::prop_assert_eq!(cached, l.list_subtree_in(h, &root, 10_000).unwrap());
        }
        proptest::prop_assert!(budget.open_files() <= room);
        for p in &removed {
            let d = t.mkdir("", &format!("/boxwatch/{}", p.join("/"))).unwrap();
            std::fs::remove_dir_all(d).unwrap();
        }
        for p in &after {
            t.mkdir("", &format!("/boxwatch/{}", p.join("/"))).unwrap();
        }
        let cached = l.list_subtree_cached(h, &root, 10_000, &mut cache).unwrap();
        proptest::prop_assert_eq!(cached, l.list_subtree_in(h, &root, 10_000).unwrap());
        proptest::prop_assert_eq!(budget.open_files(), cache.len());
    }
}

#[test]
fn a_cgroup_missing_from_one_hierarchy_is_named_not_taken_for_absent() {
    let dir = tempfile::tempdir().unwrap();
    let t = hybrid_tree(dir.path());
    let l = t.host().layout().unwrap();
    let s = l.stats(&cg("/boxwatch/r1/c1")).unwrap();
    assert!(s.missing_dirs.is_empty(), "{:?}", s.missing_dirs);
    // The container was never placed in a pids cgroup.
    std::fs::remove_dir_all(dir.path().join("sys/fs/cgroup/pids/boxwatch/r1/c1")).unwrap();
    let s = l.stats(&cg("/boxwatch/r1/c1")).unwrap();
    assert_eq!(s.pids_current, None);
    assert_eq!(
        s.missing_dirs,
        vec![dir.path().join("sys/fs/cgroup/pids/boxwatch/r1/c1")]
    );
    assert_eq!(s.cpu_usage_ns, Some(3_000_000_000));
}
