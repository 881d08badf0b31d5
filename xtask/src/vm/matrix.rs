//! The compatibility matrix: scenarios as rows, kernel x cgroup layout as
//! columns; each cell the scenario's status and its headline measurement. Rows
//! whose cells differ between columns are marked, since a difference is the
//! news a kernel upgrade brings.

use super::ColumnResult;
use anyhow::Result;
use reports::{Report, ScenarioResult, Status};
use serde::Serialize;
use std::path::Path;

pub const SCHEMA: &str = "boxwatch.matrix/v1";

#[derive(Debug, Serialize)]
pub struct Matrix {
    pub schema_version: &'static str,
    pub columns: Vec<MatrixColumn>,
    pub rows: Vec<MatrixRow>,
}

#[derive(Debug, Serialize)]
pub struct MatrixColumn {
    pub kernel: String,
    pub cgroup: String,
    /// The cgroup mode the report saw inside the VM.
    pub cgroup_mode: Option<String>,
    pub accel: Option<String>,
    pub seconds: Option<f64>,
    pub passed: Option<usize>,
    pub failed: Option<usize>,
    /// Why this column has no report (boot failure, hang, cut-off report).
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MatrixRow {
    pub scenario: String,
    /// The cells are not all the same status.
    pub differs: bool,
    pub cells: Vec<Option<Cell>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub status: Status,
    pub measurement: Option<(String, f64)>,
    /// Required checks that did not reach their expected verdict.
    pub failed_checks: Vec<String>,
}

impl Cell {
    fn of(s: &ScenarioResult) -> Cell {
        Cell {
            status: s.status,
            // The scenario's own headline figure, if it names one.
            measurement: s
                .headline
                .as_ref()
                .and_then(|k| s.measurements.get(k).map(|v| (k.clone(), *v))),
            failed_checks: match s.status {
                Status::Fail | Status::Error => s
                    .checks
                    .iter()
                    .filter(|c| c.required && !c.held())
                    .map(|c| c.id.clone())
                    .collect(),
                Status::Pass | Status::Unsupported | Status::NotApplicable => Vec::new(),
            },
        }
    }

    fn text(&self) -> String {
        let mut t = self.status.to_string();
        if let Some((k, v)) = &self.measurement {
            t.push_str(&format!(" ({k} {})", fmt_value(*v)));
        }
        if !self.failed_checks.is_empty() {
            t.push_str(&format!(": {}", self.failed_checks.join(", ")));
        }
        t
    }
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// A column's report, or why there is none.
pub fn parse_column(r: &ColumnResult) -> std::result::Result<Report, String> {
    if let Some(e) = &r.error {
        return Err(e.clone());
    }
    let text = r.output.trim();
    if text.is_empty() {
        return Err(format!(
            "kernel {} cgroup {}: the job exited {} and sent no report",
            r.kernel,
            r.cgroup,
            r.job_exit.unwrap_or(-1)
        ));
    }
    reports::parse_report(text, Path::new(&format!("vm:{}-{}", r.kernel, r.cgroup))).map_err(|e| {
        format!(
            "kernel {} cgroup {}: the report is cut off or malformed: {e}",
            r.kernel, r.cgroup
        )
    })
}

impl Matrix {
    /// Builds the matrix from each column's result.
    pub fn build(results: &[ColumnResult]) -> Matrix {
        let parsed: Vec<std::result::Result<Report, String>> =
            results.iter().map(parse_column).collect();
        let columns = results
            .iter()
            .zip(&parsed)
            .map(|(r, p)| MatrixColumn {
                kernel: r.kernel.clone(),
                cgroup: r.cgroup.to_string(),
                cgroup_mode: p
                    .as_ref()
                    .ok()
                    .map(|rep| rep.host.cgroup_mode.as_str().to_string()),
                accel: r.accel.clone(),
                seconds: r.seconds,
                passed: p.as_ref().ok().map(|rep| rep.summary.passed),
                failed: p.as_ref().ok().map(|rep| rep.summary.failed),
                error: p.as_ref().err().cloned(),
            })
            .collect();
        let mut ids: Vec<String> = Vec::new();
        for rep in parsed.iter().flatten() {
            for s in &rep.scenarios {
                if !ids.contains(&s.id) {
                    ids.push(s.id.clone());
                }
            }
        }
        let rows = ids
            .into_iter()
            .map(|id| {
                let cells: Vec<Option<Cell>> = parsed
                    .iter()
                    .map(|p| {
                        p.as_ref()
                            .ok()
                            .and_then(|rep| rep.scenarios.iter().find(|s| s.id == id))
                            .map(Cell::of)
                    })
                    .collect();
                // Compare only columns that produced a report: a dead VM is
                // reported once, not as a difference in every row.
                let statuses: Vec<Option<Status>> = cells
                    .iter()
                    .zip(&parsed)
                    .filter(|(_, p)| p.is_ok())
                    .map(|(c, _)| c.as_ref().map(|c| c.status))
                    .collect();
                let differs = statuses.windows(2).any(|w| w[0] != w[1]);
                MatrixRow {
                    scenario: id,
                    differs,
                    cells,
                }
            })
            .collect();
        Matrix {
            schema_version: SCHEMA,
            columns,
            rows,
        }
    }

