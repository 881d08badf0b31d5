//! The loader's tests: good files load with their limits resolved, bad
//! ones are refused with their line and reason.

use super::*;
use crate::expect::Condition;
use proptest::prelude::*;
use reports::Verdict;
use std::path::Path;

const GOOD: &str = r#"
id = "cpu-quota-20"
title = "20% quota"
exclusive = true

[container]
cpu = "0.2"

[workload]
name = "spin"
duration = "5s"

[[expect]]
check = "cpu-share"
metric = "cpu_share"
near = "limit.cpu"
tolerance = 0.02
"#;

fn load(text: &str) -> Entry {
    load_str(Path::new("cat/x.toml"), text)
}

fn refused(text: &str) -> LoadError {
    load(text).expect_err("the file should be refused")
}

#[test]
fn lxcfs_without_the_mount_namespace_is_refused_with_its_line() {
    let text = GOOD.replace(
        "cpu = \"0.2\"",
        "cpu = \"0.2\"\nnamespaces = [\"pid\"]\nlxcfs = true",
    );
    let e = refused(&text);
    assert_eq!(e.line, 9, "{e}");
    assert!(e.reason.contains("add \"mount\" to namespaces"), "{e}");
}

#[test]
fn a_cpu_measuring_scenario_runs_alone_even_when_the_file_forgets_it() {
    let s = load(&GOOD.replace("exclusive = true\n", "")).unwrap();
    assert!(s.exclusive, "a spin scenario must not share the machine");
    let probe = GOOD
        .replace("exclusive = true\n", "")
        .replace(
            "name = \"spin\"\nduration = \"5s\"",
            "name = \"probe-inside\"",
        )
        .replace("metric = \"cpu_share\"", "metric = \"cpu_quota\"");
    assert!(!load(&probe).unwrap().exclusive, "a probe may share it");
}

#[test]
fn a_good_file_loads_with_limits_resolved() {
    let s = load(GOOD).unwrap();
    assert_eq!(s.id, "cpu-quota-20");
    assert!(s.exclusive);
    assert_eq!(
        s.main.workload,
        Workload::Spin {
            threads: 1,
            duration_ms: 5000
        }
    );
    assert_eq!(s.main.container.limits.cpu.unwrap().quota_us(), 20_000);
    let e = &s.expectations[0];
    assert_eq!(
        e.condition,
        Condition::Near {
            target: 0.2,
            tolerance: 0.02
        }
    );
    assert!(e.required);
    assert_eq!((e.pass, e.fail), (Verdict::Enforced, Verdict::NotEnforced));
}

#[test]
fn every_scenario_gets_a_required_placement_check_and_may_not_define_it() {
    let s = load(GOOD).unwrap();
    let p = s.expectations.last().unwrap();
    assert_eq!(
        (p.check.as_str(), p.metric.as_str()),
        ("placement", "placement")
    );
    assert!(p.required);
    assert_eq!((p.pass, p.fail), (Verdict::Enforced, Verdict::NotEnforced));
    let e = refused(&GOOD.replace("check = \"cpu-share\"", "check = \"placement\""));
    assert!(e.reason.contains("reserved"), "{e}");
    assert_eq!(e.line, 14);
    for s in crate::builtin::load().into_iter().map(|e| e.unwrap()) {
        let want: &[&str] = if s.neighbour.is_some() {
            &["placement", "neighbour-placement"]
        } else {
            &["placement"]
        };
        for id in want {
            assert!(
                s.expectations.iter().any(|e| e.check == *id && e.required),
                "{}: no {id}",
                s.id
            );
        }
    }
}

#[test]
fn a_bad_memory_size_is_refused_with_its_line() {
    let text = GOOD.replace("cpu = \"0.2\"", "cpu = \"0.2\"\nmemory = '64Q'");
    let e = refused(&text);
    assert_eq!(e.line, 8, "{e}");
    assert!(e.reason.contains("\"64Q\""), "{e}");
    assert!(
        e.to_string()
            .starts_with("cat/x.toml:8: invalid memory limit"),
        "{e}"
    );
}

