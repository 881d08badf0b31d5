//! `boxwatch inspect docker:NAME`, `podman:NAME` or a bare name or id:
//! the engine is asked only where the container is (`docker inspect`,
//! `podman inspect`: its host PID, its cgroup, its OCI runtime); the judge
//! then reads the kernel itself, as for `--pid`.
//!
//! A container whose runtime is gVisor (runsc) is sandboxed: the host sees
//! gVisor's sandbox, not the workload, so its inside view is collected
//! through the engine (`<engine> exec <id> cat <file>`, which runs in the
//! sandbox, on gVisor's kernel) instead of by entering namespaces that are
//! not the workload's.

use crate::error::{Error, Result};
use crate::inside::{self, InsideView};
use serde::Serialize;
use serde_json::Value;
use std::process::{Command, Stdio};

/// The engines `boxwatch inspect` asks, in the order a bare name tries them.
pub const ENGINES: [&str; 2] = ["docker", "podman"];

/// A container as its engine describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineContainer {
    /// `docker` or `podman`.
    pub engine: String,
    /// The full container id.
    pub id: String,
    /// Its name, without docker's leading `/`.
    pub name: String,
    /// The host PID of its first process, as the engine reports it (for
    /// gVisor, the sandbox's).
    pub pid: i32,
    /// `running`, `exited`, `created`...
    pub status: String,
    /// The OCI runtime the engine started it with (`runc`, `crun`, `runsc`,
    /// a path).
    pub runtime: String,
    /// The cgroup the engine says it made (podman's `State.CgroupPath`;
    /// docker's inspect has none). The judge reads the PID's own.
    pub cgroup: Option<String>,
    /// True when the runtime is gVisor's runsc.
    pub sandboxed: bool,
}

/// Which engine a target names: `docker:NAME`, `podman:NAME`, or a bare
/// name or id (None: try both).
pub fn split_target(target: &str) -> (Option<&'static str>, &str) {
    for engine in ENGINES {
        if let Some(name) = target
            .strip_prefix(engine)
            .and_then(|r| r.strip_prefix(':'))
        {
            return (Some(engine), name);
        }
    }
    (None, target)
}

/// True for gVisor's runtime, however the engine names it (`runsc`,
/// `/usr/bin/runsc`, `io.containerd.runsc.v1`).
pub fn is_gvisor(runtime: &str) -> bool {
    let base = runtime.rsplit('/').next().unwrap_or(runtime);
    base == "runsc" || base.contains(".runsc.") || base.contains("gvisor")
}

/// Reads the first container of `<engine> inspect`'s JSON array.
pub fn parse_inspect(engine: &str, command: &str, json: &str) -> Result<EngineContainer> {
    let bad = |why: String| Error::EngineOutput {
        command: command.to_string(),
        why,
    };
    let all: Value = serde_json::from_str(json).map_err(|e| bad(format!("not JSON: {e}")))?;
    let c = all
        .as_array()
        .and_then(|a| a.first())
        .ok_or_else(|| bad("not a JSON array of containers".into()))?;
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| bad(format!("no {what}")))
    };
    let id = text(&c["Id"], "Id")?;
    let name = text(&c["Name"], "Name")?
        .trim_start_matches('/')
        .to_string();
    let state = &c["State"];
    let pid = state["Pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| bad("no State.Pid".into()))?;
    let status = text(&state["Status"], "State.Status")?;
    // podman: OCIRuntime; docker: HostConfig.Runtime.
    let runtime = c["OCIRuntime"]
        .as_str()
        .or_else(|| c["HostConfig"]["Runtime"].as_str())
        .unwrap_or("")
        .to_string();
    let cgroup = state["CgroupPath"]
        .as_str()
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    Ok(EngineContainer {
        engine: engine.to_string(),
        id,
        name,
        pid,
        status,
        sandboxed: is_gvisor(&runtime),
        runtime,
        cgroup,
    })
}

/// What asking one engine gave.
enum Asked {
    Found(EngineContainer),
    /// The engine answered: no such container.
    NotThere,
    /// The engine could not be asked (not installed, daemon unreachable).
    Unavailable(Error),
}

fn ask(engine: &str, name: &str) -> Asked {
    let command = format!("{engine} inspect --type container {name}");
    let out = match Command::new(engine)
        .args(["inspect", "--type", "container", name])
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) => o,
        Err(source) => return Asked::Unavailable(Error::EngineSpawn { command, source }),
    };
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if said.to_ascii_lowercase().contains("no such") {
            return Asked::NotThere;
        }
        return Asked::Unavailable(Error::EngineFailed { command, said });
    }
    match parse_inspect(engine, &command, &String::from_utf8_lossy(&out.stdout)) {
        Ok(c) => Asked::Found(c),
        Err(e) => Asked::Unavailable(e),
    }
}

