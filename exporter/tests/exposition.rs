//! The exposition of fixed fake cgroup trees (v2 and hybrid v1), in both
//! formats: insta snapshots, checked by the real promtool.

mod common;

use common::*;
use exporter::Format;
use probes::host::fake::FakeTree;

/// A pure v2 tree: a limited container, an unlimited one, and cgroups
/// whose names need escaping.
fn v2_tree(dir: &std::path::Path) -> FakeTree {
    let t = FakeTree::new(dir)
        .v2(&["cpuset", "cpu", "memory", "pids", "io"])
        .build()
        .unwrap();
    let c = "/boxwatch/run-1/spin";
    t.write("", c, "cpu.stat", "usage_usec 2500000\nuser_usec 2400000\nsystem_usec 100000\nnr_periods 50\nnr_throttled 40\nthrottled_usec 3900000\n").unwrap();
    t.write("", c, "cpu.max", "20000 100000\n").unwrap();
    t.write("", c, "memory.current", "1048576\n").unwrap();
    t.write("", c, "memory.max", "67108864\n").unwrap();
    t.write("", c, "memory.peak", "2097152\n").unwrap();
    t.write(
        "",
        c,
        "memory.events",
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
    )
    .unwrap();
    t.write("", c, "pids.current", "2\n").unwrap();
    t.write("", c, "pids.max", "64\n").unwrap();
    t.write("", c, "cpuset.cpus.effective", "0-1\n").unwrap();
    t.write("", c, "cpu.max.burst", "10000\n").unwrap();
    t.write("", c, "memory.high", "50331648\n").unwrap();
    t.write("", c, "memory.swap.current", "0\n").unwrap();
    t.write(
        "",
        c,
        "memory.stat",
        "anon 786432\nfile 262144\nactive_file 131072\ninactive_file 65536\n",
    )
    .unwrap();
    let psi = "some avg10=1.50 avg60=0.40 avg300=0.10 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=125000\n";
    for f in ["cpu.pressure", "memory.pressure", "io.pressure"] {
        t.write("", c, f, psi).unwrap();
    }
    t.write(
        "",
        c,
        "io.stat",
        "254:0 rbytes=1048576 wbytes=4096 rios=16 wios=1 dbytes=0 dios=0\n",
    )
    .unwrap();
    let free = "/boxwatch/run-1/free";
    t.write("", free, "cpu.stat", "usage_usec 10\n").unwrap();
    t.write("", free, "cpu.max", "max 100000\n").unwrap();
    t.write("", free, "memory.max", "max\n").unwrap();
    t.write("", free, "pids.max", "max\n").unwrap();
    let odd = "/boxwatch/we\"ird\\name\nline ü";
    t.write("", odd, "cpu.stat", "usage_usec 1\n").unwrap();
    t.write("", "/other/x", "cpu.stat", "usage_usec 7\n")
        .unwrap();
    t
}

