//! `boxwatch exporter` next to real engines: one scrape shows a Docker
//! container, a Podman container and a boxwatch scenario's container, each
//! with its `engine`, its id and the name its engine keeps (Docker's
//! config.v2.json, Podman's containers.json, the scenario's id); conmon and
//! the engines' parent cgroups are labelled as the engines'; each container
//! has one `boxwatch_container_info` sample.
//!
//! Every engine is private to the test: Podman with its state in a
//! temporary directory (vfs storage, the cgroupfs manager, runc, no
//! network) and its cgroups under `/boxwatch-engines-<pid>`; a dockerd of
//! its own (no iptables, no bridge, vfs, its data root, exec root, socket,
//! pidfile and trust key in a temporary directory) whose containers sit
//! under `/boxwatch-engines-<pid>-docker/docker`, stopped by PID; a
//! `boxwatch scenarios` run of a scenario file of the test's own. What they
//! made is removed at the end, and the test checks it. Needs root, podman,
//! dockerd (with containerd), the docker client, runc and busybox (Debian
//! packages podman, docker.io, runc, busybox-static); under CI=true a
//! missing one fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::promtool;

const BIN: &str = env!("CARGO_BIN_EXE_boxwatch");
const PODMAN: &str = "/usr/bin/podman";
const DOCKERD: &str = "/usr/sbin/dockerd";

fn prerequisites(test: &str) -> bool {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .any(|p| Path::new(p).exists());
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("root")
    } else if !Path::new(PODMAN).exists() {
        Some("/usr/bin/podman (Debian package podman)")
    } else if !Path::new(DOCKERD).exists() || which("containerd").is_none() {
        Some("dockerd and containerd (Debian package docker.io)")
    } else if which("docker").is_none() {
        Some("the docker client (Debian package docker.io)")
    } else if !Path::new("/usr/sbin/runc").exists() && !Path::new("/usr/bin/runc").exists() {
        Some("runc (Debian package runc)")
    } else if !busybox {
        Some("busybox (Debian package busybox-static)")
    } else {
        None
    };
    promtool::require(missing.is_none(), test, missing.unwrap_or_default())
}

/// `name` in PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// A rootfs tar of busybox alone (`sleep` linked to it), in `dir`.
fn busybox_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sleep")).unwrap();
    let tar = dir.join("rootfs.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(ok.success());
    tar
}

