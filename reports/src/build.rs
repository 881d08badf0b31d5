//! Assembling a [`Report`] and loading one back from a file.

use crate::error::{Error, Result};
use crate::model::{HostInfo, Report, RuntimeInfo, ScenarioResult, Status, SCHEMA_VERSION};
use crate::status::{scenario_status, summarize};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::path::Path;

impl ScenarioResult {
    /// Sets `status` from `checks` and `error` with [`scenario_status`].
    pub fn judge(&mut self) {
        self.status = scenario_status(&self.checks, self.error.as_deref());
    }
}

impl Report {
    /// A report of `scenarios`, each re-judged with [`scenario_status`], with
    /// its summary counted and no regressions.
    pub fn assemble(
        generated_at: DateTime<Utc>,
        tool_version: impl Into<String>,
        host: HostInfo,
        runtime: RuntimeInfo,
        mut scenarios: Vec<ScenarioResult>,
    ) -> Report {
        scenarios.iter_mut().for_each(ScenarioResult::judge);
        let summary = summarize(&scenarios, &[]);
        Report {
            schema_version: SCHEMA_VERSION.to_string(),
            generated_at,
            tool_version: tool_version.into(),
            host,
            runtime,
            scenarios,
            summary,
            regressions: Vec::new(),
        }
    }

    /// Sets `regressions` to [`crate::compare`]`(baseline, self)` and
    /// recounts the summary.
    pub fn with_baseline(mut self, baseline: &Report) -> Report {
        self.regressions = crate::diff::compare(baseline, &self);
        self.summary = summarize(&self.scenarios, &self.regressions);
        self
    }

    /// The CI gate: true when no scenario failed or errored and nothing
    /// regressed. Unsupported scenarios and informational findings pass.
    pub fn is_success(&self) -> bool {
        let s = &self.summary;
        s.failed == 0 && s.errored == 0 && self.regressions.is_empty()
    }

    /// The scenario with this id, if any.
    pub fn scenario(&self, id: &str) -> Option<&ScenarioResult> {
        self.scenarios.iter().find(|s| s.id == id)
    }

    /// Scenarios whose status is not `pass` or `unsupported`.
    pub fn failing(&self) -> impl Iterator<Item = &ScenarioResult> {
        self.scenarios
            .iter()
            .filter(|s| matches!(s.status, Status::Fail | Status::Error))
    }
}

/// The earlier schema version [`parse_report`] still reads.
pub const READABLE_OLDER_VERSION: &str = "boxwatch.report/v1";

/// Parses a report from JSON text; `path` only names the source in errors.
///
/// The `schema_version` is checked before anything else, so a report of
/// another version is refused as such rather than as malformed. A
/// `boxwatch.report/v1` report (an earlier baseline) is read too: v2 only
/// added `checks[].evidence` and the rule that a required `unsupported`
/// check needs it, and a report's stored statuses are kept as written.
pub fn parse_report(text: &str, path: &Path) -> Result<Report> {
    #[derive(Deserialize)]
    struct Versioned {
        schema_version: Option<String>,
    }
    let malformed = |source| Error::Malformed {
        path: path.to_path_buf(),
        source,
    };
    let versioned: Versioned = serde_json::from_str(text).map_err(malformed)?;
    match versioned.schema_version.as_deref() {
        Some(SCHEMA_VERSION | READABLE_OLDER_VERSION) => {
            serde_json::from_str(text).map_err(malformed)
        }
        found => Err(Error::SchemaVersion {
            path: path.to_path_buf(),
            found: found.unwrap_or("<missing>").to_string(),
            expected: SCHEMA_VERSION,
        }),
    }
}

/// Reads and parses a report file (a baseline), see [`parse_report`].
pub fn load_report(path: &Path) -> Result<Report> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_report(&text, path)
}
