//! The runtime bench's engine rows: `docker run --rm` and `podman run --rm`
//! of the same trivial container (`/bin/true` with pid, mount, uts, ipc and
//! net namespaces, `--network none`, 0.5 CPU, 64 MiB, 64 pids), side by
//! side with the builtin, runc, crun and runsc. The image is busybox-static
//! alone, made with `import` (no registry). An engine that is not
//! available is left out with the reason printed (the bench is not a
//! test).
//!
//! Docker is the daemon `DOCKER_HOST` names (or docker's default socket);
//! the bench starts none. Podman keeps its store and configuration in the
//! bench's scratch directory (`CONTAINERS_STORAGE_CONF`,
//! `CONTAINERS_CONF`: vfs, cgroupfs, runc, which every host's podman can
//! use; crun refuses v1/v2 hybrid hosts), so the host's images are
//! untouched. Both put their containers under the bench's cgroup parent.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One engine's contender: (name, note, command, environment).
pub struct EngineRow {
    pub name: String,
    pub note: String,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Removes the images the bench imported.
pub struct Images(Vec<(Command, String)>);

impl Drop for Images {
    fn drop(&mut self) {
        for (cmd, image) in &mut self.0 {
            let _ = cmd
                .args(["rmi", "-f", image.as_str()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn output(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A tar of a root holding busybox-static alone (`/bin/true` linked to
/// it), under `dir`.
fn busybox_tar(dir: &Path) -> Result<PathBuf> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .context("busybox is not installed (apt-get install busybox-static)")?;
    let rootfs = dir.join("engine-rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::copy(busybox, rootfs.join("bin/busybox"))?;
    let _ = std::fs::remove_file(rootfs.join("bin/true"));
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/true"))?;
    let tar = dir.join("engine-rootfs.tar");
    output(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
        "tar",
    )?;
    Ok(tar)
}

/// The hard RLIMIT_NOFILE and RLIMIT_NPROC of this process: podman asks
/// for more by default, which a root without CAP_SYS_RESOURCE may not get.
fn hard_limits() -> (u64, u64) {
    use nix::sys::resource::{getrlimit, Resource};
    let hard = |r| getrlimit(r).map(|(_, h)| h).unwrap_or(1024);
    (
        hard(Resource::RLIMIT_NOFILE).min(1 << 20),
        // podman lowers its own soft NPROC to 32768 before starting the
        // runtime, which then may not raise it past that.
        hard(Resource::RLIMIT_NPROC).min(32768),
    )
}

/// The flags both engines get: the bench's container.
fn run_flags(cgroup_parent: &str) -> Vec<String> {
    [
        "run",
        "--rm",
        "--network",
        "none",
        "--cpus",
        "0.5",
        "--memory",
        "64m",
        "--pids-limit",
        "64",
        "--cgroup-parent",
        cgroup_parent,
    ]
    .map(String::from)
    .to_vec()
}

/// The docker and podman rows that can run here, the images to remove,
/// and a line per engine left out (with why).
pub fn rows(scratch: &Path, cgroup_base: &str, tag: &str) -> (Vec<EngineRow>, Images, Vec<String>) {
    let mut rows = Vec::new();
    let mut images = Images(Vec::new());
    let mut left_out = Vec::new();
    let image = format!("boxwatch-bench:{tag}");
    let tar = match busybox_tar(scratch) {
        Ok(t) => t,
        Err(e) => {
            left_out.push(format!("docker run, podman run: no image ({e:#})"));
            return (rows, images, left_out);
        }
    };

    match docker_row(&tar, &image, cgroup_base) {
        Ok(row) => {
            images.0.push((Command::new("docker"), image.clone()));
            rows.push(row);
        }
        Err(e) => left_out.push(format!("docker run: {e:#}")),
    }

    let podman_dir = scratch.join("podman");
    match podman_row(&tar, &image, cgroup_base, &podman_dir) {
        Ok(row) => {
            let mut cmd = Command::new("podman");
            cmd.envs(row.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            images.0.push((cmd, image.clone()));
            rows.push(row);
        }
        Err(e) => left_out.push(format!("podman run: {e:#}")),
    }
    (rows, images, left_out)
}

fn docker_row(tar: &Path, image: &str, cgroup_base: &str) -> Result<EngineRow> {
    let docker = runtime::find_in_path("docker")
        .context("docker is not installed (apt-get install docker.io)")?;
    let version = output(
        Command::new(&docker).args(["version", "--format", "{{.Server.Version}}"]),
        "docker version",
    )
    .context("no docker daemon is reachable (start dockerd, or set DOCKER_HOST)")?;
    output(
        Command::new(&docker)
            .arg("import")
            .arg(tar)
            .arg(image)
            .stdout(Stdio::null()),
        "docker import",
    )?;
    let mut cmd = vec![docker.to_string_lossy().into_owned()];
    cmd.extend(run_flags(&format!("{cgroup_base}/docker")));
    cmd.extend([image.to_string(), "/bin/true".into()]);
    Ok(EngineRow {
        name: "docker run".into(),
        note: format!("docker run --rm, dockerd {version} (its default runtime), busybox image"),
        cmd,
        env: Vec::new(),
    })
}

fn podman_row(tar: &Path, image: &str, cgroup_base: &str, dir: &Path) -> Result<EngineRow> {
    let podman = runtime::find_in_path("podman")
        .context("podman is not installed (apt-get install podman)")?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            dir.join("root").display(),
            dir.join("run").display()
        ),
    )?;
    std::fs::write(
        dir.join("containers.conf"),
        format!(
            "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\n\
             runtime = \"runc\"\ntmp_dir = \"{}\"\n",
            dir.join("tmp").display()
        ),
    )?;
    let env = vec![
        (
            "CONTAINERS_STORAGE_CONF".to_string(),
            dir.join("storage.conf").to_string_lossy().into_owned(),
        ),
        (
            "CONTAINERS_CONF".to_string(),
            dir.join("containers.conf").to_string_lossy().into_owned(),
        ),
    ];
    let with_env = |c: &mut Command| {
        c.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    };
    let mut v = Command::new(&podman);
    with_env(&mut v);
    let version = output(
        v.args(["version", "--format", "{{.Client.Version}}"]),
        "podman version",
    )?;
    let mut i = Command::new(&podman);
    with_env(&mut i);
    output(
        i.arg("import").arg(tar).arg(image).stdout(Stdio::null()),
        "podman import",
    )?;
    let (nofile, nproc) = hard_limits();
    let mut cmd = vec![podman.to_string_lossy().into_owned()];
    cmd.extend(run_flags(&format!("{cgroup_base}/podman")));
    cmd.extend([
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        format!("nproc={nproc}:{nproc}"),
        image.to_string(),
        "/bin/true".into(),
    ]);
    Ok(EngineRow {
        name: "podman run".into(),
        note: format!(
            "podman run --rm, podman {version} with runc (rlimits within this host's hard limits), busybox image"
        ),
        cmd,
        env,
    })
}
