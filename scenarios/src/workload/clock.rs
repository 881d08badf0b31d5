//! settimeofday from inside a container. By default it must never move the
//! host clock: it writes back the time it has just read, and when the
//! container holds CAP_SYS_TIME (so the call could succeed) it does not call
//! at all unless explicitly allowed.
//!
//! With a step (`--step-secs`, only inside a VM boxwatch booted) it shows
//! the documented leak for real: it moves CLOCK_REALTIME forward by the
//! step, asks the harness to look at its own clock, then steps it back.

use super::Emitter;
use crate::error::{Error, Result};
use probes::inside::{parse_status, CAP_SYS_TIME};
use serde_json::json;
use std::time::Duration;

/// How long the workload holds a stepped clock waiting for the harness.
const HOLD_MAX: Duration = Duration::from_secs(5);

pub fn settimeofday(out: &Emitter, allow_clock_write: bool, step_secs: u64) -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let has_cap = parse_status(&status)
        .capabilities
        .is_some_and(|c| c.effective_has(CAP_SYS_TIME));
    may_step(step_secs, allow_clock_write, runtime::booted_by_boxwatch())?;
    // A call of a few microseconds: the harness looks at the container
    // (where its process is) while it waits here.
    out.emit_and_wait("start", json!({}), HOLD_MAX);
    if has_cap && !allow_clock_write {
        out.emit(
            "result",
            json!({
                "called": false,
                "has_cap_sys_time": true,
                "reason": "CAP_SYS_TIME is effective: the call would change the clock, and --allow-clock-write was not given",
            }),
        );
        return Ok(());
    }
    let step = step_secs as i64;
    let result = set_realtime_plus(step);
    let errno = result.err().map(|e| e as i32).unwrap_or(0);
    let mut fields = json!({
        "called": true,
        "has_cap_sys_time": has_cap,
        "succeeded": result.is_ok(),
        "errno": errno,
        "eperm": errno == libc::EPERM,
        "error": result.err().map(|e| e.desc()),
    });
    if step != 0 && result.is_ok() {
        // The clock is an hour off now: let the harness see it, then undo.
        out.emit_and_wait("stepped", json!({ "stepped_secs": step }), HOLD_MAX);
        let restored = set_realtime_plus(-step).is_ok();
        fields["stepped_secs"] = json!(step);
        fields["restored"] = json!(restored);
    }
    out.emit("result", fields);
    Ok(())
}

/// A step of the clock needs both the explicit permission and a kernel that
/// boxwatch booted as a throwaway VM; a step of 0 (write-back) needs neither.
fn may_step(step_secs: u64, allow_clock_write: bool, in_boxwatch_vm: bool) -> Result<()> {
    if step_secs == 0 || (allow_clock_write && in_boxwatch_vm) {
        return Ok(());
    }
    Err(Error::Workload {
        workload: "settimeofday",
        message: format!(
            "refusing to step the clock by {step_secs} s: that needs --allow-clock-write and a \
             kernel booted by boxwatch ({} on its command line; cargo xtask vm)",
            runtime::VM_MARKER
        ),
    })
}

/// Sets CLOCK_REALTIME to the time just read plus `step_secs` (0: writes
/// back the reading, moving the clock by the microseconds in between).
fn set_realtime_plus(step_secs: i64) -> std::result::Result<(), nix::errno::Errno> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)?;
    crate::sys::settimeofday(now.tv_sec() + step_secs, now.tv_nsec() / 1000)
}

#[cfg(test)]
mod tests {
    use super::may_step;

    #[test]
    fn a_clock_step_needs_the_permission_and_a_boxwatch_vm() {
        assert!(
            may_step(0, false, false).is_ok(),
            "a write-back needs neither"
        );
        assert!(may_step(3600, true, true).is_ok());
        for (allow, vm) in [(false, false), (true, false), (false, true)] {
            let err = may_step(3600, allow, vm).unwrap_err().to_string();
            assert!(
                err.contains("--allow-clock-write") && err.contains("boxwatch.vm=1"),
                "{err}"
            );
        }
    }
}
