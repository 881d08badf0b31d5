//! `oci-mutant`: a broken OCI runtime for `cargo xtask mutants`. Given to
//! `boxwatch scenarios --runtime-path`, it stands in front of the real runc
//! or crun: on `create` it edits the bundle's config.json as its mutant says
//! (a limit dropped or scaled, a namespace removed, a capability added, a
//! mask removed) and may move the container's first process out of its
//! cgroup once the real runtime has created it; every other command goes
//! straight to the real runtime. Its instructions come from the
//! `BOXWATCH_OCI_MUTANT` environment variable, which only the suite sets.

#[path = "../mutants/edit.rs"]
#[allow(dead_code)]
mod edit;

use edit::{Edit, WrapperConfig};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Global options of runc and crun that take a value.
const VALUE_FLAGS: [&str; 5] = ["--root", "--log", "--log-format", "--criu", "--rootless"];

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("oci-mutant: {e}");
            ExitCode::from(125)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let raw = std::env::var(edit::ENV).map_err(|_| {
        format!(
            "{} is not set: this wrapper is only run by cargo xtask mutants",
            edit::ENV
        )
    })?;
    let cfg: WrapperConfig =
        serde_json::from_str(&raw).map_err(|e| format!("{}: {e}", edit::ENV))?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let sub = subcommand(&args);
    match sub.map(|i| args[i].to_str().unwrap_or("")) {
        Some("create") => create(&cfg, &args, sub.unwrap_or(0)),
        Some("delete") if cfg.edits.contains(&Edit::EscapeCgroup) => {
            let status = real(&cfg, &args)
                .status()
                .map_err(|e| format!("running {}: {e}", cfg.runtime.display()))?;
            if let Some(id) = args.last().and_then(|a| a.to_str()) {
                remove_escape_leaves(id);
            }
            Ok(exit_code(status))
        }
        _ => Err(format!(
            "exec {}: {}",
            cfg.runtime.display(),
            real(&cfg, &args).exec()
        )),
    }
}

fn real(cfg: &WrapperConfig, args: &[OsString]) -> Command {
    let mut c = Command::new(&cfg.runtime);
    c.args(args);
    c
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    ExitCode::from(status.code().unwrap_or(125).clamp(0, 255) as u8)
}

/// The index of the subcommand: the first argument that is neither a
/// global option nor the value of one.
fn subcommand(args: &[OsString]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_str()?;
        if VALUE_FLAGS.contains(&a) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            return Some(i);
        }
    }
    None
}

/// The value of `--name` (or `-short`, or `--name=value`) after `from`.
fn option(args: &[OsString], from: usize, names: &[&str]) -> Option<PathBuf> {
    let mut it = args[from..].iter();
    while let Some(a) = it.next() {
        let a = a.to_str()?;
        if names.contains(&a) {
            return it.next().map(PathBuf::from);
        }
        for n in names {
            if let Some(v) = a.strip_prefix(&format!("{n}=")) {
                return Some(PathBuf::from(v));
            }
        }
    }
    None
}

fn log(cfg: &WrapperConfig, line: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.log)
        .map_err(|e| format!("opening the log {}: {e}", cfg.log.display()))?;
    writeln!(f, "{line}").map_err(|e| format!("writing the log {}: {e}", cfg.log.display()))
}

