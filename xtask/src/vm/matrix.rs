//! The compatibility matrix: scenarios as rows, kernel x cgroup layout as
//! columns; each cell the scenario's status and its headline measurement.
//! Rows whose cells differ between columns come first and are marked, since
//! a difference is the news a kernel upgrade brings. Against a baseline
//! matrix, a cell that passed there and does not now is a regression, shown
//! in every format (JSON, Markdown, JUnit, HTML).

use super::ColumnResult;
use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
use reports::{Report, ScenarioResult, Status};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const SCHEMA: &str = "boxwatch.matrix/v1";

/// The files [`write()`] makes, besides each column's report.
pub const FILES: [&str; 4] = [
    "matrix.json",
    "matrix.md",
    "matrix.html",
    "matrix-junit.xml",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    pub schema_version: String,
    pub columns: Vec<MatrixColumn>,
    /// Rows that differ between columns first, then in report order.
    pub rows: Vec<MatrixRow>,
    /// Cells that passed in the baseline matrix and do not now; empty when
    /// no baseline was given.
    #[serde(default)]
    pub regressions: Vec<CellRegression>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixColumn {
    /// The kernel's release (a Debian package's) or its image's file name.
    pub kernel: String,
    /// The kernel as asked for (`6.1`, `6.12-rt`, or the image's file
    /// name): what a baseline's columns are matched by, across package
    /// updates.
    #[serde(default)]
    pub name: String,
    pub cgroup: String,
    /// Kernel command line arguments added to the VM's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<String>,
    /// The cgroup mode the report saw inside the VM.
    pub cgroup_mode: Option<String>,
    pub accel: Option<String>,
    pub seconds: Option<f64>,
    pub passed: Option<usize>,
    pub failed: Option<usize>,
    /// Scenarios that could not be carried out (status `error`).
    #[serde(default)]
    pub errored: Option<usize>,
    /// Why this column has no report (boot failure, hang, cut-off report).
    pub error: Option<String>,
}

impl MatrixColumn {
    /// `6.1.0-57-amd64 v2`: how every format heads the column.
    pub fn title(&self) -> String {
        format!("{} {}", self.kernel, self.cgroup)
    }

    /// What a baseline's column is matched by.
    fn key(&self) -> (&str, &str) {
        let name = if self.name.is_empty() {
            &self.kernel
        } else {
            &self.name
        };
        (name, &self.cgroup)
    }

    /// True when the column has a report and no scenario failed or errored.
    pub fn held(&self) -> bool {
        self.error.is_none() && self.failed == Some(0) && self.errored.unwrap_or(0) == 0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixRow {
    pub scenario: String,
    /// The cells are not all the same status.
    pub differs: bool,
    pub cells: Vec<Option<Cell>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub status: Status,
    pub measurement: Option<(String, f64)>,
    /// Required checks that did not reach their expected verdict.
    pub failed_checks: Vec<String>,
}

/// A cell that passed in the baseline matrix and does not now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRegression {
    pub scenario: String,
    /// Index of the column in this matrix, and its title.
    pub column: usize,
    pub column_title: String,
    /// The cell's status in the baseline (always `pass`).
    pub baseline: Status,
    /// Its status now; `None` when the column has no report or the
    /// scenario no cell.
    pub current: Option<Status>,
    /// The baseline cell's headline figure, to compare with the current one.
    pub baseline_measurement: Option<(String, f64)>,
}

impl CellRegression {
    fn now(&self) -> &'static str {
        self.current.map_or("no result", Status::as_str)
    }

    fn text(&self) -> String {
        let mut t = format!(
            "{} on {}: {} in the baseline, {} now",
            self.scenario,
            self.column_title,
            self.baseline,
            self.now()
        );
        if let Some((k, v)) = &self.baseline_measurement {
            t.push_str(&format!(" (baseline {k} {})", fmt_value(*v)));
        }
        t
    }
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

    fn figure(&self) -> Option<String> {
        self.measurement
            .as_ref()
            .map(|(k, v)| format!("{k} {}", fmt_value(*v)))
    }

    fn text(&self) -> String {
        let mut t = self.status.to_string();
        if let Some(f) = self.figure() {
            t.push_str(&format!(" ({f})"));
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
            "kernel {} cgroup {}: the report is cut off or malformed: {}",
            r.kernel,
            r.cgroup,
            reports::error::chain(&e)
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
                name: r.name.clone(),
                cgroup: r.cgroup.to_string(),
                append: r.append.clone(),
                cgroup_mode: p
                    .as_ref()
                    .ok()
                    .map(|rep| rep.host.cgroup_mode.as_str().to_string()),
                accel: r.accel.clone(),
                seconds: r.seconds,
                passed: p.as_ref().ok().map(|rep| rep.summary.passed),
                failed: p.as_ref().ok().map(|rep| rep.summary.failed),
                errored: p.as_ref().ok().map(|rep| rep.summary.errored),
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
        let mut rows: Vec<MatrixRow> = ids
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
                // Compare only the cells there are: a dead VM is reported
                // once, and a scenario a column did not run (--only) is not
                // a difference in every row.
                let statuses: Vec<Status> = cells.iter().flatten().map(|c| c.status).collect();
                let differs = statuses.windows(2).any(|w| w[0] != w[1]);
                MatrixRow {
                    scenario: id,
                    differs,
                    cells,
                }
            })
            .collect();
        // The news first; otherwise the order the scenarios ran in.
        rows.sort_by_key(|r| !r.differs);
        Matrix {
            schema_version: SCHEMA.to_string(),
            columns,
            rows,
            regressions: Vec::new(),
        }
    }

    /// Adds the cells that passed in `baseline` and do not now. Columns are
    /// matched by kernel name (`6.1`, `6.12-rt`, an image's file name) and
    /// cgroup layout, so a newer package of the same series compares with
    /// the older one; columns new since the baseline are not compared.
    pub fn with_baseline(mut self, baseline: &Matrix) -> Matrix {
        let mut found = Vec::new();
        for (ci, col) in self.columns.iter().enumerate() {
            let Some(bi) = baseline.columns.iter().position(|b| b.key() == col.key()) else {
                continue;
            };
            for brow in &baseline.rows {
                let Some(Some(before)) = brow.cells.get(bi) else {
                    continue;
                };
                if before.status != Status::Pass {
                    continue;
                }
                let now = self
                    .rows
                    .iter()
                    .find(|r| r.scenario == brow.scenario)
                    .and_then(|r| r.cells.get(ci).cloned().flatten());
                // A scenario gone from every column was deselected (--only),
                // not lost; a dead column loses all its cells.
                let row_known = self.rows.iter().any(|r| r.scenario == brow.scenario);
                if now.is_none() && col.error.is_none() && !row_known {
                    continue;
                }
                let current = now.as_ref().map(|c| c.status);
                if current != Some(Status::Pass) {
                    found.push(CellRegression {
                        scenario: brow.scenario.clone(),
                        column: ci,
                        column_title: col.title(),
                        baseline: before.status,
                        current,
                        baseline_measurement: before.measurement.clone(),
                    });
                }
            }
        }
        self.regressions = found;
        self
    }

    /// True when every column has a report in which no scenario failed or
    /// errored, and nothing regressed.
    pub fn all_held(&self) -> bool {
        self.columns.iter().all(MatrixColumn::held) && self.regressions.is_empty()
    }

    /// The columns that did not hold, with why, for the exit message.
    pub fn not_held(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !c.held())
            .map(|c| match (&c.error, c.failed, c.errored) {
                (Some(_), _, _) => format!("{}: no report", c.title()),
                (None, f, e) => format!(
                    "{}: {} failed, {} errored",
                    c.title(),
                    f.unwrap_or(0),
                    e.unwrap_or(0)
                ),
            })
            .collect();
        if !self.regressions.is_empty() {
            out.push(format!(
                "{} cell(s) regressed against the baseline",
                self.regressions.len()
            ));
        }
        out
    }

    fn regressed(&self, scenario: &str, column: usize) -> Option<&CellRegression> {
        self.regressions
            .iter()
            .find(|r| r.scenario == scenario && r.column == column)
    }

    pub fn to_markdown(&self) -> String {
        let mut md = String::from("## boxwatch kernel-compatibility matrix\n\n");
        let heads: Vec<String> = self.columns.iter().map(MatrixColumn::title).collect();
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
                .enumerate()
                .map(|(i, c)| {
                    let text = c.as_ref().map_or("—".into(), Cell::text);
                    match self.regressed(&row.scenario, i) {
                        Some(_) => format!("**REGRESSION** {}", reports::markdown_cell(&text)),
                        None => reports::markdown_cell(&text),
                    }
                })
                .collect();
            md.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
        }
        if !self.regressions.is_empty() {
            md.push_str(&format!(
                "\n### Regressions against the baseline ({})\n\n",
                self.regressions.len()
            ));
            for r in &self.regressions {
                md.push_str(&format!("- {}\n", reports::markdown_cell(&r.text())));
            }
        }
        let errors: Vec<&MatrixColumn> =
            self.columns.iter().filter(|c| c.error.is_some()).collect();
        if !errors.is_empty() {
            md.push_str("\n### Columns without a report\n\n");
            for c in errors {
                let e = c.error.as_deref().unwrap_or("");
                md.push_str(&format!("- **{}**:\n\n```\n{e}\n```\n", c.title()));
            }
        }
        md
    }

    /// A page read at a glance: one row per scenario, one column per kernel
    /// and cgroup layout, each cell coloured by status with the headline
    /// figure; differing rows first, regressions outlined.
    pub fn to_html(&self) -> String {
        let mut h = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>boxwatch kernel matrix</title><style>\
             body{font-family:sans-serif;margin:2em;color:#202124}table{border-collapse:collapse}\
             td,th{border:1px solid #ccc;padding:6px 10px;font-size:14px;vertical-align:top}\
             th{background:#f8f9fa;text-align:left}td.cell b{display:block;font-size:15px}\
             .pass{background:#ceead6}.fail{background:#fad2cf}.unsupported{background:#e8eaed}\
             .error{background:#feefc3}.none{background:#fff;color:#999}\
             td.regressed{outline:3px solid #c5221f;outline-offset:-3px}\
             small{color:#5f6368}tr.differs td:first-child{font-weight:bold;border-left:5px solid #e37400}\
             pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}.legend span{padding:2px 8px;margin-right:6px}\
             </style></head><body><h1>boxwatch kernel-compatibility matrix</h1>\
             <p class=\"legend\"><span class=\"pass\">pass</span><span class=\"fail\">fail</span>\
             <span class=\"unsupported\">unsupported</span><span class=\"error\">error</span>\
             &nbsp;rows that differ between columns come first, with an orange edge; \
             cells outlined in red regressed against the baseline.</p>",
        );
        h.push_str(&format!(
            "<p>{} column(s), {} scenario(s), {} differing, {} regression(s).</p>",
            self.columns.len(),
            self.rows.len(),
            self.rows.iter().filter(|r| r.differs).count(),
            self.regressions.len()
        ));
        h.push_str("<table><tr><th>scenario</th>");
        for c in &self.columns {
            let counts = match (c.passed, c.failed, c.errored) {
                (Some(p), Some(f), e) => {
                    format!("{p} pass, {f} fail, {} error", e.unwrap_or(0))
                }
                _ => "no report".to_string(),
            };
            let append = c
                .append
                .as_deref()
                .map(|a| format!("<br><small>+ {}</small>", esc(a)))
                .unwrap_or_default();
            let took = c.seconds.map(|s| format!(", {s:.0} s")).unwrap_or_default();
            h.push_str(&format!(
                "<th>{}<br>cgroup {}{append}<br><small>mode {}, {}{took}</small><br><small>{counts}</small></th>",
                esc(&c.kernel),
                esc(&c.cgroup),
                esc(c.cgroup_mode.as_deref().unwrap_or("?")),
                esc(c.accel.as_deref().unwrap_or("?")),
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
            for (i, cell) in row.cells.iter().enumerate() {
                let reg = self.regressed(&row.scenario, i);
                let reg_class = if reg.is_some() { " regressed" } else { "" };
                let reg_note = reg
                    .map(|r| format!("<br><small>regression: was {}</small>", r.baseline))
                    .unwrap_or_default();
                match cell {
                    Some(c) => {
                        let figure = c
                            .figure()
                            .map(|f| format!("<br>{}", esc(&f)))
                            .unwrap_or_default();
                        let checks = if c.failed_checks.is_empty() {
                            String::new()
                        } else {
                            format!("<br><small>{}</small>", esc(&c.failed_checks.join(", ")))
                        };
                        h.push_str(&format!(
                            "<td class=\"cell {}{reg_class}\"><b>{}</b>{figure}{checks}{reg_note}</td>",
                            c.status, c.status
                        ));
                    }
                    None => h.push_str(&format!(
                        "<td class=\"cell none{reg_class}\">—{reg_note}</td>"
                    )),
                }
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
        if !self.regressions.is_empty() {
            h.push_str("<h2>Regressions against the baseline</h2><ul>");
            for r in &self.regressions {
                h.push_str(&format!("<li>{}</li>", esc(&r.text())));
            }
            h.push_str("</ul>");
        }
        for c in self.columns.iter().filter(|c| c.error.is_some()) {
            h.push_str(&format!(
                "<h2>{}: no report</h2><pre>{}</pre>",
                esc(&c.title()),
                esc(c.error.as_deref().unwrap_or(""))
            ));
        }
        h.push_str("</body></html>\n");
        h
    }

    /// JUnit XML: one suite per column, one case per scenario. `fail` is a
    /// failure, `error` an error, `unsupported` (or a scenario the column
    /// did not run) skipped; a regressed cell is a failure of type
    /// `regression`; a column without a report has one error case `boot`.
    pub fn to_junit(&self) -> String {
        let mut junit = quick_junit::Report::new("boxwatch-matrix");
        for (ci, col) in self.columns.iter().enumerate() {
            let mut suite = TestSuite::new(col.title());
            suite.add_property(Property::new("kernel", col.kernel.as_str()));
            suite.add_property(Property::new("cgroup", col.cgroup.as_str()));
            if let Some(a) = &col.accel {
                suite.add_property(Property::new("accel", a.as_str()));
            }
            let class = format!("boxwatch.matrix.{}.{}", col.kernel, col.cgroup);
            if let Some(e) = &col.error {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_type("no-report").set_message(e.as_str());
                let mut case = TestCase::new("boot", status);
                case.set_classname(class.as_str());
                suite.add_test_case(case);
            }
            for row in &self.rows {
                let cell = row.cells.get(ci).and_then(Option::as_ref);
                let status = match (self.regressed(&row.scenario, ci), cell) {
                    (Some(r), _) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_type("regression").set_message(r.text());
                        s
                    }
                    (None, None) if col.error.is_some() => continue,
                    (None, None) => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message("not run in this column");
                        s
                    }
                    (None, Some(c)) => match c.status {
                        Status::Pass => TestCaseStatus::success(),
                        Status::Unsupported => {
                            let mut s = TestCaseStatus::skipped();
                            s.set_message("unsupported on this kernel");
                            s
                        }
                        Status::NotApplicable => {
                            let mut s = TestCaseStatus::skipped();
                            s.set_message("not applicable to this runtime");
                            s
                        }
                        Status::Fail | Status::Error => {
                            let kind = if c.status == Status::Fail {
                                NonSuccessKind::Failure
                            } else {
                                NonSuccessKind::Error
                            };
                            let mut s = TestCaseStatus::non_success(kind);
                            s.set_type(c.status.as_str()).set_message(c.text());
                            s
                        }
                    },
                };
                let mut case = TestCase::new(row.scenario.as_str(), status);
                case.set_classname(class.as_str());
                suite.add_test_case(case);
            }
            junit.add_test_suite(suite);
        }
        // Writing sanitized XmlStrings into memory cannot fail.
        junit.to_string().expect("JUnit XML serializes into memory")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Reads a matrix written by [`write()`] (its `matrix.json`), e.g. a baseline.
pub fn load(path: &Path) -> Result<Matrix> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the matrix {}", path.display()))?;
    let m: Matrix = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a boxwatch matrix (matrix.json written by `cargo xtask vm` or `cargo xtask matrix merge`)",
            path.display()
        )
    })?;
    anyhow::ensure!(
        m.schema_version == SCHEMA,
        "{}: matrix schema {:?}, this boxwatch reads {SCHEMA:?}",
        path.display(),
        m.schema_version
    );
    Ok(m)
}

/// Writes the matrix of `results` (against `baseline` if given) under
/// `dir` in every format ([`FILES`]), and each column's report as
/// `report-<kernel>-<cgroup>.json`; returns the matrix.
pub fn write(results: &[ColumnResult], dir: &Path, baseline: Option<&Matrix>) -> Result<Matrix> {
    std::fs::create_dir_all(dir)?;
    let mut m = Matrix::build(results);
    if let Some(b) = baseline {
        m = m.with_baseline(b);
    }
    let texts = [
        serde_json::to_string_pretty(&m)? + "\n",
        m.to_markdown(),
        m.to_html(),
        m.to_junit(),
    ];
    for (name, text) in FILES.iter().zip(texts) {
        std::fs::write(dir.join(name), text)?;
    }
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

    pub(crate) fn column(
        kernel: &str,
        cgroup: CgroupLayout,
        report: Option<Report>,
        error: Option<&str>,
    ) -> ColumnResult {
        ColumnResult {
            kernel: kernel.into(),
            name: kernel.split('.').take(2).collect::<Vec<_>>().join("."),
            cgroup,
            append: None,
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
            console_tail: "BOXWATCH-JOB-EXIT 0".into(),
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
    fn rows_that_differ_between_columns_are_marked_and_come_first() {
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
        assert_eq!(m.rows[0].scenario, "cpu-quota-150");
        assert_eq!(m.rows[1].scenario, "cpu-quota-20", "then report order");
        assert!(!m.all_held());
    }

    #[test]
    fn a_column_with_a_scenario_in_error_is_not_held() {
        // Every scenario passes but one, which could not be carried out.
        let reassemble = |r: Report| {
            Report::assemble(
                r.generated_at,
                &r.tool_version,
                r.host,
                r.runtime,
                r.scenarios,
            )
        };
        let mut report = reports::fixture::baseline_report();
        report.scenarios.retain(|s| s.status == Status::Pass);
        let mut report = reassemble(report);
        let held = Matrix::build(&[column(
            "6.12.117+deb12-amd64",
            CgroupLayout::V2,
            Some(report.clone()),
            None,
        )]);
        assert!(held.all_held(), "{:?}", held.not_held());
        let s = &mut report.scenarios[0];
        s.error = Some("spawning the container: EAGAIN".into());
        s.judge();
        assert_eq!(s.status, Status::Error);
        let report = reassemble(report);
        assert_eq!((report.summary.failed, report.summary.errored), (0, 1));
        let m = Matrix::build(&[column(
            "6.12.117+deb12-amd64",
            CgroupLayout::V2,
            Some(report),
            None,
        )]);
        assert!(!m.all_held());
        assert_eq!(
            m.not_held(),
            ["6.12.117+deb12-amd64 v2: 0 failed, 1 errored"]
        );
        let err = crate::vm::matrix_verdict(&m).unwrap_err().to_string();
        assert!(err.contains("1 errored"), "{err}");
    }

    #[test]
    fn a_cell_that_passed_in_the_baseline_and_fails_now_is_a_regression_in_every_format() {
        let base = vec![
            column(
                "6.1.0-56-amd64",
                CgroupLayout::V1,
                Some(reports::fixture::baseline_report()),
                None,
            ),
            column(
                "6.12.117+deb12-amd64",
                CgroupLayout::V2,
                Some(reports::fixture::baseline_report()),
                None,
            ),
        ];
        let baseline = Matrix::build(&base);
        assert!(Matrix::build(&base)
            .with_baseline(&baseline)
            .regressions
            .is_empty());
        // Now: a newer 6.12 package, where the 150% quota fails.
        let now = vec![
            base[0].clone(),
            column(
                "6.12.118+deb12-amd64",
                CgroupLayout::V2,
                Some(reports::fixture::sample_report()),
                None,
            ),
        ];
        let m = Matrix::build(&now).with_baseline(&baseline);
        assert_eq!(m.regressions.len(), 1, "{:?}", m.regressions);
        let r = &m.regressions[0];
        assert_eq!(
            (r.scenario.as_str(), r.column, r.current),
            ("cpu-quota-150", 1, Some(Status::Fail))
        );
        assert!(!m.all_held());
        assert!(m
            .to_markdown()
            .contains("**REGRESSION** fail (cpu_share 1.312)"));
        assert!(m.to_html().contains("cell fail regressed"));
        assert!(m.to_junit().contains("type=\"regression\""));
        let json: Matrix = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(json.regressions, m.regressions);
    }

    #[test]
    fn a_dead_column_loses_every_cell_it_held() {
        let baseline = Matrix::build(&columns()[..1]);
        let dead = Matrix::build(&columns()[2..]).with_baseline(&Matrix::build(&[column(
            "6.1.0-56-amd64",
            CgroupLayout::V2,
            Some(reports::fixture::baseline_report()),
            None,
        )]));
        let passed = reports::fixture::baseline_report()
            .scenarios
            .iter()
            .filter(|s| s.status == Status::Pass)
            .count();
        assert_eq!(dead.regressions.len(), passed);
        assert!(dead.regressions.iter().all(|r| r.current.is_none()));
        // A column the baseline does not have is not compared.
        assert!(Matrix::build(&columns()[1..2])
            .with_baseline(&baseline)
            .regressions
            .is_empty());
    }

    #[test]
    fn a_scenario_a_column_did_not_run_is_not_a_difference() {
        let mut only_one = reports::fixture::baseline_report();
        only_one.scenarios.retain(|s| s.id == "cpu-quota-20");
        let m = Matrix::build(&[
            column(
                "6.1.0-56-amd64",
                CgroupLayout::V1,
                Some(reports::fixture::baseline_report()),
                None,
            ),
            column(
                "6.12.117+deb12-rt-amd64",
                CgroupLayout::V2,
                Some(only_one),
                None,
            ),
        ]);
        assert!(m.rows.iter().all(|r| !r.differs), "{:?}", m.rows);
        assert!(m.rows.iter().skip(1).all(|r| r.cells[1].is_none()));
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
    fn a_written_matrix_loads_back_as_a_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let m = write(&columns(), dir.path(), None).unwrap();
        for f in FILES {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
        assert_eq!(load(&dir.path().join("matrix.json")).unwrap(), m);
        let err = load(&dir.path().join("matrix.md")).unwrap_err();
        assert!(
            format!("{err:#}").contains("is not a boxwatch matrix"),
            "{err:#}"
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
    fn junit_snapshot() {
        insta::assert_snapshot!(Matrix::build(&columns()).to_junit());
    }

    #[test]
    fn json_snapshot() {
        insta::assert_json_snapshot!(Matrix::build(&columns()));
    }
}
