//! Every refusal of boxwatch's own names what was wrong, the value given,
//! what is allowed and the flag or file, prints its cause once, and exits
//! 125 (clap's usage errors included): the messages a new user meets first.

use crate::common::*;

/// `boxwatch <args>`: (exit code, stderr).
fn stderr_of(args: &[&str]) -> (i32, String) {
    let out = boxwatch(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// No clause of a message is printed twice (an error chain whose
/// message repeats its cause would show it twice).
fn assert_no_repeated_clause(message: &str) {
    let clauses: Vec<&str> = message
        .split(": ")
        .map(str::trim)
        .filter(|c| c.len() > 8)
        .collect();
    for (i, c) in clauses.iter().enumerate() {
        assert!(
            !clauses[i + 1..].contains(c),
            "{c:?} is repeated in {message:?}"
        );
    }
}

#[test]
fn usage_errors_exit_125_and_help_says_so() {
    let _room = room!();
    let (code, err) = stderr_of(&["run", "--bogus", "--", "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("unexpected argument '--bogus'"), "{err}");
    let (code, err) = stderr_of(&["no-such-command"]);
    assert_eq!(code, 125, "{err}");
    let out = boxwatch(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Exit status:\n  125  boxwatch itself refused or failed"),
        "{help}"
    );
    let out = boxwatch(&["run", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("125  boxwatch itself refused or failed"),
        "{help}"
    );
    assert!(help.contains("127  the command was not found"), "{help}");
}

#[test]
fn negative_values_are_refused_for_what_they_are() {
    let _room = room!();
    for (args, needle) in [
        (
            &["run", "--cpus", "-1", "--", "true"][..],
            "invalid value '-1' for '--cpus <CPUS>': invalid cpu quota \"-1\": expected a positive number of CPUs: a CPU limit cannot be negative",
        ),
        (
            &["run", "--grace=-1", "--", "true"][..],
            "invalid value '-1' for '--grace <SECS>': a grace period cannot be negative: expected whole seconds from 0 to 3600",
        ),
        (
            &["run", "--grace", "5s", "--", "true"][..],
            "(no unit: 5, not 5s)",
        ),
    ] {
        let (code, err) = stderr_of(args);
        assert_eq!(code, 125, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("use '-- -1'"), "{err}");
    }
}

#[test]
fn inspect_refuses_a_pid_that_cannot_be_one() {
    let _room = room!();
    let (code, err) = stderr_of(&["inspect", "--pid", "-5"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(
            "invalid value '-5' for '--pid <PID>': expected a process ID from 1 to 2147483647"
        ),
        "{err}"
    );
    let (_, err) = stderr_of(&["inspect", "--pid", "abc"]);
    assert!(
        err.contains("expected a process ID, a whole number"),
        "{err}"
    );
}

#[test]
fn cpu_quotas_say_which_part_is_out_of_range() {
    let _room = room!();
    let (code, err) = stderr_of(&["run", "--cpus", "500/100", "--", "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("expected a period of 1000 to 1000000 µs (1 ms to 1 s); 100 µs is too short"),
        "{err}"
    );
    let (_, err) = stderr_of(&["run", "--cpus", "500/100000", "--", "true"]);
    assert!(err.contains("500 µs is too small"), "{err}");
}

#[test]
fn a_time_offset_the_kernel_would_refuse_is_refused_at_once() {
    let _room = room!();
    let (code, err) = stderr_of(&["run", "--timens-offset", "99999999999999999", "--", "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("invalid value '99999999999999999' for '--timens-offset <SECS>': out of range: expected -"),
        "{err}"
    );
    assert!(
        err.contains("the kernel keeps it between 0 and 4611686018 s"),
        "{err}"
    );
    assert!(
        !err.contains("setup failed"),
        "refused before any setup: {err}"
    );
}

#[test]
fn an_escaping_cgroup_parent_is_refused_for_its_dotdot() {
    let _room = room!();
    let (code, err) = stderr_of(&["run", "--cgroup-parent", "/a/../../b", "--", "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("--cgroup-parent: cgroup parent \"/a/../../b\" contains '..'"),
        "{err}"
    );
    assert!(!err.contains("must be an absolute"), "{err}");
}

#[test]
fn a_long_hostname_is_not_echoed_in_full() {
    let _room = room!();
    let long = "h".repeat(300);
    let (code, err) = stderr_of(&["run", "--hostname", &long, "--", "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(&format!(
            "hostname \"{}\"... (300 characters) must be 1-64 characters",
            "h".repeat(40)
        )),
        "{err}"
    );
    assert!(!err.contains(&long), "{err}");
}

#[test]
fn scenario_files_and_outputs_are_checked_before_anything_runs() {
    let _room = room!();
    let (code, err) = stderr_of(&["scenarios", "--catalog", "/nonexistent"]);
    assert_eq!(code, 125, "{err}");
    assert_eq!(
        err.trim(),
        "boxwatch: error: --catalog: reading the catalog directory /nonexistent: No such file or directory (os error 2)"
    );
    let dir = tempfile::tempdir().unwrap();
    let notjson = dir.path().join("notjson.txt");
    std::fs::write(&notjson, "notjson\n").unwrap();
    let (code, err) = stderr_of(&["scenarios", "--baseline", notjson.to_str().unwrap()]);
    assert_eq!(code, 125, "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "boxwatch: error: --baseline: {} is not a boxwatch JSON report (it is not JSON): expected ident at line 1 column 2",
            notjson.display()
        )
    );
    // --out is checked first: nothing runs when the reports cannot be written.
    let (code, err) = stderr_of(&["scenarios", "--out", "/proc/nope"]);
    assert_eq!(code, 125, "{err}");
    assert_eq!(
        err.trim(),
        "boxwatch: error: --out /proc/nope: the reports cannot be written there: cannot write /proc/nope: No such file or directory (os error 2)"
    );
}

#[test]
fn the_exporter_takes_node_exporter_addresses_and_checks_its_inputs() {
    let _room = room!();
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = stderr_of(&["exporter", "--report", "/nonexistent.json"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(
            "--report /nonexistent.json: cannot be read (No such file or directory (os error 2))"
        ),
        "{err}"
    );
    let notjson = dir.path().join("notjson.txt");
    std::fs::write(&notjson, "notjson\n").unwrap();
    let (code, err) = stderr_of(&["exporter", "--report", notjson.to_str().unwrap()]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("is not a boxwatch JSON report"), "{err}");
    let (code, err) = stderr_of(&["exporter", "--write-timeout", "0"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("--write-timeout 0: a timeout must be at least 1 s"),
        "{err}"
    );
    let (code, err) = stderr_of(&["exporter", "--listen", "localhost", "--report", "/x"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("'--listen <ADDR>': no port"), "{err}");
    if !root_or_skip("the_exporter_takes_node_exporter_addresses_and_checks_its_inputs") {
        return;
    }
    let (code, err) = stderr_of(&["exporter", "--cgroup-root", "/nonexistent"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("--cgroup-root \"/nonexistent\": no such cgroup in any hierarchy"),
        "{err}"
    );
    // A port that is taken: the cause is printed once.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = stderr_of(&["exporter", "--listen", &addr]);
    assert_eq!(code, 125, "{err}");
    assert_eq!(
        err.trim(),
        format!("boxwatch: error: --listen {addr}: cannot listen there: Address already in use (os error 98)")
    );
    assert_no_repeated_clause(&err);
    // No ANSI colour when stderr is not a terminal.
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn entry_commands_that_cannot_run_say_why_with_the_right_code() {
    let _room = room!();
    if !root_or_skip("entry_commands_that_cannot_run_say_why_with_the_right_code") {
        return;
    }
    let (code, err) = stderr_of(&["run", "--", "/usr"]);
    assert_eq!(code, 126, "{err}");
    assert!(
        err.contains("the entry command \"/usr\" cannot run in the container: /usr is a directory, not an executable file"),
        "{err}"
    );
    let (code, err) = stderr_of(&["run", "--", "/etc/hostname"]);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("/etc/hostname is not executable"), "{err}");
    let (code, err) = stderr_of(&["run", "--", "/nonexistent"]);
    assert_eq!(code, 127, "{err}");
    assert!(
        err.contains("/nonexistent does not exist in the container's root"),
        "{err}"
    );
}

#[test]
fn a_quota_above_the_cpus_it_can_use_is_warned_about() {
    let _room = room!();
    if !root_or_skip("a_quota_above_the_cpus_it_can_use_is_warned_about") {
        return;
    }
    let (code, err) = stderr_of(&["run", "--cpus", "1000", "--", "true"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("boxwatch: warning: --cpus 1000 is more than the host's")
            && err.contains("the quota can never be used up, so it will not limit the container"),
        "{err}"
    );
    let (code, err) = stderr_of(&["run", "--cpus", "1.5", "--cpuset", "0", "--", "true"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--cpus 1.5 is more than --cpuset 0"), "{err}");
    let (_, err) = stderr_of(&["run", "--cpus", "0.5", "--", "true"]);
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn log_lines_carry_no_colour_codes_off_a_terminal() {
    let _room = room!();
    if !root_or_skip("log_lines_carry_no_colour_codes_off_a_terminal") {
        return;
    }
    let out = std::process::Command::new(BIN)
        .args(["run", "--", "true"])
        .env("BOXWATCH_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(" INFO "), "{err}");
    assert!(!err.contains('\u{1b}'), "ANSI codes in a log file: {err:?}");
}
