//! The scenario file's format as serde reads it (every value that a
//! refusal must point at keeps its span), and the small value parsers the
//! other parts share: durations, numbers-or-strings, and the `Bad` refusal
//! (span, reason) that becomes a [`super::LoadError`] with its line.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileScenario {
    pub(super) id: Spanned<String>,
    pub(super) title: String,
    #[serde(default)]
    pub(super) seed_claim: String,
    #[serde(default)]
    pub(super) description: String,
    pub(super) headline: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) exclusive: bool,
    pub(super) lock: Option<String>,
    pub(super) timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) container: FileContainer,
    pub(super) workload: FileWorkload,
    pub(super) neighbour: Option<FileMember>,
    #[serde(default)]
    pub(super) expect: Vec<FileExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileMember {
    #[serde(default)]
    pub(super) container: FileContainer,
    pub(super) workload: FileWorkload,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileContainer {
    pub(super) cpu: Option<Spanned<toml::Value>>,
    pub(super) memory: Option<Spanned<toml::Value>>,
    pub(super) pids: Option<Spanned<i64>>,
    pub(super) cpuset: Option<Spanned<String>>,
    pub(super) namespaces: Option<Vec<Spanned<String>>>,
    pub(super) hostname: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) keep_caps: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) init: bool,
    pub(super) monotonic_offset: Option<Spanned<String>>,
    pub(super) boottime_offset: Option<Spanned<String>>,
    pub(super) rootfs: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    pub(super) lxcfs: Option<Spanned<bool>>,
    pub(super) seccomp: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileWorkload {
    pub(super) name: Spanned<String>,
    pub(super) threads: Option<Spanned<i64>>,
    pub(super) duration: Option<Spanned<String>>,
    pub(super) burst: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) bytes: Option<Spanned<toml::Value>>,
    pub(super) step: Option<Spanned<toml::Value>>,
    pub(super) allow_clock_write: Option<Spanned<bool>>,
    pub(super) clock_step: Option<Spanned<String>>,
    pub(super) mount_marker: Option<Spanned<bool>>,
    pub(super) linger: Option<Spanned<bool>>,
    pub(super) probe: Option<Spanned<String>>,
    pub(super) private_mount: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileExpect {
    pub(super) check: Spanned<String>,
    pub(super) title: Option<String>,
    pub(super) metric: Spanned<String>,
    pub(super) equals: Option<Spanned<toml::Value>>,
    pub(super) at_most: Option<Spanned<toml::Value>>,
    pub(super) at_least: Option<Spanned<toml::Value>>,
    pub(super) near: Option<Spanned<toml::Value>>,
    pub(super) tolerance: Option<Spanned<f64>>,
    #[serde(default = "yes")]
    pub(super) required: bool,
    pub(super) pass: Option<Spanned<String>>,
    pub(super) fail: Option<Spanned<String>>,
    pub(super) needs_cpus: Option<Spanned<toml::Value>>,
    pub(super) attack: Option<String>,
    #[serde(default)]
    pub(super) informational_on: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) explained_on: BTreeMap<String, String>,
    pub(super) sandboxed: Option<Spanned<String>>,
    pub(super) sandboxed_why: Option<Spanned<String>>,
}

pub(super) fn yes() -> bool {
    true
}

pub(super) type Bad = (Option<Range<usize>>, String);

pub(super) fn bad<T>(s: &Spanned<T>, reason: impl Into<String>) -> Bad {
    (Some(s.span()), reason.into())
}

/// A TOML number or string, as the text a runtime parser takes.
pub(super) fn as_text(v: &Spanned<toml::Value>) -> Result<String, Bad> {
    match v.get_ref() {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        other => Err(bad(
            v,
            format!("expected a number or a string, found {}", other.type_str()),
        )),
    }
}

/// Parses "5s", "500ms", "2m", "10d", "1.5s".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let err = || {
        format!("invalid duration {s:?}: expected a number with a unit, such as 500ms, 5s, 2m, 1h or 10d")
    };
    let n: f64 = if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(err());
    } else {
        num.parse().map_err(|_| err())?
    };
    let scale = match unit.trim() {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(err()),
    };
    let secs = n * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

pub(super) fn duration(s: &Spanned<String>) -> Result<Duration, Bad> {
    parse_duration(s.get_ref()).map_err(|e| bad(s, e))
}

pub(super) fn duration_in(
    s: &Spanned<String>,
    what: &str,
    lo: Duration,
    hi: Duration,
) -> Result<u64, Bad> {
    let d = duration(s)?;
    if d < lo || d > hi {
        return Err(bad(
            s,
            format!(
                "{what} {:?} is out of range: expected {lo:?} to {hi:?}",
                s.get_ref()
            ),
        ));
    }
    Ok(d.as_millis() as u64)
}
