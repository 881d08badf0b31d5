//! probes::host on the real kernel: a cgroup this test creates (under
//! `boxwatch/probes-test-<pid>-...`, removed by a Drop guard), a spinning
//! child in it, and the figures the reader gets back. Needs root; under
//! CI=true a missing prerequisite fails instead of skipping.

use probes::host::{CgroupMode, CgroupPath, CgroupVersion, Host, Limit};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::Duration;

/// Held while a test creates its cgroup or removes it with the shared
/// `/boxwatch` parent, so one test's removal never races another's mkdir.
static PARENT: Mutex<()> = Mutex::new(());

fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() && std::path::Path::new("/sys/fs/cgroup").is_dir() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs root and a cgroup filesystem; CI=true forbids skipping it"
    );
    eprintln!("skipping {test}: needs root and /sys/fs/cgroup");
    false
}

/// A cgroup made by this test in every hierarchy the stats use; removed
/// (children killed first) when dropped.
struct TestCgroup {
    path: CgroupPath,
    dirs: Vec<(CgroupVersion, PathBuf)>,
    child: Option<Child>,
}

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        let layout = Host::new().layout().unwrap();
        let path = CgroupPath::new(&format!(
            "/boxwatch/probes-test-{}-{name}",
            std::process::id()
        ))
        .unwrap();
        let mut dirs = Vec::new();
        let _parent = PARENT.lock().unwrap_or_else(|e| e.into_inner());
        for h in layout.stat_hierarchies() {
            // cpuset children need cpus/mems before they accept tasks; this
            // test reads cpuset but never moves a task there.
            let dir = h.dir(&path);
            if std::fs::create_dir_all(&dir).is_ok() {
                dirs.push((h.version, dir));
            }
        }
        assert!(!dirs.is_empty(), "could not create {path} anywhere");
        TestCgroup {
            path,
            dirs,
            child: None,
        }
    }

    fn write(&self, file: &str, text: &str) -> bool {
        self.dirs
            .iter()
            .any(|(_, d)| d.join(file).exists() && std::fs::write(d.join(file), text).is_ok())
    }

    /// Starts a spin loop and moves it into the cpu, cpuacct, memory and
    /// pids directories (v2: the one directory).
    fn spawn_spinner(&mut self) -> i32 {
        let child = Command::new("/bin/sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        self.child = Some(child);
        for (_, d) in &self.dirs {
            if d.to_string_lossy().contains("cpuset") {
                continue;
            }
            let _ = std::fs::write(d.join("cgroup.procs"), pid.to_string());
        }
        pid
    }

    fn stop_child(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Removes the test's cgroup, then the `/boxwatch` parent where no
    /// other cgroup is left in it: the test leaves nothing behind.
    fn remove(&mut self) {
        self.stop_child();
        let _parent = PARENT.lock().unwrap_or_else(|e| e.into_inner());
        for (_, d) in self.dirs.drain(..) {
            for _ in 0..50 {
                if std::fs::remove_dir(&d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(parent) = d.parent() {
                let _ = std::fs::remove_dir(parent); // fails while others use it
            }
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

#[test]
fn stats_of_a_real_cgroup_with_a_spinning_child() {
    if !root_or_skip("stats_of_a_real_cgroup_with_a_spinning_child") {
        return;
    }
    let host = Host::new();
    let layout = host.layout().unwrap();
    let mut cg = TestCgroup::new("spin");
    let v2 = layout.mode() == CgroupMode::V2;
    if v2 {
        cg.write("cpu.max", "20000 100000");
        cg.write("pids.max", "64");
    } else {
        cg.write("cpu.cfs_period_us", "100000");
        cg.write("cpu.cfs_quota_us", "20000");
        cg.write("pids.max", "64");
    }
    let pid = cg.spawn_spinner();
    std::thread::sleep(Duration::from_millis(500));

    let s = layout.stats(&cg.path).unwrap();
    assert!(s.cpu_usage_ns.unwrap() > 0, "{s:?}");
    if layout.hierarchy_for("cpu").is_some() {
        assert_eq!(s.cpu_max.and_then(|m| m.cores()), Some(0.2), "{s:?}");
        assert!(s.cpu_nr_periods.unwrap() > 0, "{s:?}");
        assert!(s.cpu_nr_throttled.unwrap() > 0, "{s:?}");
        assert!(s.cpu_throttled_ns.unwrap() > 0, "{s:?}");
    }
    if layout.hierarchy_for("pids").is_some() {
        assert_eq!(s.pids_current, Some(1), "{s:?}");
        assert_eq!(s.pids_max, Some(Limit::Value(64)), "{s:?}");
    }
    if layout.hierarchy_for("memory").is_some() {
        assert!(s.memory_usage_bytes.is_some(), "{s:?}");
        assert_eq!(s.memory_limit, Some(Limit::Unlimited), "{s:?}");
        assert_eq!(s.oom_kills, Some(0), "{s:?}");
    }

    // The host view finds the child in that cgroup, in its own namespaces.
    assert_eq!(
        host.pid_cgroup(&layout, pid, "cpuacct").unwrap(),
        Some(cg.path.clone())
    );
    let me = std::process::id() as i32;
    assert_eq!(
        host.ns_inode(pid, "pid").unwrap(),
        host.ns_inode(me, "pid").unwrap()
    );
    let walk = layout.list_subtree(&cg.path, 10).unwrap();
    assert_eq!(walk.cgroups, vec![cg.path.clone()]);

    // Gone: a clean error, not a panic.
    cg.remove();
    assert!(matches!(
        layout.stats(&cg.path),
        Err(probes::Error::CgroupNotFound(_))
    ));
    assert!(matches!(
        host.ns_inode(pid, "pid"),
        Err(probes::Error::NoSuchProcess(_))
    ));
}

#[test]
fn detect_matches_proc_self_cgroup() {
    if !root_or_skip("detect_matches_proc_self_cgroup") {
        return;
    }
    let host = Host::new();
    let layout = host.layout().unwrap();
    let entries = host.pid_cgroups(std::process::id() as i32).unwrap();
    // Every v1 hierarchy with controllers appears in /proc/self/cgroup.
    for h in layout.v1_hierarchies() {
        assert!(
            entries.iter().any(|e| e.controllers == h.controllers),
            "{:?} missing from /proc/self/cgroup",
            h.controllers
        );
    }
    if layout.v2().is_some() {
        assert!(entries.iter().any(|e| e.hierarchy_id == 0));
    }
}

#[test]
fn stats_survive_cgroups_vanishing_during_reads() {
    if !root_or_skip("stats_survive_cgroups_vanishing_during_reads") {
        return;
    }
    let layout = Host::new().layout().unwrap();
    let mut cg = TestCgroup::new("vanish");
    let path = cg.path.clone();
    let reader = std::thread::spawn(move || {
        let mut results = (0, 0);
        for _ in 0..2000 {
            match layout.stats(&path) {
                Ok(_) => results.0 += 1,
                Err(probes::Error::CgroupNotFound(_)) => results.1 += 1,
                Err(e) => panic!("unexpected error while the cgroup vanished: {e}"),
            }
        }
        results
    });
    std::thread::sleep(Duration::from_millis(2));
    cg.remove();
    let (ok, gone) = reader.join().unwrap();
    assert_eq!(ok + gone, 2000);
}

#[test]
fn stats_cache_follows_a_real_cgroup_until_it_goes() {
    if !root_or_skip("stats_cache_follows_a_real_cgroup_until_it_goes") {
        return;
    }
    let layout = Host::new().layout().unwrap();
    let mut cg = TestCgroup::new("cache");
    cg.spawn_spinner();
    let mut cache = probes::host::StatsCache::new(probes::host::Controllers::ALL, 100);
    let first = cache
        .stats(&layout, &cg.path)
        .unwrap()
        .cpu_usage_ns
        .unwrap();
    cache.sweep();
    std::thread::sleep(Duration::from_millis(200));
    let second = cache
        .stats(&layout, &cg.path)
        .unwrap()
        .cpu_usage_ns
        .unwrap();
    assert!(
        second > first,
        "held files must give fresh values: {first} then {second}"
    );
    assert!(cache.open_files() > 0);
    cg.remove();
    assert!(matches!(
        cache.stats(&layout, &cg.path),
        Err(probes::Error::CgroupNotFound(_))
    ));
}

/// The limits a held cgroup is given, written in its v1 or v2 files.
fn limit(cg: &TestCgroup, v2: bool, quota_us: u64, memory: u64, pids: u64) {
    if v2 {
        assert!(cg.write("cpu.max", &format!("{quota_us} 100000")));
    } else {
        assert!(cg.write("cpu.cfs_period_us", "100000"));
        assert!(cg.write("cpu.cfs_quota_us", &quota_us.to_string()));
    }
    let memory_file = if v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert!(cg.write(memory_file, &memory.to_string()));
    assert!(cg.write("pids.max", &pids.to_string()));
}

#[test]
fn held_files_see_new_limits_and_a_cgroup_made_again() {
    if !root_or_skip("held_files_see_new_limits_and_a_cgroup_made_again") {
        return;
    }
    use probes::host::{Controllers, FileBudget, HeldCgroup, StatsReader};
    let layout = Host::new().layout().unwrap();
    let v2 = layout.mode() == CgroupMode::V2;
    let has_all = ["cpu", "memory", "pids"]
        .iter()
        .all(|c| layout.hierarchy_for(c).is_some());
    if !has_all {
        eprintln!("skipping: the cpu, memory and pids controllers are not all mounted");
        return;
    }
    let which = Controllers {
        cpu: true,
        memory: true,
        pids: true,
        cpuset: false,
        io: false,
    };
    let mut cg = TestCgroup::new("held");
    limit(&cg, v2, 20_000, 64 << 20, 64);
    let budget = FileBudget::new(100);
    let mut held = HeldCgroup::new(cg.path.clone(), &budget);
    let mut reader = StatsReader::new(which);
    let figures = |s: &probes::host::CgroupStats| {
        (
            s.cpu_max.and_then(|m| m.cores()),
            s.memory_limit,
            s.pids_max,
        )
    };
    let s = reader.stats(&layout, &mut held).unwrap();
    assert_eq!(
        figures(&s),
        (
            Some(0.2),
            Some(Limit::Value(64 << 20)),
            Some(Limit::Value(64))
        )
    );
    assert!(held.open_files() >= 6, "{} files held", held.open_files());
    assert_eq!(budget.open_files(), held.open_files());

    // New limits: the next read through the held files sees them.
    limit(&cg, v2, 30_000, 32 << 20, 32);
    let s = reader.stats(&layout, &mut held).unwrap();
    assert_eq!(
        figures(&s),
        (
            Some(0.3),
            Some(Limit::Value(32 << 20)),
            Some(Limit::Value(32))
        )
    );

    // Removed and made again under the same name: the held files belong
    // to the removed directories; the read gets the new cgroup's figures.
    let path = cg.path.clone();
    cg.remove();
    let again = TestCgroup::new("held");
    assert_eq!(again.path, path);
    limit(&again, v2, 50_000, 16 << 20, 16);
    let s = reader.stats(&layout, &mut held).unwrap();
    assert_eq!(
        figures(&s),
        (
            Some(0.5),
            Some(Limit::Value(16 << 20)),
            Some(Limit::Value(16))
        )
    );
    drop(held);
    assert_eq!(
        budget.open_files(),
        0,
        "dropping a held cgroup closes its files"
    );
    drop(again);
}

#[test]
fn stat_files_are_what_the_stats_read() {
    if !root_or_skip("stat_files_are_what_the_stats_read") {
        return;
    }
    use probes::host::Controllers;
    let layout = Host::new().layout().unwrap();
    let cg = TestCgroup::new("files");
    let which = Controllers {
        cpu: true,
        memory: true,
        pids: true,
        cpuset: false,
        io: false,
    };
    let files = layout.stat_files(&cg.path, which).unwrap();
    for f in &files {
        assert!(f.is_file(), "{}", f.display());
        assert!(f.starts_with("/sys/fs/cgroup"), "{}", f.display());
    }
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    if layout.hierarchy_for("pids").is_some() {
        assert!(names.contains(&"pids.max".to_string()), "{names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("cpuset.")), "{names:?}");
}

#[test]
fn reads_beyond_the_file_budget_match_fresh_reads() {
    if !root_or_skip("reads_beyond_the_file_budget_match_fresh_reads") {
        return;
    }
    use probes::host::{Controllers, FileBudget, HeldCgroup, StatsReader};
    let layout = Host::new().layout().unwrap();
    let cg = TestCgroup::new("unheld");
    let which = Controllers {
        cpu: true,
        memory: true,
        pids: true,
        cpuset: false,
        io: false,
    };
    // No task in the cgroup: its figures stay put between the two reads.
    let budget = FileBudget::new(0);
    let mut held = HeldCgroup::new(cg.path.clone(), &budget);
    let mut reader = StatsReader::new(which);
    for _ in 0..2 {
        assert_eq!(
            reader.stats(&layout, &mut held).unwrap(),
            layout.stats_of(&cg.path, which).unwrap()
        );
    }
    assert_eq!(held.open_files(), 0);
    drop(cg);
    assert!(matches!(
        reader.stats(&layout, &mut held),
        Err(probes::Error::CgroupNotFound(_))
    ));
}

#[test]
fn a_cached_walk_of_real_cgroups_follows_changes() {
    if !root_or_skip("a_cached_walk_of_real_cgroups_follows_changes") {
        return;
    }
    use probes::host::{FileBudget, WalkCache};
    let layout = Host::new().layout().unwrap();
    let h = layout.hierarchy_for("pids").unwrap();
    let cg = TestCgroup::new("walk");
    let dir = h.dir(&cg.path);
    for i in 0..5 {
        std::fs::create_dir(dir.join(format!("c{i}"))).unwrap();
    }
    let budget = FileBudget::new(100);
    let mut cache = WalkCache::new(&budget);
    let walk = |cache: &mut WalkCache| {
        let cached = layout.list_subtree_cached(h, &cg.path, 100, cache).unwrap();
        assert_eq!(cached, layout.list_subtree_in(h, &cg.path, 100).unwrap());
        cached.cgroups.len()
    };
    assert_eq!(walk(&mut cache), 6);
    assert_eq!(cache.len(), 5);
    assert_eq!(walk(&mut cache), 6);
    // c0 gets a child; c1 is removed and made again with one.
    std::fs::create_dir(dir.join("c0/sub")).unwrap();
    std::fs::remove_dir(dir.join("c1")).unwrap();
    std::fs::create_dir(dir.join("c1")).unwrap();
    std::fs::create_dir(dir.join("c1/sub")).unwrap();
    assert_eq!(walk(&mut cache), 8);
    for d in ["c0/sub", "c1/sub", "c0", "c1", "c2", "c3", "c4"] {
        std::fs::remove_dir(dir.join(d)).unwrap();
    }
    assert_eq!(walk(&mut cache), 1);
    assert_eq!(budget.open_files(), 0);
    drop(cg);
}
