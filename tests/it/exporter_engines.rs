//! `boxwatch exporter` next to a real Podman: the container's rows carry
//! `engine="podman"`, its id and the name Podman keeps on disk; conmon is
//! labelled as the engine's; `boxwatch_container_info` describes the
//! container.
//!
//! Podman runs with its state in a temporary directory (vfs storage, the
//! cgroupfs manager, runc, no network) and its cgroups under a parent of
//! this test's own, `/boxwatch-engines-<pid>`, removed at the end with the
//! container. Needs root, podman, runc and busybox (Debian packages
//! podman, runc, busybox-static); under CI=true a missing one fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::promtool;

const BIN: &str = env!("CARGO_BIN_EXE_boxwatch");
const PODMAN: &str = "/usr/bin/podman";

fn prerequisites(test: &str) -> bool {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .any(|p| Path::new(p).exists());
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("root")
    } else if !Path::new(PODMAN).exists() {
        Some("/usr/bin/podman (Debian package podman)")
    } else if !Path::new("/usr/sbin/runc").exists() && !Path::new("/usr/bin/runc").exists() {
        Some("runc (Debian package runc)")
    } else if !busybox {
        Some("busybox (Debian package busybox-static)")
    } else {
        None
    };
    promtool::require(missing.is_none(), test, missing.unwrap_or_default())
}

/// Podman with its state under `dir`, leaving the host's untouched.
struct Podman {
    dir: PathBuf,
    parent: String,
    ids: Vec<String>,
    /// Host directories Podman makes whatever its roots (`podman import`
    /// keeps a blob-info cache in /var/lib/containers/cache) that did not
    /// exist before: removed at the end.
    made: Vec<PathBuf>,
}

impl Podman {
    fn cmd(&self) -> Command {
        let mut c = Command::new(PODMAN);
        c.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "none"]);
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// An image of busybox alone, made without a registry.
    fn import_busybox(&self) -> &'static str {
        let rootfs = self.dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap();
        std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sleep")).unwrap();
        let tar = self.dir.join("rootfs.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(ok.success());
        self.run(&["import", tar.to_str().unwrap(), "boxwatch-engines-test:1"]);
        "boxwatch-engines-test:1"
    }

    fn start(&mut self, name: &str, image: &str) -> String {
        let id = self.run(&[
            "run",
            "-d",
            "--name",
            name,
            "--cgroup-parent",
            &self.parent.clone(),
            "--runtime",
            "runc",
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=32768:32768",
            "--network",
            "none",
            "--memory",
            "64m",
            image,
            "sleep",
            "300",
        ]);
        assert_eq!(id.len(), 64, "podman run printed {id:?}, not an id");
        self.ids.push(id.clone());
        id
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.cmd().args(["rm", "-f", "-t", "0", id]).output();
        }
        for dir in &self.made {
            let _ = std::fs::remove_dir_all(dir);
        }
        // Podman leaves the parent (and conmon's cgroup in it) in every
        // hierarchy: this test's own, removed deepest first once conmon
        // and the container's processes are gone (they exit after `rm`
        // returns).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut left = false;
            for mount in cgroup_mounts() {
                let parent = mount.join(self.parent.trim_start_matches('/'));
                if !parent.exists() {
                    continue;
                }
                if let Ok(dirs) = std::fs::read_dir(&parent) {
                    for d in dirs.flatten().filter(|d| d.path().is_dir()) {
                        let _ = std::fs::remove_dir(d.path());
                    }
                }
                left |= std::fs::remove_dir(&parent).is_err();
            }
            if !left || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn cgroup_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect()
}

/// The exporter, ended by PID when dropped.
struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.split_once("\r\n\r\n").unwrap().1.to_string()
}

#[test]
fn podman_containers_are_exported_with_their_engine_id_and_name() {
    let _room = room!();
    let test = "podman_containers_are_exported_with_their_engine_id_and_name";
    if !prerequisites(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut podman = Podman {
        dir: tmp.path().to_path_buf(),
        parent: format!("/boxwatch-engines-{}", std::process::id()),
        ids: Vec::new(),
        made: ["/var/lib/containers", "/var/lib/containers/cache"]
            .iter()
            .map(PathBuf::from)
            .find(|p| !p.exists())
            .into_iter()
            .collect(),
    };
    let image = podman.import_busybox();
    let name = format!("bw-engines-{}", std::process::id());
    let id = podman.start(&name, image);

    let mut child = Command::new(BIN)
        .args(["exporter", "--listen", "127.0.0.1:0", "--cgroup-root"])
        .arg(&podman.parent)
        .arg("--containers-storage")
        .arg(tmp.path().join("root"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let exporter = Exporter(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("boxwatch exporter listening on http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    let body = get(addr, "/metrics");
    let cgroup = format!("{}/libpod-{id}", podman.parent);
    let labels =
        format!("cgroup=\"{cgroup}\",container_id=\"{id}\",engine=\"podman\",name=\"{name}\"");
    let info = format!("boxwatch_container_info{{{labels}}} 1");
    assert!(body.contains(&info), "no {info} in:\n{body}");
    let limit = format!("boxwatch_cgroup_memory_limit_bytes{{{labels}}} 67108864");
    assert!(body.contains(&limit), "no {limit} in:\n{body}");
    // conmon, where the hierarchy has it, is the engine's, not a workload.
    let conmon = format!(
        "{{cgroup=\"{}/conmon\",engine=\"podman\",role=\"engine\"}}",
        podman.parent
    );
    let conmon_dirs = cgroup_mounts().iter().any(|m| {
        m.join(podman.parent.trim_start_matches('/'))
            .join("conmon")
            .is_dir()
    });
    assert_eq!(
        body.contains(&conmon),
        conmon_dirs,
        "conmon's rows:\n{body}"
    );
    assert_eq!(
        body.matches("boxwatch_container_info{").count(),
        1,
        "one container, one info sample:\n{body}"
    );
    if promtool::have_promtool(test) {
        promtool::check_text(test, &body);
    }
    drop(exporter);
    drop(podman);
    for mount in cgroup_mounts() {
        let parent = mount.join(format!("boxwatch-engines-{}", std::process::id()));
        assert!(!parent.exists(), "{} left behind", parent.display());
    }
}
