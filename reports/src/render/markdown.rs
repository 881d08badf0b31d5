//! Markdown for a pull request comment.

use super::{
    bytes, check_counts, duration, failing_checks, findings, held_ratio, measurements, outcome,
    regression_measurements, scenario_counts,
};
use crate::model::{Report, Status};
use std::fmt::Write;

/// The report as a PR comment: a summary line with counts and host, then
/// regressions, failing required checks and findings (each named), then a
/// table of scenarios and, folded, every check.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    headline(&mut out, report);
    regressions(&mut out, report);
    failures(&mut out, report);
    tries(&mut out, report);
    leaks(&mut out, report);
    scenario_table(&mut out, report);
    all_checks(&mut out, report);
    out
}

/// The heading with the outcome and counts, and the host line.
fn headline(out: &mut String, report: &Report) {
    let icon = if report.is_success() { "✅" } else { "❌" };
    let host = &report.host;
    let _ = writeln!(
        out,
        "## {icon} boxwatch {}: {}\n",
        outcome(report),
        scenario_counts(report)
    );
    let _ = writeln!(
        out,
        "{}. Host `{}`: kernel `{}`, cgroup **{}** ({}), {} CPUs, {}{}. Runtime {} ({}), judged by boxwatch {}, {}.\n",
        check_counts(report),
        cell(&host.hostname),
        cell(&host.kernel_release),
        host.cgroup_mode,
        super::controllers(host),
        host.cpus,
        bytes(host.memory_bytes),
        if host.in_vm { ", in a VM" } else { "" },
        report.runtime.name,
        cell(&report.runtime.version),
        cell(&report.tool_version),
        report.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
    );
}

/// Regressions against the baseline, if any.
fn regressions(out: &mut String, report: &Report) {
    if report.regressions.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Regressions against the baseline\n");
    let _ = writeln!(
        out,
        "| regressed | baseline | now | required | measurements |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for r in &report.regressions {
        let _ = writeln!(
            out,
            "| `{}` | {} | **{}** | {} | {} |",
            cell(&r.name()),
            r.baseline,
            r.current,
            if r.required { "yes" } else { "no" },
            cell(&regression_measurements(r)),
        );
    }
    out.push('\n');
}

/// Required checks that did not hold, and scenarios that errored.
fn failures(out: &mut String, report: &Report) {
    let errored: Vec<_> = report
        .scenarios
        .iter()
        .filter(|s| s.error.is_some())
        .collect();
    let mut checks = failing_checks(report).peekable();
    if checks.peek().is_none() && errored.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Failing required checks\n");
    for (s, c) in checks {
        let _ = write!(
            out,
            "- ❌ `{}/{}`: expected `{}`, got **`{}`**: {}",
            s.id,
            c.id,
            c.expected,
            c.verdict,
            inline(&c.observed)
        );
        if let Some(detail) = &c.detail {
            let _ = write!(out, " ({})", inline(detail));
        }
        out.push('\n');
    }
    for s in errored {
        let error = s.error.as_deref().unwrap_or_default();
        let _ = writeln!(out, "- ⚠️ `{}` errored: {}", s.id, inline(error));
    }
    out.push('\n');
}

/// Scenarios that were tried more than once, with each earlier try.
fn tries(out: &mut String, report: &Report) {
    let lines: Vec<String> = report
        .scenarios
        .iter()
        .filter_map(|s| Some(format!("- `{}`: {}", s.id, inline(&s.tries_line()?))))
        .collect();
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Tried again\n\n{}\n", lines.join("\n"));
}

/// Informational checks that found a leak or an unenforced limit.
fn leaks(out: &mut String, report: &Report) {
    let mut found = findings(report).peekable();
    if found.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "### Findings (informational, not failures)\n");
    for (s, c) in found {
        let _ = write!(
            out,
            "- 💧 `{}/{}`: **`{}`** (expected `{}`): {}",
            s.id,
            c.id,
            c.verdict,
            c.expected,
            inline(&c.observed)
        );
        if let Some(detail) = &c.detail {
            let _ = write!(out, ". {}", inline(detail));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// One row per scenario, in run order.
fn scenario_table(out: &mut String, report: &Report) {
    let _ = writeln!(out, "### Scenarios\n");
    let _ = writeln!(
        out,
        "| | scenario | status | checks held | measurements | time |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for s in &report.scenarios {
        let _ = writeln!(
            out,
            "| {} | `{}` {} | {} | {} | {} | {} |",
            status_icon(s.status),
            s.id,
            cell(&s.title),
            s.status,
            held_ratio(s),
            cell(&measurements(s)),
            duration(s.duration_ms),
        );
    }
    out.push('\n');
}

/// Every check, folded away.
fn all_checks(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<details><summary>All checks</summary>\n");
    let _ = writeln!(out, "| check | required | expected | verdict | observed |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for s in &report.scenarios {
        for c in &s.checks {
            let mark = if c.held() { "" } else { "**" };
            let observed = match super::evidence_note(c) {
                Some(note) => format!("{} ({note})", c.observed),
                None => c.observed.clone(),
            };
            let _ = writeln!(
                out,
                "| `{}/{}` | {} | {} | {mark}{}{mark} | {} |",
                s.id,
                c.id,
                if c.required { "yes" } else { "info" },
                c.expected,
                c.verdict,
                cell(&observed),
            );
        }
    }
    let _ = writeln!(out, "\n</details>");
}

fn status_icon(status: Status) -> &'static str {
    match status {
        Status::Pass => "✅",
        Status::Fail => "❌",
        Status::Unsupported => "⚪",
        Status::NotApplicable => "➖",
        Status::Error => "⚠️",
    }
}

/// Text safe inside a table cell: one line, pipes escaped.
/// Text for a Markdown table cell: on one line, with pipes escaped and
/// `&`, `<`, `>` as entities (a PR comment must not take a workload's or a
/// runtime's text as HTML).
pub fn cell(text: &str) -> String {
    inline(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
}

/// Text on one line.
fn inline(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_on_one_line_and_escape_pipes() {
        assert_eq!(cell("a | b\nc"), "a \\| b c");
        assert_eq!(cell("<b>x</b> & y"), "&lt;b&gt;x&lt;/b&gt; &amp; y");
    }
}