fn hybrid_tree(dir: &std::path::Path) -> FakeTree {
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
    let c = "/boxwatch/run-2/c1";
    t.write("cpuacct", c, "cpuacct.usage", "1500000000\n")
        .unwrap();
    t.write(
        "cpu",
        c,
        "cpu.stat",
        "nr_periods 10\nnr_throttled 8\nthrottled_time 640000000\nnr_bursts 0\nburst_time 0\n",
    )
    .unwrap();
    t.write("cpu", c, "cpu.cfs_quota_us", "50000\n").unwrap();
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
    t.write("memory", c, "memory.failcnt", "0\n").unwrap();
    t.write(
        "memory",
        c,
        "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    )
    .unwrap();
    t.write("pids", c, "pids.current", "1\n").unwrap();
    t.write("pids", c, "pids.max", "max\n").unwrap();
    t.write("cpuset", c, "cpuset.effective_cpus", "1\n")
        .unwrap();
    t.write("cpu", c, "cpu.cfs_burst_us", "0\n").unwrap();
    t.write(
        "memory",
        c,
        "memory.stat",
        "cache 8192\ninactive_file 4096\ntotal_cache 8192\ntotal_inactive_file 1024\n",
    )
    .unwrap();
    t
}

#[test]
fn v2_tree_text_and_openmetrics() {
    let dir = tempfile::tempdir().unwrap();
    v2_tree(dir.path());
    let args = fake_args(dir.path(), &[]);
    let text = scrape(&args, Format::Text);
    let om = scrape(&args, Format::OpenMetrics);
    insta::assert_snapshot!("v2_text", redact(&text));
    insta::assert_snapshot!("v2_openmetrics", redact(&om));
    // Default root /boxwatch only: /other is not exported.
    assert!(!text.contains("/other"));
    assert_eq!(value_of(&text, "boxwatch_exporter_cgroups "), Some(5.0));
    check_text("v2_tree_text_and_openmetrics", &text);
    check_openmetrics("v2_tree_text_and_openmetrics", &om);
}

#[test]
fn hybrid_tree_text_and_openmetrics() {
    let dir = tempfile::tempdir().unwrap();
    hybrid_tree(dir.path());
    let args = fake_args(dir.path(), &["/boxwatch/run-2"]);
    let text = scrape(&args, Format::Text);
    let om = scrape(&args, Format::OpenMetrics);
    insta::assert_snapshot!("hybrid_text", redact(&text));
    insta::assert_snapshot!("hybrid_openmetrics", redact(&om));
    check_text("hybrid_tree_text_and_openmetrics", &text);
    check_openmetrics("hybrid_tree_text_and_openmetrics", &om);
}

#[test]
fn several_roots_and_the_cgroup_bound() {
    let dir = tempfile::tempdir().unwrap();
    v2_tree(dir.path());
    // Overlapping roots are exported once.
    let args = fake_args(dir.path(), &["/boxwatch", "/boxwatch/run-1", "/other"]);
    let union = scrape(&args, Format::Text);
    assert_eq!(value_of(&union, "boxwatch_exporter_cgroups "), Some(7.0));
    assert_eq!(
        value_of(&union, "boxwatch_exporter_cgroups_truncated "),
        Some(0.0)
    );
    assert!(union.contains("cgroup=\"/other/x\""));
    let mut args = args;
    args.max_cgroups = 3;
    let text = scrape(&args, Format::Text);
    assert_eq!(value_of(&text, "boxwatch_exporter_cgroups "), Some(3.0));
    assert_eq!(
        value_of(&text, "boxwatch_exporter_cgroups_truncated "),
        Some(1.0)
    );
    let truncated = text;
    // A root that does not exist is simply empty.
    let empty = scrape(&fake_args(dir.path(), &["/nope"]), Format::Text);
    assert_eq!(value_of(&empty, "boxwatch_exporter_cgroups "), Some(0.0));
    assert!(!empty.contains("cgroup=\""));
    check_text("several_roots_and_the_cgroup_bound", &union);
    check_text("several_roots_and_the_cgroup_bound", &truncated);
    check_text("several_roots_and_the_cgroup_bound", &empty);
}

#[test]
fn unreadable_files_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    t.write("", "/boxwatch/broken", "memory.max", "garbage\n")
        .unwrap();
    let text = scrape(&fake_args(dir.path(), &[]), Format::Text);
    assert_eq!(
        value_of(&text, "boxwatch_exporter_cgroup_read_errors_total "),
        Some(1.0)
    );
    assert!(!text.contains("/boxwatch/broken\""));
    assert!(text.contains("cgroup=\"/boxwatch/run-1/spin\""));
    check_text("unreadable_files_are_counted_not_fatal", &text);
}

