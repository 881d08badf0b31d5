//! Real Docker and Podman for the tests, with nothing of the host's
//! touched: Docker is the daemon `DOCKER_HOST` names (CI starts one), or a
//! private `dockerd` this helper starts (its own data root, exec root and
//! socket in a temporary directory; no iptables, no bridge, vfs storage;
//! runsc registered with `--network=none --platform=ptrace`) and stops by
//! its PID; Podman keeps its storage and configuration in a temporary
//! directory, given to every `podman` (boxwatch's too) through
//! `CONTAINERS_STORAGE_CONF` and `CONTAINERS_CONF`. Containers go under a
//! cgroup parent of the test's own, `/boxwatch-<tag>-<pid>`, removed at
//! the end. Images are made without a registry: `import` of a tar holding
//! busybox-static.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The static busybox the images are made of.
pub fn busybox() -> Option<&'static str> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
}

/// A tar of a root holding busybox alone (with `sh`, `sleep`, `cat`
/// linked to it), written under `dir`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(busybox().expect("busybox"), rootfs.join("bin/busybox")).unwrap();
    for l in ["sh", "sleep", "cat", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(l)).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(ok.success(), "tar of {}", rootfs.display());
    tar
}

/// What is missing for a test with real engines: root, busybox, tar, and
/// each of `tools` (absolute paths or names in PATH).
pub fn missing(tools: &[&str]) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("root".into());
    }
    if busybox().is_none() {
        return Some("busybox (Debian package busybox-static)".into());
    }
    for t in tools.iter().chain(&["tar"]) {
        let found = if t.starts_with('/') {
            Path::new(t).exists()
        } else {
            runtime::find_in_path(t).is_some()
        };
        if !found {
            return Some(format!(
                "{t} (Debian packages docker.io, podman, runc, runsc)"
            ));
        }
    }
    None
}

fn output_ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Docker: `DOCKER_HOST`'s daemon, or a private one.
pub struct Docker {
    /// The `DOCKER_HOST` value to use.
    pub host: String,
    /// The private daemon and its directory, when this helper started one.
    daemon: Option<(Child, tempfile::TempDir)>,
    containers: Vec<String>,
    images: Vec<String>,
}

impl Docker {
    /// The daemon `DOCKER_HOST` names when it is set, else a private
    /// `dockerd` started now (about a second). Panics when it does not
    /// come up, with its log.
    pub fn start() -> Docker {
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            if !host.is_empty() {
                let d = Docker {
                    host,
                    daemon: None,
                    containers: Vec::new(),
                    images: Vec::new(),
                };
                output_ok("docker info", d.cmd().arg("info").output().unwrap());
                return d;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("bw-dockerd-")
            .tempdir_in("/tmp")
            .unwrap();
        let p = dir.path();
        // runsc, where installed, as a runtime of the daemon's.
        let config = match runtime::find_in_path("runsc") {
            Some(runsc) => format!(
                r#"{{"runtimes": {{"runsc": {{"path": "{}", "runtimeArgs": ["--network=none", "--platform=ptrace"]}}}}}}"#,
                runsc.display()
            ),
            None => "{}".into(),
        };
        std::fs::write(p.join("daemon.json"), config).unwrap();
        let sock = p.join("docker.sock");
        let log = std::fs::File::create(p.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(p.join("daemon.json"))
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting dockerd");
        let d = Docker {
            host: format!("unix://{}", sock.display()),
            daemon: Some((child, dir)),
            containers: Vec::new(),
            images: Vec::new(),
        };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let up = d.cmd().arg("info").output().unwrap().status.success();
            if up {
                return d;
            }
            if Instant::now() > until {
                let log = std::fs::read_to_string(d.dir().unwrap().join("dockerd.log"));
                panic!("dockerd did not come up in 30 s: {log:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn dir(&self) -> Option<&Path> {
        self.daemon.as_ref().map(|(_, d)| d.path())
    }

    /// `docker` talking to this daemon.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &self.host);
        c
    }

    /// `docker <args>`, which must succeed: its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        output_ok(
            &format!("docker {args:?}"),
            self.cmd().args(args).output().unwrap(),
        )
    }

    /// True when the daemon knows the runtime `name`.
    pub fn has_runtime(&self, name: &str) -> bool {
        self.run(&["info", "--format", "{{json .Runtimes}}"])
            .contains(&format!("\"{name}\""))
    }

    /// A busybox image named `tag`, imported from a tar made under `dir`.
    pub fn import_busybox(&mut self, dir: &Path, tag: &str) {
        let tar = busybox_tar(dir);
        self.run(&["import", tar.to_str().unwrap(), tag]);
        self.images.push(tag.to_string());
    }

    /// `docker run -d <args>`: the new container's id, removed at the end.
    pub fn start_container(&mut self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let id = self.run(&all);
        assert_eq!(id.len(), 64, "docker run printed {id:?}, not an id");
        self.containers.push(id.clone());
        id
    }

    /// A container removed at the end (one made with `docker create`).
    pub fn adopt(&mut self, id: &str) {
        self.containers.push(id.to_string());
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = self.cmd().args(["rm", "-f", id]).output();
        }
        for image in &self.images {
            let _ = self.cmd().args(["rmi", "-f", image]).output();
        }
        if let Some((child, dir)) = self.daemon.as_mut() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let until = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100));
            }
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            // The vfs layers hold mounts no more, but the daemon may leave
            // its exec root's netns mounts: unmount before removing.
            let _ = Command::new("umount")
                .arg("-R")
                .arg(dir.path().join("exec"))
                .output();
        }
    }
}

