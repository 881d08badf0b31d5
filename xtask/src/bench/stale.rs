//! The runtime bench's stale-state rows: what dead runs' OCI state costs
//! the next `boxwatch run`.
//!
//! - "start with dead state": before each timed run, 24 runsc containers' state
//!   files and 24 runc containers' state directories of a dead run are
//!   left in the state roots, as those runtimes leave a stopped container
//!   that nobody deleted (the processes they record are gone). The timed
//!   run removes them.
//! - "state given up on": 48 entries the cleanup gave up on sit in a
//!   root's `.given-up/`; every run only lists the roots.
//!
//! Target: both medians under twice the median of clean runs taken
//! between them. The runc
//! entries go in a root of their own (`oci/runc-<hash>`, owned by a
//! symlink to runc), so that no other boxwatch on the host touches them.

use super::common::{interrupted, percentile};
use super::runtime::{ms, time_once};
use anyhow::{Context, Result};
use runtime::oci::owner::{self, Owner};
use runtime::oci::OciKind;
use runtime::oci::RootUse;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PER_RUNTIME: usize = 24;
const OCI: &str = "/run/boxwatch/oci";

/// A PID that no process has now: a child that ran and was reaped.
fn gone_pid() -> Result<i32> {
    let mut c = std::process::Command::new("/bin/true")
        .spawn()
        .context("running /bin/true")?;
    let pid = c.id() as i32;
    c.wait()?;
    Ok(pid)
}

/// What a dead run left: runsc's files and runc's directories of
/// stopped containers, ids `bw-<run>-sN` / `bw-<run>-cN`.
fn leave_dead_state(run: &str, runsc_root: &Path, runc_root: &Path) -> Result<()> {
    let pid = gone_pid()?;
    for n in 0..PER_RUNTIME {
        let id = format!("bw-{run}-s{n}");
        let state = serde_json::json!({
            "id": id, "status": "stopped", "goferPid": pid,
            "sandbox": {"id": id, "pid": pid},
            "spec": {"linux": {"cgroupsPath": format!("/boxwatch/{run}/s{n}")}},
        });
        std::fs::write(
            runsc_root.join(format!("{id}_sandbox:{id}.state")),
            state.to_string(),
        )?;
        std::fs::write(runsc_root.join(format!("{id}_sandbox:{id}.lock")), "")?;
        let dir = runc_root.join(format!("bw-{run}-c{n}"));
        std::fs::create_dir_all(&dir)?;
        let state = serde_json::json!({
            "id": format!("bw-{run}-c{n}"), "init_process_pid": pid, "init_process_start": 1,
        });
        std::fs::write(dir.join("state.json"), state.to_string())?;
    }
    Ok(())
}

