//! The runtime comparison: the same catalog judged under several runtimes
//! (builtin, runc, crun, runsc, docker, podman), side by side. Rows are
//! scenarios and their checks, columns the runtimes; a row whose status
//! or verdict is not the same in every column is a difference and is
//! highlighted, since that is where one runtime isolates or limits what
//! another does not.

use reports::{Report, Status};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub const SCHEMA: &str = "boxwatch.runtime-comparison/v1";

/// Measurements shown next to a scenario's status, the first present wins.
const KEY_MEASUREMENTS: [&str; 6] = [
    "cpu_share",
    "oom_kills",
    "pids_peak",
    "memory_peak_bytes",
    "inside.pid",
    "exit_code",
];

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub schema_version: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Serialize)]
pub struct Column {
    pub runtime: String,
    pub version: String,
    pub passed: usize,
    pub failed: usize,
    pub unsupported: usize,
    /// Scenarios that do not apply to the runtime's model (a sandbox).
    pub not_applicable: usize,
    pub errors: usize,
}

/// A scenario (check = None) or one of its checks.
#[derive(Debug, Serialize)]
pub struct Row {
    pub scenario: String,
    pub check: Option<String>,
    /// Not the same status/verdict in every column (a column without the
    /// row counts as different).
    pub differs: bool,
    pub cells: Vec<Option<Cell>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// A scenario's status, or a check's verdict.
    pub outcome: String,
    /// Whether it is what the catalog expects (scenario: pass or
    /// unsupported; check: verdict == expected).
    pub ok: bool,
    /// A scenario's key measurement, or a check's observation.
    pub detail: String,
}

fn scenario_cell(s: &reports::ScenarioResult) -> Cell {
    // The scenario's own headline figure, else the first key measurement.
    let headline = s
        .headline
        .as_deref()
        .and_then(|k| s.measurements.get(k).map(|v| (k, *v)));
    let detail = headline
        .or_else(|| {
            KEY_MEASUREMENTS
                .iter()
                .find_map(|k| s.measurements.get(*k).map(|v| (*k, *v)))
        })
        .map(|(k, v)| format!("{k} {}", short(v)))
        .unwrap_or_default();
    Cell {
        outcome: match s.status {
            // Spelled out: never to be read as "unsupported".
            Status::NotApplicable => "not applicable".into(),
            other => other.to_string(),
        },
        ok: matches!(
            s.status,
            Status::Pass | Status::Unsupported | Status::NotApplicable
        ),
        detail,
    }
}