    /// True when every column has a report and no required check failed.
    pub fn all_held(&self) -> bool {
        self.columns
            .iter()
            .all(|c| c.error.is_none() && c.failed == Some(0))
    }

    pub fn to_markdown(&self) -> String {
        let mut md = String::from("## boxwatch kernel-compatibility matrix\n\n");
        let heads: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", c.kernel, c.cgroup))
            .collect();
        md.push_str(&format!("| scenario | {} |\n", heads.join(" | ")));
        md.push_str(&format!("|---|{}\n", "---|".repeat(heads.len())));
        for row in &self.rows {
            let name = if row.differs {
                format!("**{}** (differs)", row.scenario)
            } else {
                row.scenario.clone()
            };
            let cells: Vec<String> = row
                .cells
                .iter()
                .map(|c| c.as_ref().map_or("—".into(), Cell::text))
                .collect();
            md.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
        }
        let errors: Vec<&MatrixColumn> =
            self.columns.iter().filter(|c| c.error.is_some()).collect();
        if !errors.is_empty() {
            md.push_str("\n### Columns without a report\n\n");
            for c in errors {
                let e = c.error.as_deref().unwrap_or("");
                md.push_str(&format!(
                    "- **{} {}**:\n\n```\n{e}\n```\n",
                    c.kernel, c.cgroup
                ));
            }
        }
        md
    }

