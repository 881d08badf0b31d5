//! Which binary owns an OCI runtime's state root, and how that runtime
//! lays out and removes its containers' state.
//!
//! A state root `<state-dir>/oci/<root>` is named after the runtime kind
//! when the binary is the one in PATH (`oci/runc`), else after the kind
//! and a hash of the binary's path (`oci/runc-1a2b3c4d`), so two binaries
//! never share a root. The root records its binary in `OWNER_FILE`; the
//! stale-run cleanup ([`super::stale`]) uses that binary, not whatever
//! `runc` PATH finds, and the family's own state layout and delete flag:
//!
//! | family | a container's state | delete |
//! |---|---|---|
//! | runc | directory `<id>/` (`state.json`) | `delete --force` |
//! | crun | directory `<id>/` (`status`) | `delete --force` |
//! | runsc | files `<id>_sandbox:<sandbox>.state` and `.lock` | `delete --force` (`-f` is refused) |
//!
//! Entries the cleanup could not remove are moved to [`GIVEN_UP_DIR`] (or
//! marked there when they cannot be moved), reported once, and never
//! retried: the next run lists the root and skips them.

use super::OciKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The file in a state root that names its runtime's binary.
pub(crate) const OWNER_FILE: &str = ".boxwatch-owner";
/// The directory in a state root holding entries the cleanup gave up on.
pub const GIVEN_UP_DIR: &str = ".given-up";

/// The binary that owns a state root, and its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Which runtime.
    pub kind: OciKind,
    /// Its binary.
    pub binary: PathBuf,
}

impl Owner {
    /// The record's text: `<kind>\t<binary>\n`.
    pub fn render(&self) -> String {
        format!("{}\t{}\n", self.kind.name(), self.binary.display())
    }

    /// Parses [`Owner::render`]'s text.
    pub fn parse(text: &str) -> Option<Owner> {
        let (kind, binary) = text.trim_end_matches('\n').split_once('\t')?;
        let kind = OciKind::from_name(kind)?;
        let binary = PathBuf::from(binary);
        (binary.is_absolute()).then_some(Owner { kind, binary })
    }

    /// Reads the record of `root`, if any.
    pub fn read(root: &Path) -> Option<Owner> {
        Owner::parse(&std::fs::read_to_string(root.join(OWNER_FILE)).ok()?)
    }