fn create(cfg: &WrapperConfig, args: &[OsString], sub: usize) -> Result<ExitCode, String> {
    let bundle = option(args, sub, &["--bundle", "-b"]).unwrap_or_else(|| PathBuf::from("."));
    let path = bundle.join("config.json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
    let id = args.last().and_then(|a| a.to_str()).unwrap_or("?");
    for e in &cfg.edits {
        edit::apply(e, &mut config)
            .map_err(|why| format!("mutant {}: {}: {why}", cfg.mutant, e.describe()))?;
        if *e != Edit::EscapeCgroup {
            log(cfg, &format!("{id}\tapplied\t{}", e.describe()))?;
        }
    }
    let out = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
    std::fs::write(&path, out).map_err(|e| format!("writing {}: {e}", path.display()))?;
    if !cfg.edits.contains(&Edit::EscapeCgroup) {
        return Err(format!(
            "exec {}: {}",
            cfg.runtime.display(),
            real(cfg, args).exec()
        ));
    }
    let status = real(cfg, args)
        .status()
        .map_err(|e| format!("running {}: {e}", cfg.runtime.display()))?;
    if !status.success() {
        return Ok(exit_code(status));
    }
    let pid_file = option(args, sub, &["--pid-file"]).ok_or("create without --pid-file")?;
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("reading {}: {e}", pid_file.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("{}: {e}", pid_file.display()))?;
    let top = config["linux"]["cgroupsPath"]
        .as_str()
        .and_then(|p| p.trim_start_matches('/').split('/').next())
        .filter(|t| !t.is_empty())
        .ok_or("linux.cgroupsPath is not set: no cgroup to escape from")?
        .to_string();
    let moved = escape(pid, &top, id)?;
    log(
        cfg,
        &format!(
            "{id}\tapplied\tpid {pid} moved out of its cgroup into {}",
            moved.join(", ")
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The mount points of this mount namespace's cgroup hierarchies: (v1
/// super options or "" for cgroup2, mount point).
fn cgroup_mounts() -> Vec<(String, PathBuf)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut r = right.split_whitespace();
            let fstype = r.next()?;
            let opts = r.nth(1).unwrap_or("");
            let mount_point = left.split_whitespace().nth(4)?;
            match fstype {
                "cgroup" => Some((opts.to_string(), PathBuf::from(mount_point))),
                "cgroup2" => Some((String::new(), PathBuf::from(mount_point))),
                _ => None,
            }
        })
        .collect()
}

/// Moves `pid` into `/<top>` of every hierarchy where it sits below it (a
/// leaf `/<top>/<id>.escaped` where cgroup2 refuses processes in `/<top>`).
fn escape(pid: i32, top: &str, id: &str) -> Result<Vec<String>, String> {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| format!("reading /proc/{pid}/cgroup: {e}"))?;
    let mounts = cgroup_mounts();
    let mut moved = Vec::new();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = match (f.next(), f.next(), f.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        if !path.starts_with(&format!("/{top}/")) {
            continue;
        }
        let mount = mounts.iter().find(|(opts, _)| {
            if ctrls.is_empty() {
                opts.is_empty()
            } else {
                ctrls.split(',').all(|c| opts.split(',').any(|o| o == c))
            }
        });
        let Some((_, mount)) = mount else { continue };
        let target = mount.join(top);
        match std::fs::write(target.join("cgroup.procs"), pid.to_string()) {
            Ok(()) => moved.push(target.display().to_string()),
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EBUSY as i32) => {
                let leaf = target.join(format!("{id}.escaped"));
                std::fs::create_dir_all(&leaf)
                    .map_err(|e| format!("creating {}: {e}", leaf.display()))?;
                std::fs::write(leaf.join("cgroup.procs"), pid.to_string())
                    .map_err(|e| format!("moving {pid} into {}: {e}", leaf.display()))?;
                moved.push(leaf.display().to_string());
            }
            Err(e) => return Err(format!("moving {pid} into {}: {e}", target.display())),
        }
    }
    if moved.is_empty() {
        return Err(format!(
            "pid {pid} is in no cgroup below /{top} that could be left: {own}"
        ));
    }
    Ok(moved)
}

/// Removes the leaves [`escape`] made for container `id`.
fn remove_escape_leaves(id: &str) {
    for (opts, mount) in cgroup_mounts() {
        if !opts.is_empty() {
            continue;
        }
        if let Ok(dirs) = std::fs::read_dir(&mount) {
            for d in dirs.flatten() {
                let leaf = d.path().join(format!("{id}.escaped"));
                if Path::new(&leaf).is_dir() {
                    let _ = std::fs::remove_dir(&leaf);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn the_subcommand_and_its_options_are_found_past_the_global_ones() {
        // What the OCI backend runs.
        let a = args("--root /run/r --log /b/runtime.log --log-format json create --bundle /b --pid-file /b/pid bw-1-c");
        let sub = subcommand(&a).unwrap();
        assert_eq!(a[sub], "create");
        assert_eq!(option(&a, sub, &["--bundle", "-b"]), Some("/b".into()));
        assert_eq!(option(&a, sub, &["--pid-file"]), Some("/b/pid".into()));
        let a = args("--root /run/r delete -f bw-1-c");
        assert_eq!(a[subcommand(&a).unwrap()], "delete");
        let a = args("--version");
        assert_eq!(subcommand(&a), None);
        let a = args("create --bundle=/x id");
        assert_eq!(option(&a, 0, &["--bundle", "-b"]), Some("/x".into()));
    }
}