#[test]
fn an_unknown_workload_is_refused_with_its_line() {
    let e = refused(&GOOD.replace("name = \"spin\"", "name = \"mine-bitcoin\""));
    assert_eq!(e.line, 10, "{e}");
    assert!(
        e.reason.contains("unknown workload \"mine-bitcoin\""),
        "{e}"
    );
    assert!(e.reason.contains("fork-bomb"), "{e}");
}

#[test]
fn a_zero_quota_is_refused_with_its_line() {
    for zero in ["cpu = 0", "cpu = \"0\"", "cpu = 0.0"] {
        let e = refused(&GOOD.replace("cpu = \"0.2\"", zero));
        assert_eq!(e.line, 7, "{zero}: {e}");
        assert!(e.reason.contains("invalid cpu quota"), "{e}");
    }
    let e = refused(&GOOD.replace("cpu = \"0.2\"", "cpu = \"0.2\"\npids = 0"));
    assert_eq!(e.line, 8);
    assert!(e.reason.contains("pids"), "{e}");
}

#[test]
fn a_spin_without_a_cpu_limit_is_refused() {
    let e = refused(&GOOD.replace("cpu = \"0.2\"", "memory = \"64M\""));
    assert!(e.reason.contains("must not run without a limit"), "{e}");
    assert_eq!(e.line, 10);
}

#[test]
fn syntax_errors_and_unknown_keys_have_lines() {
    let e = refused(&GOOD.replace("exclusive = true", "exclusive = tru"));
    assert_eq!(e.line, 4, "{e}");
    let e = refused(&GOOD.replace("exclusive = true", "exclusiv = true"));
    assert_eq!(e.line, 4, "{e}");
    assert!(e.reason.contains("exclusiv"), "{e}");
    let e = refused(&GOOD.replace("duration = \"5s\"", "duration = \"5 parsecs\""));
    assert_eq!(e.line, 11, "{e}");
}

#[test]
fn expectations_are_checked() {
    let e = refused(&GOOD.replace("metric = \"cpu_share\"", "metric = \"cpu_shares\""));
    assert_eq!(e.line, 15);
    assert!(e.reason.contains("unknown metric"), "{e}");
    // A spin scenario naming an inside metric is told it needs probe-inside.
    let e = refused(&GOOD.replace("metric = \"cpu_share\"", "metric = \"inside.pid\""));
    assert!(
        e.reason.ends_with(
            "unknown metric \"inside.pid\" (inside.* metrics need the probe-inside workload, and this scenario runs spin)"
        ),
        "{e}"
    );
    // A probe-inside scenario with a misspelt inside metric is told the
    // ones that exist, not that it needs the workload it already has.
    let probe = "id = \"p\"\ntitle = \"p\"\n[workload]\nname = \"probe-inside\"\n\
                 [[expect]]\ncheck = \"c\"\nmetric = \"inside.pids\"\nequals = 1\n";
    let e = refused(probe);
    assert!(
        e.reason
            .contains("unknown metric \"inside.pids\" (the probe-inside workload reports inside.pid, inside.pid_count,"),
        "{e}"
    );
    assert!(!e.reason.contains("need"), "{e}");
    let e = refused(&GOOD.replace("near = \"limit.cpu\"", "near = \"limit.memory\""));
    assert!(e.reason.contains("has none"), "{e}");
    let e = refused(&GOOD.replace("tolerance = 0.02", ""));
    assert!(e.reason.contains("tolerance"), "{e}");
    let e = refused(&GOOD.replace(
        "near = \"limit.cpu\"\ntolerance = 0.02",
        "at_most = 1\nequals = 2",
    ));
    assert!(e.reason.contains("exactly one condition"), "{e}");
    let e = refused(&format!("{GOOD}pass = \"unsupported\"\n"));
    assert!(e.reason.contains("not allowed"), "{e}");
    let e = refused(&format!(
        "{GOOD}pass = \"leaked\"\nfail = \"not-enforced\"\n"
    ));
    assert!(e.reason.contains("not opposites"), "{e}");
    assert!(e.reason.contains("fail = \"isolated\""), "{e}");
    let e = refused(&GOOD.replace("metric = \"cpu_share\"", "metric = \"inside.nproc_online\""));
    assert!(e.reason.contains("probe-inside"), "{e}");
}

