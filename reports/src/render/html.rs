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
.muted{color:#6e7781}svg{display:block;margin:.5em 0;max-width:100%;height:auto}
figure.chart{margin:.8em 0}figcaption{font-size:12px}
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
    if let Some(tries) = s.tries_line() {
        let _ = writeln!(out, "<p class=\"muted\">{}</p>", esc(&tries));
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
        } else if c.verdict == crate::Verdict::Unsupported {
            "unsupported"
        } else if c.verdict == crate::Verdict::NotApplicable {
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
        let evidence = super::evidence_note(c)
            .map(|n| format!("<br><span class=\"unsupported\">{}</span>", esc(&n)));
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}{}{}</td></tr>",
            esc(&c.id),
            if c.required { "yes" } else { "info" },
            c.expected,
            c.verdict,
            esc(&c.observed),
            detail.unwrap_or_default(),
            evidence.unwrap_or_default()
        );
    }
    out.push_str("</table>\n");
}

/// Fewer points than this make no chart (a line through one or two points
/// says nothing): the figure is given as a number instead.
pub const MIN_CHART_POINTS: usize = 5;

/// The series colours, used nowhere else on the page (a screenshot test
/// finds the charts by them).
pub const CPU_STROKE: &str = "#0969da";
/// See [`CPU_STROKE`].
pub const MEMORY_STROKE: &str = "#6639ba";
/// See [`CPU_STROKE`].
pub const PIDS_STROKE: &str = "#0a7ea4";

/// The axes' colour (a screenshot test finds the charts by their axes).
pub const AXIS: &str = "#8c959f";

/// One chart's data and marks.
struct Series<'a> {
    title: &'a str,
    points: Vec<(u64, f64)>,
    /// The quota or limit line: value and label.
    limit: Option<(f64, String)>,
    events: Vec<Event>,
    /// The marked peak: time, value, label.
    peak: Option<(u64, f64, String)>,
    y_label: fn(f64) -> String,
    stroke: &'a str,
}

/// Something that happened at a time, marked on a chart.
struct Event {
    t_ms: u64,
    label: String,
    color: &'static str,
}

/// A chart per limit the scenario sets (usage without a limit is in the
/// measurements), with its limit line and the events that show what the
/// scenario is about: throttling (CPU), the peak and the OOM kill
/// (memory), the pids limit hit (pids).
fn plots(out: &mut String, s: &ScenarioResult) {
    let mut numbers = Vec::new();
    if let Some(q) = s.limits.cpu_quota {
        let series = Series {
            title: "CPU share over time (fraction of one CPU)",
            points: cpu_share_series(&s.samples),
            limit: Some((q, format!("quota {}", percent(q)))),
            events: throttling(s),
            peak: None,
            y_label: percent,
            stroke: CPU_STROKE,
        };
        chart(out, &mut numbers, series);
    }
    if let Some(m) = s.limits.memory_bytes {
        let points = memory_series(&s.samples);
        let peak = points
            .iter()
            .copied()
            .fold(None, |best: Option<(u64, f64)>, p| match best {
                Some(b) if b.1 >= p.1 => Some(b),
                _ => Some(p),
            });
        let series = Series {
            title: "Memory usage over time",
            points,
            limit: Some((m as f64, format!("limit {}", bytes(m)))),
            events: oom_kill(s),
            peak: peak.map(|(t, v)| (t, v, format!("peak {}", bytes(v as u64)))),
            y_label: |v| bytes(v as u64),
            stroke: MEMORY_STROKE,
        };
        chart(out, &mut numbers, series);
    }
    if let Some(max) = s.limits.pids_max {
        let points: Vec<(u64, f64)> = s
            .samples
            .iter()
            .filter_map(|x| Some((x.t_ms, x.pids? as f64)))
            .collect();
        let series = Series {
            title: "Tasks in the cgroup over time",
            events: pids_limit_hit(s, &points, max),
            points,
            limit: Some((max as f64, format!("pids limit {max}"))),
            peak: None,
            y_label: |v| format!("{v:.0}"),
            stroke: PIDS_STROKE,
        };
        chart(out, &mut numbers, series);
    }
    if !numbers.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"muted\">Sampled too few times for a chart: {}.</p>",
            numbers.join("; ")
        );
    }
}