    /// Writes the record into `root` unless one is there (a rename, so a
    /// reader never sees half of it).
    pub fn write_if_missing(&self, root: &Path) -> std::io::Result<()> {
        let path = root.join(OWNER_FILE);
        if path.exists() {
            return Ok(());
        }
        // One temporary name per writer, threads of one process included:
        // two writers sharing a name would rename each other's file away.
        static WRITERS: AtomicU64 = AtomicU64::new(0);
        let n = WRITERS.fetch_add(1, Ordering::Relaxed);
        let tmp = root.join(format!("{OWNER_FILE}.{}.{n}", std::process::id()));
        std::fs::write(&tmp, self.render())?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

/// The state root's directory name for `kind` run from `binary`:
/// `<kind>` for the binary PATH finds (`default`), else
/// `<kind>-<8 hex digits of the path's FNV-1a hash>`.
pub fn root_name(kind: OciKind, binary: &Path, default: Option<&Path>) -> String {
    if default == Some(binary) {
        return kind.name().to_string();
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in binary.as_os_str().as_encoded_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{}-{h:08x}", kind.name())
}

/// The kind a root without an owner record belongs to, from its name
/// (`runc`, `crun-1a2b3c4d`).
pub(crate) fn kind_of_root_name(name: &str) -> Option<OciKind> {
    OciKind::from_name(name.split_once('-').map_or(name, |(k, _)| k))
}

/// The arguments that remove container `id` whatever its state: every
/// family accepts `--force` (runsc refuses `-f`).
pub(crate) fn delete_args(id: &str) -> [&str; 3] {
    ["delete", "--force", id]
}

/// One container's state in a root: its id and the paths that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The container id.
    pub id: String,
    /// Its files and directories in the state root.
    pub paths: Vec<PathBuf>,
}

/// The container id a runsc state file belongs to:
/// `<id>_sandbox:<sandbox-id>.state` or `.lock`.
pub(crate) fn runsc_state_id(file: &str) -> Option<&str> {
    let stem = file
        .strip_suffix(".state")
        .or_else(|| file.strip_suffix(".lock"))?;
    let (id, sandbox) = stem.split_once("_sandbox:")?;
    (!id.is_empty() && !sandbox.is_empty()).then_some(id)
}

/// The containers' state in `root` as `kind` lays it out, by id; names
/// starting with a dot (the owner record, the given-up entries) are not
/// containers.
pub fn entries(kind: OciKind, root: &Path) -> Vec<Entry> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut by_id: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for e in rd.flatten() {
        let Some(name) = e.file_name().to_str().map(String::from) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let id = match kind {
            OciKind::Runsc => match runsc_state_id(&name) {
                Some(id) => id.to_string(),
                None => continue,
            },
            OciKind::Runc | OciKind::Crun => name.clone(),
        };
        by_id.entry(id).or_default().push(e.path());
    }
    by_id
        .into_iter()
        .map(|(id, mut paths)| {
            paths.sort();
            Entry { id, paths }
        })
        .collect()
}

/// Whether the cleanup already gave up on container `id` of `root`.
pub(crate) fn given_up(root: &Path, id: &str) -> bool {
    root.join(GIVEN_UP_DIR).join(id).symlink_metadata().is_ok()
}

/// Gives up on `entry`: moves its paths into `<root>/.given-up/<id>/`, or,
/// when that fails, leaves a marker file `<root>/.given-up/<id>` holding
/// `why`. Returns where it is now, for the one report.
pub(crate) fn give_up(root: &Path, entry: &Entry, why: &str) -> std::io::Result<PathBuf> {
    let dir = root.join(GIVEN_UP_DIR);
    std::fs::create_dir_all(&dir)?;
    let target = dir.join(&entry.id);
    let moved = std::fs::create_dir(&target).and_then(|()| {
        for p in &entry.paths {
            if p.symlink_metadata().is_ok() {
                std::fs::rename(p, target.join(p.file_name().unwrap_or_default()))?;
            }
        }
        std::fs::write(target.join(".why"), format!("{why}\n"))
    });
    match moved {
        Ok(()) => Ok(target),
        Err(e) => {
            // What could not be moved stays in place; the marker keeps it
            // from being retried.
            let _ = std::fs::remove_dir(&target);
            std::fs::write(&target, format!("{why} (could not move it aside: {e})\n"))?;
            Ok(target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn owner_records_round_trip_and_reject_relative_paths() {
        let o = Owner {
            kind: OciKind::Runsc,
            binary: "/usr/bin/runsc".into(),
        };
        assert_eq!(o.render(), "runsc\t/usr/bin/runsc\n");
        assert_eq!(Owner::parse(&o.render()), Some(o));
        assert_eq!(Owner::parse("runsc\trunsc\n"), None);
        assert_eq!(Owner::parse("docker\t/usr/bin/docker"), None);
        assert_eq!(Owner::parse("garbage"), None);
    }

    #[test]
    fn threads_recording_one_owner_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let o = Owner {
            kind: OciKind::Runc,
            binary: "/usr/sbin/runc".into(),
        };
        for _ in 0..50 {
            let _ = std::fs::remove_file(dir.path().join(OWNER_FILE));
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            o.write_if_missing(dir.path())
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap().unwrap();
                }
            });
        }
        assert_eq!(Owner::read(dir.path()), Some(o));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, [OWNER_FILE], "no temporary file is left");
    }

    #[test]
    fn roots_are_named_after_the_kind_and_a_foreign_binary() {
        let runc = Path::new("/usr/sbin/runc");
        assert_eq!(root_name(OciKind::Runc, runc, Some(runc)), "runc");
        let other = root_name(OciKind::Runc, Path::new("/opt/runc"), Some(runc));
        assert!(other.starts_with("runc-") && other.len() == 13, "{other}");
        assert_ne!(
            other,
            root_name(OciKind::Runc, Path::new("/opt/runc2"), Some(runc))
        );
        assert_eq!(kind_of_root_name(&other), Some(OciKind::Runc));
        assert_eq!(kind_of_root_name("runsc"), Some(OciKind::Runsc));
        assert_eq!(kind_of_root_name(".given-up"), None);
    }

    #[test]
    fn runsc_state_files_name_their_container() {
        assert_eq!(
            runsc_state_id("bw-1-2-0-c_sandbox:bw-1-2-0-c.state"),
            Some("bw-1-2-0-c")
        );
        assert_eq!(
            runsc_state_id("bw-1-2-0-c_sandbox:bw-1-2-0-c.lock"),
            Some("bw-1-2-0-c")
        );
        for bad in [
            "bw-1-2-0-c",
            "_sandbox:x.state",
            "a_sandbox:.lock",
            "x.state",
        ] {
            assert_eq!(runsc_state_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn entries_group_runsc_files_and_skip_dot_names() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        for f in [
            "bw-1-2-0-a_sandbox:bw-1-2-0-a.state",
            "bw-1-2-0-a_sandbox:bw-1-2-0-a.lock",
            "bw-1-2-0-b_sandbox:bw-1-2-0-b.state",
            OWNER_FILE,
        ] {
            std::fs::write(r.join(f), "").unwrap();
        }
        std::fs::create_dir(r.join(GIVEN_UP_DIR)).unwrap();
        let e = entries(OciKind::Runsc, r);
        assert_eq!(
            e.iter()
                .map(|e| (e.id.as_str(), e.paths.len()))
                .collect::<Vec<_>>(),
            vec![("bw-1-2-0-a", 2), ("bw-1-2-0-b", 1)]
        );
        std::fs::create_dir(r.join("bw-1-2-0-c")).unwrap();
        let e = entries(OciKind::Runc, r);
        assert!(e.iter().any(|e| e.id == "bw-1-2-0-c"));
        assert!(!e.iter().any(|e| e.id.starts_with('.')));
    }

    #[test]
    fn a_given_up_entry_is_moved_aside_once() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::write(r.join("x_sandbox:x.state"), "{}").unwrap();
        std::fs::write(r.join("x_sandbox:x.lock"), "").unwrap();
        let e = entries(OciKind::Runsc, r).remove(0);
        assert!(!given_up(r, "x"));
        let at = give_up(r, &e, "delete failed: boom").unwrap();
        assert!(given_up(r, "x"));
        assert!(at.join("x_sandbox:x.state").is_file());
        assert!(std::fs::read_to_string(at.join(".why"))
            .unwrap()
            .contains("boom"));
        assert!(entries(OciKind::Runsc, r).is_empty());
    }

    proptest! {
        #[test]
        fn owner_parser_never_panics(s in "\\PC{0,80}") {
            let _ = Owner::parse(&s);
        }

        #[test]
        fn runsc_names_parse_back(id in "[a-z0-9-]{1,20}", sb in "[a-z0-9-]{1,20}") {
            let state = format!("{id}_sandbox:{sb}.state");
            prop_assert_eq!(runsc_state_id(&state), Some(id.as_str()));
        }
    }
}
