//! The scenario verdicts of the latest JSON report, as metrics.
//!
//! The report is read as plain JSON, using only `generated_at`,
//! `scenarios[].id`, `scenarios[].checks[].id` and `.verdict`, so the
//! exporter keeps working while the report model gains fields. The file is
//! re-read at a scrape only when its size or modification time changed,
//! and never read beyond [`MAX_REPORT_BYTES`].

use crate::collector::{desc, family, sample, Kind};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use reports::Verdict;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

/// Largest report the exporter reads (real reports are a few MiB at
/// most). A bigger file is refused: `boxwatch_report_up` is 0 and
/// `boxwatch_report_errors_total{reason="too_large"}` counts the scrape.
pub const MAX_REPORT_BYTES: u64 = 64 << 20;

/// One check of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckVerdict {
    /// The scenario's id.
    pub scenario: String,
    /// The check's id within the scenario.
    pub check: String,
    /// What the judge decided.
    pub verdict: Verdict,
}

/// What the exporter takes from a report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportVerdicts {
    /// `generated_at` as Unix seconds.
    pub generated_at: Option<f64>,
    /// Every check, in the report's order.
    pub checks: Vec<CheckVerdict>,
}

/// Extracts the verdicts from a report's JSON text. Checks whose verdict
/// is not one of [`Verdict::ALL`] are skipped; a document without a
/// `scenarios` array is an error.
pub fn parse_report(json: &str) -> Result<ReportVerdicts, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let scenarios = v
        .get("scenarios")
        .and_then(|s| s.as_array())
        .ok_or("no \"scenarios\" array")?;
    let generated_at = v
        .get("generated_at")
        .and_then(|g| g.as_str())
        .and_then(|g| chrono::DateTime::parse_from_rfc3339(g).ok())
        .map(|t| t.timestamp_millis() as f64 / 1000.0);
    let mut checks = Vec::new();
    for s in scenarios {
        let Some(scenario) = s.get("id").and_then(|i| i.as_str()) else {
            continue;
        };
        let list = s.get("checks").and_then(|c| c.as_array());
        for c in list.into_iter().flatten() {
            let check = c.get("id").and_then(|i| i.as_str());
            let verdict = c
                .get("verdict")
                .and_then(|v| serde_json::from_value::<Verdict>(v.clone()).ok());
            if let (Some(check), Some(verdict)) = (check, verdict) {
                checks.push(CheckVerdict {
                    scenario: scenario.to_string(),
                    check: check.to_string(),
                    verdict,
                });
            }
        }
    }
    Ok(ReportVerdicts {
        generated_at,
        checks,
    })
}

/// The file's identity for the re-read decision.
type Stamp = (SystemTime, u64);

/// Why a scrape could not use the report: the `reason` label of
/// `boxwatch_report_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The file does not exist.
    Missing,
    /// It exists but could not be read.
    Unreadable,
    /// It is larger than [`MAX_REPORT_BYTES`].
    TooLarge,
    /// It is not a report (not JSON, no `scenarios` array).
    Invalid,
}

impl Failure {
    const ALL: [Failure; 4] = [
        Failure::Missing,
        Failure::Unreadable,
        Failure::TooLarge,
        Failure::Invalid,
    ];

    fn reason(self) -> &'static str {
        match self {
            Failure::Missing => "missing",
            Failure::Unreadable => "unreadable",
            Failure::TooLarge => "too_large",
            Failure::Invalid => "invalid",
        }
    }

    fn io(e: std::io::Error) -> (Failure, String) {
        let f = if e.kind() == std::io::ErrorKind::NotFound {
            Failure::Missing
        } else {
            Failure::Unreadable
        };
        (f, e.to_string())
    }
}

fn too_large(size: u64) -> (Failure, String) {
    (
        Failure::TooLarge,
        format!(
            "{size} bytes, more than the {} MiB the exporter reads; not read",
            MAX_REPORT_BYTES >> 20
        ),
    )
}

/// Publishes the latest report's verdicts at each scrape.
pub struct VerdictCollector {
    path: PathBuf,
    descs: Vec<Desc>,
    cache: Mutex<Option<(Stamp, ReportVerdicts)>>,
    /// Scrapes that could not use the report, by [`Failure`].
    errors: [AtomicU64; 4],
}

const VERDICT: &str = "boxwatch_check_verdict";
const VERDICT_HELP: &str =
    "Verdict of each check of the latest report: 1 for the verdict it got, 0 for the others.";
