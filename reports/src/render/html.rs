//! A self-contained HTML page: no external assets, inline CSS and SVG plots.

use super::{
    bytes, check_counts, cpu_share_series, duration, failing_checks, findings, held_ratio,
    is_regressed, measurement, memory_series, outcome, regression_measurements, scenario_counts,
};
use crate::model::{Report, ScenarioResult};
use std::fmt::Write;

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:960px;padding:0 1em;color:#1f2328}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .4em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{text-align:left;padding:.25em .5em;border-bottom:1px solid #d0d7de;vertical-align:top}
code{font:12px ui-monospace,monospace;background:#f6f8fa;padding:0 .2em}
.pass{color:#1a7f37}.fail,.regressed{color:#cf222e;font-weight:600}.unsupported{color:#6e7781}.not-applicable{color:#0969da;font-style:italic}.error{color:#8250df;font-weight:600}.finding{color:#9a6700}
.banner{padding:.6em 1em;border-radius:6px;color:#fff}.banner.ok{background:#1a7f37}.banner.bad{background:#cf222e}
.scenario{border:1px solid #d0d7de;border-radius:6px;padding:.2em 1em 1em;margin:1em 0}
.muted{color:#6e7781}svg{display:block;margin:.5em 0;max-width:100%}
";

/// The report as one HTML page: banner with counts and host, regressions,
/// failing checks and findings, the scenario table, then a section per
/// scenario with its checks, measurements and usage-over-time plots (CPU
/// share against the quota line, memory against the limit).
pub fn html(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>boxwatch report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        outcome(report)
    );
    header(&mut out, report);
    regressions(&mut out, report);
    failures(&mut out, report);
    leaks(&mut out, report);
    scenario_table(&mut out, report);
    for scenario in &report.scenarios {
        scenario_section(&mut out, report, scenario);
    }
    let _ = write!(
        out,
        "<footer class=\"muted\">schema <code>{}</code>, generated {}</footer>\n</body>\n</html>\n",
        esc(&report.schema_version),
        report.generated_at.to_rfc3339()
    );
    out
}

fn header(out: &mut String, report: &Report) {
    let class = if report.is_success() { "ok" } else { "bad" };
    let host = &report.host;
    let _ = write!(
        out,
        "<header>\n<h1 class=\"banner {class}\">boxwatch {}: {}</h1>\n<p>{}</p>\n\
         <p>Host <code>{}</code>: kernel <code>{}</code>, cgroup <b>{}</b> ({}), {} CPUs, {}{}. \
         Runtime {} ({}), judged by boxwatch {}, {}. Namespaces: {}. Features: {}.</p>\n</header>\n",
        outcome(report),
        esc(&scenario_counts(report)),
        esc(&check_counts(report)),
        esc(&host.hostname),
        esc(&host.kernel_release),
        host.cgroup_mode,
        esc(&super::controllers(host)),
        host.cpus,
        bytes(host.memory_bytes),
        if host.in_vm { ", in a VM" } else { "" },
        report.runtime.name,
        esc(&report.runtime.version),
        esc(&report.tool_version),
        report.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        esc(&host.namespaces_supported.join(", ")),
        esc(&features(report)),
    );
}

/// `cgroup.kill no, psi yes, ...`.
fn features(report: &Report) -> String {
    let list: Vec<String> = report
        .host
        .features
        .iter()
        .map(|(name, on)| format!("{name} {}", if *on { "yes" } else { "no" }))
        .collect();
    list.join(", ")
}

fn regressions(out: &mut String, report: &Report) {
    if report.regressions.is_empty() {
        return;
    }
    out.push_str("<h2 class=\"regressed\">Regressions against the baseline</h2>\n<table>\n");
    out.push_str("<tr><th>regressed</th><th>baseline</th><th>now</th><th>required</th><th>measurements</th></tr>\n");
    for r in &report.regressions {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#{}\"><code>{}</code></a></td><td>{}</td><td class=\"regressed\">{}</td><td>{}</td><td>{}</td></tr>",
            anchor(&r.scenario_id),
            esc(&r.name()),
            esc(&r.baseline),
            esc(&r.current),
            if r.required { "yes" } else { "no" },
            esc(&regression_measurements(r)),
        );
    }
    out.push_str("</table>\n");
}

fn failures(out: &mut String, report: &Report) {
    let failing: Vec<_> = failing_checks(report).collect();
    let errored: Vec<_> = report
        .scenarios
        .iter()
        .filter(|s| s.error.is_some())
        .collect();
    if failing.is_empty() && errored.is_empty() {
        return;
    }
    out.push_str("<h2 class=\"fail\">Failing required checks</h2>\n<ul>\n");
    for (s, c) in failing {
        let _ = writeln!(
            out,
            "<li><code>{}/{}</code>: expected <code>{}</code>, got <b class=\"fail\">{}</b>: {}</li>",
            esc(&s.id),
            esc(&c.id),
            c.expected,
            c.verdict,
            esc(&c.observed)
        );
    }
    for s in errored {
        let _ = writeln!(
            out,
            "<li><code>{}</code> <b class=\"error\">errored</b>: {}</li>",
            esc(&s.id),
            esc(s.error.as_deref().unwrap_or_default())
        );
    }
    out.push_str("</ul>\n");
}

fn leaks(out: &mut String, report: &Report) {
    let found: Vec<_> = findings(report).collect();
    if found.is_empty() {
        return;
    }
    out.push_str("<h2 class=\"finding\">Findings (informational, not failures)</h2>\n<ul>\n");
    for (s, c) in found {
        let detail = c
            .detail
            .as_deref()
            .map(|d| format!(" <span class=\"muted\">{}</span>", esc(d)));
        let _ = writeln!(
            out,
            "<li><code>{}/{}</code>: <b class=\"finding\">{}</b> (expected {}): {}{}</li>",
            esc(&s.id),
            esc(&c.id),
            c.verdict,
            c.expected,
            esc(&c.observed),
            detail.unwrap_or_default()
        );
    }
    out.push_str("</ul>\n");
}

fn scenario_table(out: &mut String, report: &Report) {
    out.push_str("<h2>Scenarios</h2>\n<table>\n<tr><th>scenario</th><th>status</th><th>checks held</th><th>time</th></tr>\n");
    for s in &report.scenarios {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#{}\"><code>{}</code></a> {}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            anchor(&s.id),
            esc(&s.id),
            esc(&s.title),
            s.status,
            s.status,
            held_ratio(s),
            duration(s.duration_ms)
        );
    }
    out.push_str("</table>\n");
}

/// One scenario: description, limits, checks, measurements, plots.
fn scenario_section(out: &mut String, report: &Report, s: &ScenarioResult) {
    let _ = write!(
        out,
        "<section class=\"scenario\" id=\"{}\">\n<h2><code>{}</code> {} <span class=\"{}\">{}</span></h2>\n<p>{}</p>\n",
        anchor(&s.id),
        esc(&s.id),
        esc(&s.title),
        s.status,
        s.status,
        esc(&s.description)
    );
    if let Some(claim) = &s.seed_claim {
        let _ = writeln!(out, "<p class=\"muted\">Seed claim: {}</p>", esc(claim));
    }
    if let Some(limits) = limits(s) {
        let _ = writeln!(out, "<p>Limits: {}</p>", esc(&limits));
    }
    if let Some(error) = &s.error {
        let _ = writeln!(out, "<p class=\"error\">Error: {}</p>", esc(error));
    }
    checks_table(out, report, s);
    if !s.measurements.is_empty() {
        let list: Vec<String> = s
            .measurements
            .iter()
            .map(|(k, v)| format!("<code>{}</code> {}", esc(k), esc(&measurement(k, *v))))
            .collect();
        let _ = writeln!(out, "<p>Measurements: {}</p>", list.join(", "));
    }
    plots(out, s);
    out.push_str("</section>\n");
}

/// `cpu quota 20%, memory 64.0 MiB, pids 64`, or `None` without limits.
fn limits(s: &ScenarioResult) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(q) = s.limits.cpu_quota {
        parts.push(format!("cpu quota {}", percent(q)));
    }
    if let Some(m) = s.limits.memory_bytes {
        parts.push(format!("memory {}", bytes(m)));
    }
    if let Some(p) = s.limits.pids_max {
        parts.push(format!("pids {p}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn checks_table(out: &mut String, report: &Report, s: &ScenarioResult) {
    if s.checks.is_empty() {
        return;
    }
    out.push_str("<table>\n<tr><th>check</th><th>required</th><th>expected</th><th>verdict</th><th>observed</th></tr>\n");
    for c in &s.checks {
        let class = if is_regressed(report, &s.id, &c.id) {
            "regressed"
        } else if c.held() {
            "pass"
        } else if c.is_finding() {
            "finding"
        } else if c.verdict == probes::Verdict::Unsupported {
            "unsupported"
        } else if c.verdict == probes::Verdict::NotApplicable {
            "not-applicable"
        } else if c.required {
            "fail"
        } else {
            "muted"
        };
        let detail = c
            .detail
            .as_deref()
            .map(|d| format!("<br><span class=\"muted\">{}</span>", esc(d)));
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}{}</td></tr>",
            esc(&c.id),
            if c.required { "yes" } else { "info" },
            c.expected,
            c.verdict,
            esc(&c.observed),
            detail.unwrap_or_default()
        );
    }
    out.push_str("</table>\n");
}

/// The usage-over-time plots the samples allow.
fn plots(out: &mut String, s: &ScenarioResult) {
    let cpu = cpu_share_series(&s.samples);
    if !cpu.is_empty() {
        let quota = s
            .limits
            .cpu_quota
            .map(|q| (q, format!("quota {}", percent(q))));
        out.push_str(&plot(
            "CPU share over time (fraction of one CPU)",
            &cpu,
            quota,
            percent,
            "#0969da",
        ));
    }
    let memory = memory_series(&s.samples);
    if !memory.is_empty() {
        let limit = s
            .limits
            .memory_bytes
            .map(|m| (m as f64, format!("limit {}", bytes(m))));
        out.push_str(&plot(
            "Memory usage over time",
            &memory,
            limit,
            |v| bytes(v as u64),
            "#8250df",
        ));
    }
}

const W: f64 = 640.0;
const H: f64 = 180.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 28.0;

/// An inline SVG line plot of `(t_ms, value)` points, with an optional
/// dashed limit line, y from 0 to 110% of the larger of data and limit.
fn plot(
    title: &str,
    points: &[(u64, f64)],
    limit: Option<(f64, String)>,
    y_label: fn(f64) -> String,
    stroke: &str,
) -> String {
    let t_max = points.iter().map(|p| p.0).max().unwrap_or(0).max(1) as f64;
    let data_max = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let limit_value = limit.as_ref().map_or(0.0, |l| l.0);
    let y_max = match data_max.max(limit_value) * 1.1 {
        m if m > 0.0 && m.is_finite() => m,
        _ => 1.0,
    };
    let x = |t: f64| LEFT + t / t_max * (W - LEFT - RIGHT);
    let y = |v: f64| H - BOTTOM - v / y_max * (H - TOP - BOTTOM);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{t}\">\n\
         <title>{t}</title>\n<text x=\"{LEFT}\" y=\"14\" font-size=\"12\">{t}</text>\n",
        t = esc(title)
    );
    let (x0, x1, y0, y1) = (x(0.0), x(t_max), y(0.0), y(y_max));
    let _ = writeln!(
        svg,
        "<path d=\"M{x0:.1} {y1:.1}V{y0:.1}H{x1:.1}\" fill=\"none\" stroke=\"#8c959f\"/>"
    );
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        LEFT - 4.0,
        y1 + 4.0,
        esc(&y_label(y_max)),
        LEFT - 4.0,
        y0,
        esc(&y_label(0.0))
    );
    let _ = writeln!(
        svg,
        "<text x=\"{x0:.1}\" y=\"{:.1}\" font-size=\"11\">0 ms</text>\n\
         <text x=\"{x1:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{} ms</text>",
        H - 8.0,
        H - 8.0,
        t_max
    );
    if let Some((value, label)) = &limit {
        let ly = y(*value);
        let _ = writeln!(
            svg,
            "<line x1=\"{x0:.1}\" y1=\"{ly:.1}\" x2=\"{x1:.1}\" y2=\"{ly:.1}\" stroke=\"#cf222e\" stroke-dasharray=\"6 4\"/>\n\
             <text x=\"{x1:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#cf222e\" text-anchor=\"end\">{}</text>",
            ly - 4.0,
            esc(label)
        );
    }
    let coords: Vec<String> = points
        .iter()
        .map(|&(t, v)| format!("{:.1},{:.1}", x(t as f64), y(v)))
        .collect();
    let _ = writeln!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"2\"/>",
        coords.join(" ")
    );
    for c in &coords {
        let (cx, cy) = c.split_once(',').unwrap_or_default();
        let _ = writeln!(
            svg,
            "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"2.5\" fill=\"{stroke}\"/>"
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A fraction of one CPU as a percentage: `0.2` -> `20%`.
fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

/// An id safe for `id=` and `href="#..."`.
fn anchor(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("scenario-{safe}")
}

/// Text escaped for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn text_from_the_report_is_escaped() {
        let mut report = fixture::sample_report();
        report.scenarios[0].title = "<script>alert('x')</script>".into();
        let page = html(&report);
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    }

    #[test]
    fn the_page_loads_nothing_from_outside() {
        let page = html(&fixture::sample_report());
        for external in ["<link", "<script", "src=", "@import", "url("] {
            assert!(!page.contains(external), "page contains {external}");
        }
    }

    #[test]
    fn cpu_scenarios_get_a_cpu_plot_with_their_quota_and_memory_scenarios_a_memory_plot() {
        let page = html(&fixture::sample_report());
        let section = |id: &str| {
            let start = page
                .find(&format!("<section class=\"scenario\" id=\"scenario-{id}\""))
                .unwrap();
            let end = start + page[start..].find("</section>").unwrap();
            page[start..end].to_string()
        };
        let cpu = section("cpu-quota-20");
        assert!(cpu.contains("CPU share over time"));
        assert!(cpu.contains("quota 20%"));
        let memory = section("memory-hog");
        assert!(memory.contains("Memory usage over time"));
        assert!(memory.contains("limit 64.0 MiB"));
        assert!(!memory.contains("CPU share over time"));
        assert!(!section("time-namespace").contains("<svg"));
    }
}
