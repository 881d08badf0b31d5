//! The `[workload]` table: which workload, with only the parameters it
//! takes, in range; dangerous workloads need their limits in the file.

use super::file::{as_text, bad, duration_in, Bad, FileWorkload};
use super::{ContainerDef, MAX_FORK_BOMB_PIDS};
use crate::workload::{Workload, WorkloadKind};
use runtime::{MemoryBytes, Namespace};
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

pub(super) fn workload(w: FileWorkload, c: &ContainerDef) -> Result<Workload, Bad> {
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