const GENERATED: &str = "boxwatch_report_generated_timestamp_seconds";
const GENERATED_HELP: &str = "When the latest report was generated (Unix time).";
const UP: &str = "boxwatch_report_up";
const UP_HELP: &str = "1 when the latest report could be read and parsed.";
const ERRORS: &str = "boxwatch_report_errors_total";
const ERRORS_HELP: &str = "Scrapes that could not use the report, by reason: missing, unreadable, too_large (over 64 MiB), invalid.";

impl VerdictCollector {
    /// A collector for the report at `path` (read at scrape time).
    pub fn new(path: PathBuf) -> Self {
        VerdictCollector {
            path,
            descs: vec![
                desc(VERDICT, VERDICT_HELP, &["scenario", "check", "verdict"]),
                desc(GENERATED, GENERATED_HELP, &[]),
                desc(UP, UP_HELP, &[]),
                desc(ERRORS, ERRORS_HELP, &["reason"]),
            ],
            cache: Mutex::new(None),
            errors: Default::default(),
        }
    }

    /// The report's verdicts, from the cache when the file is unchanged.
    fn load(&self) -> Result<ReportVerdicts, (Failure, String)> {
        let meta = std::fs::metadata(&self.path).map_err(Failure::io)?;
        let stamp = (meta.modified().map_err(Failure::io)?, meta.len());
        if meta.len() > MAX_REPORT_BYTES {
            return Err(too_large(meta.len()));
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, r)) = cache.as_ref() {
            if *s == stamp {
                return Ok(r.clone());
            }
        }
        // The file may grow after the metadata was read: read one byte
        // past the cap at most.
        let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
        std::fs::File::open(&self.path)
            .and_then(|f| f.take(MAX_REPORT_BYTES + 1).read_to_end(&mut bytes))
            .map_err(Failure::io)?;
        if bytes.len() as u64 > MAX_REPORT_BYTES {
            return Err(too_large(bytes.len() as u64));
        }
        let text =
            String::from_utf8(bytes).map_err(|_| (Failure::Invalid, "not UTF-8".to_string()))?;
        let parsed = parse_report(&text).map_err(|e| (Failure::Invalid, e))?;
        *cache = Some((stamp, parsed.clone()));
        Ok(parsed)
    }
}

/// The metric families for `report`.
pub fn verdict_families(report: &ReportVerdicts) -> Vec<MetricFamily> {
    let mut samples = Vec::new();
    for c in &report.checks {
        for v in Verdict::ALL {
            let labels = [
                ("scenario", c.scenario.as_str()),
                ("check", c.check.as_str()),
                ("verdict", v.as_str()),
            ];
            let value = if v == c.verdict { 1.0 } else { 0.0 };
            samples.push(sample(&labels, Kind::Gauge, value));
        }
    }
    let mut out = vec![family(VERDICT, VERDICT_HELP, Kind::Gauge, samples)];
    if let Some(t) = report.generated_at {
        let s = vec![sample(&[], Kind::Gauge, t)];
        out.push(family(GENERATED, GENERATED_HELP, Kind::Gauge, s));
    }
    out
}

