//! Reading the catalog: a directory of files, texts, one text; and the
//! assembly of a [`Scenario`] from a parsed file (its id, timeout,
//! containers, checks and the placement checks every scenario gets).

use super::container::container;
use super::expect::expectation;
use super::file::{bad, duration, Bad, FileContainer, FileExpect, FileScenario, FileWorkload};
use super::workload::workload;
use super::{Entry, LoadError, Member, Scenario, DEFAULT_TIMEOUT, PLACEMENT_CHECKS};
use crate::error::Error;
use crate::expect::{Condition, Expectation, Value};
use crate::metrics;
use reports::Verdict;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Loads every `*.toml` file of `dir`, in file-name order. Only an
/// unreadable or empty directory is an error; a bad file is an `Err` entry.
pub fn load_dir(dir: &Path) -> Result<Vec<Entry>, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(Error::io("reading the catalog directory", dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::EmptyCatalog(dir.to_path_buf()));
    }
    Ok(load_texts(files.into_iter().map(|file| {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read the file: {e}"));
        (file, text)
    })))
}

/// Loads scenario texts (file name, text or why it could not be read);
/// a second file with an id already seen is refused.
pub fn load_texts(
    files: impl IntoIterator<Item = (PathBuf, Result<String, String>)>,
) -> Vec<Entry> {
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut entries = Vec::new();
    for (file, text) in files {
        let entry = match text {
            Ok(text) => load_str(&file, &text),
            Err(reason) => Err(LoadError {
                id: stem(&file),
                file: file.clone(),
                line: 1,
                reason,
            }),
        };
        let entry = entry.and_then(|s| match seen.get(&s.id) {
            Some(first) => Err(LoadError {
                id: stem(&s.file),
                file: s.file.clone(),
                line: 1,
                reason: format!(
                    "duplicate scenario id {:?}: {} has it already",
                    s.id,
                    first.display()
                ),
            }),
            None => {
                seen.insert(s.id.clone(), s.file.clone());
                Ok(s)
            }
        });
        entries.push(entry);
    }
    entries
}

fn stem(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Loads one scenario from its text; `file` is used in errors.
pub fn load_str(file: &Path, text: &str) -> Entry {
    let at = |span: Option<Range<usize>>, reason: String| LoadError {
        id: stem(file),
        file: file.to_path_buf(),
        line: span.map(|s| line_of(text, s.start)).unwrap_or(1),
        reason,
    };
    let raw: FileScenario =
        toml::from_str(text).map_err(|e| at(e.span(), e.message().trim().to_string()))?;
    build(raw, file).map_err(|(span, reason)| at(span, reason))
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

/// The scenario of a parsed file: its id, containers, timeout and checks
/// (the placement checks added), checked against each other.
fn build(raw: FileScenario, file: &Path) -> Result<Scenario, Bad> {
    let id = scenario_id(&raw.id)?;
    let timeout = match &raw.timeout {
        Some(t) => duration(t)?,
        None => DEFAULT_TIMEOUT,
    };
    let main = member(raw.container, raw.workload)?;
    let neighbour = raw
        .neighbour
        .map(|n| member(n.container, n.workload))
        .transpose()?;
    if timeout <= main.workload.duration() {
        return Err(bad(
            raw.timeout
                .as_ref()
                .expect("the default timeout exceeds any duration"),
            format!(
                "timeout {timeout:?} is not longer than the workload's duration {:?}",
                main.workload.duration()
            ),
        ));
    }
    let expectations = checks(raw.expect, &main, neighbour.as_ref())?;
    if let Some(h) = &raw.headline {
        if !metrics::is_known(h.get_ref(), main.workload.kind()) {
            return Err(bad(
                h,
                format!("unknown metric {:?} as headline", h.get_ref()),
            ));
        }
    }
    Ok(Scenario {
        id,
        title: raw.title,
        seed_claim: raw.seed_claim,
        description: raw.description,
        headline: raw.headline.map(|h| h.into_inner()),
        file: file.to_path_buf(),
        // A CPU measurement shared with another scenario is spoiled: a
        // workload that measures CPU runs alone whatever the file says.
        exclusive: raw.exclusive
            || std::iter::once(&main)
                .chain(neighbour.as_ref())
                .any(|m| m.workload.kind().measures_cpu()),
        lock: raw.lock,
        timeout,
        main,
        neighbour,
        expectations,
    })
}

/// A scenario id: 1-48 characters of lowercase letters, digits and '-'.
fn scenario_id(id: &Spanned<String>) -> Result<String, Bad> {
    let text = id.get_ref();
    if text.is_empty()
        || text.len() > 48
        || !text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad(
            id,
            format!("id {text:?} must be 1-48 characters of lowercase letters, digits and '-'"),
        ));
    }
    Ok(text.clone())
}

/// The file's checks, each id once and none of the reserved ones, then
/// the placement check of every container.
fn checks(
    entries: Vec<FileExpect>,
    main: &Member,
    neighbour: Option<&Member>,
) -> Result<Vec<Expectation>, Bad> {
    let mut ids = BTreeSet::new();
    let mut expectations = Vec::new();
    for e in entries {
        if PLACEMENT_CHECKS.contains(&e.check.get_ref().as_str()) {
            return Err(bad(
                &e.check,
                format!(
                    "check id {:?} is reserved: every scenario has it already",
                    e.check.get_ref()
                ),
            ));
        }
        if !ids.insert(e.check.get_ref().clone()) {
            return Err(bad(
                &e.check,
                format!(
                    "check {:?} appears twice in this scenario",
                    e.check.get_ref()
                ),
            ));
        }
        expectations.push(expectation(e, main, neighbour)?);
    }
    if expectations.is_empty() {
        return Err((
            None,
            "the scenario has no [[expect]] entries: nothing would be checked".into(),
        ));
    }
    expectations.push(placement_check("", crate::placement::METRIC));
    if neighbour.is_some() {
        expectations.push(placement_check(
            "neighbour-",
            &format!("{}{}", metrics::NEIGHBOUR_PREFIX, crate::placement::METRIC),
        ));
    }
    Ok(expectations)
}

/// The required placement check of a container (`prefix` `neighbour-` for
/// the neighbour), added to every scenario: every container boxwatch starts
/// has a cgroup, and the figures judged come from it.
fn placement_check(prefix: &str, metric: &str) -> Expectation {
    let who = if prefix.is_empty() {
        "the container's"
    } else {
        "the neighbour's"
    };
    Expectation {
        check: format!("{prefix}placement"),
        title: format!(
            "{who} processes are in the cgroup the runtime reported, in every hierarchy the judge reads (/proc/<pid>/cgroup, sampled while it ran)"
        ),
        metric: metric.to_string(),
        condition: Condition::Equals(Value::Text(crate::placement::PLACED.into())),
        required: true,
        pass: Verdict::Enforced,
        fail: Verdict::NotEnforced,
        needs_cpus: None,
        attack: None,
        informational_on: BTreeMap::new(),
        explained_on: BTreeMap::new(),
        not_on_sandbox: None,
    }
}

fn member(c: FileContainer, w: FileWorkload) -> Result<Member, Bad> {
    let container = container(c)?;
    let workload = workload(w, &container)?;
    Ok(Member {
        container,
        workload,
    })
}