/// Finds the container `target` names (`docker:NAME`, `podman:NAME`, or a
/// bare name or id asked of docker, then podman), running.
pub fn resolve(target: &str) -> Result<EngineContainer> {
    let (only, name) = split_target(target);
    if name.is_empty() {
        return Err(Error::ContainerNotFound {
            name: target.to_string(),
            tried: "no name after the engine's prefix (docker:NAME, podman:NAME)".into(),
        });
    }
    let engines: Vec<&str> = match only {
        Some(e) => vec![e],
        None => ENGINES.to_vec(),
    };
    let mut found = Vec::new();
    let mut tried = Vec::new();
    let mut unavailable = Vec::new();
    for engine in engines {
        match ask(engine, name) {
            Asked::Found(c) => found.push(c),
            Asked::NotThere => tried.push(format!("{engine} has no such container")),
            Asked::Unavailable(e) => {
                tried.push(format!(
                    "{engine} could not be asked ({})",
                    crate::error::chain(&e)
                ));
                unavailable.push(e);
            }
        }
    }
    let c = match found.len() {
        0 => {
            // One engine named and it could not be asked: its own error.
            if only.is_some() && unavailable.len() == 1 {
                return Err(unavailable.remove(0));
            }
            return Err(Error::ContainerNotFound {
                name: name.to_string(),
                tried: tried.join("; "),
            });
        }
        1 => found.remove(0),
        _ => {
            return Err(Error::AmbiguousContainer {
                name: name.to_string(),
                docker: short(&found[0].id),
                podman: short(&found[1].id),
            })
        }
    };
    if c.status != "running" || c.pid <= 0 {
        return Err(Error::ContainerNotRunning {
            engine: c.engine,
            name: c.name,
            status: c.status,
        });
    }
    Ok(c)
}

/// A container id as the engines print it (12 characters).
pub fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// The files read through `<engine> exec <id> cat`, for a sandboxed
/// container: the workload's PID 1 and the kernel it runs on.
pub const THROUGH_ENGINE: [&str; 9] = [
    "/proc/meminfo",
    "/proc/cpuinfo",
    "/proc/stat",
    "/proc/uptime",
    "/proc/sys/kernel/hostname",
    "/sys/devices/system/cpu/online",
    "/proc/1/status",
    "/proc/1/mountinfo",
    "/proc/1/net/dev",
];

/// The inside view of a sandboxed container, read by `cat` run in it
/// through its engine (so through its runtime: `runsc exec` for gVisor).
/// Each file is read on its own; one that cannot be read is a problem of
/// the view. Err when none could be read (an image without `cat`).
pub fn inside_through_engine(c: &EngineContainer) -> std::result::Result<InsideView, String> {
    let mut texts = Vec::new();
    let mut problems = Vec::new();
    for file in THROUGH_ENGINE {
        match exec_cat(c, file) {
            Ok(t) => texts.push((file, t)),
            Err(e) => problems.push(format!("{file}: {e}")),
        }
    }
    if texts.is_empty() {
        return Err(format!(
            "nothing could be read through `{} exec {} cat` (the image needs a `cat`): {}",
            c.engine,
            short(&c.id),
            problems.join("; ")
        ));
    }
    Ok(view_from_files(&texts, problems))
}

