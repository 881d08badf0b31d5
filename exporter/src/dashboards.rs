//! The Grafana dashboards shipped in `exporter/dashboards/`, and the
//! PromQL queries they use (so tests can run every one of them against a
//! real Prometheus).

/// (file name, JSON) of every shipped dashboard.
pub const DASHBOARDS: &[(&str, &str)] = &[
    (
        "boxwatch-cgroups.json",
        include_str!("../dashboards/boxwatch-cgroups.json"),
    ),
    (
        "boxwatch-verdicts.json",
        include_str!("../dashboards/boxwatch-verdicts.json"),
    ),
];

/// Every `expr` of every panel target (rows' nested panels included), in
/// order, from a dashboard's JSON.
pub fn queries(dashboard_json: &str) -> Result<Vec<String>, serde_json::Error> {
    let d: serde_json::Value = serde_json::from_str(dashboard_json)?;
    let mut out = Vec::new();
    collect(&d["panels"], &mut out);
    Ok(out)
}

fn collect(panels: &serde_json::Value, out: &mut Vec<String>) {
    for p in panels.as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push(e.to_string());
            }
        }
        collect(&p["panels"], out);
    }
}

/// The query of every template variable of type `query` (Grafana's
/// `label_values(...)` and the like), from a dashboard's JSON.
pub fn variable_queries(dashboard_json: &str) -> Result<Vec<String>, serde_json::Error> {
    let d: serde_json::Value = serde_json::from_str(dashboard_json)?;
    let vars = d["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(vars
        .iter()
        .filter(|v| v["type"] == "query")
        .filter_map(|v| {
            // A string, or (newer Grafana) an object holding the string.
            v["query"]
                .as_str()
                .or_else(|| v["query"]["query"].as_str())
                .map(str::to_string)
        })
        .collect())
}

/// Grafana's `label_values(<series selector>, <label>)` or
/// `label_values(<label>)`: the values of a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelValues {
    /// The series selector, when one is given.
    pub selector: Option<String>,
    /// The label whose values are listed.
    pub label: String,
}

/// Parses a `label_values(...)` variable query; `None` for anything else.
pub fn label_values(query: &str) -> Option<LabelValues> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    // A label name has no comma: the last one ends the selector.
    let (selector, label) = match inner.rsplit_once(',') {
        Some((sel, label)) => (Some(sel.trim().to_string()), label.trim()),
        None => (None, inner.trim()),
    };
    let valid = !label.is_empty()
        && !label.starts_with(|c: char| c.is_ascii_digit())
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| LabelValues {
        selector,
        label: label.to_string(),
    })
}

/// A query with Grafana's variables replaced as a dashboard showing every
/// cgroup, container and pod would: `$cgroup`, `$container` and `$pod` -> `.*`,
/// `$__rate_interval` -> `rate`, `$__range` -> `range`.
pub fn instantiate(expr: &str, rate: &str, range: &str) -> String {
    expr.replace("$__rate_interval", rate)
        .replace("$__range", range)
        .replace("$cgroup", ".*")
        .replace("$container", ".*")
        .replace("$pod", ".*")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metric names the exporter can produce: the descriptors of every
    /// collector `boxwatch exporter --report` registers.
    fn known() -> Vec<String> {
        let args = crate::cli::ExporterArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            cgroup_roots: Vec::new(),
            max_cgroups: 10,
            max_open_files: 0,
            walk: crate::collector::WalkMode::Union,
            report: Some("/nonexistent/report.json".into()),
            max_connections: 1,
            header_timeout: 1,
            write_timeout: 1,
            connection_timeout: 1,
            host_root: "/nonexistent".into(),
            names: Default::default(),
            web: Default::default(),
        };
        crate::cli::build(&args).unwrap().metric_names().to_vec()
    }

    /// Every `boxwatch_*` name in a query.
    fn metrics_in(q: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = q;
        while let Some(i) = rest.find("boxwatch_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            out.push(&tail[..end]);
            rest = &tail[end..];
        }
        out
    }

    #[test]
    fn the_known_names_come_from_the_collectors() {
        let k = known();
        for name in [
            "boxwatch_cgroup_cpu_usage_seconds_total",
            "boxwatch_exporter_cgroup_read_errors_total",
            "boxwatch_exporter_http_requests_total",
            "boxwatch_check_verdict",
            "boxwatch_report_up",
        ] {
            assert!(k.iter().any(|n| n == name), "{name} not in {k:?}");
        }
        assert!(!k.iter().any(|n| n == "boxwatch_no_such_metric"));
        assert!(k.len() >= crate::collector::CGROUP_METRICS.len() + 5);
    }

    #[test]
    fn dashboards_are_importable_and_use_only_real_metrics() {
        let known = known();
        for (name, json) in DASHBOARDS {
            let d: serde_json::Value = serde_json::from_str(json).unwrap();
            assert!(d["title"].as_str().is_some(), "{name}: no title");
            assert!(d["uid"].as_str().is_some(), "{name}: no uid");
            assert!(d["panels"].as_array().is_some_and(|p| !p.is_empty()));
            let qs = queries(json).unwrap();
            assert!(!qs.is_empty(), "{name}: no queries");
            let vars = variable_queries(json).unwrap();
            for v in &vars {
                assert!(label_values(v).is_some(), "{name}: not label_values: {v}");
            }
            for q in qs.iter().chain(&vars) {
                for metric in metrics_in(q) {
                    assert!(
                        known.iter().any(|k| k == metric),
                        "{name}: unknown metric {metric} in {q}"
                    );
                }
            }
        }
        // The cgroup dashboard's $cgroup, $container and $pod variables.
        let vars = variable_queries(DASHBOARDS[0].1).unwrap();
        assert_eq!(
            vars,
            [
                "label_values(boxwatch_cgroup_cpu_usage_seconds_total, cgroup)",
                "label_values(boxwatch_container_info, name)",
                "label_values(boxwatch_container_info, pod)"
            ]
        );
        // Every per-container query follows both.
        for q in queries(DASHBOARDS[0].1).unwrap() {
            assert_eq!(
                q.contains("name=~\"$container\""),
                q.contains("pod=~\"$pod\""),
                "{q}"
            );
        }
    }

    #[test]
    fn label_values_queries() {
        assert_eq!(
            label_values("label_values(up{job=\"a,b\"}, cgroup)"),
            Some(LabelValues {
                selector: Some("up{job=\"a,b\"}".into()),
                label: "cgroup".into()
            })
        );
        assert_eq!(
            label_values(" label_values(scenario) "),
            Some(LabelValues {
                selector: None,
                label: "scenario".into()
            })
        );
        for bad in [
            "query_result(up)",
            "label_values(x, )",
            "label_values(x, 1a)",
            "label_values(x",
        ] {
            assert_eq!(label_values(bad), None, "{bad}");
        }
    }

    #[test]
    fn instantiation() {
        assert_eq!(
            instantiate(
                r#"rate(x{cgroup=~"$cgroup"}[$__rate_interval]) + y[$__range]"#,
                "1m",
                "5m"
            ),
            r#"rate(x{cgroup=~".*"}[1m]) + y[5m]"#
        );
    }
}
