//! The scenario catalog: one TOML file per scenario, data only. The loader
//! turns a file into a [`Scenario`] or refuses it with the file, the line
//! and the reason; one broken file never stops the others.
//!
//! ```toml
//! id = "cpu-quota-20"
//! title = "A 20% CPU quota holds a spin loop to 20% of one CPU"
//! seed_claim = "cgroup cpu.cfs_quota_us=20000 / period=100000 holds a spin loop to 20%"
//! headline = "cpu_share"    # optional: the measurement a matrix cell shows
//! exclusive = true          # runs alone, even with --jobs (implied for spin, burst, noisy)
//! timeout = "30s"
//!
//! [container]               # every key optional
//! cpu = "0.2"               # CPUs, or "QUOTA/PERIOD" in µs
//! memory = "64M"
//! pids = 64
//! cpuset = "0"
//! namespaces = ["pid", "mount", "uts", "ipc", "net", "cgroup"]
//! hostname = "box"
//! keep_caps = ["sys_admin"]
//! init = false              # tiny init as PID 1
//! monotonic_offset = "10d"  # time namespace offsets
//! boottime_offset = "10d"
//! env = { KEY = "value" }
//! lxcfs = true              # /proc virtualized by a private lxcfs
//! seccomp = "unconfined"    # no seccomp filter (default: the runtime's profile)
//!
//! [workload]
//! name = "spin"             # spin burst noisy hog fork-bomb settimeofday probe-inside orphan-maker escape
//! probe = "devices"         # escape: devices proc-paths capabilities seccomp sockets all
//! threads = 1
//! duration = "5s"
//!
//! [[expect]]
//! check = "cpu-share"
//! title = "the spin loop gets its quota, no more"
//! metric = "cpu_share"      # see `metrics`
//! near = "limit.cpu"        # or equals / at_most / at_least; numbers, booleans,
//! tolerance = 0.02          # text, or references limit.cpu, limit.memory...
//! required = true           # default true; false = informational finding
//! pass = "enforced"         # verdict when it holds: enforced | isolated, or
//! fail = "not-enforced"     # leaked | not-enforced to show a documented leak;
//!                           # fail is its opposite (the default for a missing one)
//! attack = "..."            # one line: what an attacker could do where it leaks
//! informational_on = { crun = "why" }   # runtimes where it is only a finding
//! explained_on = { docker = "why" }      # runtimes whose verdict differs, and why
//! sandboxed = "applies"     # default; "not-applicable" for a check that says
//! # sandboxed_why = "..."   # nothing under a sandboxed runtime (gVisor), why
//! ```
//!
//! An optional `[neighbour]` table with its own `container` and `workload`
//! starts a second container alongside; its metrics are `neighbour.<metric>`.

use crate::error::Error;
use crate::expect::{Condition, Expectation, Value};
use crate::metrics;
use crate::workload::{Workload, WorkloadKind};
use probes::Verdict;
use runtime::{Capability, CpuQuota, CpuSet, Limits, MemoryBytes, Namespace, NamespaceSet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Default time a scenario may take before it is killed and in `error`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest pids limit a fork bomb may run under.
pub const MAX_FORK_BOMB_PIDS: u64 = 1024;

/// A loaded, valid scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub seed_claim: String,
    pub description: String,
    /// The measurement that sums the scenario up in a matrix cell.
    pub headline: Option<String>,
    pub file: PathBuf,
    /// Runs alone: nothing else overlaps it, even with `--jobs`. Set by the
    /// file, and always for a workload that measures CPU.
    pub exclusive: bool,
    /// Scenarios sharing a lock class never overlap each other.
    pub lock: Option<String>,
    pub timeout: Duration,
    pub main: Member,
    pub neighbour: Option<Member>,
    pub expectations: Vec<Expectation>,
}

/// One container of a scenario and what it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub container: ContainerDef,
    pub workload: Workload,
}

/// The container part of a scenario, in the runtime's own types.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerDef {
    pub namespaces: NamespaceSet,
    pub hostname: Option<String>,
    pub limits: Limits,
    pub keep_caps: Vec<Capability>,
    pub init: bool,
    pub monotonic_offset_secs: i64,
    pub boottime_offset_secs: i64,
    /// Use the host's root instead of the minimal private one.
    pub host_rootfs: bool,
    pub env: BTreeMap<String, String>,
    /// Virtualize /proc and the online CPU list with a private lxcfs that
    /// the run starts ([`runtime::lxcfs`]).
    pub lxcfs: bool,
    /// The seccomp profile (the runtime's default unless `unconfined`).
    #[serde(default)]
    pub seccomp: runtime::SeccompMode,
}

impl ContainerDef {
    /// The runtime's spec for this container running `command` (the
    /// runner adds the workload's guard): what a scenario starts, for
    /// anyone who wants the same container with another command.
    pub fn spec(&self, name: &str, command: Vec<String>) -> runtime::ContainerSpec {
        let mut spec = runtime::ContainerSpec::new(name, command);
        spec.namespaces = self.namespaces.clone();
        spec.hostname = self.hostname.clone();
        spec.rootfs = if self.host_rootfs {
            runtime::RootfsSpec::Host
        } else {
            runtime::RootfsSpec::Minimal
        };
        spec.limits = self.limits.clone();
        spec.keep_caps = self.keep_caps.clone();
        spec.seccomp = self.seccomp;
        spec.init = self.init;
        spec.time_offsets = runtime::TimeOffsets {
            monotonic_secs: self.monotonic_offset_secs,
            boottime_secs: self.boottime_offset_secs,
        };
        spec.env = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        spec
    }
}

/// A scenario file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadError {
    /// The id from the file name (the file's own id may be what is broken).
    pub id: String,
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Error {
        Error::Catalog {
            file: e.file,
            line: e.line,
            reason: e.reason,
        }
    }
}

/// One file of the catalog: a scenario, or why it was refused.
pub type Entry = Result<Scenario, LoadError>;

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