/// Removes the cgroup `parent` (and what is below it) from every
/// hierarchy, deepest first, retrying while processes leave; true when
/// nothing is left.
fn remove_cgroup_tree(parent: &str) -> bool {
    fn remove(dir: &Path) -> bool {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten().filter(|e| e.path().is_dir()) {
                remove(&e.path());
            }
        }
        std::fs::remove_dir(dir).is_ok() || !dir.exists()
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut left = false;
        for mount in cgroup_mounts() {
            let dir = mount.join(parent.trim_start_matches('/'));
            if dir.exists() {
                left |= !remove(&dir);
            }
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

/// A cgroup tree of the test's own, removed from every hierarchy when
/// dropped.
struct CgroupTree(String);

impl Drop for CgroupTree {
    fn drop(&mut self) {
        remove_cgroup_tree(&self.0);
    }
}

/// A dockerd of the test's own, its state under `dir`, its containers'
/// cgroups under `<parent>/docker`; stopped by PID and its containers
/// removed when dropped.
struct Docker {
    dir: PathBuf,
    parent: String,
    daemon: Option<Child>,
    ids: Vec<String>,
}

impl Docker {
    fn start(dir: &Path, parent: &str) -> Docker {
        std::fs::create_dir_all(dir).unwrap();
        // The trust key of Docker 20.10 goes to /etc/docker unless told.
        let config = dir.join("daemon.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"deprecated-key-path": "{}"}}"#,
                dir.join("key.json").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let daemon = Command::new(DOCKERD)
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--storage-driver", "vfs", "--cgroup-parent"])
            .arg(format!("{parent}/docker"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let docker = Docker {
            dir: dir.to_path_buf(),
            parent: parent.to_string(),
            daemon: Some(daemon),
            ids: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !docker
            .cmd()
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within 30 s: {}",
                std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        docker
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H")
            .arg(format!("unix://{}", self.dir.join("docker.sock").display()));
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn start_container(&mut self, name: &str, tar: &Path) -> String {
        self.run(&["import", tar.to_str().unwrap(), "boxwatch-engines-test:1"]);
        let id = self.run(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--memory",
            "48m",
            "boxwatch-engines-test:1",
            "sleep",
            "300",
        ]);
        assert_eq!(id.len(), 64, "docker run printed {id:?}, not an id");
        self.ids.push(id.clone());
        id
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.cmd().args(["rm", "-f", id]).output();
        }
        if let Some(mut daemon) = self.daemon.take() {
            let pid = nix::unistd::Pid::from_raw(daemon.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        remove_cgroup_tree(&self.parent);
    }
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
        let tar = busybox_tar(&self.dir);
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
        // hierarchy: this test's own, removed once conmon and the
        // container's processes are gone (they exit after `rm` returns).
        remove_cgroup_tree(&self.parent);
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

/// A scenario of the test's own: one spin thread under a 0.2 CPU quota
/// for `secs` seconds, so its container lives long enough to be scraped.
fn scenario_file(dir: &Path, id: &str, secs: u32) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(format!("{id}.toml")),
        format!(
            r#"id = "{id}"
title = "A spin loop the exporter names"
seed_claim = "a scenario's container is exported with its scenario's name"
headline = "cpu_quota"
description = "One spin thread under a 0.2 CPU quota, scraped while it runs."
timeout = "60s"

[container]
cpu = "0.2"

[workload]
name = "spin"
threads = 1
duration = "{secs}s"

[[expect]]
check = "quota-applied"
title = "the quota in cgroupfs is the one asked for"
metric = "cpu_quota"
near = "limit.cpu"
tolerance = 0.0001
"#
        ),
    )
    .unwrap();
}

/// The first line of every sample of `family` whose labels hold `want`.
fn sample_with<'a>(body: &'a str, family: &str, want: &str) -> Option<&'a str> {
    body.lines()
        .find(|l| l.starts_with(&format!("{family}{{")) && l.contains(want))
}

#[test]
fn docker_podman_and_boxwatch_containers_are_exported_by_engine_id_and_name() {
    let _room = room!();
    let test = "docker_podman_and_boxwatch_containers_are_exported_by_engine_id_and_name";
    if !prerequisites(test) {
        return;
    }
    let me = std::process::id();
    let tmp = tempfile::tempdir().unwrap();

    // Podman.
    let mut podman = Podman {
        dir: tmp.path().join("podman"),
        parent: format!("/boxwatch-engines-{me}"),
        ids: Vec::new(),
        made: ["/var/lib/containers", "/var/lib/containers/cache"]
            .iter()
            .map(PathBuf::from)
            .find(|p| !p.exists())
            .into_iter()
            .collect(),
    };
    std::fs::create_dir_all(&podman.dir).unwrap();
    let image = podman.import_busybox();
    let pod_name = format!("bw-podman-{me}");
    let pod_id = podman.start(&pod_name, image);

    // Docker.
    let docker_parent = format!("/boxwatch-engines-{me}-docker");
    let mut docker = Docker::start(&tmp.path().join("docker"), &docker_parent);
    let dk_name = format!("bw-docker-{me}");
    let dk_id = docker.start_container(&dk_name, &busybox_tar(&tmp.path().join("docker")));

    // A boxwatch scenario, its container named by the scenario's id.
    let scenario = format!("exporter-named-{me}");
    let catalog = tmp.path().join("catalog");
    scenario_file(&catalog, &scenario, 12);
    // Its cgroups under a parent of the test's own (a shared /boxwatch may
    // come and go with other runs).
    let bw_parent = format!("/boxwatch-engines-{me}-bw");
    // Removed after the run (dropped before this) has ended.
    let bw_cgroups = CgroupTree(bw_parent.clone());
    let mut run = Scenarios(Some(
        Command::new(BIN)
            .args(["scenarios", "--quiet-wait", "0s", "--format", "json"])
            .arg("--catalog")
            .arg(&catalog)
            .arg("--cgroup-parent")
            .arg(format!("{bw_parent}/boxwatch"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let run_pid = run.child().id();
    // The exporter's roots must exist when it starts. The run first waits
    // for the host's measurement lock (other boxwatch runs' exclusive
    // scenarios: minutes on a shared host, none in CI).
    let deadline = Instant::now() + Duration::from_secs(600);
    while !cgroup_mounts()
        .iter()
        .any(|m| m.join(bw_parent.trim_start_matches('/')).is_dir())
    {
        if Instant::now() > deadline || run.child().try_wait().unwrap().is_some() {
            let out = wait_output(run.take(), Duration::from_secs(10));
            panic!(
                "the scenario run made no cgroup under {bw_parent}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut child = Command::new(BIN)
        .args(["exporter", "--listen", "127.0.0.1:0"])
        .args(["--cgroup-root", &podman.parent])
        .args(["--cgroup-root", &docker_parent])
        .args(["--cgroup-root", &bw_parent])
        .arg("--containers-storage")
        .arg(podman.dir.join("root"))
        .arg("--docker-data-root")
        .arg(tmp.path().join("docker/data"))
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

    // The scenario's container shows up once the run has started it.
    let bw_cgroup_prefix = format!("cgroup=\"{bw_parent}/boxwatch/{run_pid}-");
    let bw_labels = format!("engine=\"boxwatch\",name=\"{scenario}\"");
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let body = get(addr, "/metrics");
        let seen = body.lines().any(|l| {
            l.starts_with("boxwatch_container_info{")
                && l.contains(&bw_cgroup_prefix)
                && l.contains(&bw_labels)
        });
        if seen {
            break body;
        }
        assert!(
            Instant::now() < deadline && run.child().try_wait().unwrap().is_none(),
            "no container of scenario {scenario} (run {run_pid}) in:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // Podman's container, with Podman's name for it.
    let pod_labels = format!(
        "cgroup=\"{}/libpod-{pod_id}\",container_id=\"{pod_id}\",engine=\"podman\",name=\"{pod_name}\"",
        podman.parent
    );
    for (family, tail) in [
        ("boxwatch_container_info", " 1"),
        ("boxwatch_cgroup_memory_limit_bytes", " 67108864"),
    ] {
        let want = format!("{family}{{{pod_labels}}}{tail}");
        assert!(body.contains(&want), "no {want} in:\n{body}");
    }
    // Docker's, with the name in its config.v2.json.
    let dk_labels = format!(
        "cgroup=\"{docker_parent}/docker/{dk_id}\",container_id=\"{dk_id}\",engine=\"docker\",name=\"{dk_name}\""
    );
    for (family, tail) in [
        ("boxwatch_container_info", " 1"),
        ("boxwatch_cgroup_memory_limit_bytes", " 50331648"),
    ] {
        let want = format!("{family}{{{dk_labels}}}{tail}");
        assert!(body.contains(&want), "no {want} in:\n{body}");
    }
    // boxwatch's, with the scenario's name and its quota.
    let quota = sample_with(&body, "boxwatch_cgroup_cpu_quota_cores", &bw_labels)
        .filter(|l| l.contains(&bw_cgroup_prefix))
        .unwrap_or_else(|| panic!("no quota row of {scenario} in:\n{body}"));
    assert!(quota.ends_with(" 0.2"), "{quota}");
    let bw_id = quota
        .split("container_id=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    assert!(
        bw_id.starts_with(&format!("{run_pid}-")) && bw_id.ends_with(&format!("/{scenario}")),
        "container_id {bw_id:?} of the scenario's container"
    );

    // The engines' own cgroups are labelled as theirs, not as workloads:
    // Docker's parent, Podman's conmon where the hierarchy has it.
    let docker_own =
        format!("{{cgroup=\"{docker_parent}/docker\",engine=\"docker\",role=\"engine\"}}");
    assert!(body.contains(&docker_own), "no {docker_own} in:\n{body}");
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
    // One info sample per container of the test's engines.
    for (who, cgroup) in [
        ("podman", format!("cgroup=\"{}/", podman.parent)),
        ("docker", format!("cgroup=\"{docker_parent}/")),
        ("boxwatch", bw_cgroup_prefix.clone()),
    ] {
        let n = body
            .lines()
            .filter(|l| l.starts_with("boxwatch_container_info{") && l.contains(&cgroup))
            .count();
        assert_eq!(n, 1, "{who}: one container, one info sample:\n{body}");
    }
    if promtool::have_promtool(test) {
        promtool::check_text(test, &body);
    }

    // The scenario run ends by itself and passes its check.
    let out = wait_output(run.take(), Duration::from_secs(180));
    assert!(
        out.status.success(),
        "boxwatch scenarios: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(exporter);
    drop(docker);
    drop(podman);
    drop(bw_cgroups);
    for parent in [
        format!("boxwatch-engines-{me}"),
        format!("boxwatch-engines-{me}-docker"),
        format!("boxwatch-engines-{me}-bw"),
    ] {
        for mount in cgroup_mounts() {
            let dir = mount.join(&parent);
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let tmp_path = tmp.path().to_string_lossy().into_owned();
    assert!(
        !mounts.contains(&tmp_path),
        "mounts left below {tmp_path}:\n{mounts}"
    );
}

/// The `boxwatch scenarios` run, interrupted (SIGINT: it removes its
/// containers) and waited for when dropped before it was taken.
struct Scenarios(Option<Child>);

impl Scenarios {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("not taken")
    }

    fn take(&mut self) -> Child {
        self.0.take().expect("not taken")
    }
}

impl Drop for Scenarios {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for `child` to exit (killed after `limit`), with its output.
fn wait_output(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}
