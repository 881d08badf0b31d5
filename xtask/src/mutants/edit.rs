//! The edits an OCI mutant makes to a bundle's `config.json` before the
//! real runtime sees it, and the cgroup escape it makes after `create`.
//! Shared by `cargo xtask mutants` (which describes them) and the
//! `oci-mutant` wrapper (which applies them).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The environment variable that hands the wrapper its [`WrapperConfig`].
pub const ENV: &str = "BOXWATCH_OCI_MUTANT";

/// The environment entry that marks a guarded workload (a memory hog, a
/// fork bomb) in `process.env`: its memory and pids limits may be raised,
/// never removed.
pub const GUARD_ENV: &str = "BOXWATCH_GUARDED";

/// What the wrapper in front of runc or crun is told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrapperConfig {
    /// The mutant's name, for the log.
    pub mutant: String,
    /// The real runtime's binary.
    pub runtime: std::path::PathBuf,
    pub edits: Vec<Edit>,
    /// Where each applied edit is logged, one line each (the suite checks
    /// that the mutation really happened).
    pub log: std::path::PathBuf,
}

/// One change to a bundle. Paths are JSON pointers into config.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Edit {
    /// Remove the field (it must be there).
    Remove(String),
    /// Multiply the number at the path (it must be there) by `by`.
    Scale { path: String, by: f64 },
    /// Set the path to `value` (its parent must be there).
    Set { path: String, value: Value },
    /// Remove the namespace from `linux.namespaces` (uts: and `hostname`,
    /// which a runtime would otherwise refuse, or write on the host).
    RemoveNamespace(String),
    /// Add the capability (`CAP_SYS_TIME`) to the bounding, effective and
    /// permitted sets.
    AddCapability(String),
    /// After `create`, move the container's first process out of its
    /// cgroup, into the top of boxwatch's own subtree (`/boxwatch`; on a
    /// cgroup2 hierarchy with controllers enabled there, a leaf
    /// `/boxwatch/<id>.escaped` that `delete` removes).
    EscapeCgroup,
}

impl Edit {
    /// The edit in a few words, for tables.
    pub fn describe(&self) -> String {
        match self {
            Edit::Remove(p) => format!("remove {p}"),
            Edit::Scale { path, by } => format!("{path} ×{by}"),
            Edit::Set { path, value } => format!("{path} = {value}"),
            Edit::RemoveNamespace(ns) => format!("no {ns} namespace"),
            Edit::AddCapability(c) => format!("add {c}"),
            Edit::EscapeCgroup => "first process moved out of its cgroup after create".into(),
        }
    }
}

fn parent_and_key(path: &str) -> Result<(&str, &str), String> {
    path.rsplit_once('/')
        .filter(|(_, k)| !k.is_empty())
        .ok_or_else(|| format!("{path:?} is not a JSON pointer (/linux/resources/...)"))
}

fn guarded(config: &Value) -> bool {
    config["process"]["env"].as_array().is_some_and(|env| {
        env.iter().any(|e| {
            e.as_str()
                .is_some_and(|e| e.starts_with(&format!("{GUARD_ENV}=")))
        })
    })
}

