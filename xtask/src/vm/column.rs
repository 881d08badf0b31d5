//! One column's result on disk, so a column can run on one machine and be
//! merged into the matrix on another (a CI artifact): `column.json` (the
//! kernel, cgroup layout, acceleration, timing, job exit or why there is no
//! result), `report.json` (the job's report, as the VM sent it) and
//! `console.txt` (the console's last lines).

use super::initramfs::CgroupLayout;
use super::ColumnResult;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const SCHEMA: &str = "boxwatch.matrix-column/v1";

/// `column.json`: everything of a [`ColumnResult`] but the report and the
/// console, which have their own files.
#[derive(Debug, Serialize, Deserialize)]
struct ColumnFile {
    schema_version: String,
    kernel: String,
    name: String,
    cgroup: CgroupLayout,
    #[serde(default)]
    append: Option<String>,
    accel: Option<String>,
    seconds: Option<f64>,
    job_exit: Option<i32>,
    error: Option<String>,
}

/// Writes `r` into `dir` (created if needed).
pub fn write(r: &ColumnResult, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = ColumnFile {
        schema_version: SCHEMA.into(),
        kernel: r.kernel.clone(),
        name: r.name.clone(),
        cgroup: r.cgroup,
        append: r.append.clone(),
        accel: r.accel.clone(),
        seconds: r.seconds,
        job_exit: r.job_exit,
        error: r.error.clone(),
    };
    std::fs::write(
        dir.join("column.json"),
        serde_json::to_string_pretty(&file)? + "\n",
    )?;
    let report = dir.join("report.json");
    if r.output.trim().is_empty() {
        let _ = std::fs::remove_file(&report);
    } else {
        std::fs::write(&report, &r.output)?;
    }
    std::fs::write(dir.join("console.txt"), &r.console_tail)?;
    Ok(())
}

/// Reads a column written by [`write()`].
pub fn read(dir: &Path) -> Result<ColumnResult> {
    let path = dir.join("column.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (a directory written by `cargo xtask vm --out`)",
            path.display()
        )
    })?;
    let f: ColumnFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a boxwatch column result", path.display()))?;
    anyhow::ensure!(
        f.schema_version == SCHEMA,
        "{}: column schema {:?}, this boxwatch reads {SCHEMA:?}",
        path.display(),
        f.schema_version
    );
    // A missing report is the matrix's business: it says why (no report).
    let output = std::fs::read_to_string(dir.join("report.json")).unwrap_or_default();
    let console_tail = std::fs::read_to_string(dir.join("console.txt")).unwrap_or_default();
    Ok(ColumnResult {
        kernel: f.kernel,
        name: f.name,
        cgroup: f.cgroup,
        append: f.append,
        accel: f.accel,
        seconds: f.seconds,
        job_exit: f.job_exit,
        output,
        error: f.error,
        console_tail,
    })
}

