//! Seccomp: the mode, and which of the dangerous system calls are blocked.
//! Each call gets arguments that make it fail harmlessly after the check
//! (listed with the reason in [`runtime::raw::ProbeCall`]); `EPERM` is a
//! block (by the seccomp profile's errno, or by a missing capability
//! checked first), `ENOSYS` a block by a profile that answers so, or a
//! kernel built without the call (a kernel without module support answers
//! init_module so): either way the call cannot act, and the result names
//! each ENOSYS. Anything else means the call reached its own argument
//! checks.

use runtime::raw::{probe_syscall, ProbeCall};
use serde_json::{Map, Value};

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Blocked,
    BlockedEnosys,
    Allowed,
}

pub fn classify(errno: Option<nix::errno::Errno>) -> Outcome {
    match errno {
        Some(nix::errno::Errno::EPERM) => Outcome::Blocked,
        Some(nix::errno::Errno::ENOSYS) => Outcome::BlockedEnosys,
        _ => Outcome::Allowed,
    }
}

pub fn probe(r: &mut Map<String, Value>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(m) = probes::inside::parse_status(&status).seccomp_mode {
        r.insert("seccomp_mode".into(), Value::from(m));
    }
    let mut allowed = Vec::new();
    let mut blocked = Vec::new();
    for call in ProbeCall::ALL {
        let errno = probe_syscall(call);
        let what = errno
            .map(|e| format!("{e:?}"))
            .unwrap_or_else(|| "success".into());
        match classify(errno) {
            Outcome::Blocked => blocked.push(call.name().to_string()),
            Outcome::BlockedEnosys => blocked.push(format!("{} (ENOSYS)", call.name())),
            Outcome::Allowed => allowed.push(format!("{} ({what})", call.name())),
        }
    }
    r.insert("allowed_syscalls".into(), super::list(&allowed));
    r.insert("blocked_syscalls".into(), super::list(&blocked));
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;

    #[test]
    fn eperm_and_enosys_are_blocks_the_rest_reached_the_call() {
        assert_eq!(classify(Some(Errno::EPERM)), Outcome::Blocked);
        assert_eq!(classify(Some(Errno::ENOSYS)), Outcome::BlockedEnosys);
        for e in [Errno::EINVAL, Errno::EFAULT, Errno::EBADF, Errno::ENOEXEC] {
            assert_eq!(classify(Some(e)), Outcome::Allowed);
        }
        assert_eq!(classify(None), Outcome::Allowed);
    }
}
