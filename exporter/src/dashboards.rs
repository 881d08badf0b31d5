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

/// A query with Grafana's variables replaced as a dashboard showing every
/// cgroup would: `$cgroup` -> `.*`, `$__rate_interval` -> `rate`,
/// `$__range` -> `range`.
pub fn instantiate(expr: &str, rate: &str, range: &str) -> String {
    expr.replace("$__rate_interval", rate)
        .replace("$__range", range)
        .replace("$cgroup", ".*")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::CGROUP_METRICS;

    /// Metric names the exporter can produce.
    fn known() -> Vec<&'static str> {
        let mut k: Vec<&str> = CGROUP_METRICS.iter().map(|m| m.name).collect();
        k.extend([
            "boxwatch_exporter_cgroups",
            "boxwatch_exporter_cgroups_truncated",
            "boxwatch_exporter_collect_duration_seconds",
            "boxwatch_exporter_cgroup_read_errors_total",
            "boxwatch_check_verdict",
            "boxwatch_report_generated_timestamp_seconds",
            "boxwatch_report_up",
        ]);
        k
    }

    #[test]
    fn dashboards_are_importable_and_use_only_real_metrics() {
        for (name, json) in DASHBOARDS {
            let d: serde_json::Value = serde_json::from_str(json).unwrap();
            assert!(d["title"].as_str().is_some(), "{name}: no title");
            assert!(d["uid"].as_str().is_some(), "{name}: no uid");
            assert!(d["panels"].as_array().is_some_and(|p| !p.is_empty()));
            let qs = queries(json).unwrap();
            assert!(!qs.is_empty(), "{name}: no queries");
            for q in qs {
                let mut rest = q.as_str();
                while let Some(i) = rest.find("boxwatch_") {
                    let tail = &rest[i..];
                    let end = tail
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(tail.len());
                    let metric = &tail[..end];
                    assert!(
                        known().contains(&metric),
                        "{name}: unknown metric {metric} in {q}"
                    );
                    rest = &tail[end..];
                }
            }
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