fn exec_cat(c: &EngineContainer, file: &str) -> std::result::Result<String, String> {
    let out = Command::new(&c.engine)
        .args(["exec", &c.id, "cat", file])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", c.engine))?;
    if !out.status.success() {
        return Err(format!(
            "`{} exec` failed ({}): {}",
            c.engine,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The inside view from the files of [`THROUGH_ENGINE`] (path, text).
/// What the files cannot tell (the PIDs visible, the namespaces: gVisor's
/// own) stays unread.
pub fn view_from_files(texts: &[(&str, String)], mut problems: Vec<String>) -> InsideView {
    let mut v = InsideView {
        pid: 1,
        ..InsideView::default()
    };
    for (file, text) in texts {
        match *file {
            "/proc/meminfo" => {
                v.mem_total_bytes = inside::meminfo_bytes(text, "MemTotal");
                v.mem_available_bytes = inside::meminfo_bytes(text, "MemAvailable");
            }
            "/proc/cpuinfo" => v.cpuinfo_processors = Some(inside::cpuinfo_processors(text)),
            "/proc/stat" => v.proc_stat_cpus = Some(inside::proc_stat_cpus(text)),
            "/proc/uptime" => v.uptime_secs = inside::parse_uptime(text),
            "/proc/sys/kernel/hostname" => v.hostname = text.trim().to_string(),
            "/sys/devices/system/cpu/online" => {
                match crate::host::parse::parse_cpu_list(text.trim()) {
                    Ok(cpus) => v.nproc_online = Some(cpus.len() as u64),
                    Err(e) => problems.push(format!("{file}: {e}")),
                }
            }
            "/proc/1/status" => {
                let s = inside::parse_status(text);
                v.capabilities = s.capabilities;
                v.seccomp_mode = s.seccomp_mode;
                v.no_new_privs = s.no_new_privs;
            }
            "/proc/1/mountinfo" => v.mounts = inside::parse_mountinfo(text),
            "/proc/1/net/dev" => v.interfaces = inside::parse_net_dev(text),
            _ => {}
        }
    }
    for (list, empty) in [
        ("pids", true),
        ("mounts", v.mounts.is_empty()),
        ("interfaces", v.interfaces.is_empty()),
    ] {
        if empty {
            v.unread.insert(list.into());
        }
    }
    v.problems = problems;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/inspect/fixtures")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn targets_name_their_engine_or_none() {
        assert_eq!(split_target("docker:web"), (Some("docker"), "web"));
        assert_eq!(split_target("podman:9f2c"), (Some("podman"), "9f2c"));
        assert_eq!(split_target("web"), (None, "web"));
        assert_eq!(split_target("dockerweb"), (None, "dockerweb"));
        assert_eq!(split_target("docker:"), (Some("docker"), ""));
    }

    #[test]
    fn gvisor_is_known_by_any_of_its_names() {
        for r in ["runsc", "/usr/bin/runsc", "io.containerd.runsc.v1"] {
            assert!(is_gvisor(r), "{r}");
        }
        for r in ["runc", "/usr/bin/crun", "io.containerd.runc.v2", ""] {
            assert!(!is_gvisor(r), "{r}");
        }
    }

    /// Recorded on this project's test host: docker 20.10 and podman 4.3,
    /// each with runc and with runsc.
    #[test]
    fn recorded_inspect_outputs_are_read() {
        let d = parse_inspect("docker", "docker inspect", &fixture("docker-runc.json")).unwrap();
        assert_eq!(d.name, "bw1");
        assert_eq!(d.id.len(), 64);
        assert_eq!((d.pid, d.status.as_str()), (25172, "running"));
        assert_eq!(d.runtime, "runc");
        assert_eq!(d.cgroup, None);
        assert!(!d.sandboxed);
        let d = parse_inspect("docker", "docker inspect", &fixture("docker-runsc.json")).unwrap();
        assert_eq!((d.runtime.as_str(), d.sandboxed), ("runsc", true));
        let p = parse_inspect("podman", "podman inspect", &fixture("podman-runc.json")).unwrap();
        assert_eq!(p.name, "bwp1");
        assert_eq!(p.runtime, "runc");
        assert_eq!(
            p.cgroup.as_deref(),
            Some(format!("/libpod_parent/libpod-{}", p.id).as_str())
        );
        assert!(!p.sandboxed);
        let p = parse_inspect("podman", "podman inspect", &fixture("podman-runsc.json")).unwrap();
        assert_eq!((p.runtime.as_str(), p.sandboxed), ("/usr/bin/runsc", true));
        assert_eq!(p.pid, 21427);
    }

    #[test]
    fn malformed_inspect_outputs_are_named() {
        for (json, why) in [
            ("[]", "not a JSON array of containers"),
            ("{", "not JSON"),
            (
                r#"[{"Id": "x", "Name": "/n", "State": {}}]"#,
                "no State.Pid",
            ),
        ] {
            let e = parse_inspect("docker", "docker inspect n", json).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("docker inspect n") && text.contains(why),
                "{text}"
            );
        }
    }

    #[test]
    fn a_view_is_made_of_the_files_read_through_the_engine() {
        let texts = [
            (
                "/proc/meminfo",
                "MemTotal:  65536 kB\nMemFree: 1 kB\n".to_string(),
            ),
            ("/sys/devices/system/cpu/online", "0-1\n".to_string()),
            ("/proc/sys/kernel/hostname", "982a4fdaac11\n".to_string()),
            (
                "/proc/1/status",
                "Seccomp:\t0\nCapEff:\t00000000800405fb\n".to_string(),
            ),
        ];
        let v = view_from_files(&texts, vec!["/proc/stat: gone".into()]);
        assert_eq!(v.mem_total_bytes, Some(64 << 20));
        assert_eq!(v.nproc_online, Some(2));
        assert_eq!(v.hostname, "982a4fdaac11");
        assert_eq!(v.seccomp_mode, Some(0));
        assert_eq!(v.proc_stat_cpus, None);
        assert!(v.unread.contains("pids") && v.unread.contains("mounts"));
        assert_eq!(v.problems, ["/proc/stat: gone"]);
    }
}