/// The column directories named by `dirs`, in order: a directory holding
/// `column.json` is one column; otherwise each of its subdirectories that
/// holds one, sorted by name (what `cargo xtask vm --out DIR` writes for
/// several columns, or a CI job's downloaded artifacts).
pub fn find(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for d in dirs {
        if d.join("column.json").is_file() {
            found.push(d.clone());
            continue;
        }
        let mut subs: Vec<PathBuf> = std::fs::read_dir(d)
            .with_context(|| format!("reading {}", d.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("column.json").is_file())
            .collect();
        if subs.is_empty() {
            bail!(
                "{} holds no column result (column.json, written by `cargo xtask vm --out DIR`), nor do its subdirectories",
                d.display()
            );
        }
        subs.sort();
        found.extend(subs);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::matrix::{self, Matrix};

    /// The recorded results of three columns, as a one-machine run holds
    /// them: two reports and a VM that hung.
    fn recorded() -> Vec<ColumnResult> {
        let report = |r: reports::Report| serde_json::to_string_pretty(&r).unwrap();
        let col =
            |kernel: &str, name: &str, cgroup, output: String, error: Option<&str>| ColumnResult {
                kernel: kernel.into(),
                name: name.into(),
                cgroup,
                append: None,
                accel: Some("tcg".into()),
                seconds: Some(38.0),
                job_exit: error.is_none().then_some(0),
                output,
                error: error.map(String::from),
                console_tail: "BOXWATCH-INIT-STARTED kernel=x\nBOXWATCH-JOB-EXIT 0\n".into(),
            };
        vec![
            col(
                "6.1.0-57-amd64",
                "6.1",
                CgroupLayout::V1,
                report(reports::fixture::baseline_report()),
                None,
            ),
            col(
                "6.1.0-57-amd64",
                "6.1",
                CgroupLayout::V2,
                String::new(),
                Some("kernel 6.1.0-57-amd64: the VM did not finish within 600 s and was killed; last console lines:\n[ 1.0] hung"),
            ),
            col(
                "6.12.118+deb12-amd64",
                "6.12",
                CgroupLayout::V2,
                report(reports::fixture::sample_report()),
                None,
            ),
        ]
    }

    fn without_timings(mut m: Matrix) -> Matrix {
        for c in &mut m.columns {
            c.seconds = None;
        }
        m
    }

    /// Three columns recorded from real VMs (`cargo xtask vm --kernel K
    /// --cgroup C --out DIR` on Debian 6.1.0-57 and 6.12.118 under TCG on
    /// a loaded host; the reports' samples dropped, the matrix does not
    /// read them).
    fn recorded_vms() -> Vec<ColumnResult> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/columns");
        find(&[root])
            .unwrap()
            .iter()
            .map(|d| read(d).unwrap())
            .collect()
    }

    #[test]
    fn three_one_column_results_merge_into_the_three_column_matrix() {
        merged_equals_whole(recorded());
    }

    #[test]
    fn three_recorded_vm_columns_merge_into_the_three_column_matrix() {
        let cols = recorded_vms();
        let names: Vec<String> = cols
            .iter()
            .map(|c| format!("{} {}", c.name, c.cgroup))
            .collect();
        assert_eq!(names, ["6.1 v1", "6.1 v2", "6.12 v2"]);
        merged_equals_whole(cols);
    }

    #[test]
    fn recorded_vm_matrix_markdown_snapshot() {
        insta::assert_snapshot!(Matrix::build(&recorded_vms()).to_markdown());
    }

    #[test]
    fn recorded_vm_matrix_html_snapshot() {
        insta::assert_snapshot!(Matrix::build(&recorded_vms()).to_html());
    }

    /// The matrix of `whole` as one machine writes it equals the one merged
    /// from each column written to its own directory with its own timing.
    fn merged_equals_whole(whole_run: Vec<ColumnResult>) {
        let one_machine = tempfile::tempdir().unwrap();
        let whole = matrix::write(&whole_run, one_machine.path(), None).unwrap();

        // Each column on its own "runner", with its own timing; the CI
        // system brings the three directories together.
        let artifacts = tempfile::tempdir().unwrap();
        let mut dirs = Vec::new();
        for (i, mut c) in whole_run.into_iter().enumerate() {
            c.seconds = c.seconds.map(|s| s + 10.0 * i as f64 + 0.5);
            let dir = artifacts.path().join(format!("column-{i}"));
            write(&c, &dir).unwrap();
            dirs.push(dir);
        }
        let merged_dir = tempfile::tempdir().unwrap();
        let read: Vec<ColumnResult> = find(&dirs)
            .unwrap()
            .iter()
            .map(|d| read(d).unwrap())
            .collect();
        let merged = matrix::write(&read, merged_dir.path(), None).unwrap();
        assert_ne!(merged, whole, "the timings differ");
        let (merged, whole) = (without_timings(merged), without_timings(whole));
        assert_eq!(merged, whole);
        assert_eq!(merged.to_markdown(), whole.to_markdown());
        assert_eq!(merged.to_html(), whole.to_html());
        assert_eq!(merged.to_junit(), whole.to_junit());
        // The reports carried along are byte for byte the VM's.
        for f in std::fs::read_dir(one_machine.path()).unwrap().flatten() {
            let name = f.file_name();
            if name.to_string_lossy().starts_with("report-") {
                assert_eq!(
                    std::fs::read(f.path()).unwrap(),
                    std::fs::read(merged_dir.path().join(&name)).unwrap()
                );
            }
        }
        // A parent directory of column directories is the same columns.
        assert_eq!(find(&[artifacts.path().to_path_buf()]).unwrap(), dirs);
    }

    #[test]
    fn a_directory_without_a_column_is_named() {
        let d = tempfile::tempdir().unwrap();
        let err = find(&[d.path().to_path_buf()]).unwrap_err().to_string();
        assert!(err.contains("holds no column result"), "{err}");
        std::fs::write(d.path().join("column.json"), "{}").unwrap();
        let err = format!("{:#}", read(d.path()).unwrap_err());
        assert!(err.contains("is not a boxwatch column result"), "{err}");
    }
}