/// A chart of the series, or, with fewer than [`MIN_CHART_POINTS`]
/// points, its values as numbers in `numbers`.
fn chart(out: &mut String, numbers: &mut Vec<String>, series: Series) {
    let Series {
        title,
        ref points,
        ref limit,
        ref events,
        ref peak,
        y_label,
        ..
    } = series;
    if points.is_empty() {
        return;
    }
    if points.len() < MIN_CHART_POINTS {
        let what = title.split(" over time").next().unwrap_or(title);
        let values: Vec<String> = points
            .iter()
            .map(|(t, v)| format!("{} at {t} ms", y_label(*v)))
            .collect();
        numbers.push(format!("{} {}", esc(what), esc(&values.join(", "))));
        return;
    }
    let mut caption = Vec::new();
    if let Some((_, l)) = &limit {
        caption.push(format!("dashed: {l}"));
    }
    if let Some((t, _, l)) = &peak {
        caption.push(format!("{l} at {t} ms"));
    }
    let mut seen = Vec::new();
    for e in events {
        if !seen.contains(&e.label) {
            let times: Vec<String> = events
                .iter()
                .filter(|x| x.label == e.label)
                .map(|x| x.t_ms.to_string())
                .collect();
            let times = if times.len() > 6 {
                format!("{} samples, first at {} ms", times.len(), times[0])
            } else {
                format!("at {} ms", times.join(", "))
            };
            caption.push(format!("{} {times}", e.label));
            seen.push(e.label.clone());
        }
    }
    let _ = write!(
        out,
        "<figure class=\"chart\">\n{}<figcaption class=\"muted\">{} samples; {}</figcaption>\n</figure>\n",
        plot(&series),
        points.len(),
        esc(&caption.join("; "))
    );
}

/// A "throttled" event at each sample whose CFS throttled-period count
/// rose since the one before.
fn throttling(s: &ScenarioResult) -> Vec<Event> {
    s.samples
        .windows(2)
        .filter_map(|w| {
            let rose = w[1].nr_throttled? > w[0].nr_throttled?;
            rose.then(|| Event {
                t_ms: w[1].t_ms,
                label: "throttled".into(),
                color: "#bc4c00",
            })
        })
        .collect()
}

/// The OOM kill: the first sample whose OOM kill count rose, else (older
/// reports, without the count per sample) the last sample of a scenario
/// that measured one.
fn oom_kill(s: &ScenarioResult) -> Vec<Event> {
    let event = |t_ms| Event {
        t_ms,
        label: "OOM kill".into(),
        color: "#cf222e",
    };
    let rose = s
        .samples
        .windows(2)
        .find(|w| matches!((w[0].oom_kills, w[1].oom_kills), (Some(a), Some(b)) if b > a));
    if let Some(w) = rose {
        return vec![event(w[1].t_ms)];
    }
    let killed = s.measurements.get("oom_kills").is_some_and(|k| *k > 0.0);
    match s.samples.last() {
        Some(last) if killed && s.samples.iter().all(|x| x.oom_kills.is_none()) => {
            vec![event(last.t_ms)]
        }
        _ => Vec::new(),
    }
}

/// The first sample at the pids limit, with the forks the kernel refused.
fn pids_limit_hit(s: &ScenarioResult, pids: &[(u64, f64)], max: u64) -> Vec<Event> {
    let refused = s
        .measurements
        .get("pids_limit_hits")
        .copied()
        .unwrap_or(0.0);
    let at = pids
        .iter()
        .find(|(_, v)| *v >= max as f64)
        .or_else(|| (refused > 0.0).then(|| pids.iter().max_by(|a, b| a.1.total_cmp(&b.1)))?);
    at.map(|(t, _)| Event {
        t_ms: *t,
        label: if refused > 0.0 {
            format!("pids limit hit ({refused:.0} forks refused)")
        } else {
            "pids limit hit".into()
        },
        color: "#bc4c00",
    })
    .into_iter()
    .collect()
}