// ---- the file format -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileScenario {
    id: Spanned<String>,
    title: String,
    #[serde(default)]
    seed_claim: String,
    #[serde(default)]
    description: String,
    headline: Option<Spanned<String>>,
    #[serde(default)]
    exclusive: bool,
    lock: Option<String>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    container: FileContainer,
    workload: FileWorkload,
    neighbour: Option<FileMember>,
    #[serde(default)]
    expect: Vec<FileExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMember {
    #[serde(default)]
    container: FileContainer,
    workload: FileWorkload,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileContainer {
    cpu: Option<Spanned<toml::Value>>,
    memory: Option<Spanned<toml::Value>>,
    pids: Option<Spanned<i64>>,
    cpuset: Option<Spanned<String>>,
    namespaces: Option<Vec<Spanned<String>>>,
    hostname: Option<Spanned<String>>,
    #[serde(default)]
    keep_caps: Vec<Spanned<String>>,
    #[serde(default)]
    init: bool,
    monotonic_offset: Option<Spanned<String>>,
    boottime_offset: Option<Spanned<String>>,
    rootfs: Option<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    lxcfs: Option<Spanned<bool>>,
    seccomp: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWorkload {
    name: Spanned<String>,
    threads: Option<Spanned<i64>>,
    duration: Option<Spanned<String>>,
    burst: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    bytes: Option<Spanned<toml::Value>>,
    step: Option<Spanned<toml::Value>>,
    allow_clock_write: Option<Spanned<bool>>,
    clock_step: Option<Spanned<String>>,
    mount_marker: Option<Spanned<bool>>,
    linger: Option<Spanned<bool>>,
    probe: Option<Spanned<String>>,
    private_mount: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileExpect {
    check: Spanned<String>,
    title: Option<String>,
    metric: Spanned<String>,
    equals: Option<Spanned<toml::Value>>,
    at_most: Option<Spanned<toml::Value>>,
    at_least: Option<Spanned<toml::Value>>,
    near: Option<Spanned<toml::Value>>,
    tolerance: Option<Spanned<f64>>,
    #[serde(default = "yes")]
    required: bool,
    pass: Option<Spanned<String>>,
    fail: Option<Spanned<String>>,
    needs_cpus: Option<Spanned<toml::Value>>,
    attack: Option<String>,
    #[serde(default)]
    informational_on: BTreeMap<String, String>,
    #[serde(default)]
    explained_on: BTreeMap<String, String>,
    sandboxed: Option<Spanned<String>>,
    sandboxed_why: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

type Bad = (Option<Range<usize>>, String);

fn bad<T>(s: &Spanned<T>, reason: impl Into<String>) -> Bad {
    (Some(s.span()), reason.into())
}

fn build(raw: FileScenario, file: &Path) -> Result<Scenario, Bad> {
    let id = raw.id.get_ref().clone();
    if id.is_empty()
        || id.len() > 48
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad(
            &raw.id,
            format!("id {id:?} must be 1-48 characters of lowercase letters, digits and '-'"),
        ));
    }
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
    let mut checks = BTreeSet::new();
    let mut expectations = Vec::new();
    for e in raw.expect {
        if PLACEMENT_CHECKS.contains(&e.check.get_ref().as_str()) {
            return Err(bad(
                &e.check,
                format!(
                    "check id {:?} is reserved: every scenario has it already",
                    e.check.get_ref()
                ),
            ));
        }
        if !checks.insert(e.check.get_ref().clone()) {
            return Err(bad(
                &e.check,
                format!(
                    "check {:?} appears twice in this scenario",
                    e.check.get_ref()
                ),
            ));
        }
        expectations.push(expectation(e, &main, neighbour.as_ref())?);
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
            &format!("neighbour.{}", crate::placement::METRIC),
        ));
    }
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

/// The check ids every scenario gets without asking: its containers'
/// processes are in the cgroup it judges.
pub const PLACEMENT_CHECKS: [&str; 2] = ["placement", "neighbour-placement"];

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

/// A TOML number or string, as the text a runtime parser takes.
fn as_text(v: &Spanned<toml::Value>) -> Result<String, Bad> {
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

fn container(c: FileContainer) -> Result<ContainerDef, Bad> {
    let mut limits = Limits::default();
    if let Some(cpu) = &c.cpu {
        limits.cpu = Some(
            as_text(cpu)?
                .parse::<CpuQuota>()
                .map_err(|e| bad(cpu, e.to_string()))?,
        );
    }
    if let Some(mem) = &c.memory {
        limits.memory = Some(
            as_text(mem)?
                .parse::<MemoryBytes>()
                .map_err(|e| bad(mem, e.to_string()))?,
        );
    }
    if let Some(p) = &c.pids {
        limits.pids = Some(
            runtime::units::parse_pids(&p.get_ref().to_string())
                .map_err(|e| bad(p, e.to_string()))?,
        );
    }
    if let Some(set) = &c.cpuset {
        limits.cpuset = Some(
            set.get_ref()
                .parse::<CpuSet>()
                .map_err(|e| bad(set, e.to_string()))?,
        );
    }
    let mut namespaces = NamespaceSet::default();
    if let Some(list) = &c.namespaces {
        namespaces = NamespaceSet::empty();
        for n in list {
            namespaces.insert(
                n.get_ref()
                    .parse::<Namespace>()
                    .map_err(|e| bad(n, e.to_string()))?,
            );
        }
    }
    let hostname =
        match &c.hostname {
            Some(h) if !namespaces.contains(Namespace::Uts) => return Err(bad(
                h,
                "a hostname needs the uts namespace: setting it without one would rename the host",
            )),
            Some(h) => Some(h.get_ref().clone()),
            None => None,
        };
    let mut keep_caps = Vec::new();
    for cap in &c.keep_caps {
        keep_caps.push(
            cap.get_ref()
                .parse::<Capability>()
                .map_err(|e| bad(cap, e.to_string()))?,
        );
    }
    let offset = |o: &Option<Spanned<String>>| -> Result<i64, Bad> {
        match o {
            None => Ok(0),
            Some(s) => {
                if !namespaces.contains(Namespace::Time) {
                    return Err(bad(
                        s,
                        "clock offsets need the time namespace: add \"time\" to namespaces",
                    ));
                }
                let d =
                    parse_duration(s.get_ref().trim_start_matches('-')).map_err(|e| bad(s, e))?;
                let secs = d.as_secs() as i64;
                Ok(if s.get_ref().starts_with('-') {
                    -secs
                } else {
                    secs
                })
            }
        }
    };
    let monotonic_offset_secs = offset(&c.monotonic_offset)?;
    let boottime_offset_secs = offset(&c.boottime_offset)?;
    let host_rootfs = match &c.rootfs {
        None => !namespaces.contains(Namespace::Mount),
        Some(r) => match r.get_ref().as_str() {
            "minimal" if namespaces.contains(Namespace::Mount) => false,
            "minimal" => return Err(bad(r, "the minimal rootfs needs the mount namespace")),
            "host" => true,
            other => {
                return Err(bad(
                    r,
                    format!("unknown rootfs {other:?}: expected \"minimal\" or \"host\""),
                ))
            }
        },
    };
    let lxcfs = match &c.lxcfs {
        Some(l) if *l.get_ref() && !namespaces.contains(Namespace::Mount) => return Err(bad(
            l,
            "lxcfs files are bound in the container's mount namespace: add \"mount\" to namespaces",
        )),
        Some(l) => *l.get_ref(),
        None => false,
    };
    let seccomp = match &c.seccomp {
        None => runtime::SeccompMode::Default,
        Some(m) => m
            .get_ref()
            .parse::<runtime::SeccompMode>()
            .map_err(|e| bad(m, e.to_string()))?,
    };
    Ok(ContainerDef {
        lxcfs,
        seccomp,
        namespaces,
        hostname,
        limits,
        keep_caps,
        init: c.init,
        monotonic_offset_secs,
        boottime_offset_secs,
        host_rootfs,
        env: c.env,
    })
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

fn duration(s: &Spanned<String>) -> Result<Duration, Bad> {
    parse_duration(s.get_ref()).map_err(|e| bad(s, e))
}

fn duration_in(s: &Spanned<String>, what: &str, lo: Duration, hi: Duration) -> Result<u64, Bad> {
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

fn workload(w: FileWorkload, c: &ContainerDef) -> Result<Workload, Bad> {
    let name = w.name.get_ref();
    let kind = WorkloadKind::from_name(name).ok_or_else(|| {
        let all: Vec<&str> = WorkloadKind::ALL.iter().map(|k| k.name()).collect();
        bad(
            &w.name,
            format!(
                "unknown workload {name:?}: expected one of {}",
                all.join(", ")
            ),
        )
    })?;
    // Refuse parameters the workload does not take.
    let given: [(&str, Option<Range<usize>>); 12] = [
        ("threads", w.threads.as_ref().map(|s| s.span())),
        ("duration", w.duration.as_ref().map(|s| s.span())),
        ("burst", w.burst.as_ref().map(|s| s.span())),
        ("interval", w.interval.as_ref().map(|s| s.span())),
        ("bytes", w.bytes.as_ref().map(|s| s.span())),
        ("step", w.step.as_ref().map(|s| s.span())),
        (
            "allow_clock_write",
            w.allow_clock_write.as_ref().map(|s| s.span()),
        ),
        ("clock_step", w.clock_step.as_ref().map(|s| s.span())),
        ("mount_marker", w.mount_marker.as_ref().map(|s| s.span())),
        ("linger", w.linger.as_ref().map(|s| s.span())),
        ("probe", w.probe.as_ref().map(|s| s.span())),
        ("private_mount", w.private_mount.as_ref().map(|s| s.span())),
    ];
    for (param, span) in given {
        if let Some(span) = span {
            if !kind.params().contains(&param) {
                return Err((
                    Some(span),
                    format!(
                        "workload {name} takes no `{param}` (its parameters: {})",
                        if kind.params().is_empty() {
                            "none".to_string()
                        } else {
                            kind.params().join(", ")
                        }
                    ),
                ));
            }
        }
    }
    let missing = |p: &str| (Some(w.name.span()), format!("workload {name} needs `{p}`"));
    let threads = || -> Result<u32, Bad> {
        match &w.threads {
            None => Ok(1),
            Some(t) if (1..=64).contains(t.get_ref()) => Ok(*t.get_ref() as u32),
            Some(t) => Err(bad(
                t,
                format!(
                    "threads = {} is out of range: expected 1 to 64",
                    t.get_ref()
                ),
            )),
        }
    };
    let run_time = || -> Result<u64, Bad> {
        let d = w.duration.as_ref().ok_or_else(|| missing("duration"))?;
        duration_in(
            d,
            "duration",
            Duration::from_millis(100),
            Duration::from_secs(600),
        )
    };
    let size = |v: &Option<Spanned<toml::Value>>, p: &str| -> Result<u64, Bad> {
        let v = v.as_ref().ok_or_else(|| missing(p))?;
        Ok(as_text(v)?
            .parse::<MemoryBytes>()
            .map_err(|e| bad(v, e.to_string()))?
            .bytes())
    };
    let workload = match kind {
        WorkloadKind::Spin => Workload::Spin {
            threads: threads()?,
            duration_ms: run_time()?,
        },
        WorkloadKind::Noisy => Workload::Noisy {
            threads: threads()?,
            duration_ms: run_time()?,
        },
        WorkloadKind::Burst => {
            let burst = w.burst.as_ref().ok_or_else(|| missing("burst"))?;
            let interval = w.interval.as_ref().ok_or_else(|| missing("interval"))?;
            let burst_ms = duration_in(
                burst,
                "burst",
                Duration::from_millis(1),
                Duration::from_secs(10),
            )?;
            let interval_ms = duration_in(
                interval,
                "interval",
                Duration::from_millis(2),
                Duration::from_secs(60),
            )?;
            if burst_ms >= interval_ms {
                return Err(bad(burst, "burst must be shorter than interval"));
            }
            Workload::Burst {
                threads: threads()?,
                duration_ms: run_time()?,
                burst_ms,
                interval_ms,
            }
        }
        WorkloadKind::Hog => Workload::Hog {
            bytes: size(&w.bytes, "bytes")?,
            step_bytes: size(&w.step, "step")?,
        },
        WorkloadKind::ForkBomb => {
            if let Some(p) = c.limits.pids {
                if p > MAX_FORK_BOMB_PIDS {
                    return Err(bad(
                        &w.name,
                        format!("a fork bomb runs only under a pids limit of at most {MAX_FORK_BOMB_PIDS} (this container has {p})"),
                    ));
                }
            }
            if !c.namespaces.contains(Namespace::Pid) {
                return Err(bad(
                    &w.name,
                    "a fork bomb runs only in its own pid namespace",
                ));
            }
            Workload::ForkBomb {
                duration_ms: run_time()?,
            }
        }
        WorkloadKind::Settimeofday => {
            let allow_clock_write = w.allow_clock_write.as_ref().is_some_and(|b| *b.get_ref());
            let step_secs = match &w.clock_step {
                None => 0,
                Some(step) => {
                    if !allow_clock_write {
                        return Err(bad(
                            step,
                            "clock_step moves the clock: it needs allow_clock_write = true",
                        ));
                    }
                    duration_in(
                        step,
                        "clock_step",
                        Duration::from_secs(1),
                        Duration::from_secs(86_400),
                    )? / 1000
                }
            };
            Workload::Settimeofday {
                allow_clock_write,
                step_secs,
            }
        }
        WorkloadKind::ProbeInside => {
            let mount_marker = w.mount_marker.as_ref().is_some_and(|b| *b.get_ref());
            if mount_marker && !c.namespaces.contains(Namespace::Mount) {
                return Err(bad(
                    w.mount_marker.as_ref().expect("set"),
                    "mount_marker needs the mount namespace: it would mount on the host",
                ));
            }
            Workload::ProbeInside { mount_marker }
        }
        WorkloadKind::OrphanMaker => Workload::OrphanMaker {
            linger: w.linger.as_ref().is_some_and(|b| *b.get_ref()),
        },
        WorkloadKind::Escape => escape_workload(&w, c)?,
    };
    // The guard: dangerous workloads need their limits in the file itself.
    for need in kind.guard_needs() {
        let present = match need {
            runtime::LimitKind::Cpu => c.limits.cpu.is_some(),
            runtime::LimitKind::Memory => c.limits.memory.is_some(),
            runtime::LimitKind::Pids => c.limits.pids.is_some(),
        };
        if !present {
            let key = match need {
                runtime::LimitKind::Cpu => "cpu = \"0.5\"",
                runtime::LimitKind::Memory => "memory = \"64M\"",
                runtime::LimitKind::Pids => "pids = 64",
            };
            return Err(bad(
                &w.name,
                format!(
                    "workload {name} must not run without a limit: add {key} to its [container]"
                ),
            ));
        }
    }
    Ok(workload)
}

fn escape_workload(w: &FileWorkload, c: &ContainerDef) -> Result<Workload, Bad> {
    use crate::workload::escape::EscapeProbe;
    let p = w.probe.as_ref().ok_or_else(|| {
        (
            Some(w.name.span()),
            "workload escape needs `probe`".to_string(),
        )
    })?;
    let probe = EscapeProbe::from_name(p.get_ref()).ok_or_else(|| {
        let all: Vec<&str> = EscapeProbe::ALL.iter().map(|p| p.name()).collect();
        bad(
            p,
            format!(
                "unknown probe {:?}: expected one of {}",
                p.get_ref(),
                all.join(", ")
            ),
        )
    })?;
    let private_mount = w.private_mount.as_ref().is_some_and(|b| *b.get_ref());
    if private_mount && (c.host_rootfs || !c.namespaces.contains(Namespace::Mount)) {
        return Err(bad(
            w.private_mount.as_ref().expect("set"),
            "private_mount needs the mount namespace and a private rootfs: it would mount on the host",
        ));
    }
    Ok(Workload::Escape {
        probe,
        private_mount,
    })
}

/// The verdict of a judged check and its opposite.
const VERDICT_PAIRS: [(Verdict, Verdict); 2] = [
    (Verdict::Enforced, Verdict::NotEnforced),
    (Verdict::Isolated, Verdict::Leaked),
];

fn opposite(v: Verdict) -> Option<Verdict> {
    VERDICT_PAIRS.iter().find_map(|&(a, b)| {
        if v == a {
            Some(b)
        } else if v == b {
            Some(a)
        } else {
            None
        }
    })
}

/// `pass` and `fail` of an expectation: opposites (enforced/not-enforced,
/// isolated/leaked), either way round; a missing one is the other's
/// opposite, both missing is enforced/not-enforced. `pass = "leaked"` is a
/// scenario that demonstrates a documented leak: it holds when it leaks.
fn verdicts(
    pass: &Option<Spanned<String>>,
    fail: &Option<Spanned<String>>,
) -> Result<(Verdict, Verdict), Bad> {
    let parse = |s: &Spanned<String>| {
        Verdict::ALL
            .into_iter()
            .find(|v| v.as_str() == s.get_ref() && opposite(*v).is_some())
            .ok_or_else(|| {
                bad(
                    s,
                    format!(
                        "verdict {:?} is not allowed here: expected enforced, not-enforced, isolated or leaked",
                        s.get_ref()
                    ),
                )
            })
    };
    let p = pass.as_ref().map(parse).transpose()?;
    let f = fail.as_ref().map(parse).transpose()?;
    match (p, f) {
        (None, None) => Ok((Verdict::Enforced, Verdict::NotEnforced)),
        (Some(p), None) => Ok((p, opposite(p).expect("parsed verdicts have one"))),
        (None, Some(f)) => Ok((opposite(f).expect("parsed verdicts have one"), f)),
        (Some(p), Some(f)) if opposite(p) == Some(f) => Ok((p, f)),
        (Some(p), Some(f)) => Err(bad(
            fail.as_ref().expect("given"),
            format!(
                "pass {p} and fail {f} are not opposites: {p} goes with fail = {:?}",
                opposite(p).expect("parsed verdicts have one").as_str()
            ),
        )),
    }
}

/// Resolves a value of an expectation: numbers, booleans, text, and
/// references to the container's definition.
fn operand(v: &Spanned<toml::Value>, c: &ContainerDef) -> Result<Value, Bad> {
    match v.get_ref() {
        toml::Value::Integer(i) => Ok(Value::Number(*i as f64)),
        toml::Value::Float(f) => Ok(Value::Number(*f)),
        toml::Value::Boolean(b) => Ok(Value::Bool(*b)),
        toml::Value::String(s) if s.starts_with("limit.") || s.starts_with("spec.") => {
            let l = &c.limits;
            let missing = |what: &str| {
                bad(
                    v,
                    format!("{s} refers to the {what}, but the container has none"),
                )
            };
            Ok(match s.as_str() {
                "limit.cpu" => Value::Number(l.cpu.ok_or_else(|| missing("cpu limit"))?.cores()),
                "limit.cpu_ceil" => Value::Number(l.cpu.ok_or_else(|| missing("cpu limit"))?.cores().ceil()),
                "limit.memory" => Value::Number(l.memory.ok_or_else(|| missing("memory limit"))?.bytes() as f64),
                "limit.pids" => Value::Number(l.pids.ok_or_else(|| missing("pids limit"))? as f64),
                "limit.cpuset_cpus" => Value::Number(
                    l.cpuset.as_ref().ok_or_else(|| missing("cpuset"))?.cpus().len() as f64,
                ),
                "spec.hostname" => Value::Text(c.hostname.clone().ok_or_else(|| missing("hostname"))?),
                "spec.monotonic_offset" => Value::Number(c.monotonic_offset_secs as f64),
                "spec.boottime_offset" => Value::Number(c.boottime_offset_secs as f64),
                _ => {
                    return Err(bad(
                        v,
                        format!("unknown reference {s:?}: expected limit.cpu, limit.cpu_ceil, limit.memory, limit.pids, limit.cpuset_cpus, spec.hostname, spec.monotonic_offset or spec.boottime_offset"),
                    ))
                }
            })
        }
        toml::Value::String(s) => Ok(Value::Text(s.clone())),
        other => Err(bad(
            v,
            format!(
                "expected a number, boolean, string or limit reference, found {}",
                other.type_str()
            ),
        )),
    }
}

fn number(v: &Spanned<toml::Value>, c: &ContainerDef, key: &str) -> Result<f64, Bad> {
    match operand(v, c)? {
        Value::Number(n) if n.is_finite() => Ok(n),
        other => Err(bad(v, format!("`{key}` needs a number, found {other:?}"))),
    }
}

fn expectation(
    e: FileExpect,
    main: &Member,
    neighbour: Option<&Member>,
) -> Result<Expectation, Bad> {
    let check = e.check.get_ref();
    if check.is_empty()
        || !check
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(bad(
            &e.check,
            format!("check id {check:?} must be letters, digits, '-', '_' or '.'"),
        ));
    }
    let metric = e.metric.get_ref();
    let (member, bare) = match metric.strip_prefix("neighbour.") {
        Some(rest) => (
            neighbour.ok_or_else(|| {
                bad(
                    &e.metric,
                    format!("metric {metric:?} needs a [neighbour], and this scenario has none"),
                )
            })?,
            rest,
        ),
        None => (main, metric.as_str()),
    };
    if !metrics::is_known(bare, member.workload.kind()) {
        let hint = if bare.starts_with("inside.") {
            if member.workload.kind() == crate::workload::WorkloadKind::ProbeInside {
                format!(
                    " (the probe-inside workload reports inside.{})",
                    metrics::INSIDE_METRICS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", inside.")
                )
            } else {
                format!(
                    " (inside.* metrics need the probe-inside workload, and this scenario runs {})",
                    member.workload.kind().name()
                )
            }
        } else if bare.starts_with("workload.") {
            format!(
                " (workload {} reports: {})",
                member.workload.kind().name(),
                member.workload.kind().result_keys().join(", ")
            )
        } else {
            String::new()
        };
        return Err(bad(&e.metric, format!("unknown metric {metric:?}{hint}")));
    }
    let c = &member.container;
    let condition = match (&e.equals, &e.at_least, &e.at_most, &e.near) {
        (Some(v), None, None, None) => Condition::Equals(operand(v, c)?),
        (None, lo, hi, None) if lo.is_some() || hi.is_some() => {
            let lo = lo.as_ref().map(|v| number(v, c, "at_least")).transpose()?;
            let hi = hi.as_ref().map(|v| number(v, c, "at_most")).transpose()?;
            if let (Some(l), Some(h)) = (lo, hi) {
                if l > h {
                    return Err(bad(e.at_least.as_ref().expect("set"), format!("at_least {l} is above at_most {h}")));
                }
            }
            Condition::Range {
                at_least: lo,
                at_most: hi,
            }
        }
        (None, None, None, Some(v)) => {
            let target = number(v, c, "near")?;
            let tol = e
                .tolerance
                .as_ref()
                .ok_or_else(|| bad(v, "`near` needs a `tolerance`"))?;
            if !(tol.get_ref().is_finite() && *tol.get_ref() >= 0.0) {
                return Err(bad(tol, "tolerance must be a number >= 0"));
            }
            Condition::Near {
                target,
                tolerance: *tol.get_ref(),
            }
        }
        _ => {
            return Err(bad(
                &e.check,
                "give exactly one condition: `equals`, `near` (with `tolerance`), or `at_least` and/or `at_most`",
            ))
        }
    };
    if let (Some(t), None) = (&e.tolerance, &e.near) {
        return Err(bad(t, "`tolerance` only goes with `near`"));
    }
    let (pass, fail) = verdicts(&e.pass, &e.fail)?;
    for (field, map) in [
        ("informational_on", &e.informational_on),
        ("explained_on", &e.explained_on),
    ] {
        for rt in map.keys() {
            if rt.parse::<runtime::backend::BackendKind>().is_err() {
                return Err(bad(
                    &e.check,
                    format!(
                        "{field} names {rt:?}: expected builtin, runc, crun, runsc, docker or podman"
                    ),
                ));
            }
        }
    }
    Ok(Expectation {
        attack: e.attack,
        informational_on: e.informational_on,
        explained_on: e.explained_on,
        check: check.clone(),
        title: e
            .title
            .unwrap_or_else(|| metrics::describe(metric).unwrap_or(metric).to_string()),
        metric: metric.clone(),
        condition,
        required: e.required,
        pass,
        fail,
        needs_cpus: match &e.needs_cpus {
            None => None,
            Some(v) => {
                let n = number(v, c, "needs_cpus")?;
                if n <= 0.0 {
                    return Err(bad(v, "needs_cpus must be a positive number of CPUs"));
                }
                Some(n)
            }
        },
        not_on_sandbox: sandboxed(&e.check, &e.sandboxed, &e.sandboxed_why)?,
    })
}

/// A check's `sandboxed` (`applies`, the default, or `not-applicable`)
/// and `sandboxed_why` (required with `not-applicable`, only there).
fn sandboxed(
    check: &Spanned<String>,
    sandboxed: &Option<Spanned<String>>,
    why: &Option<Spanned<String>>,
) -> Result<Option<String>, Bad> {
    match (sandboxed.as_ref().map(|s| (s, s.get_ref().as_str())), why) {
        (None | Some((_, "applies")), None) => Ok(None),
        (Some((_, "not-applicable")), Some(w)) if !w.get_ref().trim().is_empty() => {
            Ok(Some(w.get_ref().trim().to_string()))
        }
        (Some((_, "not-applicable")), _) => Err(bad(
            check,
            "`sandboxed = \"not-applicable\"` needs `sandboxed_why`: what a sandboxed runtime makes of the check",
        )),
        (None | Some((_, "applies")), Some(w)) => Err(bad(
            w,
            "`sandboxed_why` only goes with `sandboxed = \"not-applicable\"`",
        )),
        (Some((s, _)), _) => Err(bad(
            s,
            "`sandboxed` is `applies` (the default) or `not-applicable`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = r#"
id = "cpu-quota-20"
title = "20% quota"
exclusive = true

[container]
cpu = "0.2"

[workload]
name = "spin"
duration = "5s"

[[expect]]
check = "cpu-share"
metric = "cpu_share"
near = "limit.cpu"
tolerance = 0.02
"#;

    fn load(text: &str) -> Entry {
        load_str(Path::new("cat/x.toml"), text)
    }

    fn refused(text: &str) -> LoadError {
        load(text).expect_err("the file should be refused")
    }

    #[test]
    fn lxcfs_without_the_mount_namespace_is_refused_with_its_line() {
        let text = GOOD.replace(
            "cpu = \"0.2\"",
            "cpu = \"0.2\"\nnamespaces = [\"pid\"]\nlxcfs = true",
        );
        let e = refused(&text);
        assert_eq!(e.line, 9, "{e}");
        assert!(e.reason.contains("add \"mount\" to namespaces"), "{e}");
    }

    #[test]
    fn a_cpu_measuring_scenario_runs_alone_even_when_the_file_forgets_it() {
        let s = load(&GOOD.replace("exclusive = true\n", "")).unwrap();
        assert!(s.exclusive, "a spin scenario must not share the machine");
        let probe = GOOD
            .replace("exclusive = true\n", "")
            .replace(
                "name = \"spin\"\nduration = \"5s\"",
                "name = \"probe-inside\"",
            )
            .replace("metric = \"cpu_share\"", "metric = \"cpu_quota\"");
        assert!(!load(&probe).unwrap().exclusive, "a probe may share it");
    }

    #[test]
    fn a_good_file_loads_with_limits_resolved() {
        let s = load(GOOD).unwrap();
        assert_eq!(s.id, "cpu-quota-20");
        assert!(s.exclusive);
        assert_eq!(
            s.main.workload,
            Workload::Spin {
                threads: 1,
                duration_ms: 5000
            }
        );
        assert_eq!(s.main.container.limits.cpu.unwrap().quota_us(), 20_000);
        let e = &s.expectations[0];
        assert_eq!(
            e.condition,
            Condition::Near {
                target: 0.2,
                tolerance: 0.02
            }
        );
        assert!(e.required);
        assert_eq!((e.pass, e.fail), (Verdict::Enforced, Verdict::NotEnforced));
    }

    #[test]
    fn every_scenario_gets_a_required_placement_check_and_may_not_define_it() {
        let s = load(GOOD).unwrap();
        let p = s.expectations.last().unwrap();
        assert_eq!(
            (p.check.as_str(), p.metric.as_str()),
            ("placement", "placement")
        );
        assert!(p.required);
        assert_eq!((p.pass, p.fail), (Verdict::Enforced, Verdict::NotEnforced));
        let e = refused(&GOOD.replace("check = \"cpu-share\"", "check = \"placement\""));
        assert!(e.reason.contains("reserved"), "{e}");
        assert_eq!(e.line, 14);
        for s in crate::builtin::load().into_iter().map(|e| e.unwrap()) {
            let want: &[&str] = if s.neighbour.is_some() {
                &["placement", "neighbour-placement"]
            } else {
                &["placement"]
            };
            for id in want {
                assert!(
                    s.expectations.iter().any(|e| e.check == *id && e.required),
                    "{}: no {id}",
                    s.id
                );
            }
        }
    }

    #[test]
    fn a_bad_memory_size_is_refused_with_its_line() {
        let text = GOOD.replace("cpu = \"0.2\"", "cpu = \"0.2\"\nmemory = '64Q'");
        let e = refused(&text);
        assert_eq!(e.line, 8, "{e}");
        assert!(e.reason.contains("\"64Q\""), "{e}");
        assert!(
            e.to_string()
                .starts_with("cat/x.toml:8: invalid memory limit"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_workload_is_refused_with_its_line() {
        let e = refused(&GOOD.replace("name = \"spin\"", "name = \"mine-bitcoin\""));
        assert_eq!(e.line, 10, "{e}");
        assert!(
            e.reason.contains("unknown workload \"mine-bitcoin\""),
            "{e}"
        );
        assert!(e.reason.contains("fork-bomb"), "{e}");
    }

    #[test]
    fn a_zero_quota_is_refused_with_its_line() {
        for zero in ["cpu = 0", "cpu = \"0\"", "cpu = 0.0"] {
            let e = refused(&GOOD.replace("cpu = \"0.2\"", zero));
            assert_eq!(e.line, 7, "{zero}: {e}");
            assert!(e.reason.contains("invalid cpu quota"), "{e}");
        }
        let e = refused(&GOOD.replace("cpu = \"0.2\"", "cpu = \"0.2\"\npids = 0"));
        assert_eq!(e.line, 8);
        assert!(e.reason.contains("pids"), "{e}");
    }

    #[test]
    fn a_spin_without_a_cpu_limit_is_refused() {
        let e = refused(&GOOD.replace("cpu = \"0.2\"", "memory = \"64M\""));
        assert!(e.reason.contains("must not run without a limit"), "{e}");
        assert_eq!(e.line, 10);
    }

    #[test]
    fn syntax_errors_and_unknown_keys_have_lines() {
        let e = refused(&GOOD.replace("exclusive = true", "exclusive = tru"));
        assert_eq!(e.line, 4, "{e}");
        let e = refused(&GOOD.replace("exclusive = true", "exclusiv = true"));
        assert_eq!(e.line, 4, "{e}");
        assert!(e.reason.contains("exclusiv"), "{e}");
        let e = refused(&GOOD.replace("duration = \"5s\"", "duration = \"5 parsecs\""));
        assert_eq!(e.line, 11, "{e}");
    }

    #[test]
    fn expectations_are_checked() {
        let e = refused(&GOOD.replace("metric = \"cpu_share\"", "metric = \"cpu_shares\""));
        assert_eq!(e.line, 15);
        assert!(e.reason.contains("unknown metric"), "{e}");
        // A spin scenario naming an inside metric is told it needs probe-inside.
        let e = refused(&GOOD.replace("metric = \"cpu_share\"", "metric = \"inside.pid\""));
        assert!(
            e.reason.ends_with(
                "unknown metric \"inside.pid\" (inside.* metrics need the probe-inside workload, and this scenario runs spin)"
            ),
            "{e}"
        );
        // A probe-inside scenario with a misspelt inside metric is told the
        // ones that exist, not that it needs the workload it already has.
        let probe = "id = \"p\"\ntitle = \"p\"\n[workload]\nname = \"probe-inside\"\n\
                     [[expect]]\ncheck = \"c\"\nmetric = \"inside.pids\"\nequals = 1\n";
        let e = refused(probe);
        assert!(
            e.reason
                .contains("unknown metric \"inside.pids\" (the probe-inside workload reports inside.pid, inside.pid_count,"),
            "{e}"
        );
        assert!(!e.reason.contains("need"), "{e}");
        let e = refused(&GOOD.replace("near = \"limit.cpu\"", "near = \"limit.memory\""));
        assert!(e.reason.contains("has none"), "{e}");
        let e = refused(&GOOD.replace("tolerance = 0.02", ""));
        assert!(e.reason.contains("tolerance"), "{e}");
        let e = refused(&GOOD.replace(
            "near = \"limit.cpu\"\ntolerance = 0.02",
            "at_most = 1\nequals = 2",
        ));
        assert!(e.reason.contains("exactly one condition"), "{e}");
        let e = refused(&format!("{GOOD}pass = \"unsupported\"\n"));
        assert!(e.reason.contains("not allowed"), "{e}");
        let e = refused(&format!(
            "{GOOD}pass = \"leaked\"\nfail = \"not-enforced\"\n"
        ));
        assert!(e.reason.contains("not opposites"), "{e}");
        assert!(e.reason.contains("fail = \"isolated\""), "{e}");
        let e =
            refused(&GOOD.replace("metric = \"cpu_share\"", "metric = \"inside.nproc_online\""));
        assert!(e.reason.contains("probe-inside"), "{e}");
    }

    #[test]
    fn pass_and_fail_are_opposites_either_way_round() {
        let pair = |extra: &str| {
            let s = load(&format!("{GOOD}{extra}")).unwrap();
            (s.expectations[0].pass, s.expectations[0].fail)
        };
        use Verdict::*;
        assert_eq!(pair(""), (Enforced, NotEnforced));
        assert_eq!(pair("pass = \"isolated\"\n"), (Isolated, Leaked));
        assert_eq!(pair("fail = \"leaked\"\n"), (Isolated, Leaked));
        // A scenario that demonstrates a documented leak holds when it leaks.
        assert_eq!(pair("pass = \"leaked\"\n"), (Leaked, Isolated));
        assert_eq!(pair("pass = \"not-enforced\"\n"), (NotEnforced, Enforced));
    }

    #[test]
    fn informational_on_names_runtimes_and_makes_the_check_a_finding_there() {
        let text = format!(
            "{GOOD}attack = \"take the host\"\ninformational_on = {{ crun = \"crun does not claim it\" }}\n"
        );
        let s = load(&text).unwrap();
        let e = &s.expectations[0];
        assert_eq!(e.attack.as_deref(), Some("take the host"));
        assert!(e.for_runtime("runc").required);
        let on_crun = e.for_runtime("crun");
        assert!(!on_crun.required);
        assert!(
            on_crun.title.contains("crun does not claim it"),
            "{}",
            on_crun.title
        );
        let e = refused(&format!("{GOOD}informational_on = {{ lxc = \"x\" }}\n"));
        assert!(e.reason.contains("expected builtin, runc, crun"), "{e}");
        let e = refused(&format!("{GOOD}explained_on = {{ lxc = \"x\" }}\n"));
        assert!(e.reason.contains("explained_on names"), "{e}");
    }

    #[test]
    fn escape_workloads_need_a_known_probe_and_a_private_mount_namespace() {
        let escape = |workload: &str, container: &str| {
            format!(
                "id = \"e\"\ntitle = \"t\"\n{container}[workload]\nname = \"escape\"\n{workload}\n\
                 [[expect]]\ncheck = \"c\"\nmetric = \"workload.seccomp_mode\"\nequals = 2\n"
            )
        };
        assert!(load(&escape("probe = \"seccomp\"", "")).is_ok());
        let e = refused(&escape("", ""));
        assert!(e.reason.contains("needs `probe`"), "{e}");
        let e = refused(&escape("probe = \"kernel\"", ""));
        assert!(e.reason.contains("unknown probe"), "{e}");
        let e = refused(&escape(
            "probe = \"devices\"\nprivate_mount = true",
            "[container]\nnamespaces = [\"pid\"]\n",
        ));
        assert!(e.reason.contains("mount on the host"), "{e}");
        let s = load(&escape(
            "probe = \"seccomp\"",
            "[container]\nseccomp = \"unconfined\"\n",
        ))
        .unwrap();
        assert_eq!(s.main.container.seccomp, runtime::SeccompMode::Unconfined);
    }

    #[test]
    fn checks_say_whether_they_apply_to_a_sandbox() {
        let with = |extra: &str| {
            format!(
                "id = \"s\"\ntitle = \"t\"\n[workload]\nname = \"probe-inside\"\n\
                 [[expect]]\ncheck = \"c\"\nmetric = \"ns_differs.pid\"\nequals = true\n{extra}\n"
            )
        };
        assert_eq!(
            load(&with("")).unwrap().expectations[0].not_on_sandbox,
            None
        );
        assert_eq!(
            load(&with("sandboxed = \"applies\"")).unwrap().expectations[0].not_on_sandbox,
            None
        );
        let s = load(&with(
            "sandboxed = \"not-applicable\"\nsandboxed_why = \"the sentry\"",
        ))
        .unwrap();
        assert_eq!(
            s.expectations[0].not_on_sandbox.as_deref(),
            Some("the sentry")
        );
        for (bad, says) in [
            ("sandboxed = \"not-applicable\"", "needs `sandboxed_why`"),
            ("sandboxed_why = \"x\"", "only goes with"),
            (
                "sandboxed = \"maybe\"",
                "`applies` (the default) or `not-applicable`",
            ),
        ] {
            let e = refused(&with(bad));
            assert!(e.reason.contains(says), "{bad}: {e}");
        }
        // The catalog: every host-side namespace comparison is marked.
        for s in crate::builtin::load().into_iter().flatten() {
            for e in &s.expectations {
                if e.metric.starts_with("ns_differs.") || e.metric == "ns_matches_inside" {
                    assert!(e.not_on_sandbox.is_some(), "{}/{}", s.id, e.check);
                }
            }
        }
    }

    #[test]
    fn a_clock_step_needs_allow_clock_write() {
        let clock = |workload: &str| {
            format!(
                "id = \"clock\"\ntitle = \"t\"\n[workload]\nname = \"settimeofday\"\n{workload}\n\
                 [[expect]]\ncheck = \"c\"\nmetric = \"host_clock_step_secs\"\nat_most = 1\n"
            )
        };
        let e = refused(&clock("clock_step = \"1h\""));
        assert!(e.reason.contains("allow_clock_write"), "{e}");
        let s = load(&clock("allow_clock_write = true\nclock_step = \"1h\"")).unwrap();
        assert_eq!(
            s.main.workload,
            Workload::Settimeofday {
                allow_clock_write: true,
                step_secs: 3600
            }
        );
    }

    #[test]
    fn duplicate_ids_and_broken_files_do_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), GOOD).unwrap();
        std::fs::write(dir.path().join("b.toml"), GOOD).unwrap();
        std::fs::write(dir.path().join("c.toml"), "id = [").unwrap();
        std::fs::write(
            dir.path().join("d.toml"),
            GOOD.replace("cpu-quota-20", "other"),
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let entries = load_dir(dir.path()).unwrap();
        assert_eq!(entries.len(), 4);
        assert!(entries[0].is_ok());
        let dup = entries[1].as_ref().unwrap_err();
        assert!(dup.reason.contains("duplicate"), "{dup}");
        assert_eq!(entries[2].as_ref().unwrap_err().id, "c");
        assert_eq!(entries[3].as_ref().unwrap().id, "other");
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_dir(empty.path()),
            Err(Error::EmptyCatalog(_))
        ));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("10d").unwrap(), Duration::from_secs(864_000));
        for bad in ["", "5", "s", "5 parsecs", ".5s", "5.s", "-1s", "1e3s"] {
            assert!(parse_duration(bad).is_err(), "{bad} accepted");
        }
    }

    proptest! {
        #[test]
        fn line_of_counts_newlines(lines in proptest::collection::vec("[a-z =\"]{0,20}", 1..30), pick in 0usize..30) {
            let text = lines.join("\n");
            let pick = pick % lines.len();
            let offset: usize = lines[..pick].iter().map(|l| l.len() + 1).sum();
            prop_assert_eq!(line_of(&text, offset), pick + 1);
        }

        #[test]
        fn durations_in_ms_round_trip(ms in 0u64..10_000_000) {
            prop_assert_eq!(parse_duration(&format!("{ms}ms")).unwrap(), Duration::from_millis(ms));
        }

        #[test]
        fn duration_parser_never_panics(s in "\\PC{0,16}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn any_text_is_loaded_or_refused_never_panics(s in "\\PC{0,200}") {
            let _ = load(&s);
        }

        #[test]
        fn a_bad_value_anywhere_names_its_own_line(pad in 0usize..20) {
            let text = format!("{}{}", "\n".repeat(pad), GOOD.replace("cpu = \"0.2\"", "cpu = \"abc\""));
            let e = load(&text).unwrap_err();
            prop_assert_eq!(e.line, 7 + pad);
        }
    }
}