impl Collector for VerdictCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (mut out, up) = match self.load() {
            Ok(report) => (verdict_families(&report), 1.0),
            Err((failure, why)) => {
                tracing::warn!(
                    "report {} ({}): {why}",
                    self.path.display(),
                    failure.reason()
                );
                let i = Failure::ALL.iter().position(|f| *f == failure).unwrap_or(0);
                self.errors[i].fetch_add(1, Ordering::Relaxed);
                (Vec::new(), 0.0)
            }
        };
        out.push(family(
            UP,
            UP_HELP,
            Kind::Gauge,
            vec![sample(&[], Kind::Gauge, up)],
        ));
        let errors = Failure::ALL
            .iter()
            .zip(&self.errors)
            .map(|(f, n)| {
                let n = n.load(Ordering::Relaxed) as f64;
                sample(&[("reason", f.reason())], Kind::Counter, n)
            })
            .collect();
        out.push(family(ERRORS, ERRORS_HELP, Kind::Counter, errors));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REPORT: &str = r#"{
      "schema_version": "1", "generated_at": "2026-11-22T10:00:00Z",
      "scenarios": [
        {"id": "cpu-quota-20", "checks": [
          {"id": "usage-within-quota", "verdict": "enforced"},
          {"id": "bogus", "verdict": "maybe"}]},
        {"id": "settimeofday", "checks": [{"id": "clock", "verdict": "not-enforced"}]},
        {"checks": [{"id": "orphan", "verdict": "leaked"}]}
      ]}"#;

    #[test]
    fn known_report() {
        let r = parse_report(REPORT).unwrap();
        assert_eq!(r.generated_at, Some(1_795_341_600.0));
        assert_eq!(r.checks.len(), 2);
        assert_eq!(r.checks[0].verdict, Verdict::Enforced);
        assert_eq!(r.checks[1].scenario, "settimeofday");
        assert_eq!(r.checks[1].verdict, Verdict::NotEnforced);
        let fams = verdict_families(&r);
        assert_eq!(fams[0].get_metric().len(), 2 * Verdict::ALL.len());
        let ones: f64 = fams[0]
            .get_metric()
            .iter()
            .map(|m| m.get_gauge().get_value())
            .sum();
        assert_eq!(ones, 2.0);
    }

    #[test]
    fn bad_reports() {
        assert!(parse_report("").is_err());
        assert!(parse_report("{}").is_err());
        assert!(parse_report("[1]").is_err());
        assert_eq!(
            parse_report(r#"{"scenarios": []}"#).unwrap(),
            ReportVerdicts::default()
        );
    }

    #[test]
    fn collector_rereads_a_changed_file_and_reports_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        let c = VerdictCollector::new(path.clone());
        assert_eq!(up(&c.collect()), 0.0);
        std::fs::write(&path, REPORT).unwrap();
        let fams = c.collect();
        assert_eq!(up(&fams), 1.0);
        assert_eq!(fams.len(), 4);
        std::fs::write(&path, r#"{"scenarios": [{"id": "a", "checks": []}]}"#).unwrap();
        let fams = c.collect();
        assert_eq!(fams[0].get_metric().len(), 0);
        let expected = [
            ("missing", 1.0),
            ("unreadable", 0.0),
            ("too_large", 0.0),
            ("invalid", 0.0),
        ];
        let expected: Vec<(String, f64)> =
            expected.iter().map(|(r, n)| (r.to_string(), *n)).collect();
        assert_eq!(errors(&fams), expected);
    }

    fn up(fams: &[MetricFamily]) -> f64 {
        let f = fams.iter().find(|f| f.get_name() == UP).unwrap();
        f.get_metric()[0].get_gauge().get_value()
    }

    /// (reason, count) of `boxwatch_report_errors_total`.
    fn errors(fams: &[MetricFamily]) -> Vec<(String, f64)> {
        let f = fams.iter().find(|f| f.get_name() == ERRORS).unwrap();
        f.get_metric()
            .iter()
            .map(|m| {
                let reason = m.get_label()[0].get_value().to_string();
                (reason, m.get_counter().get_value())
            })
            .collect()
    }

    #[test]
    fn a_report_over_the_cap_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, REPORT).unwrap();
        let c = VerdictCollector::new(path.clone());
        assert_eq!(up(&c.collect()), 1.0);
        // One byte over the cap (a sparse file: no disk space used).
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(MAX_REPORT_BYTES + 1).unwrap();
        let fams = c.collect();
        assert_eq!(up(&fams), 0.0);
        assert_eq!(
            fams[0].get_name(),
            UP,
            "no verdicts from an oversized report"
        );
        assert_eq!(errors(&fams)[2], ("too_large".to_string(), 1.0));
        // Exactly at the cap it is read (and is not JSON).
        f.set_len(MAX_REPORT_BYTES).unwrap();
        let fams = c.collect();
        assert_eq!(up(&fams), 0.0);
        assert_eq!(errors(&fams)[2].1, 1.0);
        assert_eq!(errors(&fams)[3], ("invalid".to_string(), 1.0));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_report(&s);
        }

        #[test]
        fn every_check_round_trips(checks in proptest::collection::vec(("[a-z-]{1,12}", "[a-z-]{1,12}", 0usize..6), 0..20)) {
            let scenarios: Vec<serde_json::Value> = checks.iter().map(|(s, c, v)| serde_json::json!({
                "id": s, "checks": [{"id": c, "verdict": Verdict::ALL[*v].as_str()}]
            })).collect();
            let json = serde_json::json!({"scenarios": scenarios}).to_string();
            let r = parse_report(&json).unwrap();
            prop_assert_eq!(r.checks.len(), checks.len());
            for (got, (s, c, v)) in r.checks.iter().zip(&checks) {
                prop_assert_eq!(&got.scenario, s);
                prop_assert_eq!(&got.check, c);
                prop_assert_eq!(got.verdict, Verdict::ALL[*v]);
            }
        }
    }
}