const W: f64 = 640.0;
const H: f64 = 200.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 28.0;

/// An inline SVG line plot of `(t_ms, value)` points, with an optional
/// dashed limit line, event marks (a vertical line with a label; repeated
/// events as ticks on the time axis) and a marked peak, y from 0 to 110%
/// of the larger of data and limit.
fn plot(series: &Series) -> String {
    let Series {
        title,
        ref points,
        ref limit,
        ref events,
        ref peak,
        y_label,
        stroke,
    } = *series;
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
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#cf222e\" text-anchor=\"end\">{}</text>",
            x1,
            ly - 4.0,
            esc(label)
        );
    }
    // Events: one of a kind is a labelled vertical line; a repeated kind
    // (throttling in every period) is a row of ticks on the time axis.
    let mut labelled = Vec::new();
    for e in events {
        let ex = x(e.t_ms as f64);
        let repeated = events.iter().filter(|o| o.label == e.label).count() > 1;
        if repeated {
            let _ = writeln!(
                svg,
                "<line class=\"event\" x1=\"{ex:.1}\" y1=\"{:.1}\" x2=\"{ex:.1}\" y2=\"{y0:.1}\" stroke=\"{}\" stroke-width=\"2\"/>",
                y0 - 6.0,
                e.color
            );
        } else {
            let _ = writeln!(
                svg,
                "<line class=\"event\" x1=\"{ex:.1}\" y1=\"{:.1}\" x2=\"{ex:.1}\" y2=\"{y0:.1}\" stroke=\"{}\" stroke-dasharray=\"2 2\"/>",
                TOP - 10.0,
                e.color
            );
        }
        if !labelled.contains(&e.label) {
            labelled.push(e.label.clone());
            let (ly, anchor) = if repeated {
                (y0 - 8.0, "start")
            } else {
                (TOP - 14.0, if ex > W / 2.0 { "end" } else { "start" })
            };
            let _ = writeln!(
                svg,
                "<text x=\"{ex:.1}\" y=\"{ly:.1}\" font-size=\"11\" fill=\"{}\" text-anchor=\"{anchor}\">{}</text>",
                e.color,
                esc(&e.label)
            );
        }
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
    if let Some((t, v, label)) = &peak {
        let (px, py) = (x(*t as f64), y(*v));
        let _ = writeln!(
            svg,
            "<circle class=\"peak\" cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"5\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"2\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{stroke}\" text-anchor=\"end\">{}</text>",
            px - 8.0,
            py + 14.0,
            esc(label)
        );
    }
    // The axes last, over the data, so that they are whole.
    let _ = writeln!(
        svg,
        "<path d=\"M{x0:.0} {y1:.0}V{y0:.0}H{x1:.0}\" fill=\"none\" stroke=\"{AXIS}\" shape-rendering=\"crispEdges\"/>"
    );
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
        // The memory chart marks the limit, the peak and the OOM kill.
        assert!(memory.contains("OOM kill</text>"), "{memory}");
        assert!(memory.contains("class=\"peak\""), "{memory}");
        assert!(
            memory.contains(
                "7 samples; dashed: limit 64.0 MiB; peak 62.0 MiB at 50 ms; OOM kill at 60 ms"
            ),
            "{memory}"
        );
        // The CPU chart marks throttling as ticks on the time axis.
        assert!(cpu.contains("throttled</text>"), "{cpu}");
    }

    #[test]
    fn one_or_two_samples_make_a_number_not_a_chart() {
        let mut report = fixture::sample_report();
        let hog = report
            .scenarios
            .iter_mut()
            .find(|s| s.id == "memory-hog")
            .unwrap();
        hog.samples.truncate(2);
        let page = html(&report);
        let start = page.find("id=\"scenario-memory-hog\"").unwrap();
        let end = start + page[start..].find("</section>").unwrap();
        let section = &page[start..end];
        assert!(!section.contains("<svg"), "{section}");
        assert!(
            section.contains("Sampled too few times for a chart: Memory usage 2.0 MiB at 0 ms, 14.0 MiB at 10 ms."),
            "{section}"
        );
    }
}