fn short(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// The value part of a check's `observed` text (`metric = VALUE (expected
/// ...)`), cut to a table cell's size.
fn observed_value(observed: &str) -> String {
    let v = observed
        .split_once(" = ")
        .map(|(_, v)| v)
        .unwrap_or(observed);
    let v = v.rsplit_once(" (expected").map(|(v, _)| v).unwrap_or(v);
    let v = v.trim();
    if v.chars().count() > 60 {
        format!("{}…", v.chars().take(59).collect::<String>())
    } else {
        v.to_string()
    }
}

fn check_cell(c: &reports::CheckResult) -> Cell {
    Cell {
        outcome: match c.verdict {
            reports::Verdict::NotApplicable => "not applicable".into(),
            v => v.to_string(),
        },
        // Not applicable to the runtime's model is no failure.
        ok: c.held() || c.verdict == reports::Verdict::NotApplicable,
        detail: observed_value(&c.observed),
    }
}

impl Comparison {
    /// Compares reports of the same catalog, one per runtime, in the
    /// order given (the columns).
    pub fn build(reports: &[Report]) -> Comparison {
        let columns = reports
            .iter()
            .map(|r| {
                let count = |st: Status| r.scenarios.iter().filter(|s| s.status == st).count();
                Column {
                    runtime: r.runtime.name.to_string(),
                    version: r.runtime.version.clone(),
                    passed: count(Status::Pass),
                    failed: count(Status::Fail),
                    unsupported: count(Status::Unsupported),
                    not_applicable: count(Status::NotApplicable),
                    errors: count(Status::Error),
                }
            })
            .collect();
        // Scenario ids in the order first seen; checks likewise per scenario.
        let mut order: Vec<String> = Vec::new();
        let mut checks: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in reports {
            for s in &r.scenarios {
                if !order.contains(&s.id) {
                    order.push(s.id.clone());
                }
                let ids = checks.entry(s.id.clone()).or_default();
                for c in &s.checks {
                    if !ids.contains(&c.id) {
                        ids.push(c.id.clone());
                    }
                }
            }
        }
        let mut rows = Vec::new();
        for id in &order {
            let scenario = |r: &Report| r.scenarios.iter().find(|s| &s.id == id).cloned();
            let cells: Vec<Option<Cell>> = reports
                .iter()
                .map(|r| scenario(r).map(|s| scenario_cell(&s)))
                .collect();
            rows.push(Row {
                scenario: id.clone(),
                check: None,
                differs: differ(&cells),
                cells,
            });
            for check in &checks[id] {
                let cells: Vec<Option<Cell>> = reports
                    .iter()
                    .map(|r| {
                        scenario(r)
                            .and_then(|s| s.checks.iter().find(|c| &c.id == check).cloned())
                            .map(|c| check_cell(&c))
                    })
                    .collect();
                rows.push(Row {
                    scenario: id.clone(),
                    check: Some(check.clone()),
                    differs: differ(&cells),
                    cells,
                });
            }
        }
        Comparison {
            schema_version: SCHEMA,
            columns,
            rows,
        }
    }

    /// Rows that differ between runtimes.
    pub fn differences(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.differs)
    }

    pub fn to_markdown(&self) -> String {
        let mut md = String::from("# boxwatch: runtimes side by side\n\n");
        for c in &self.columns {
            let _ = writeln!(
                md,
                "- **{}**: {} ({} passed, {} failed, {} unsupported, {} not applicable, {} error)",
                c.runtime, c.version, c.passed, c.failed, c.unsupported, c.not_applicable, c.errors
            );
        }
        let diffs: Vec<&Row> = self.differences().collect();
        let _ = writeln!(
            md,
            "\n{} difference{} between runtimes{}\n",
            diffs.len(),
            if diffs.len() == 1 { "" } else { "s" },
            if diffs.is_empty() {
                ": every scenario and check came out the same."
            } else {
                " (marked ≠ below, listed first)."
            }
        );
        let header = |md: &mut String| {
            md.push_str("| | scenario / check |");
            for c in &self.columns {
                let _ = write!(md, " {} |", c.runtime);
            }
            md.push_str("\n|---|---|");
            for _ in &self.columns {
                md.push_str("---|");
            }
            md.push('\n');
        };
        if !diffs.is_empty() {
            md.push_str("## Differences\n\n");
            header(&mut md);
            for r in &diffs {
                self.md_row(&mut md, r);
            }
            md.push_str("\n## Everything\n\n");
        }
        header(&mut md);
        for r in &self.rows {
            self.md_row(&mut md, r);
        }
        md
    }

    fn md_row(&self, md: &mut String, r: &Row) {
        let name = match &r.check {
            None => format!("**{}**", r.scenario),
            Some(c) => format!("{} / {c}", r.scenario),
        };
        let _ = write!(md, "| {} | {name} |", if r.differs { "≠" } else { "" });
        for cell in &r.cells {
            let text = match cell {
                None => "—".to_string(),
                Some(c) => {
                    let mark = if c.ok { "" } else { "✗ " };
                    let detail = if c.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", reports::markdown_cell(&c.detail))
                    };
                    if r.differs {
                        format!("{mark}**{}**{detail}", c.outcome)
                    } else {
                        format!("{mark}{}{detail}", c.outcome)
                    }
                }
            };
            let _ = write!(md, " {text} |");
        }
        md.push('\n');
    }

    pub fn to_html(&self) -> String {
        let mut h = String::from(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>boxwatch: runtimes side by side</title>\n<style>\
             body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}\
             td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}\
             tr.scenario td{font-weight:bold;background:#f4f4f4}tr.differs td{background:#fff3b0}\
             tr.differs td.name::before{content:'\\2260  ';color:#b00}td.bad{color:#b00}td.na{color:#0969da;font-style:italic}\
             span.d{color:#666;font-weight:normal}</style></head><body>\n\
             <h1>boxwatch: runtimes side by side</h1>\n<ul>\n",
        );
        for c in &self.columns {
            let _ = writeln!(
                h,
                "<li><b>{}</b>: {} ({} passed, {} failed, {} unsupported, {} not applicable, {} error)</li>",
                esc(&c.runtime),
                esc(&c.version),
                c.passed,
                c.failed,
                c.unsupported,
                c.not_applicable,
                c.errors
            );
        }
        let n = self.differences().count();
        let _ = writeln!(
            h,
            "</ul>\n<p>{n} difference{} between runtimes (highlighted).</p>\n<table>\n<tr><th>scenario / check</th>",
            if n == 1 { "" } else { "s" }
        );
        for c in &self.columns {
            let _ = write!(h, "<th>{}</th>", esc(&c.runtime));
        }
        h.push_str("</tr>\n");
        for r in &self.rows {
            let mut class = Vec::new();
            if r.check.is_none() {
                class.push("scenario");
            }
            if r.differs {
                class.push("differs");
            }
            let name = match &r.check {
                None => esc(&r.scenario),
                Some(c) => format!("&nbsp;&nbsp;{}", esc(c)),
            };
            let _ = write!(
                h,
                "<tr class=\"{}\"><td class=\"name\">{name}</td>",
                class.join(" ")
            );
            for cell in &r.cells {
                match cell {
                    None => h.push_str("<td>—</td>"),
                    Some(c) => {
                        let _ = write!(
                            h,
                            "<td{}>{} <span class=\"d\">{}</span></td>",
                            if !c.ok {
                                " class=\"bad\""
                            } else if c.outcome == "not applicable" {
                                " class=\"na\""
                            } else {
                                ""
                            },
                            esc(&c.outcome),
                            esc(&c.detail)
                        );
                    }
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n</body></html>\n");
        h
    }
}

/// Cells differ when their outcomes are not all equal, or some are missing.
fn differ(cells: &[Option<Cell>]) -> bool {
    let Some(Some(first)) = cells.first() else {
        return cells.len() > 1;
    };
    cells
        .iter()
        .any(|c| c.as_ref().map(|c| &c.outcome) != Some(&first.outcome))
}

/// Text for a Markdown table cell: no column break, no raw HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use reports::{RuntimeName, Verdict};

    fn reports_pair() -> (Report, Report) {
        let a = reports::fixture::sample_report();
        let mut b = a.clone();
        b.runtime.name = RuntimeName::Runc;
        b.runtime.version = "runc version 1.1.5".into();
        (a, b)
    }

    /// A real runsc run next to the same scenarios under another runtime:
    /// a not-applicable scenario reads as such, never as unsupported, in
    /// the Markdown and the HTML.
    #[test]
    fn a_sandboxed_runtime_shows_not_applicable_apart_from_unsupported() {
        let text = include_str!("../../../reports/tests/data/runsc-sandboxed.json");
        let runsc =
            reports::parse_report(text, std::path::Path::new("runsc-sandboxed.json")).unwrap();
        let mut runc = runsc.clone();
        runc.runtime.name = RuntimeName::Runc;
        for s in &mut runc.scenarios {
            s.status = Status::Pass;
        }
        let c = Comparison::build(&[runc, runsc]);
        assert_eq!(c.columns[1].not_applicable, 1);
        assert_eq!(c.columns[1].unsupported, 1);
        let row = c
            .rows
            .iter()
            .find(|r| r.scenario == "ipc-namespace" && r.check.is_none())
            .unwrap();
        assert!(row.differs);
        let cell = row.cells[1].as_ref().unwrap();
        assert_eq!(cell.outcome, "not applicable");
        assert!(cell.ok, "not applicable is no failure");
        let md = c.to_markdown();
        assert!(md.contains("not applicable") && md.contains("unsupported"));
        assert!(c.to_html().contains("<td class=\"na\">not applicable"));
        let check = c
            .rows
            .iter()
            .find(|r| r.scenario == "ipc-namespace" && r.check.as_deref() == Some("ns-differs"))
            .unwrap();
        assert!(check.cells[1].as_ref().unwrap().ok);
    }

    #[test]
    fn identical_reports_have_no_differences() {
        let (a, b) = reports_pair();
        let c = Comparison::build(&[a, b]);
        assert!(!c.rows.is_empty());
        assert_eq!(c.differences().count(), 0);
        assert!(c
            .to_markdown()
            .contains("every scenario and check came out the same"));
        assert_eq!(c.columns[1].runtime, "runc");
    }

    #[test]
    fn a_changed_verdict_is_a_difference_in_every_format() {
        let (a, mut b) = reports_pair();
        let s = b
            .scenarios
            .iter_mut()
            .find(|s| !s.checks.is_empty())
            .expect("the fixture has checks");
        let sid = s.id.clone();
        let cid = s.checks[0].id.clone();
        let other = if s.checks[0].verdict == Verdict::NotEnforced {
            Verdict::Enforced
        } else {
            Verdict::NotEnforced
        };
        s.checks[0].verdict = other;
        s.status = Status::Fail;
        let c = Comparison::build(&[a, b]);
        let diffs: Vec<&Row> = c.differences().collect();
        assert!(diffs
            .iter()
            .any(|r| r.scenario == sid && r.check.as_deref() == Some(cid.as_str())));
        assert!(diffs.iter().any(|r| r.scenario == sid && r.check.is_none()));
        let md = c.to_markdown();
        assert!(md.contains("## Differences") && md.contains(&format!("| ≠ | {sid} / {cid} |")));
        assert!(md.contains(&format!("**{other}**")));
        let html = c.to_html();
        assert!(html.contains("class=\"differs\"") || html.contains("scenario differs"));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["schema_version"], SCHEMA);
    }

    #[test]
    fn a_scenario_missing_from_one_runtime_differs() {
        let (a, mut b) = reports_pair();
        let gone = b.scenarios.remove(0).id;
        let c = Comparison::build(&[a, b]);
        let row = c
            .rows
            .iter()
            .find(|r| r.scenario == gone && r.check.is_none())
            .unwrap();
        assert!(row.differs && row.cells[1].is_none());
        assert!(c.to_markdown().contains("—"));
    }

    #[test]
    fn observed_values_are_cut_out_of_the_text() {
        assert_eq!(
            observed_value("cpu_share = 0.2012 (expected 0.2 ± 0.02)"),
            "0.2012"
        );
        assert_eq!(observed_value("plain"), "plain");
        assert!(observed_value(&format!("m = {}", "x".repeat(100))).ends_with('…'));
        assert_eq!(esc("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
    }

    /// builtin, runc and crun over the fixture catalog: runc differs in one
    /// check's verdict, crun lacks a scenario and errs in another, and a
    /// detail holds characters both renderers must escape.
    fn three_runtimes() -> Comparison {
        let builtin = reports::fixture::sample_report();
        let mut runc = builtin.clone();
        runc.runtime.name = RuntimeName::Runc;
        runc.runtime.version = "runc version 1.1.5+ds1".into();
        let s = runc
            .scenarios
            .iter_mut()
            .find(|s| !s.checks.is_empty())
            .expect("the fixture has checks");
        s.checks[0].verdict = if s.checks[0].verdict == Verdict::NotEnforced {
            Verdict::Enforced
        } else {
            Verdict::NotEnforced
        };
        s.checks[0].observed = "cpu_share = 0.31 | <b>&\"x\" (expected 0.2 ± 0.02)".into();
        s.status = Status::Fail;
        let mut crun = builtin.clone();
        crun.runtime.name = RuntimeName::Crun;
        crun.runtime.version = "crun version 1.8.1".into();
        crun.scenarios.pop();
        if let Some(s) = crun.scenarios.last_mut() {
            s.status = Status::Error;
            s.error = Some("starting container: crun cannot run this container".into());
        }
        Comparison::build(&[builtin, runc, crun])
    }

    #[test]
    fn markdown_snapshot() {
        insta::assert_snapshot!(three_runtimes().to_markdown());
    }

    #[test]
    fn html_snapshot() {
        insta::assert_snapshot!(three_runtimes().to_html());
    }

    #[test]
    fn json_snapshot() {
        insta::assert_json_snapshot!(three_runtimes());
    }
}