#[test]
fn verdicts_from_the_latest_report() {
    let dir = tempfile::tempdir().unwrap();
    v2_tree(dir.path());
    let report = dir.path().join("report.json");
    std::fs::write(
        &report,
        r#"{"generated_at": "2026-11-22T10:00:00Z", "scenarios": [
            {"id": "cpu-quota-20", "checks": [{"id": "usage-within-quota", "verdict": "enforced"}]},
            {"id": "proc-view", "checks": [{"id": "meminfo", "verdict": "leaked"},
                                           {"id": "nproc", "verdict": "isolated"}]}]}"#,
    )
    .unwrap();
    let mut args = fake_args(dir.path(), &["/nope"]);
    args.report = Some(report.clone());
    let text = scrape(&args, Format::Text);
    let om = scrape(&args, Format::OpenMetrics);
    insta::assert_snapshot!("verdicts_text", redact(&text));
    assert_eq!(value_of(&text, "boxwatch_report_up "), Some(1.0));
    assert_eq!(
        value_of(&text, "boxwatch_report_generated_timestamp_seconds "),
        Some(1_795_341_600.0)
    );
    check_text("verdicts_from_the_latest_report", &text);
    check_openmetrics("verdicts_from_the_latest_report", &om);
    std::fs::write(&report, "{ not json").unwrap();
    let text = scrape(&args, Format::Text);
    assert_eq!(value_of(&text, "boxwatch_report_up "), Some(0.0));
    assert_eq!(
        value_of(&text, "boxwatch_report_errors_total{reason=\"invalid\"} "),
        Some(1.0)
    );
    assert!(!text.contains("boxwatch_check_verdict{"));
    check_text("verdicts_from_the_latest_report", &text);
}

#[test]
fn cgroups_appearing_and_vanishing_during_scrapes() {
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (t, stop) = (t.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let cg = format!("/boxwatch/churn/c{}", i % 20);
                let d = t.mkdir("", &cg).unwrap();
                let _ = std::fs::write(d.join("cpu.stat"), "usage_usec 5\n");
                let _ = std::fs::write(d.join("memory.max"), "max\n");
                if i.is_multiple_of(3) {
                    let _ = std::fs::remove_dir_all(&d);
                }
                i += 1;
            }
        })
    };
    let args = fake_args(dir.path(), &[]);
    let exporter = exporter::build(&args).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut texts = Vec::new();
    for _ in 0..200 {
        let s = rt.block_on(exporter.scrape());
        let text = String::from_utf8(s.body(Format::Text).to_vec()).unwrap();
        assert!(text.contains("boxwatch_exporter_cgroups "));
        // Files written half-way (empty) may be parse errors; never a panic.
        texts.push(text);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
    // Every exposition is valid, whatever the churn left half-made (checked
    // after the churn stopped, so promtool does not compete with it).
    for text in &texts {
        check_text("cgroups_appearing_and_vanishing_during_scrapes", text);
    }
}

#[test]
fn walking_only_the_cpu_hierarchy() {
    let dir = tempfile::tempdir().unwrap();
    let t = hybrid_tree(dir.path());
    t.write("pids", "/boxwatch/run-2/only-pids", "pids.current", "1\n")
        .unwrap();
    let mut args = fake_args(dir.path(), &["/boxwatch/run-2"]);
    let union = scrape(&args, Format::Text);
    assert!(union.contains("cgroup=\"/boxwatch/run-2/only-pids\""));
    args.walk = exporter::WalkMode::Cpu;
    let cpu = scrape(&args, Format::Text);
    assert!(!cpu.contains("only-pids"));
    assert_eq!(value_of(&cpu, "boxwatch_exporter_cgroups "), Some(2.0));
    check_text("walking_only_the_cpu_hierarchy", &union);
    check_text("walking_only_the_cpu_hierarchy", &cpu);
}

/// Creates cgroup directory `rel` (bytes, below the v2 mount) with a
/// `cpu.stat` giving `usec` of CPU.
fn raw_cgroup(t: &FakeTree, rel: &[u8], usec: u64) {
    use std::os::unix::ffi::OsStrExt;
    let d = t
        .mkdir("", "/")
        .unwrap()
        .join(std::ffi::OsStr::from_bytes(rel));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("cpu.stat"), format!("usage_usec {usec}\n")).unwrap();
}