/// Podman with its storage and configuration under a temporary directory.
pub struct Podman {
    dir: tempfile::TempDir,
    containers: Vec<String>,
    /// Host directories Podman makes whatever its roots (`podman import`
    /// keeps a blob-info cache in /var/lib/containers/cache) that did not
    /// exist before: removed at the end.
    made: Vec<PathBuf>,
}

impl Podman {
    /// Podman whose store, run root and temporary files are in a fresh
    /// directory (vfs, the cgroupfs manager, runc, no events).
    pub fn new() -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("bw-podman-")
            .tempdir_in("/tmp")
            .unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                p.join("root").display(),
                p.join("run").display()
            ),
        )
        .unwrap();
        std::fs::write(
            p.join("containers.conf"),
            format!(
                "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\n\
                 runtime = \"runc\"\ntmp_dir = \"{}\"\n",
                p.join("tmp").display()
            ),
        )
        .unwrap();
        Podman {
            dir,
            containers: Vec::new(),
            made: ["/var/lib/containers", "/var/lib/containers/cache"]
                .iter()
                .map(PathBuf::from)
                .find(|p| !p.exists())
                .into_iter()
                .collect(),
        }
    }

    /// The environment every `podman` of the test (and boxwatch's) gets.
    pub fn env(&self) -> [(&'static str, PathBuf); 2] {
        [
            (
                "CONTAINERS_STORAGE_CONF",
                self.dir.path().join("storage.conf"),
            ),
            ("CONTAINERS_CONF", self.dir.path().join("containers.conf")),
        ]
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.envs(self.env());
        c
    }

    pub fn run(&self, args: &[&str]) -> String {
        output_ok(
            &format!("podman {args:?}"),
            self.cmd().args(args).output().unwrap(),
        )
    }

    /// A busybox image named `tag`.
    pub fn import_busybox(&self, tag: &str) {
        let tar = busybox_tar(self.dir.path());
        self.run(&["import", tar.to_str().unwrap(), tag]);
    }

    /// `podman [global] run -d <args>` with the rlimits this host allows:
    /// the new container's id, removed at the end.
    pub fn start_container(&mut self, global: &[&str], args: &[&str]) -> String {
        let mut all: Vec<&str> = global.to_vec();
        all.extend_from_slice(&[
            "run",
            "-d",
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=32768:32768",
        ]);
        all.extend_from_slice(args);
        let id = self.run(&all);
        assert_eq!(id.len(), 64, "podman run printed {id:?}, not an id");
        self.containers.push(id.clone());
        id
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = self.cmd().args(["rm", "-f", "-t", "0", id]).output();
        }
        let _ = self.cmd().args(["rmi", "-a", "-f"]).output();
        for dir in &self.made {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Removes the cgroup parent `parent` (`/boxwatch-...`) in every
/// hierarchy, deepest first, once the engines' processes in it are gone
/// (conmon and shims exit after `rm` returns). True when nothing is left.
pub fn remove_cgroup_parent(parent: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut left = false;
        for mount in super::cgroup_mounts() {
            let dir = mount.join(parent.trim_start_matches('/'));
            if !dir.exists() {
                continue;
            }
            if let Ok(subs) = std::fs::read_dir(&dir) {
                for d in subs.flatten().filter(|d| d.path().is_dir()) {
                    let _ = std::fs::remove_dir(d.path());
                }
            }
            left |= std::fs::remove_dir(&dir).is_err();
        }
        if !left {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
