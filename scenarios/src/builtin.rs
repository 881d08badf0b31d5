//! The catalog compiled into the binary, so that `boxwatch scenarios` works
//! anywhere the binary is copied (a VM's initramfs, a CI runner) without the
//! data files. `--catalog DIR` loads a directory instead. A test keeps this
//! list equal to `scenarios/catalog/`.

use crate::catalog::{load_texts, Entry};
use std::path::PathBuf;

/// (file name, text) of every built-in scenario file.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "cpu-burst-throttling.toml",
        include_str!("../catalog/cpu-burst-throttling.toml"),
    ),
    (
        "cpu-quota-150.toml",
        include_str!("../catalog/cpu-quota-150.toml"),
    ),
    (
        "cpu-quota-20.toml",
        include_str!("../catalog/cpu-quota-20.toml"),
    ),
    (
        "cpu-quota-50.toml",
        include_str!("../catalog/cpu-quota-50.toml"),
    ),
    (
        "cpuinfo-view.toml",
        include_str!("../catalog/cpuinfo-view.toml"),
    ),
    (
        "entry-exit-kills-the-rest.toml",
        include_str!("../catalog/entry-exit-kills-the-rest.toml"),
    ),
    (
        "escape-capabilities.toml",
        include_str!("../catalog/escape-capabilities.toml"),
    ),
    (
        "escape-devices.toml",
        include_str!("../catalog/escape-devices.toml"),
    ),
    (
        "escape-proc-paths.toml",
        include_str!("../catalog/escape-proc-paths.toml"),
    ),
    (
        "escape-seccomp.toml",
        include_str!("../catalog/escape-seccomp.toml"),
    ),
    (
        "escape-sockets.toml",
        include_str!("../catalog/escape-sockets.toml"),
    ),
    (
        "ipc-namespace.toml",
        include_str!("../catalog/ipc-namespace.toml"),
    ),
    (
        "memory-hog.toml",
        include_str!("../catalog/memory-hog.toml"),
    ),
    (
        "mount-namespace.toml",
        include_str!("../catalog/mount-namespace.toml"),
    ),
    (
        "net-namespace.toml",
        include_str!("../catalog/net-namespace.toml"),
    ),
    (
        "noisy-neighbour.toml",
        include_str!("../catalog/noisy-neighbour.toml"),
    ),
    (
        "nproc-view.toml",
        include_str!("../catalog/nproc-view.toml"),
    ),
    (
        "orphan-reaping.toml",
        include_str!("../catalog/orphan-reaping.toml"),
    ),
    (
        "pid-namespace.toml",
        include_str!("../catalog/pid-namespace.toml"),
    ),
    (
        "pids-fork-bomb.toml",
        include_str!("../catalog/pids-fork-bomb.toml"),
    ),
    (
        "proc-meminfo-view.toml",
        include_str!("../catalog/proc-meminfo-view.toml"),
    ),
    (
        "proc-view-lxcfs.toml",
        include_str!("../catalog/proc-view-lxcfs.toml"),
    ),
    (
        "settimeofday-privileged.toml",
        include_str!("../catalog/settimeofday-privileged.toml"),
    ),
    (
        "settimeofday.toml",
        include_str!("../catalog/settimeofday.toml"),
    ),
    (
        "time-namespace.toml",
        include_str!("../catalog/time-namespace.toml"),
    ),
    (
        "uts-namespace.toml",
        include_str!("../catalog/uts-namespace.toml"),
    ),
];

/// Where the built-in files live in the source tree (named in errors).
pub const SOURCE_DIR: &str = "scenarios/catalog";

/// Loads the built-in catalog.
pub fn load() -> Vec<Entry> {
    load_texts(
        BUILTIN
            .iter()
            .map(|(name, text)| (PathBuf::from(SOURCE_DIR).join(name), Ok(text.to_string()))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_list_is_the_catalog_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect();
        on_disk.sort();
        let builtin: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        assert_eq!(
            builtin.iter().map(|b| &b.0).collect::<Vec<_>>(),
            on_disk.iter().map(|b| &b.0).collect::<Vec<_>>(),
            "add new catalog files to BUILTIN in scenarios/src/builtin.rs"
        );
        assert_eq!(builtin, on_disk);
    }

    #[test]
    fn every_builtin_scenario_loads_and_the_issue_ids_are_there() {
        let entries = load();
        for e in &entries {
            if let Err(e) = e {
                panic!("{e}");
            }
        }
        let ids: Vec<String> = entries.into_iter().map(|e| e.unwrap().id).collect();
        for id in [
            "cpu-quota-20",
            "cpu-quota-50",
            "cpu-quota-150",
            "cpu-burst-throttling",
            "memory-hog",
            "pids-fork-bomb",
            "settimeofday",
            "pid-namespace",
            "uts-namespace",
            "mount-namespace",
            "net-namespace",
            "ipc-namespace",
            "time-namespace",
            "proc-meminfo-view",
            "nproc-view",
            "cpuinfo-view",
            "orphan-reaping",
            "noisy-neighbour",
        ] {
            assert!(
                ids.iter().any(|i| i == id),
                "{id} is missing from the catalog"
            );
        }
    }

    #[test]
    fn cpu_measuring_scenarios_are_exclusive() {
        for s in load().into_iter().flatten() {
            if s.main.workload.kind().measures_cpu() {
                assert!(s.exclusive, "{} measures CPU and must be exclusive", s.id);
            }
        }
    }
}
