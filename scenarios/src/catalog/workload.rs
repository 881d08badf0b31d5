//! The `[workload]` table: which workload, with only the parameters it
//! takes, in range; dangerous workloads need their limits in the file.

use super::file::{as_text, bad, duration_in, Bad, FileWorkload};
use super::{ContainerDef, MAX_FORK_BOMB_PIDS};
use crate::workload::{Workload, WorkloadKind};
use runtime::{MemoryBytes, Namespace};
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// The workload of a `[workload]` table, for a container defined as `c`.
pub(super) fn workload(w: FileWorkload, c: &ContainerDef) -> Result<Workload, Bad> {
    let kind = kind_of(&w)?;
    refuse_parameters_not_taken(&w, kind)?;
    let workload = match kind {
        WorkloadKind::Spin => Workload::Spin {
            threads: threads(&w)?,
            duration_ms: run_time(&w)?,
        },
        WorkloadKind::Noisy => Workload::Noisy {
            threads: threads(&w)?,
            duration_ms: run_time(&w)?,
        },
        WorkloadKind::Burst => burst(&w)?,
        WorkloadKind::Hog => Workload::Hog {
            bytes: size(&w, &w.bytes, "bytes")?,
            step_bytes: size(&w, &w.step, "step")?,
        },
        WorkloadKind::ForkBomb => fork_bomb(&w, c)?,
        WorkloadKind::Settimeofday => settimeofday(&w)?,
        WorkloadKind::ProbeInside => probe_inside(&w, c)?,
        WorkloadKind::OrphanMaker => Workload::OrphanMaker {
            linger: w.linger.as_ref().is_some_and(|b| *b.get_ref()),
        },
        WorkloadKind::Escape => escape_workload(&w, c)?,
    };
    require_guard_limits(&w, kind, c)?;
    Ok(workload)
}

fn kind_of(w: &FileWorkload) -> Result<WorkloadKind, Bad> {
    let name = w.name.get_ref();
    WorkloadKind::from_name(name).ok_or_else(|| {
        let all: Vec<&str> = WorkloadKind::ALL.iter().map(|k| k.name()).collect();
        bad(
            &w.name,
            format!(
                "unknown workload {name:?}: expected one of {}",
                all.join(", ")
            ),
        )
    })
}

/// Refuses parameters the workload does not take.
fn refuse_parameters_not_taken(w: &FileWorkload, kind: WorkloadKind) -> Result<(), Bad> {
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
                        "workload {} takes no `{param}` (its parameters: {})",
                        w.name.get_ref(),
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
    Ok(())
}

/// A parameter the workload needs and the file does not give.
fn missing(w: &FileWorkload, param: &str) -> Bad {
    (
        Some(w.name.span()),
        format!("workload {} needs `{param}`", w.name.get_ref()),
    )
}

fn threads(w: &FileWorkload) -> Result<u32, Bad> {
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
}

/// `duration`, in milliseconds.
fn run_time(w: &FileWorkload) -> Result<u64, Bad> {
    let d = w.duration.as_ref().ok_or_else(|| missing(w, "duration"))?;
    duration_in(
        d,
        "duration",
        Duration::from_millis(100),
        Duration::from_secs(600),
    )
}

/// A size in bytes (`bytes`, `step`).
fn size(w: &FileWorkload, v: &Option<Spanned<toml::Value>>, param: &str) -> Result<u64, Bad> {
    let v = v.as_ref().ok_or_else(|| missing(w, param))?;
    Ok(as_text(v)?
        .parse::<MemoryBytes>()
        .map_err(|e| bad(v, e.to_string()))?
        .bytes())
}

fn burst(w: &FileWorkload) -> Result<Workload, Bad> {
    let burst = w.burst.as_ref().ok_or_else(|| missing(w, "burst"))?;
    let interval = w.interval.as_ref().ok_or_else(|| missing(w, "interval"))?;
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
    Ok(Workload::Burst {
        threads: threads(w)?,
        duration_ms: run_time(w)?,
        burst_ms,
        interval_ms,
    })
}

/// A fork bomb: only under a small pids limit, in its own pid namespace.
fn fork_bomb(w: &FileWorkload, c: &ContainerDef) -> Result<Workload, Bad> {
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
    Ok(Workload::ForkBomb {
        duration_ms: run_time(w)?,
    })
}

/// settimeofday: a clock step only with `allow_clock_write`.
fn settimeofday(w: &FileWorkload) -> Result<Workload, Bad> {
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
    Ok(Workload::Settimeofday {
        allow_clock_write,
        step_secs,
    })
}

/// probe-inside: a mount marker only in a mount namespace of its own.
fn probe_inside(w: &FileWorkload, c: &ContainerDef) -> Result<Workload, Bad> {
    let mount_marker = w.mount_marker.as_ref().is_some_and(|b| *b.get_ref());
    if mount_marker && !c.namespaces.contains(Namespace::Mount) {
        return Err(bad(
            w.mount_marker.as_ref().expect("set"),
            "mount_marker needs the mount namespace: it would mount on the host",
        ));
    }
    Ok(Workload::ProbeInside { mount_marker })
}

/// The guard: dangerous workloads need their limits in the file itself.
fn require_guard_limits(w: &FileWorkload, kind: WorkloadKind, c: &ContainerDef) -> Result<(), Bad> {
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
                    "workload {} must not run without a limit: add {key} to its [container]",
                    w.name.get_ref()
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn escape_workload(w: &FileWorkload, c: &ContainerDef) -> Result<Workload, Bad> {
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