#[test]
fn pass_and_fail_are_opposites_either_way_round() {
    let pair = |extra: &str| {
        let s = load(&format!("{GOOD}{extra}")).unwrap();
        (s.expectations[0].pass, s.expectations[0].fail)
    };
    use Verdict::*;
    assert_eq!(pair(""), (Enforced, NotEnforced));
    assert_eq!(pair("pass = \"isolated\"\n"), (Isolated, Leaked));
    assert_eq!(pair("fail = \"leaked\"\n"), (Isolated, Leaked));
    // A scenario that demonstrates a documented leak holds when it leaks.
    assert_eq!(pair("pass = \"leaked\"\n"), (Leaked, Isolated));
    assert_eq!(pair("pass = \"not-enforced\"\n"), (NotEnforced, Enforced));
}

#[test]
fn informational_on_names_runtimes_and_makes_the_check_a_finding_there() {
    let text = format!(
        "{GOOD}attack = \"take the host\"\ninformational_on = {{ crun = \"crun does not claim it\" }}\n"
    );
    let s = load(&text).unwrap();
    let e = &s.expectations[0];
    assert_eq!(e.attack.as_deref(), Some("take the host"));
    assert!(e.for_runtime("runc").required);
    let on_crun = e.for_runtime("crun");
    assert!(!on_crun.required);
    assert!(
        on_crun.title.contains("crun does not claim it"),
        "{}",
        on_crun.title
    );
    let e = refused(&format!("{GOOD}informational_on = {{ lxc = \"x\" }}\n"));
    assert!(e.reason.contains("expected builtin, runc, crun"), "{e}");
    let e = refused(&format!("{GOOD}explained_on = {{ lxc = \"x\" }}\n"));
    assert!(e.reason.contains("explained_on names"), "{e}");
}

#[test]
fn escape_workloads_need_a_known_probe_and_a_private_mount_namespace() {
    let escape = |workload: &str, container: &str| {
        format!(
            "id = \"e\"\ntitle = \"t\"\n{container}[workload]\nname = \"escape\"\n{workload}\n\
             [[expect]]\ncheck = \"c\"\nmetric = \"workload.seccomp_mode\"\nequals = 2\n"
        )
    };
    assert!(load(&escape("probe = \"seccomp\"", "")).is_ok());
    let e = refused(&escape("", ""));
    assert!(e.reason.contains("needs `probe`"), "{e}");
    let e = refused(&escape("probe = \"kernel\"", ""));
    assert!(e.reason.contains("unknown probe"), "{e}");
    let e = refused(&escape(
        "probe = \"devices\"\nprivate_mount = true",
        "[container]\nnamespaces = [\"pid\"]\n",
    ));
    assert!(e.reason.contains("mount on the host"), "{e}");
    let s = load(&escape(
        "probe = \"seccomp\"",
        "[container]\nseccomp = \"unconfined\"\n",
    ))
    .unwrap();
    assert_eq!(s.main.container.seccomp, runtime::SeccompMode::Unconfined);
}

