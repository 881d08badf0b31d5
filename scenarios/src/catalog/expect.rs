//! The `[[expect]]` entries: a known metric (of the main container or the
//! neighbour), one condition whose operands may refer to the container's
//! definition, the verdict pair, and where the check is only a finding or
//! does not apply.

use super::file::{bad, Bad, FileExpect};
use super::{ContainerDef, Member};
use crate::expect::{Condition, Expectation, Value};
use crate::metrics;
use reports::Verdict;
use toml::Spanned;

/// The verdict of a judged check and its opposite.
const VERDICT_PAIRS: [(Verdict, Verdict); 2] = [
    (Verdict::Enforced, Verdict::NotEnforced),
    (Verdict::Isolated, Verdict::Leaked),
];

pub(super) fn opposite(v: Verdict) -> Option<Verdict> {
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
pub(super) fn verdicts(
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
pub(super) fn operand(v: &Spanned<toml::Value>, c: &ContainerDef) -> Result<Value, Bad> {
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

pub(super) fn number(v: &Spanned<toml::Value>, c: &ContainerDef, key: &str) -> Result<f64, Bad> {
    match operand(v, c)? {
        Value::Number(n) if n.is_finite() => Ok(n),
        other => Err(bad(v, format!("`{key}` needs a number, found {other:?}"))),
    }
}

/// One `[[expect]]` entry, its metric of `main` or (`neighbour.*`) of the
/// neighbour.
pub(super) fn expectation(
    e: FileExpect,
    main: &Member,
    neighbour: Option<&Member>,
) -> Result<Expectation, Bad> {
    let check = check_id(&e.check)?;
    let metric = e.metric.get_ref();
    let member = member_measured(&e, main, neighbour)?;
    let c = &member.container;
    let condition = condition(&e, c)?;
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

/// A check id: letters, digits, '-', '_' or '.'.
fn check_id(id: &Spanned<String>) -> Result<&String, Bad> {
    let check = id.get_ref();
    if check.is_empty()
        || !check
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(bad(
            id,
            format!("check id {check:?} must be letters, digits, '-', '_' or '.'"),
        ));
    }
    Ok(check)
}

/// The member whose metric the check names; the metric must be one it
/// has (a refusal says what its workload reports).
fn member_measured<'a>(
    e: &FileExpect,
    main: &'a Member,
    neighbour: Option<&'a Member>,
) -> Result<&'a Member, Bad> {
    let metric = e.metric.get_ref();
    let (member, bare) = match metric.strip_prefix(metrics::NEIGHBOUR_PREFIX) {
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
        let hint = unknown_metric_hint(bare, member);
        return Err(bad(&e.metric, format!("unknown metric {metric:?}{hint}")));
    }
    Ok(member)
}

/// What a member running its workload does report, for a refusal of
/// metric `bare` it does not.
fn unknown_metric_hint(bare: &str, member: &Member) -> String {
    let kind = member.workload.kind();
    if bare.starts_with(metrics::INSIDE_PREFIX) {
        if kind == crate::workload::WorkloadKind::ProbeInside {
            format!(
                " (the probe-inside workload reports inside.{})",
                metrics::InsideMetric::ALL
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", inside.")
            )
        } else {
            format!(
                " (inside.* metrics need the probe-inside workload, and this scenario runs {})",
                kind.name()
            )
        }
    } else if bare.starts_with(metrics::WORKLOAD_PREFIX) {
        format!(
            " (workload {} reports: {})",
            kind.name(),
            kind.result_keys().join(", ")
        )
    } else {
        String::new()
    }
}

/// Exactly one condition: `equals`, `near` with its `tolerance`, or a
/// range of `at_least` and/or `at_most`.
fn condition(e: &FileExpect, c: &ContainerDef) -> Result<Condition, Bad> {
    match (&e.equals, &e.at_least, &e.at_most, &e.near) {
        (Some(v), None, None, None) => Ok(Condition::Equals(operand(v, c)?)),
        (None, lo, hi, None) if lo.is_some() || hi.is_some() => {
            let lo = lo.as_ref().map(|v| number(v, c, "at_least")).transpose()?;
            let hi = hi.as_ref().map(|v| number(v, c, "at_most")).transpose()?;
            if let (Some(l), Some(h)) = (lo, hi) {
                if l > h {
                    return Err(bad(e.at_least.as_ref().expect("set"), format!("at_least {l} is above at_most {h}")));
                }
            }
            Ok(Condition::Range {
                at_least: lo,
                at_most: hi,
            })
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
            Ok(Condition::Near {
                target,
                tolerance: *tol.get_ref(),
            })
        }
        _ => Err(bad(
            &e.check,
            "give exactly one condition: `equals`, `near` (with `tolerance`), or `at_least` and/or `at_most`",
        )),
    }
}

/// A check's `sandboxed` (`applies`, the default, or `not-applicable`)
/// and `sandboxed_why` (required with `not-applicable`, only there).
pub(super) fn sandboxed(
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
