//! settimeofday from inside a container. It must never move the host clock:
//! it writes back the time it has just read, and when the container holds
//! CAP_SYS_TIME (so the call could succeed) it does not call at all unless
//! explicitly allowed (only inside a throwaway VM).

use super::Emitter;
use crate::error::Result;
use probes::inside::{parse_status, CAP_SYS_TIME};
use serde_json::json;

pub fn settimeofday(out: &Emitter, allow_clock_write: bool) -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let has_cap = parse_status(&status)
        .capabilities
        .is_some_and(|c| c.effective_has(CAP_SYS_TIME));
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
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).map_err(|source| {
        crate::error::Error::Sys {
            step: "clock_gettime(CLOCK_REALTIME)",
            source,
        }
    })?;
    let result = crate::sys::settimeofday(now.tv_sec(), now.tv_nsec() / 1000);
    let errno = result.err().map(|e| e as i32).unwrap_or(0);
    out.emit(
        "result",
        json!({
            "called": true,
            "has_cap_sys_time": has_cap,
            "succeeded": result.is_ok(),
            "errno": errno,
            "eperm": errno == libc::EPERM,
            "error": result.err().map(|e| e.desc()),
        }),
    );
    Ok(())
}