#[test]
fn checks_say_whether_they_apply_to_a_sandbox() {
    let with = |extra: &str| {
        format!(
            "id = \"s\"\ntitle = \"t\"\n[workload]\nname = \"probe-inside\"\n\
             [[expect]]\ncheck = \"c\"\nmetric = \"ns_differs.pid\"\nequals = true\n{extra}\n"
        )
    };
    assert_eq!(
        load(&with("")).unwrap().expectations[0].not_on_sandbox,
        None
    );
    assert_eq!(
        load(&with("sandboxed = \"applies\"")).unwrap().expectations[0].not_on_sandbox,
        None
    );
    let s = load(&with(
        "sandboxed = \"not-applicable\"\nsandboxed_why = \"the sentry\"",
    ))
    .unwrap();
    assert_eq!(
        s.expectations[0].not_on_sandbox.as_deref(),
        Some("the sentry")
    );
    for (bad, says) in [
        ("sandboxed = \"not-applicable\"", "needs `sandboxed_why`"),
        ("sandboxed_why = \"x\"", "only goes with"),
        (
            "sandboxed = \"maybe\"",
            "`applies` (the default) or `not-applicable`",
        ),
    ] {
        let e = refused(&with(bad));
        assert!(e.reason.contains(says), "{bad}: {e}");
    }
    // The catalog: every host-side namespace comparison is marked.
    for s in crate::builtin::load().into_iter().flatten() {
        for e in &s.expectations {
            if e.metric.starts_with("ns_differs.") || e.metric == "ns_matches_inside" {
                assert!(e.not_on_sandbox.is_some(), "{}/{}", s.id, e.check);
            }
        }
    }
}

#[test]
fn a_clock_step_needs_allow_clock_write() {
    let clock = |workload: &str| {
        format!(
            "id = \"clock\"\ntitle = \"t\"\n[workload]\nname = \"settimeofday\"\n{workload}\n\
             [[expect]]\ncheck = \"c\"\nmetric = \"host_clock_step_secs\"\nat_most = 1\n"
        )
    };
    let e = refused(&clock("clock_step = \"1h\""));
    assert!(e.reason.contains("allow_clock_write"), "{e}");
    let s = load(&clock("allow_clock_write = true\nclock_step = \"1h\"")).unwrap();
    assert_eq!(
        s.main.workload,
        Workload::Settimeofday {
            allow_clock_write: true,
            step_secs: 3600
        }
    );
}

#[test]
fn duplicate_ids_and_broken_files_do_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), GOOD).unwrap();
    std::fs::write(dir.path().join("b.toml"), GOOD).unwrap();
    std::fs::write(dir.path().join("c.toml"), "id = [").unwrap();
    std::fs::write(
        dir.path().join("d.toml"),
        GOOD.replace("cpu-quota-20", "other"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let entries = load_dir(dir.path()).unwrap();
    assert_eq!(entries.len(), 4);
    assert!(entries[0].is_ok());
    let dup = entries[1].as_ref().unwrap_err();
    assert!(dup.reason.contains("duplicate"), "{dup}");
    assert_eq!(entries[2].as_ref().unwrap_err().id, "c");
    assert_eq!(entries[3].as_ref().unwrap().id, "other");
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        load_dir(empty.path()),
        Err(Error::EmptyCatalog(_))
    ));
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("10d").unwrap(), Duration::from_secs(864_000));
    for bad in ["", "5", "s", "5 parsecs", ".5s", "5.s", "-1s", "1e3s"] {
        assert!(parse_duration(bad).is_err(), "{bad} accepted");
    }
}

proptest! {
    #[test]
    fn line_of_counts_newlines(lines in proptest::collection::vec("[a-z =\"]{0,20}", 1..30), pick in 0usize..30) {
        let text = lines.join("\n");
        let pick = pick % lines.len();
        let offset: usize = lines[..pick].iter().map(|l| l.len() + 1).sum();
        prop_assert_eq!(line_of(&text, offset), pick + 1);
    }

    #[test]
    fn durations_in_ms_round_trip(ms in 0u64..10_000_000) {
        prop_assert_eq!(parse_duration(&format!("{ms}ms")).unwrap(), Duration::from_millis(ms));
    }

    #[test]
    fn duration_parser_never_panics(s in "\\PC{0,16}") {
        let _ = parse_duration(&s);
    }

    #[test]
    fn any_text_is_loaded_or_refused_never_panics(s in "\\PC{0,200}") {
        let _ = load(&s);
    }

    #[test]
    fn a_bad_value_anywhere_names_its_own_line(pad in 0usize..20) {
        let text = format!("{}{}", "\n".repeat(pad), GOOD.replace("cpu = \"0.2\"", "cpu = \"abc\""));
        let e = load(&text).unwrap_err();
        prop_assert_eq!(e.line, 7 + pad);
    }
}