#[test]
fn names_that_are_not_utf8_get_escaped_labels() {
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    raw_cgroup(&t, b"boxwatch/odd/a\xff", 1);
    raw_cgroup(&t, b"boxwatch/odd/a\xfe", 2);
    raw_cgroup(&t, b"boxwatch/odd/a\\\xff", 3);
    raw_cgroup(&t, b"boxwatch/odd/sys\\x2dtem\xc3", 4);
    let text = scrape(&fake_args(dir.path(), &["/boxwatch/odd"]), Format::Text);
    // Each name has its own series, its value from its own directory; in
    // the exposition a label's `\` is itself escaped as `\\`.
    let usage = "boxwatch_cgroup_cpu_usage_seconds_total{cgroup=";
    for (label, usec) in [
        (r#""/boxwatch/odd/a\\xff"}"#, 1e-6),
        (r#""/boxwatch/odd/a\\xfe"}"#, 2e-6),
        (r#""/boxwatch/odd/a\\x5c\\xff"}"#, 3e-6),
        (r#""/boxwatch/odd/sys\\x5cx2dtem\\xc3"}"#, 4e-6),
    ] {
        assert_eq!(
            value_of(&text, &format!("{usage}{label}")),
            Some(usec),
            "{label}\n{text}"
        );
    }
    assert_eq!(value_of(&text, "boxwatch_exporter_cgroups "), Some(5.0));
    assert_eq!(
        value_of(&text, "boxwatch_exporter_cgroup_read_errors_total "),
        Some(0.0)
    );
    let om = scrape(
        &fake_args(dir.path(), &["/boxwatch/odd"]),
        Format::OpenMetrics,
    );
    check_text("names_that_are_not_utf8_get_escaped_labels", &text);
    check_openmetrics("names_that_are_not_utf8_get_escaped_labels", &om);

    // A UTF-8 sibling spelling out an escaped label keeps it; the cgroup
    // whose bytes escape to it is left out and counted.
    raw_cgroup(&t, br"boxwatch/odd/a\xff", 9);
    let text = scrape(&fake_args(dir.path(), &["/boxwatch/odd"]), Format::Text);
    assert_eq!(
        value_of(&text, &format!(r#"{usage}"/boxwatch/odd/a\\xff"}}"#)),
        Some(9e-6),
        "{text}"
    );
    assert_eq!(value_of(&text, "boxwatch_exporter_cgroups "), Some(5.0));
    assert_eq!(
        value_of(&text, "boxwatch_exporter_cgroup_read_errors_total "),
        Some(1.0)
    );
    check_text("names_that_are_not_utf8_get_escaped_labels", &text);
}

#[test]
fn an_unreadable_subtree_is_skipped_and_counted() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    t.write("", "/boxwatch/run-2/locked/c", "cpu.stat", "usage_usec 1\n")
        .unwrap();
    t.write("", "/boxwatch/run-3/c", "cpu.stat", "usage_usec 1\n")
        .unwrap();
    let locked = t.mkdir("", "/boxwatch/run-2/locked").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let args = fake_args(dir.path(), &[]);
    // Root reads through mode 000; a thread without CAP_DAC_OVERRIDE and
    // CAP_DAC_READ_SEARCH (capabilities are per thread, and the scrape's
    // threads are started by this one) gets EACCES like any other user.
    let text = std::thread::scope(|s| {
        s.spawn(|| {
            caps::clear(None, caps::CapSet::Effective).expect("dropping capabilities");
            scrape(&args, Format::Text)
        })
        .join()
        .unwrap()
    });
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Everything but the locked subtree: the v2 tree's 5, run-2, run-3 and
    // run-3/c.
    assert_eq!(
        value_of(&text, "boxwatch_exporter_cgroups "),
        Some(8.0),
        "{text}"
    );
    assert!(!text.contains("locked"));
    assert!(text.contains("cgroup=\"/boxwatch/run-3/c\""));
    assert!(text.contains("cgroup=\"/boxwatch/run-1/spin\""));
    assert_eq!(
        value_of(&text, "boxwatch_exporter_cgroup_read_errors_total "),
        Some(1.0)
    );
    check_text("an_unreadable_subtree_is_skipped_and_counted", &text);
}

#[test]
fn an_unreadable_layout_is_counted() {
    // No mountinfo at all: no cgroup can be found, and the scrape says so.
    let dir = tempfile::tempdir().unwrap();
    let text = scrape(&fake_args(dir.path(), &[]), Format::Text);
    assert_eq!(
        value_of(&text, "boxwatch_exporter_cgroup_read_errors_total "),
        Some(1.0)
    );
    assert_eq!(value_of(&text, "boxwatch_exporter_cgroups "), Some(0.0));
    assert!(!text.contains("boxwatch_exporter_cgroup_layout_info{"));
    check_text("an_unreadable_layout_is_counted", &text);
}

/// The body the exporter serves (per-cgroup families written from the
/// table) is byte for byte the body of the same collectors registered as
/// plain `prometheus` collectors (every family an object, sorted by the
/// registry, encoded by the encoders), in both formats, with other
/// collectors' families merged in.
#[test]
fn the_direct_body_is_the_registry_body() {
    use exporter::{CgroupCollector, CollectorConfig};
    let dir = tempfile::tempdir().unwrap();
    let t = v2_tree(dir.path());
    raw_cgroup(&t, b"boxwatch/odd/a\xff", 1);
    raw_cgroup(&t, b"boxwatch/odd/a\\\xfe", 2);
    t.write("", "/boxwatch/broken", "memory.max", "garbage\n")
        .unwrap();
    let report = dir.path().join("report.json");
    std::fs::write(
        &report,
        r#"{"generated_at": "2026-11-22T10:00:00Z", "scenarios": [
            {"id": "cpu-quota-20", "checks": [{"id": "usage-within-quota", "verdict": "enforced"}]}]}"#,
    )
    .unwrap();
    let mut args = fake_args(dir.path(), &["/boxwatch", "/other"]);
    args.report = Some(report.clone());
    let direct = exporter::build(&args).unwrap();
    let objects = exporter::Exporter::new(vec![
        Box::new(CgroupCollector::new(CollectorConfig {
            host: probes::host::Host::with_root(dir.path()),
            roots: args.roots().unwrap(),
            max_cgroups: args.max_cgroups,
            walk: args.walk,
            max_open_files: 1000,
            names: args.names.clone(),
        })),
        Box::new(exporter::VerdictCollector::new(report)),
    ])
    .unwrap();
    assert_eq!(direct.metric_names(), objects.metric_names());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for _ in 0..2 {
        let (a, b) = (rt.block_on(direct.scrape()), rt.block_on(objects.scrape()));
        // /boxwatch: 5 of the v2 tree, odd and its two; /other and /other/x;
        // not the broken one.
        assert_eq!(a.cgroups().map(|t| t.len()), Some(10));
        for format in [Format::Text, Format::OpenMetrics] {
            let body = |s: &exporter::Scrape| redact(std::str::from_utf8(&s.body(format)).unwrap());
            let (a, b) = (body(&a), body(&b));
            assert!(
                a.contains("cgroup=\"/boxwatch/odd/a\\\\x5c\\\\xfe\""),
                "{a}"
            );
            assert!(a.contains("boxwatch_check_verdict{"), "{a}");
            assert_eq!(a, b);
        }
    }
}

/// The next scrape renders into the allocation of the last body once
/// nobody holds it; a body still held is never written over.
#[test]
fn a_body_nobody_holds_is_rendered_into_again() {
    let dir = tempfile::tempdir().unwrap();
    v2_tree(dir.path());
    let exporter = exporter::build(&fake_args(dir.path(), &[])).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let first = rt.block_on(exporter.scrape()).body(Format::Text);
    let (at, text) = (first.as_ptr(), redact(std::str::from_utf8(&first).unwrap()));
    drop(first);
    let second = rt.block_on(exporter.scrape()).body(Format::Text);
    assert_eq!(second.as_ptr(), at, "the buffer was not reused");
    assert_eq!(redact(std::str::from_utf8(&second).unwrap()), text);
    // Held (a response still being written): the next body goes elsewhere
    // and the held one stays as it was.
    let before = second.to_vec();
    let third = rt.block_on(exporter.scrape()).body(Format::Text);
    assert_ne!(third.as_ptr(), second.as_ptr());
    assert_eq!(second.to_vec(), before);
    assert_eq!(redact(std::str::from_utf8(&third).unwrap()), text);
}

/// A hybrid tree large enough for the parallel paths (hierarchies walked
/// on threads of their own, cgroups read in shares), with cgroups that
/// exist in some hierarchies only: the second scrape (parallel, as the
/// first found a large tree) exports what the first (sequential) did.
#[test]
fn a_large_tree_read_in_parallel_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let t = hybrid_tree(dir.path());
    for i in 0..300 {
        let c = format!("/boxwatch/run-2/many/c{i}");
        t.write("cpuacct", &c, "cpuacct.usage", &format!("{i}000\n"))
            .unwrap();
        t.write("cpu", &c, "cpu.cfs_quota_us", "-1\n").unwrap();
        t.write("memory", &c, "memory.usage_in_bytes", "4096\n")
            .unwrap();
        if i % 7 == 0 {
            t.write("pids", &format!("{c}/only-pids"), "pids.current", "1\n")
                .unwrap();
        }
    }
    let exporter = exporter::build(&fake_args(dir.path(), &["/boxwatch/run-2"])).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let scrape = || {
        let s = rt.block_on(exporter.scrape());
        String::from_utf8(s.body(Format::Text).to_vec()).unwrap()
    };
    let (first, second) = (scrape(), scrape());
    assert_eq!(redact(&first), redact(&second));
    // run-2, c1, many, 300 cgroups, 43 only in pids.
    assert_eq!(value_of(&second, "boxwatch_exporter_cgroups "), Some(346.0));
    assert!(second.contains("{cgroup=\"/boxwatch/run-2/many/c294/only-pids\"} 1\n"));
    assert!(second.contains(
        "boxwatch_cgroup_cpu_usage_seconds_total{cgroup=\"/boxwatch/run-2/many/c299\"} 0.000299\n"
    ));
    assert_eq!(
        value_of(&second, "boxwatch_exporter_cgroup_read_errors_total "),
        Some(0.0)
    );
    check_text("a_large_tree_read_in_parallel_is_the_same", &second);

    // The next scrape reads the cgroups it knows while it walks: ten of
    // them are gone, ten new ones came, one has a broken file now.
    for i in 0..10 {
        let c = t
            .mkdir("cpuacct", &format!("/boxwatch/run-2/many/c{i}"))
            .unwrap();
        std::fs::remove_dir_all(c).unwrap();
        for m in ["cpu", "memory"] {
            std::fs::remove_dir_all(t.mkdir(m, &format!("/boxwatch/run-2/many/c{i}")).unwrap())
                .unwrap();
        }
        if i % 7 == 0 {
            let p = t
                .mkdir("pids", &format!("/boxwatch/run-2/many/c{i}"))
                .unwrap();
            std::fs::remove_dir_all(p).unwrap();
        }
        let new = format!("/boxwatch/run-2/many/new{i}");
        t.write("cpuacct", &new, "cpuacct.usage", "7\n").unwrap();
    }
    t.write(
        "memory",
        "/boxwatch/run-2/many/c100",
        "memory.usage_in_bytes",
        "x\n",
    )
    .unwrap();
    let third = scrape();
    // 346 - 10 gone - 2 of their only-pids children + 10 new - 1 broken.
    assert_eq!(value_of(&third, "boxwatch_exporter_cgroups "), Some(343.0));
    assert!(!third.contains("many/c0\""));
    assert!(!third.contains("many/c100\""));
    assert!(third.contains(
        "boxwatch_cgroup_cpu_usage_seconds_total{cgroup=\"/boxwatch/run-2/many/new9\"} 0.000000007\n"
    ));
    assert_eq!(
        value_of(&third, "boxwatch_exporter_cgroup_read_errors_total "),
        Some(1.0)
    );
    check_text("a_large_tree_read_in_parallel_is_the_same", &third);
}

#[test]
fn files_per_cgroup_covers_every_file_the_reader_opens() {
    // The open-file budget is sized with FILES_PER_CGROUP: it must not fall
    // behind the files probes reads for one cgroup (a new metric's file).
    for (build, c) in [
        (
            v2_tree as fn(&std::path::Path) -> FakeTree,
            "/boxwatch/run-1/spin",
        ),
        (hybrid_tree, "/boxwatch/run-2/c1"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let _t = build(dir.path());
        let layout = probes::host::Host::with_root(dir.path()).layout().unwrap();
        let files = layout
            .stat_files(&probes::host::CgroupPath::new(c).unwrap(), exporter::READ)
            .unwrap();
        assert!(!files.is_empty());
        assert!(
            files.len() <= exporter::FILES_PER_CGROUP,
            "{} files for {c}: {files:?}",
            files.len()
        );
    }
}

/// Identity labels: Docker, Podman, Kubernetes (systemd driver) and a
/// boxwatch container, with the names Docker and Podman keep on disk, and
/// `boxwatch_container_info` for each container.
#[test]
fn containers_are_labelled_with_who_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let t = FakeTree::new(&dir.path().join("host"))
        .v2(&["cpu", "memory", "pids"])
        .build()
        .unwrap();
    let docker_id = "bfa3bb5f4215878aeaa0e0cbd72d494a18b7e5a5fa316a886f8335e2b939615f";
    let podman_id = "d3e06ff720ca42902646f30453193d29810ed2445094b5e9db66456075837d28";
    let kube_id = "7".repeat(64);
    let kube = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f6a3c1e_29b1_4e4f_9d84_5c6f0ab3d7e2.slice/cri-containerd-{kube_id}.scope"
    );
    let paths = [
        "/docker".to_string(),
        format!("/docker/{docker_id}"),
        "/libpod_parent/conmon".to_string(),
        format!("/libpod_parent/libpod-{podman_id}"),
        kube.clone(),
        "/boxwatch/4242-987654-0/memory-hog".to_string(),
        "/system.slice/sshd.service".to_string(),
    ];
    for p in &paths {
        t.write("", p, "memory.current", "4096\n").unwrap();
    }
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(docker.join("containers").join(docker_id)).unwrap();
    std::fs::write(
        docker
            .join("containers")
            .join(docker_id)
            .join("config.v2.json"),
        r#"{"Name":"/web","Config":{"Image":"x"}}"#,
    )
    .unwrap();
    let storage = dir.path().join("storage");
    std::fs::create_dir_all(storage.join("vfs-containers")).unwrap();
    std::fs::write(
        storage.join("vfs-containers/containers.json"),
        format!(r#"[{{"id":"{podman_id}","names":["db"]}}]"#),
    )
    .unwrap();
    let mut args = fake_args(
        &dir.path().join("host"),
        &[
            "/docker",
            "/libpod_parent",
            "/kubepods.slice",
            "/boxwatch",
            "/system.slice",
        ],
    );
    args.names.docker_data_root = docker;
    args.names.containers_storage = storage;
    let text = scrape(&args, Format::Text);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("boxwatch_cgroup_memory_usage_bytes{")
                || l.starts_with("boxwatch_container_info")
        })
        .collect();
    insta::assert_snapshot!("identity_text", rows.join("\n"));
    assert!(text.contains(&format!(
        "boxwatch_container_info{{cgroup=\"/docker/{docker_id}\",container_id=\"{docker_id}\",engine=\"docker\",name=\"web\"}} 1"
    )));
    assert!(text.contains("name=\"db\""));
    assert!(text.contains(
        "boxwatch_cgroup_memory_usage_bytes{cgroup=\"/system.slice/sshd.service\"} 4096"
    ));
    assert_eq!(
        rows.iter()
            .filter(|l| l.starts_with("boxwatch_container_info"))
            .count(),
        4,
        "docker, podman, kubernetes and boxwatch containers; not conmon nor the parents"
    );
    check_text("containers_are_labelled_with_who_they_are", &text);
    check_openmetrics(
        "containers_are_labelled_with_who_they_are",
        &scrape(&args, Format::OpenMetrics),
    );
}
