//! Capabilities: the effective, permitted, bounding and ambient sets
//! against the documented default (Docker's set, which boxwatch gives the
//! builtin runtime and writes into every OCI bundle), the dangerous ones,
//! and no_new_privs. Read from /proc/self/status (no_new_privs from prctl
//! where the status file does not show it, as under gVisor). A set with
//! fewer capabilities than the default is stricter, not a leak: the judged
//! figures are what lies beyond the default; the full difference is
//! reported beside them.

use super::list;
use probes::inside::parse_status;
use serde_json::{Map, Value};

/// Capabilities that turn a container into a way onto the host, by number.
pub const DANGEROUS: [(u32, &str); 7] = [
    (21, "CAP_SYS_ADMIN"),
    (16, "CAP_SYS_MODULE"),
    (2, "CAP_DAC_READ_SEARCH"),
    (19, "CAP_SYS_PTRACE"),
    (17, "CAP_SYS_RAWIO"),
    (25, "CAP_SYS_TIME"),
    (12, "CAP_NET_ADMIN"),
];

/// Docker's default set as a mask (the judge's own copy).
fn default_mask() -> u64 {
    runtime::spec::DEFAULT_CAPABILITIES
        .iter()
        .fold(0u64, |m, c| m | (1u64 << c.index()))
}

fn name(bit: u32) -> String {
    caps::all()
        .into_iter()
        .find(|c| u32::from(c.index()) == bit)
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("cap {bit}"))
}

/// `default`, or what differs: `+CAP_SYS_ADMIN -CAP_KILL`.
pub fn against(set: u64, default: u64) -> String {
    let mut d = Vec::new();
    for bit in 0..64u32 {
        let (has, want) = (set >> bit & 1 == 1, default >> bit & 1 == 1);
        if has && !want {
            d.push(format!("+{}", name(bit)));
        } else if want && !has {
            d.push(format!("-{}", name(bit)));
        }
    }
    if d.is_empty() {
        "default".into()
    } else {
        d.join(" ")
    }
}

/// `none`, or the capabilities of `set` beyond `default`: `+CAP_SYS_ADMIN`.
pub fn beyond(set: u64, default: u64) -> String {
    let extra: Vec<String> = (0..64u32)
        .filter(|bit| set >> bit & 1 == 1 && default >> bit & 1 == 0)
        .map(|bit| format!("+{}", name(bit)))
        .collect();
    if extra.is_empty() {
        "none".into()
    } else {
        extra.join(" ")
    }
}

pub fn probe(r: &mut Map<String, Value>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let s = parse_status(&status);
    let Some(c) = s.capabilities else {
        r.insert(
            "capabilities_error".into(),
            Value::from("/proc/self/status shows no capability sets"),
        );
        return;
    };
    let any = c.effective | c.permitted | c.bounding | c.ambient;
    let dangerous: Vec<String> = DANGEROUS
        .iter()
        .filter(|(bit, _)| any >> bit & 1 == 1)
        .map(|(_, n)| n.to_string())
        .collect();
    let def = default_mask();
    r.insert("dangerous_caps".into(), list(&dangerous));
    r.insert(
        "effective_vs_default".into(),
        Value::from(against(c.effective, def)),
    );
    r.insert(
        "permitted_vs_default".into(),
        Value::from(against(c.permitted, def)),
    );
    r.insert(
        "bounding_vs_default".into(),
        Value::from(against(c.bounding, def)),
    );
    for (key, set) in [
        ("effective_beyond_default", c.effective),
        ("permitted_beyond_default", c.permitted),
        ("bounding_beyond_default", c.bounding),
    ] {
        r.insert(key.into(), Value::from(beyond(set, def)));
    }
    r.insert(
        "ambient".into(),
        Value::from(if c.ambient == 0 {
            "empty".to_string()
        } else {
            against(c.ambient, 0)
        }),
    );
    let no_new_privs = s
        .no_new_privs
        .or_else(|| nix::sys::prctl::get_no_new_privs().ok());
    if let Some(n) = no_new_privs {
        r.insert("no_new_privs".into(), Value::from(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_from_the_default_are_named() {
        let def = default_mask();
        assert_eq!(against(def, def), "default");
        assert_eq!(against(def | 1 << 21, def), "+CAP_SYS_ADMIN");
        let kill = 1u64 << 5;
        assert_eq!(against(def & !kill, def), "-CAP_KILL");
        assert_eq!(def.count_ones(), 14);
        assert_eq!(beyond(def & !kill, def), "none");
        assert_eq!(beyond(def | 1 << 21, def), "+CAP_SYS_ADMIN");
    }
}