/// Applies `edit` to `config`; an edit whose target is missing, or one
/// that would lift the bound of a guarded workload, is an error.
pub fn apply(edit: &Edit, config: &mut Value) -> Result<(), String> {
    let bound = |path: &str| {
        path.starts_with("/linux/resources/memory") || path.starts_with("/linux/resources/pids")
    };
    match edit {
        Edit::Remove(path) => {
            if bound(path) && guarded(config) {
                return Err(format!(
                    "refusing to remove {path} from a guarded workload (a memory hog or fork bomb keeps a bound: scale it instead)"
                ));
            }
            let (parent, key) = parent_and_key(path)?;
            let removed = match config.pointer_mut(parent) {
                Some(Value::Object(o)) => o.remove(key).is_some(),
                Some(Value::Array(a)) => match key.parse::<usize>() {
                    Ok(i) if i < a.len() => {
                        a.remove(i);
                        true
                    }
                    _ => false,
                },
                _ => false,
            };
            if !removed {
                return Err(format!("{path} is not in config.json"));
            }
        }
        Edit::Scale { path, by } => {
            if bound(path) && guarded(config) && !(1.0..=4.0).contains(by) {
                return Err(format!(
                    "refusing to scale {path} by {by} for a guarded workload (1 to 4 only)"
                ));
            }
            let v = config
                .pointer_mut(path)
                .ok_or_else(|| format!("{path} is not in config.json"))?;
            *v = match v {
                Value::Number(n) if n.is_u64() || n.is_i64() => {
                    let x = n.as_f64().unwrap_or(0.0) * by;
                    Value::from(x.round() as i64)
                }
                Value::Number(n) => Value::from(n.as_f64().unwrap_or(0.0) * by),
                other => return Err(format!("{path} is {other}, not a number")),
            };
        }
        Edit::Set { path, value } => {
            let (parent, key) = parent_and_key(path)?;
            match config.pointer_mut(parent) {
                Some(Value::Object(o)) => {
                    o.insert(key.to_string(), value.clone());
                }
                _ => return Err(format!("{parent} is not an object in config.json")),
            }
        }
        Edit::RemoveNamespace(ns) => {
            let list = config
                .pointer_mut("/linux/namespaces")
                .and_then(Value::as_array_mut)
                .ok_or("linux.namespaces is not in config.json")?;
            let before = list.len();
            list.retain(|n| n["type"].as_str() != Some(ns.as_str()));
            if list.len() == before {
                return Err(format!("the {ns} namespace is not in linux.namespaces"));
            }
            if ns == "uts" {
                if let Some(o) = config.as_object_mut() {
                    o.remove("hostname");
                }
            }
        }
        Edit::AddCapability(cap) => {
            let caps = config
                .pointer_mut("/process/capabilities")
                .and_then(Value::as_object_mut)
                .ok_or("process.capabilities is not in config.json")?;
            for set in ["bounding", "effective", "permitted"] {
                let list = caps
                    .entry(set)
                    .or_insert_with(|| Value::Array(Vec::new()))
                    .as_array_mut()
                    .ok_or_else(|| format!("process.capabilities.{set} is not a list"))?;
                if !list.iter().any(|c| c.as_str() == Some(cap.as_str())) {
                    list.push(Value::from(cap.as_str()));
                }
            }
        }
        Edit::EscapeCgroup => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Value {
        json!({
            "hostname": "c1",
            "process": {"env": ["PATH=/bin"], "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}},
            "linux": {
                "resources": {"cpu": {"quota": 20000, "period": 100000}, "memory": {"limit": 67108864}, "pids": {"limit": 64}},
                "namespaces": [{"type": "pid"}, {"type": "uts"}, {"type": "net"}],
                "maskedPaths": ["/proc/kcore"]
            }
        })
    }

    #[test]
    fn each_edit_changes_what_it_says() {
        let mut c = config();
        apply(&Edit::Remove("/linux/resources/cpu/quota".into()), &mut c).unwrap();
        assert!(c["linux"]["resources"]["cpu"].get("quota").is_none());
        apply(
            &Edit::Scale {
                path: "/linux/resources/memory/limit".into(),
                by: 2.0,
            },
            &mut c,
        )
        .unwrap();
        assert_eq!(c["linux"]["resources"]["memory"]["limit"], 134217728);
        apply(&Edit::RemoveNamespace("uts".into()), &mut c).unwrap();
        assert_eq!(
            c["linux"]["namespaces"],
            json!([{"type": "pid"}, {"type": "net"}])
        );
        assert!(c.get("hostname").is_none());
        apply(&Edit::AddCapability("CAP_SYS_TIME".into()), &mut c).unwrap();
        assert_eq!(
            c["process"]["capabilities"]["effective"],
            json!(["CAP_KILL", "CAP_SYS_TIME"])
        );
        apply(
            &Edit::Set {
                path: "/linux/maskedPaths".into(),
                value: json!([]),
            },
            &mut c,
        )
        .unwrap();
        assert_eq!(c["linux"]["maskedPaths"], json!([]));
    }

    #[test]
    fn a_missing_target_is_an_error_not_a_silent_no_op() {
        let mut c = config();
        assert!(apply(&Edit::Remove("/linux/resources/blkio".into()), &mut c).is_err());
        assert!(apply(&Edit::RemoveNamespace("time".into()), &mut c).is_err());
        let scale = Edit::Scale {
            path: "/linux/resources/nope".into(),
            by: 2.0,
        };
        assert!(apply(&scale, &mut c).is_err());
    }

    #[test]
    fn a_guarded_workload_keeps_its_bounds() {
        let mut c = config();
        c["process"]["env"] = json!(["BOXWATCH_GUARDED=hog"]);
        let e = apply(
            &Edit::Remove("/linux/resources/memory/limit".into()),
            &mut c,
        )
        .unwrap_err();
        assert!(e.contains("guarded"), "{e}");
        let big = Edit::Scale {
            path: "/linux/resources/pids/limit".into(),
            by: 100.0,
        };
        assert!(apply(&big, &mut c).is_err());
        // A CPU quota may go: a spin loop ends by itself.
        apply(&Edit::Remove("/linux/resources/cpu/quota".into()), &mut c).unwrap();
    }
}