/// Medians of the builtin `cmd` (a) right after dead state was left, (b)
/// with entries given up on, each against clean runs interleaved with it
/// (round by round, so a change in the host's load hits both alike);
/// `table_clean` is the clean median of the main table, printed too.
pub fn rows(cmd: &[String], runs: usize, table_clean: Duration, scratch: &Path) -> Result<()> {
    let runs = runs.clamp(1, 40);
    let me = std::process::id();
    let start = runtime::cleanup::start_time(me as i32).context("reading my start time")?;
    let link = scratch.join("runc-owner");
    let runc = runtime::find_in_path("runc").context("runc is not installed")?;
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&runc, &link)?;
    let runsc_root = Path::new(OCI).join("runsc");
    let runc_root = Path::new(OCI).join(owner::root_name(OciKind::Runc, &link, Some(&runc)));
    let aside = scratch.join("given-up-root");
    let roots = RemoveRoots(vec![runc_root.clone(), aside.clone()]);
    let own = |root: &Path| -> Result<()> {
        std::fs::create_dir_all(root)?;
        Owner {
            kind: OciKind::Runc,
            binary: link.clone(),
        }
        .write_if_missing(root)?;
        Ok(())
    };

    let (mut clean_a, mut after) = (Vec::new(), Vec::new());
    for i in 0..runs {
        if interrupted() {
            anyhow::bail!("interrupted");
        }
        clean_a.push(time_once(cmd, &[])?.0);
        // Held as a run holds them (a shared flock), so that another
        // boxwatch on the host that finds a root empty does not remove it
        // while the dead state is written.
        let hold = (
            RootUse::create(&runsc_root).context("holding the runsc root")?,
            RootUse::create(&runc_root).context("holding the runc root")?,
        );
        own(&runc_root)?;
        // A run id whose boxwatch is dead: mine, with another start time.
        leave_dead_state(&format!("{me}-{}-{i}", start + 1), &runsc_root, &runc_root)
            .context("leaving dead state")?;
        let (t, _) = time_once(cmd, &[])?;
        drop(hold);
        let left = owner::entries(OciKind::Runsc, &runsc_root).len()
            + owner::entries(OciKind::Runc, &runc_root).len();
        anyhow::ensure!(left == 0, "{left} dead entries were left by the timed run");
        after.push(t);
    }

    // Entries given up on, in a root that is moved in for a timed run and
    // out for the clean one next to it.
    own(&aside)?;
    std::fs::create_dir_all(aside.join(owner::GIVEN_UP_DIR))?;
    for n in 0..2 * PER_RUNTIME {
        std::fs::write(
            aside
                .join(owner::GIVEN_UP_DIR)
                .join(format!("bw-{me}-{}-0-g{n}", start + 1)),
            "bench\n",
        )?;
    }
    let _ = std::fs::remove_dir_all(&runc_root);
    let (mut clean_b, mut given_up) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        if interrupted() {
            anyhow::bail!("interrupted");
        }
        clean_b.push(time_once(cmd, &[])?.0);
        // Another boxwatch may remove an empty `oci` meanwhile: again.
        let mut moved =
            std::fs::create_dir_all(OCI).and_then(|()| std::fs::rename(&aside, &runc_root));
        for _ in 0..5 {
            match &moved {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && aside.exists() => {
                    moved = std::fs::create_dir_all(OCI)
                        .and_then(|()| std::fs::rename(&aside, &runc_root))
                }
                _ => break,
            }
        }
        moved.context("moving the given-up root in")?;
        let t = time_once(cmd, &[]);
        std::fs::rename(&runc_root, &aside).context("moving the given-up root out")?;
        given_up.push(t?.0);
    }
    drop(roots);

    println!(
        "\nstale OCI state (the builtin, as above; {PER_RUNTIME} runsc + {PER_RUNTIME} runc entries of a dead run; \
         clean runs interleaved; the table's clean median: {} ms):",
        ms(table_clean)
    );
    for (name, t, clean) in [
        ("start with dead state", &mut after, &mut clean_a),
        ("48 entries given up on", &mut given_up, &mut clean_b),
    ] {
        t.sort();
        clean.sort();
        let (med, clean_med) = (percentile(t, 0.5), percentile(clean, 0.5));
        let ratio = med.as_secs_f64() / clean_med.as_secs_f64().max(1e-9);
        println!(
            "  {name:<26} {:>3} runs  median {:>6} ms  p90 {:>6} ms  {ratio:.2}x clean ({} ms): under 2x {}",
            t.len(),
            ms(med),
            ms(percentile(t, 0.9)),
            ms(clean_med),
            if ratio < 2.0 { "HOLDS" } else { "MISSED" }
        );
    }
    Ok(())
}

/// Removes the bench's state roots, whatever happened.
struct RemoveRoots(Vec<PathBuf>);

impl Drop for RemoveRoots {
    fn drop(&mut self) {
        for r in &self.0 {
            let _ = std::fs::remove_dir_all(r);
        }
        let _ = std::fs::remove_dir(Path::new(OCI).join("runsc"));
        let _ = std::fs::remove_dir(OCI);
    }
}
