//! boxwatch's integration tests, in one binary: each module was a test
//! binary of its own (`cargo test --test it runtime_cpu::` runs one
//! module, `cargo test --test it -- --list` lists them all). They run the
//! real `boxwatch` binary and, as root, real namespaces, cgroups, runc,
//! crun, lxcfs, promtool and Prometheus; under CI=true a missing
//! prerequisite fails the test instead of skipping it ([`common`]).
//!
//! One binary links once, not once per file. The tests of one module run
//! side by side, as they did in their own binary, but never next to
//! another module's: many judge state that another module's containers
//! would change (the host's mount table, cgroups and device nodes left
//! behind, this process's subreaper attribute, the CPU a measurement
//! needs). So every test starts with `let _room = room!();` ([`room`]),
//! and [`every_test_enters_its_room`] holds each module to it.

/// Enters the calling test's module's room ([`room::enter`]): keep the
/// guard for the whole test.
macro_rules! room {
    () => {
        $crate::room::enter(module_path!())
    };
}

mod common;
#[path = "../../exporter/tests/common/promtool.rs"]
mod promtool;

mod cli_messages;
mod engine_backends;
mod escape_mutants;
mod escape_probes_host;
mod exporter_engines;
mod exporter_limits;
mod exporter_prometheus;
mod exporter_prometheus_tls;
mod inspect;
mod inspect_engines;
mod oci_backends;
mod oci_dead_runs;
mod oci_misconfigured;
mod oci_reaping;
mod oci_runsc;
mod oci_stale_state;
mod report_charts;
mod runtime_cleanup;
mod runtime_cpu;
mod runtime_library;
mod runtime_limits;
mod runtime_lxcfs;
mod runtime_namespaces;
mod runtime_refusals;
mod runtime_setup_paths;
mod scenarios_catalog;
mod scenarios_cpu;
mod scenarios_placement;

/// Runs the tests of one module at a time: a test of another module
/// waits until every running test of the module in the room has ended.
/// libtest runs tests in name order, so modules follow one another and a
/// test thread waits at most for the last tests of the previous module.
mod room {
    use std::sync::{Condvar, Mutex};

    /// The module whose tests are running, and how many of them are.
    static ROOM: Mutex<(Option<&'static str>, usize)> = Mutex::new((None, 0));
    static LEFT: Condvar = Condvar::new();

    /// Held by a running test; the last of its module to drop one lets
    /// the next module in.
    pub struct Guard;

    /// Waits until no test of a module other than the caller's runs, and
    /// enters. `module_path` is the caller's `module_path!()`
    /// (`it::<module>...`).
    pub fn enter(module_path: &'static str) -> Guard {
        let module = module_path.split("::").nth(1).unwrap_or(module_path);
        // A test that panicked while holding the lock leaves it poisoned;
        // the room's count is still right (the guard is dropped on unwind).
        let mut room = ROOM.lock().unwrap_or_else(|e| e.into_inner());
        while room.0.is_some_and(|m| m != module) {
            room = LEFT.wait(room).unwrap_or_else(|e| e.into_inner());
        }
        room.0 = Some(module);
        room.1 += 1;
        Guard
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            let mut room = ROOM.lock().unwrap_or_else(|e| e.into_inner());
            room.1 -= 1;
            if room.1 == 0 {
                room.0 = None;
                LEFT.notify_all();
            }
        }
    }
}

/// Every `#[test]` of every module of this binary starts with `let _room
/// = room!();`, so that no module's test runs next to another module's.
#[test]
fn every_test_enters_its_room() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".rs") || name == "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if *line != "#[test]" {
                continue;
            }
            let Some(f) = (i + 1..lines.len()).find(|&j| lines[j].contains("fn ")) else {
                continue;
            };
            if lines.get(f + 1) != Some(&"let _room = room!();") {
                missing.push(format!("tests/it/{name}:{}: {}", f + 1, lines[f]));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "these tests do not start with `let _room = room!();` (see tests/it/main.rs):\n{}",
        missing.join("\n")
    );
}