    pub fn to_html(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut h = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>boxwatch kernel matrix</title><style>\
             body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}\
             .pass{background:#e6f4ea}.fail{background:#fce8e6}.unsupported{background:#f1f3f4}.error{background:#fef7e0}\
             tr.differs td:first-child{font-weight:bold;border-left:4px solid #e37400}pre{background:#f6f6f6;padding:8px}</style></head><body>\
             <h1>boxwatch kernel-compatibility matrix</h1><table><tr><th>scenario</th>",
        );
        for c in &self.columns {
            let mode = c.cgroup_mode.as_deref().unwrap_or("?");
            h.push_str(&format!(
                "<th>{} {}<br><small>mode {mode}</small></th>",
                esc(&c.kernel),
                c.cgroup
            ));
        }
        h.push_str("</tr>");
        for row in &self.rows {
            let class = if row.differs {
                " class=\"differs\""
            } else {
                ""
            };
            h.push_str(&format!("<tr{class}><td>{}</td>", esc(&row.scenario)));
            for cell in &row.cells {
                match cell {
                    Some(c) => h.push_str(&format!(
                        "<td class=\"{}\">{}</td>",
                        c.status,
                        esc(&c.text())
                    )),
                    None => h.push_str("<td>—</td>"),
                }
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
        for c in self.columns.iter().filter(|c| c.error.is_some()) {
            h.push_str(&format!(
                "<h2>{} {}: no report</h2><pre>{}</pre>",
                esc(&c.kernel),
                c.cgroup,
                esc(c.error.as_deref().unwrap_or(""))
            ));
        }
        h.push_str("</body></html>\n");
        h
    }
}

/// Writes matrix.json, matrix.md, matrix.html and each column's report
/// under `dir`; returns the matrix.
pub fn write(results: &[ColumnResult], dir: &Path) -> Result<Matrix> {
    std::fs::create_dir_all(dir)?;
    let m = Matrix::build(results);
    std::fs::write(
        dir.join("matrix.json"),
        serde_json::to_string_pretty(&m)? + "\n",
    )?;
    std::fs::write(dir.join("matrix.md"), m.to_markdown())?;
    std::fs::write(dir.join("matrix.html"), m.to_html())?;
    for r in results.iter().filter(|r| !r.output.trim().is_empty()) {
        std::fs::write(
            dir.join(format!("report-{}-{}.json", r.kernel, r.cgroup)),
            &r.output,
        )?;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::initramfs::CgroupLayout;

    fn column(
        kernel: &str,
        cgroup: CgroupLayout,
        report: Option<Report>,
        error: Option<&str>,
    ) -> ColumnResult {
        ColumnResult {
            kernel: kernel.into(),
            cgroup,
            accel: Some("tcg".into()),
            seconds: Some(42.0),
            job_exit: Some(if report.as_ref().is_some_and(|r| r.summary.failed > 0) {
                1
            } else {
                0
            }),
            output: report
                .map(|r| serde_json::to_string(&r).unwrap())
                .unwrap_or_default(),
            error: error.map(String::from),
        }
    }

    fn columns() -> Vec<ColumnResult> {
        let a = reports::fixture::baseline_report();
        let b = reports::fixture::sample_report();
        vec![
            column("6.1.0-56-amd64", CgroupLayout::V1, Some(a), None),
            column("6.12.117+deb12-amd64", CgroupLayout::V2, Some(b), None),
            column("6.1.0-56-amd64", CgroupLayout::V2, None, Some("kernel 6.1.0-56-amd64: the VM did not finish within 600 s and was killed; last console lines:\n[ 1.0] hung")),
        ]
    }

    #[test]
    fn rows_that_differ_between_columns_are_marked() {
        let m = Matrix::build(&columns());
        assert_eq!(m.columns.len(), 3);
        assert!(m.columns[2]
            .error
            .as_deref()
            .unwrap()
            .contains("did not finish"));
        let differing: Vec<&str> = m
            .rows
            .iter()
            .filter(|r| r.differs)
            .map(|r| r.scenario.as_str())
            .collect();
        assert_eq!(
            differing,
            ["cpu-quota-150"],
            "only real differences between reports count"
        );
        assert!(!m.all_held());
    }

    #[test]
    fn a_cut_off_report_names_the_kernel() {
        let mut c = column(
            "6.12.117+deb12-amd64",
            CgroupLayout::V2,
            Some(reports::fixture::sample_report()),
            None,
        );
        c.output.truncate(c.output.len() / 2);
        let err = parse_column(&c).unwrap_err();
        assert!(
            err.contains("6.12.117+deb12-amd64") && err.contains("cut off"),
            "{err}"
        );
    }

    #[test]
    fn markdown_snapshot() {
        insta::assert_snapshot!(Matrix::build(&columns()).to_markdown());
    }

    #[test]
    fn html_snapshot() {
        insta::assert_snapshot!(Matrix::build(&columns()).to_html());
    }

    #[test]
    fn json_snapshot() {
        insta::assert_json_snapshot!(Matrix::build(&columns()));
    }
}
