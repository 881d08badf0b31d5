//! Who a cgroup is: the container engine, container id, Kubernetes pod and
//! QoS class, read from the cgroup path's conventions alone, and the
//! container's name from the engine's files on disk.
//!
//! No daemon is called. [`Identity::of`] parses a path (pure, proptested);
//! [`NameCache`] reads a name once per new container (Docker's
//! `config.v2.json`, the `containers.json` of containers/storage that
//! Podman and CRI-O keep) and remembers it, so a scrape never touches those
//! files: the collector asks only when its cgroup set changed, and only
//! about ids it has not seen.
//!
//! The conventions, anywhere in the path (a kubelet or engine may sit
//! below a prefix of its own):
//!
//! | engine | container cgroup | engine-internal |
//! |---|---|---|
//! | `boxwatch` | `boxwatch/<run-id>/<name>` | `boxwatch`, `boxwatch/<run-id>` |
//! | `docker` | `docker/<id>`, `docker-<id>.scope` | `docker`, `docker.service` |
//! | `podman` | `libpod-<id>`, `libpod-<id>.scope` | `libpod_parent`, `conmon`, `libpod-conmon-<id>.scope` |
//! | `containerd` | `cri-containerd-<id>.scope` | `containerd.service` |
//! | `cri-o` | `crio-<id>`, `crio-<id>.scope` | `crio-conmon-<id>.scope`, `crio.service` |
//! | `cri` | `<id>` below a pod cgroup (the cgroupfs driver of containerd and Docker) | |
//! | `systemd` | `machine-<name>.scope` (systemd-nspawn, machined) | |
//!
//! Kubernetes: `kubepods[.slice]` holds the Guaranteed pods, its
//! `burstable`/`besteffort` children (`kubepods-burstable.slice`) the
//! others; a pod is `pod<uid>` (cgroupfs driver) or
//! `kubepods[-<qos>]-pod<uid with _ for ->.slice` (systemd driver), and its
//! containers sit below it. `<id>` is 64 lowercase hex digits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The engine a cgroup belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engine {
    /// boxwatch's own scenario containers.
    Boxwatch,
    /// Docker (`docker-<id>.scope`, `docker/<id>`).
    Docker,
    /// Podman (`libpod-<id>.scope`).
    Podman,
    /// containerd (`cri-containerd-<id>.scope`).
    Containerd,
    /// CRI-O (`crio-<id>.scope`).
    CriO,
    /// A CRI runtime that names its container cgroups by bare id
    /// (containerd or Docker with the kubelet's cgroupfs driver).
    Cri,
    /// A systemd machine (`machine-<name>.scope`).
    Systemd,
}

impl Engine {
    /// The `engine` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Boxwatch => "boxwatch",
            Engine::Docker => "docker",
            Engine::Podman => "podman",
            Engine::Containerd => "containerd",
            Engine::CriO => "cri-o",
            Engine::Cri => "cri",
            Engine::Systemd => "systemd",
        }
    }
}

/// A Kubernetes pod's QoS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QosClass {
    /// Every container requests and limits equal.
    Guaranteed,
    /// Some requests or limits set.
    Burstable,
    /// No requests or limits.
    BestEffort,
}

impl QosClass {
    /// The `qos_class` label value (as `kube_pod_status_qos_class` spells
    /// it).
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "guaranteed",
            QosClass::Burstable => "burstable",
            QosClass::BestEffort => "besteffort",
        }
    }
}

/// What a cgroup is to its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A container's own cgroup (or one below it).
    Container,
    /// A Kubernetes pod (its containers are below it).
    Pod,
    /// A Kubernetes QoS class parent (`kubepods/burstable`).
    Qos,
    /// The engine's own: its parent cgroups, its service, conmon. Not a
    /// workload: labelled `role="engine"`.
    Engine,
}

/// Who a cgroup is, as far as its path tells.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// What the cgroup is to its engine.
    pub role: Role,
    /// The engine, when the path names one.
    pub engine: Option<Engine>,
    /// The engine's id of the container (boxwatch: `<run-id>/<name>`).
    pub container_id: Option<String>,
    /// The name the path itself gives (boxwatch's scenario container,
    /// a systemd machine); engines that keep it on disk are asked through
    /// [`NameCache`].
    pub name: Option<String>,
    /// The pod's UID, for a pod's cgroup or one below it.
    pub pod_uid: Option<String>,
    /// The pod's QoS class, from its parent cgroup.
    pub qos_class: Option<QosClass>,
    /// Whether the container segment is the path's last (the container's
    /// own cgroup, not one below it): the cgroup `boxwatch_container_info`
    /// describes.
    pub is_top: bool,
}

/// A 64-digit lowercase hex container id.
fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `s` without `prefix` and `suffix`, when it has both.
fn between<'a>(s: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    s.strip_prefix(prefix)?.strip_suffix(suffix)
}

/// A pod UID as the kubelet writes it in a cgroup name (`_` for `-` with
/// the systemd driver), back in its usual form; `None` when it is not one
/// (a UUID, or the 32 hex digits of a static pod's hash).
fn pod_uid(s: &str, systemd: bool) -> Option<String> {
    let uid = if systemd {
        s.replace('_', "-")
    } else {
        s.to_string()
    };
    let ok = (32..=36).contains(&uid.len())
        && uid
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f' | b'-'))
        && uid.bytes().filter(|&b| b != b'-').count() == 32;
    ok.then_some(uid)
}

/// A boxwatch run id: `<pid>-<start time>-<sequence>`.
fn is_run_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// systemd's unit-name unescaping of `\xNN` (a machine named `a-b` is
/// `machine-a\x2db.scope`).
fn systemd_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            if let Ok(v) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One segment read as a container (or engine) cgroup: `(engine, id,
/// role)`, given the segment before it.
fn container_segment(seg: &str, parent: Option<&str>) -> Option<(Engine, Option<String>, Role)> {
    let c = |e, id: &str| Some((e, Some(id.to_string()), Role::Container));
    if let Some(id) = between(seg, "docker-", ".scope").filter(|id| is_id(id)) {
        return c(Engine::Docker, id);
    }
    if let Some(id) = between(seg, "libpod-conmon-", ".scope").filter(|id| is_id(id)) {
        return Some((Engine::Podman, Some(id.to_string()), Role::Engine));
    }
    if let Some(id) = seg
        .strip_prefix("libpod-")
        .map(|s| s.strip_suffix(".scope").unwrap_or(s))
        .filter(|id| is_id(id))
    {
        return c(Engine::Podman, id);
    }
    if let Some(id) = between(seg, "cri-containerd-", ".scope").filter(|id| is_id(id)) {
        return c(Engine::Containerd, id);
    }
    if let Some(id) = between(seg, "crio-conmon-", ".scope").filter(|id| is_id(id)) {
        return Some((Engine::CriO, Some(id.to_string()), Role::Engine));
    }
    if let Some(id) = seg
        .strip_prefix("crio-")
        .map(|s| s.strip_suffix(".scope").unwrap_or(s))
        .filter(|id| is_id(id))
    {
        return c(Engine::CriO, id);
    }
    if is_id(seg) && parent == Some("docker") {
        return c(Engine::Docker, seg);
    }
    if let Some(name) = between(seg, "machine-", ".scope").filter(|n| !n.is_empty()) {
        let name = systemd_unescape(name);
        return Some((Engine::Systemd, Some(name), Role::Container));
    }
    let engine = match seg {
        "docker" | "docker.service" => Engine::Docker,
        "libpod_parent" | "podman.service" => Engine::Podman,
        "containerd.service" => Engine::Containerd,
        "crio.service" => Engine::CriO,
        // Podman's conmon, beside its containers in their parent cgroup.
        "conmon" => Engine::Podman,
        _ => return None,
    };
    Some((engine, None, Role::Engine))
}

impl Identity {
    /// The identity of the cgroup at `path` (`/`-separated, from the
    /// hierarchy root), or `None` when no convention matches.
    pub fn of(path: &str) -> Option<Identity> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut found: Option<Identity> = None;
        // Kubernetes context of the segments read so far.
        let mut kube = false;
        let mut qos: Option<QosClass> = None;
        let mut pod: Option<String> = None;
        for (i, &seg) in segs.iter().enumerate() {
            let parent = i.checked_sub(1).map(|p| segs[p]);
            let last = i + 1 == segs.len();
            // boxwatch: boxwatch/<run-id>/<name>.
            if seg == "boxwatch" {
                found = Some(Identity::engine(Engine::Boxwatch));
                continue;
            }
            if parent == Some("boxwatch") && is_run_id(seg) {
                found = Some(Identity::engine(Engine::Boxwatch));
                continue;
            }
            if i >= 2 && segs[i - 2] == "boxwatch" && parent.is_some_and(is_run_id) {
                let run = parent.unwrap_or_default();
                found = Some(Identity {
                    container_id: Some(format!("{run}/{seg}")),
                    name: Some(seg.to_string()),
                    is_top: last,
                    ..Identity::container(Engine::Boxwatch)
                });
                continue;
            }
            // Kubernetes QoS and pod cgroups.
            match seg {
                "kubepods" | "kubepods.slice" => {
                    (kube, qos, pod) = (true, Some(QosClass::Guaranteed), None);
                    found = Some(Identity::qos(None));
                    continue;
                }
                "burstable" | "kubepods-burstable.slice" if kube && pod.is_none() => {
                    qos = Some(QosClass::Burstable);
                    found = Some(Identity::qos(qos));
                    continue;
                }
                "besteffort" | "kubepods-besteffort.slice" if kube && pod.is_none() => {
                    qos = Some(QosClass::BestEffort);
                    found = Some(Identity::qos(qos));
                    continue;
                }
                _ => {}
            }
            if kube && pod.is_none() {
                let uid = seg
                    .strip_prefix("pod")
                    .and_then(|u| pod_uid(u, false))
                    .or_else(|| {
                        [
                            "kubepods-pod",
                            "kubepods-burstable-pod",
                            "kubepods-besteffort-pod",
                        ]
                        .iter()
                        .find_map(|p| between(seg, p, ".slice"))
                        .and_then(|u| pod_uid(u, true))
                    });
                if let Some(uid) = uid {
                    pod = Some(uid);
                    found = Some(Identity {
                        role: Role::Pod,
                        pod_uid: pod.clone(),
                        ..Identity::qos(qos)
                    });
                    continue;
                }
            }
            let hit = container_segment(seg, parent).or_else(|| {
                (pod.is_some() && is_id(seg))
                    .then(|| (Engine::Cri, Some(seg.to_string()), Role::Container))
            });
            if let Some((engine, id, role)) = hit {
                let in_pod = role != Role::Engine || id.is_some();
                found = Some(Identity {
                    role,
                    engine: Some(engine),
                    name: (engine == Engine::Systemd).then(|| id.clone()).flatten(),
                    container_id: id,
                    pod_uid: pod.clone().filter(|_| in_pod),
                    qos_class: qos.filter(|_| in_pod && pod.is_some()),
                    is_top: last && role == Role::Container,
                });
                // A container's kubelet context ends with it (a nested
                // engine starts its own).
                if role == Role::Container {
                    (kube, qos, pod) = (false, None, None);
                }
                continue;
            }
            // Any other segment: below a container it is the container's
            // (`libpod-<id>.scope/container`); below a parent cgroup it is
            // nobody's.
            match found.as_mut() {
                Some(f) if f.role == Role::Container => f.is_top = false,
                _ => found = None,
            }
        }
        found
    }

    fn engine(engine: Engine) -> Identity {
        Identity {
            role: Role::Engine,
            engine: Some(engine),
            container_id: None,
            name: None,
            pod_uid: None,
            qos_class: None,
            is_top: false,
        }
    }

    fn container(engine: Engine) -> Identity {
        Identity {
            role: Role::Container,
            ..Identity::engine(engine)
        }
    }

    fn qos(qos: Option<QosClass>) -> Identity {
        Identity {
            role: Role::Qos,
            engine: None,
            container_id: None,
            name: None,
            pod_uid: None,
            qos_class: qos,
            is_top: false,
        }
    }

    /// The label pairs beyond `cgroup`, sorted by name (as the exposition
    /// writes them): `container_id`, `engine`, `name` (the engine's, from
    /// `found`, else the path's), `namespace` and `pod` (a Kubernetes
    /// container's, from `found`), `pod_uid`, `qos_class`, `role` (only
    /// `role="engine"`: the rest is told by the others).
    pub fn labels(&self, found: Option<&Names>) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(id) = &self.container_id {
            out.push(("container_id", id.clone()));
        }
        if let Some(e) = self.engine {
            out.push(("engine", e.as_str().to_string()));
        }
        let found = found.cloned().unwrap_or_default();
        if let Some(n) = found.name.as_deref().or(self.name.as_deref()) {
            out.push(("name", n.to_string()));
        }
        if let Some(ns) = found.namespace {
            out.push(("namespace", ns));
        }
        if let Some(pod) = found.pod {
            out.push(("pod", pod));
        }
        if let Some(p) = &self.pod_uid {
            out.push(("pod_uid", p.clone()));
        }
        if let Some(q) = self.qos_class {
            out.push(("qos_class", q.as_str().to_string()));
        }
        if self.role == Role::Engine {
            out.push(("role", "engine".to_string()));
        }
        out
    }
}

/// Where the engines keep their containers' names.
#[derive(Debug, Clone, clap::Args)]
pub struct NameSources {
    /// Docker's data root, whose `containers/<id>/config.v2.json` names
    /// each Docker container (read once per new container).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/docker")]
    pub docker_data_root: PathBuf,
    /// The containers/storage root of Podman and CRI-O, whose
    /// `<driver>-containers/containers.json` names their containers
    /// (read once per new container).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/lib/containers/storage"
    )]
    pub containers_storage: PathBuf,
    /// containerd's state directory, whose
    /// `io.containerd.runtime.v2.task/<namespace>/<id>/config.json` (the
    /// OCI bundle) carries a container's name, and a Kubernetes
    /// container's pod and namespace, in its annotations (read once per
    /// new container).
    #[arg(long, value_name = "DIR", default_value = "/run/containerd")]
    pub containerd_state: PathBuf,
}

impl Default for NameSources {
    fn default() -> Self {
        NameSources {
            docker_data_root: "/var/lib/docker".into(),
            containers_storage: "/var/lib/containers/storage".into(),
            containerd_state: "/run/containerd".into(),
        }
    }
}

/// What an engine's files tell of a container: its name and, for a
/// Kubernetes container, its pod's name and namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub name: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
}

impl Names {
    /// A name as the engine gives it; a Kubernetes container's name as
    /// the kubelet's runtimes write it (`k8s_<container>_<pod>_<namespace>_
    /// <pod uid>_<attempt>`: dockershim, cri-dockerd, CRI-O) is split into
    /// its container, pod and namespace (none of which may hold a `_`).
    fn from_name(name: &str) -> Names {
        let name = name.trim_start_matches('/');
        let parts: Vec<&str> = name.split('_').collect();
        if parts.len() == 6 && parts[0] == "k8s" && parts[1..4].iter().all(|p| !p.is_empty()) {
            return Names {
                name: Some(parts[1].to_string()),
                pod: Some(parts[2].to_string()),
                namespace: Some(parts[3].to_string()),
            };
        }
        Names {
            name: Some(name.to_string()).filter(|n| !n.is_empty()),
            ..Names::default()
        }
    }

    /// From a container's labels or annotations: Kubernetes' (the
    /// kubelet's on Docker and CRI-O, containerd's CRI plugin's), else
    /// nerdctl's name; `fallback` when they say nothing.
    fn from_annotations(a: &HashMap<String, String>, fallback: Option<&str>) -> Names {
        let get = |keys: &[&str]| keys.iter().find_map(|k| a.get(*k)).cloned();
        let pod = get(&["io.kubernetes.pod.name", "io.kubernetes.cri.sandbox-name"]);
        let namespace = get(&[
            "io.kubernetes.pod.namespace",
            "io.kubernetes.cri.sandbox-namespace",
        ]);
        let name = get(&[
            "io.kubernetes.container.name",
            "io.kubernetes.cri.container-name",
            "nerdctl/name",
        ]);
        if pod.is_some() || name.is_some() {
            return Names {
                name,
                pod,
                namespace,
            };
        }
        fallback.map(Names::from_name).unwrap_or_default()
    }
}

/// Containers' names, each read from disk once: the first time its id is
/// asked about. Ids no longer asked about are forgotten by
/// [`NameCache::retain`].
#[derive(Debug, Default)]
pub struct NameCache {
    sources: NameSources,
    names: HashMap<(Engine, String), Names>,
    /// Disk reads made (for tests: once per new container).
    reads: u64,
}

#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Config", default)]
    config: DockerContainerConfig,
}

#[derive(serde::Deserialize, Default)]
struct DockerContainerConfig {
    #[serde(rename = "Labels", default)]
    labels: Option<HashMap<String, String>>,
}

#[derive(serde::Deserialize)]
struct OciBundleConfig {
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(serde::Deserialize)]
struct StorageContainer {
    id: String,
    #[serde(default)]
    names: Vec<String>,
}

impl NameCache {
    /// A cache reading from `sources`.
    pub fn new(sources: NameSources) -> Self {
        NameCache {
            sources,
            ..NameCache::default()
        }
    }

    /// The name of `id` of `engine`, read from disk only the first time.
    pub fn name(&mut self, engine: Engine, id: &str) -> Option<&str> {
        self.names(engine, id).name.as_deref()
    }

    /// What the engine's files tell of `id` (its name, a Kubernetes
    /// container's pod and namespace), read from disk only the first time.
    pub fn names(&mut self, engine: Engine, id: &str) -> &Names {
        let key = (engine, id.to_string());
        if !self.names.contains_key(&key) {
            let s = &self.sources;
            let found = match engine {
                Engine::Docker => docker_names(&s.docker_data_root, id),
                Engine::Podman | Engine::CriO => storage_name(&s.containers_storage, id),
                Engine::Containerd => containerd_names(&s.containerd_state, id),
                // A bare id below a pod: containerd's or Docker's.
                Engine::Cri => containerd_names(&s.containerd_state, id)
                    .or_else(|| docker_names(&s.docker_data_root, id)),
                Engine::Boxwatch | Engine::Systemd => None,
            };
            if !matches!(engine, Engine::Boxwatch | Engine::Systemd) {
                self.reads += 1;
            }
            self.names.insert(key.clone(), found.unwrap_or_default());
        }
        &self.names[&key]
    }

    /// Forgets every container for which `keep` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(Engine, &str) -> bool) {
        self.names.retain(|(e, id), _| keep(*e, id));
    }

    /// How many times a name was read from disk.
    pub fn reads(&self) -> u64 {
        self.reads
    }
}

/// Docker's name for `id` (`"Name": "/web"` in its config.v2.json), or
/// the Kubernetes names of its labels.
fn docker_names(root: &Path, id: &str) -> Option<Names> {
    let path = root.join("containers").join(id).join("config.v2.json");
    let text = std::fs::read(&path)
        .map_err(|e| tracing::debug!("{}: {e}", path.display()))
        .ok()?;
    match serde_json::from_slice::<DockerConfig>(&text) {
        Ok(c) => Some(Names::from_annotations(
            &c.config.labels.unwrap_or_default(),
            Some(&c.name),
        )),
        Err(e) => {
            tracing::warn!("{}: not a Docker container config: {e}", path.display());
            None
        }
    }
}

/// What containerd's OCI bundle of `id` (in any namespace: `k8s.io`,
/// `moby`, `default`...) tells in its annotations.
fn containerd_names(state: &Path, id: &str) -> Option<Names> {
    let tasks = state.join("io.containerd.runtime.v2.task");
    let namespaces = std::fs::read_dir(&tasks)
        .map_err(|e| tracing::debug!("{}: {e}", tasks.display()))
        .ok()?;
    for ns in namespaces.flatten() {
        let path = ns.path().join(id).join("config.json");
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        return match serde_json::from_slice::<OciBundleConfig>(&text) {
            Ok(c) => Some(Names::from_annotations(&c.annotations, None)),
            Err(e) => {
                tracing::warn!("{}: not an OCI bundle config: {e}", path.display());
                None
            }
        };
    }
    None
}

/// The first name containers/storage records for `id`, from the
/// `containers.json` of any of its drivers (`overlay-containers`,
/// `vfs-containers`, ...); CRI-O's `k8s_<container>_<pod>_...` names give
/// the pod and namespace too.
fn storage_name(root: &Path, id: &str) -> Option<Names> {
    let dirs = std::fs::read_dir(root)
        .map_err(|e| tracing::debug!("{}: {e}", root.display()))
        .ok()?;
    for dir in dirs.flatten() {
        if !dir.file_name().to_string_lossy().ends_with("-containers") {
            continue;
        }
        let path = dir.path().join("containers.json");
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        match serde_json::from_slice::<Vec<StorageContainer>>(&text) {
            Ok(list) => {
                if let Some(c) = list.into_iter().find(|c| c.id == id) {
                    return c.names.first().map(|n| Names::from_name(n));
                }
            }
            Err(e) => tracing::warn!("{}: not a containers list: {e}", path.display()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id_of(path: &str) -> Identity {
        Identity::of(path).unwrap_or_else(|| panic!("{path}: no identity"))
    }

    const ID: &str = "bfa3bb5f4215878aeaa0e0cbd72d494a18b7e5a5fa316a886f8335e2b939615f";
    const UID: &str = "0f6a3c1e-29b1-4e4f-9d84-5c6f0ab3d7e2";

    #[test]
    fn every_engine_by_its_path() {
        let cases: &[(&str, Engine, Role)] = &[
            ("/docker/{ID}", Engine::Docker, Role::Container),
            (
                "/system.slice/docker-{ID}.scope",
                Engine::Docker,
                Role::Container,
            ),
            (
                "/libpod_parent/libpod-{ID}",
                Engine::Podman,
                Role::Container,
            ),
            (
                "/machine.slice/libpod-{ID}.scope",
                Engine::Podman,
                Role::Container,
            ),
            (
                "/machine.slice/libpod-conmon-{ID}.scope",
                Engine::Podman,
                Role::Engine,
            ),
            ("/libpod_parent/conmon", Engine::Podman, Role::Engine),
            ("/libpod_parent", Engine::Podman, Role::Engine),
            ("/docker", Engine::Docker, Role::Engine),
            ("/system.slice/docker.service", Engine::Docker, Role::Engine),
            (
                "/system.slice/containerd.service",
                Engine::Containerd,
                Role::Engine,
            ),
            ("/boxwatch", Engine::Boxwatch, Role::Engine),
            ("/boxwatch/4242-987654-0", Engine::Boxwatch, Role::Engine),
            (
                "/boxwatch/4242-987654-0/memory-hog",
                Engine::Boxwatch,
                Role::Container,
            ),
            (
                "/machine.slice/machine-web\\x2d1.scope",
                Engine::Systemd,
                Role::Container,
            ),
        ];
        for (path, engine, role) in cases {
            let path = path.replace("{ID}", ID);
            let id = id_of(&path);
            assert_eq!((id.engine, id.role), (Some(*engine), *role), "{path}");
            assert_eq!(
                id.container_id.is_some(),
                path.contains(ID) || *role == Role::Container && *engine != Engine::Podman,
                "{path}"
            );
        }
        let bw = id_of("/boxwatch/4242-987654-0/memory-hog");
        assert_eq!(bw.container_id.as_deref(), Some("4242-987654-0/memory-hog"));
        assert_eq!(bw.name.as_deref(), Some("memory-hog"));
        assert_eq!(
            id_of("/machine.slice/machine-web\\x2d1.scope")
                .name
                .as_deref(),
            Some("web-1")
        );
    }

    #[test]
    fn kubernetes_pods_and_containers_with_both_drivers() {
        let us = UID.replace('-', "_");
        let cases = [
            (format!("/kubepods/burstable/pod{UID}/{ID}"), Engine::Cri, QosClass::Burstable),
            (format!("/kubepods/pod{UID}/{ID}"), Engine::Cri, QosClass::Guaranteed),
            (format!("/kubepods/besteffort/pod{UID}/crio-{ID}"), Engine::CriO, QosClass::BestEffort),
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{us}.slice/cri-containerd-{ID}.scope"),
                Engine::Containerd,
                QosClass::Burstable,
            ),
            (
                format!("/kubepods.slice/kubepods-pod{us}.slice/crio-{ID}.scope"),
                Engine::CriO,
                QosClass::Guaranteed,
            ),
            (
                format!("/kubelet.slice/kubelet-kubepods.slice/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{us}.slice/docker-{ID}.scope"),
                Engine::Docker,
                QosClass::BestEffort,
            ),
        ];
        for (path, engine, qos) in cases {
            let id = id_of(&path);
            assert_eq!(id.role, Role::Container, "{path}");
            assert_eq!(id.engine, Some(engine), "{path}");
            assert_eq!(id.container_id.as_deref(), Some(ID), "{path}");
            assert_eq!(id.pod_uid.as_deref(), Some(UID), "{path}");
            assert_eq!(id.qos_class, Some(qos), "{path}");
            assert!(id.is_top);
            let pod = path.rsplit_once('/').unwrap().0;
            let p = id_of(pod);
            assert_eq!(
                (p.role, p.engine, p.pod_uid.as_deref(), p.qos_class),
                (Role::Pod, None, Some(UID), Some(qos)),
                "{pod}"
            );
        }
        let q = id_of("/kubepods.slice/kubepods-burstable.slice");
        assert_eq!(
            (q.role, q.qos_class),
            (Role::Qos, Some(QosClass::Burstable))
        );
        let conmon = id_of(&format!(
            "/kubepods.slice/kubepods-pod{us}.slice/crio-conmon-{ID}.scope"
        ));
        assert_eq!(
            (conmon.role, conmon.engine),
            (Role::Engine, Some(Engine::CriO))
        );
    }

    #[test]
    fn below_a_container_is_the_container_but_not_its_top() {
        let id = id_of(&format!("/machine.slice/libpod-{ID}.scope/container"));
        assert_eq!(
            (id.engine, id.container_id.as_deref(), id.is_top),
            (Some(Engine::Podman), Some(ID), false)
        );
        // Docker in Docker: the innermost container.
        let inner = "9".repeat(64);
        let id = id_of(&format!("/docker/{ID}/docker/{inner}"));
        assert_eq!(id.container_id.as_deref(), Some(inner.as_str()));
    }

    #[test]
    fn unknown_paths_have_no_identity() {
        for p in [
            "/",
            "/user.slice/user-1000.slice/session-3.scope",
            "/system.slice/sshd.service",
            "/process_api/fe668a0755b8b06b2cf051f01e131aeb",
            "/boxwatch/bench-1/cg0001",
            "/docker/not-an-id",
            "/kubepods/burstable/not-a-pod",
            "/kubepods/burstable/pod1234/abc",
        ] {
            assert_eq!(Identity::of(p), None, "{p}");
        }
    }

    /// The directories Docker 20.10 (cgroupfs driver) and Podman 4.3
    /// (`--cgroup-manager cgroupfs`) made on a Debian bookworm host with
    /// cgroup v1, two Docker containers and one Podman container running,
    /// with the labels each gets.
    #[test]
    fn real_paths_from_a_docker_and_podman_host() {
        let paths = include_str!("../tests/fixtures/cgroup-paths-debian-docker-podman-v1.txt");
        let labelled: Vec<String> = paths
            .lines()
            .map(|p| match Identity::of(p) {
                Some(id) => format!("{p} {:?} top={}", id.labels(None), id.is_top),
                None => format!("{p} -"),
            })
            .collect();
        insta::assert_snapshot!(labelled.join("\n"));
    }

    /// A cgroup name: letters that spell no keyword, id, pod or run id.
    fn plain() -> impl Strategy<Value = String> {
        "[g-z_]{1,12}(\\.(slice|mount))?"
    }

    fn hex_id() -> impl Strategy<Value = String> {
        "[0-9a-f]{64}"
    }

    fn uuid() -> impl Strategy<Value = String> {
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    }

    fn prefix() -> impl Strategy<Value = String> {
        proptest::collection::vec(plain(), 0..3)
            .prop_map(|v| v.iter().map(|s| format!("/{s}")).collect::<String>())
    }

    /// A container cgroup of every convention with what it must be
    /// parsed as: (path, engine, id).
    fn container_path() -> impl Strategy<Value = (String, Engine, String)> {
        (
            prefix(),
            hex_id(),
            0..7usize,
            "[a-z][a-z0-9-]{0,20}",
            1u32..99999,
            1u64..1 << 40,
        )
            .prop_map(|(pre, id, conv, name, pid, start)| match conv {
                0 => (format!("{pre}/docker/{id}"), Engine::Docker, id),
                1 => (
                    format!("{pre}/system.slice/docker-{id}.scope"),
                    Engine::Docker,
                    id,
                ),
                2 => (
                    format!("{pre}/libpod_parent/libpod-{id}"),
                    Engine::Podman,
                    id,
                ),
                3 => (
                    format!("{pre}/machine.slice/libpod-{id}.scope"),
                    Engine::Podman,
                    id,
                ),
                4 => (
                    format!("{pre}/system.slice/cri-containerd-{id}.scope"),
                    Engine::Containerd,
                    id,
                ),
                5 => (format!("{pre}/crio-{id}.scope"), Engine::CriO, id),
                _ => {
                    let cid = format!("{pid}-{start}-0/{name}");
                    (
                        format!("{pre}/boxwatch/{pid}-{start}-0/{name}"),
                        Engine::Boxwatch,
                        cid,
                    )
                }
            })
    }

    /// A Kubernetes container cgroup with both drivers and every QoS
    /// class: (path, engine, id, pod uid, qos).
    fn kube_path() -> impl Strategy<Value = (String, Engine, String, String, QosClass)> {
        (
            prefix(),
            hex_id(),
            uuid(),
            0..3usize,
            any::<bool>(),
            0..3usize,
        )
            .prop_map(|(pre, id, uid, q, systemd, rt)| {
                let qos = [
                    QosClass::Guaranteed,
                    QosClass::Burstable,
                    QosClass::BestEffort,
                ][q];
                let path = if systemd {
                    let us = uid.replace('-', "_");
                    let (qdir, podp) = match qos {
                        QosClass::Guaranteed => (String::new(), "kubepods-pod".to_string()),
                        _ => (
                            format!("/kubepods-{}.slice", qos.as_str()),
                            format!("kubepods-{}-pod", qos.as_str()),
                        ),
                    };
                    let leaf = [
                        "cri-containerd-{}.scope",
                        "crio-{}.scope",
                        "docker-{}.scope",
                    ][rt]
                        .replace("{}", &id);
                    format!("{pre}/kubepods.slice{qdir}/{podp}{us}.slice/{leaf}")
                } else {
                    let qdir = match qos {
                        QosClass::Guaranteed => String::new(),
                        _ => format!("/{}", qos.as_str()),
                    };
                    let leaf = [id.clone(), format!("crio-{id}"), id.clone()][rt].clone();
                    format!("{pre}/kubepods{qdir}/pod{uid}/{leaf}")
                };
                let engine = match (systemd, rt) {
                    (true, 0) => Engine::Containerd,
                    (true, 1) | (false, 1) => Engine::CriO,
                    (true, _) => Engine::Docker,
                    (false, _) => Engine::Cri,
                };
                (path, engine, id, uid, qos)
            })
    }

    proptest! {
        #[test]
        fn every_convention_is_read_back((path, engine, id) in container_path(), sub in proptest::option::of(plain())) {
            let path = match &sub {
                Some(s) => format!("{path}/{s}"),
                None => path,
            };
            let got = Identity::of(&path).unwrap();
            prop_assert_eq!(got.role, Role::Container);
            prop_assert_eq!(got.engine, Some(engine));
            prop_assert_eq!(got.container_id.as_deref(), Some(id.as_str()));
            prop_assert_eq!(got.is_top, sub.is_none());
            prop_assert_eq!(got.pod_uid, None);
        }

        #[test]
        fn every_kubernetes_layout_is_read_back((path, engine, id, uid, qos) in kube_path()) {
            let got = Identity::of(&path).unwrap();
            prop_assert_eq!(got.role, Role::Container);
            prop_assert_eq!(got.engine, Some(engine));
            prop_assert_eq!(got.container_id.as_deref(), Some(id.as_str()));
            prop_assert_eq!(got.pod_uid.as_deref(), Some(uid.as_str()));
            prop_assert_eq!(got.qos_class, Some(qos));
            let pod = Identity::of(path.rsplit_once('/').unwrap().0).unwrap();
            prop_assert_eq!(pod.role, Role::Pod);
            prop_assert_eq!(pod.pod_uid.as_deref(), Some(uid.as_str()));
        }

        #[test]
        fn plain_paths_keep_only_their_cgroup(p in prefix()) {
            prop_assert_eq!(Identity::of(&p), None);
        }

        #[test]
        fn any_path_parses_without_panic(p in "(/[\\PC]{0,70}){0,6}") {
            if let Some(id) = Identity::of(&p) {
                let labels = id.labels(None);
                prop_assert!(labels.windows(2).all(|w| w[0].0 < w[1].0));
            }
        }
    }

    fn docker_root(dir: &Path, id: &str, name: &str) {
        let c = dir.join("containers").join(id);
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(
            c.join("config.v2.json"),
            format!(r#"{{"ID":"{id}","Name":"/{name}","State":{{}}}}"#),
        )
        .unwrap();
    }

    #[test]
    fn names_are_read_once_per_container() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("docker");
        let storage = dir.path().join("storage");
        docker_root(&docker, ID, "web");
        std::fs::create_dir_all(storage.join("overlay-containers")).unwrap();
        let pod_id = "d".repeat(64);
        std::fs::write(
            storage.join("overlay-containers/containers.json"),
            format!(r#"[{{"id":"{pod_id}","names":["db"],"layer":"x"}}]"#),
        )
        .unwrap();
        let mut cache = NameCache::new(NameSources {
            docker_data_root: docker.clone(),
            containers_storage: storage,
            containerd_state: dir.path().join("containerd"),
        });
        for _ in 0..3 {
            assert_eq!(cache.name(Engine::Docker, ID), Some("web"));
            assert_eq!(cache.name(Engine::Podman, &pod_id), Some("db"));
            assert_eq!(cache.name(Engine::Docker, &pod_id), None);
        }
        assert_eq!(
            cache.reads(),
            3,
            "one read per container, whatever the asks"
        );
        // A renamed container keeps its cached name until it is forgotten.
        docker_root(&docker, ID, "renamed");
        assert_eq!(cache.name(Engine::Docker, ID), Some("web"));
        cache.retain(|_, id| id != ID);
        assert_eq!(cache.name(Engine::Docker, ID), Some("renamed"));
        assert_eq!(cache.reads(), 4);
    }

    /// Kubernetes containers by the files of each runtime: containerd's
    /// OCI bundle annotations (CRI plugin; nerdctl's name), CRI-O's
    /// `k8s_` name in containers/storage, the kubelet's labels on Docker.
    #[test]
    fn kubernetes_pod_and_namespace_from_each_runtimes_files() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = |ns: &str, id: &str, annotations: &str| {
            let b = dir
                .path()
                .join("containerd/io.containerd.runtime.v2.task")
                .join(ns)
                .join(id);
            std::fs::create_dir_all(&b).unwrap();
            std::fs::write(
                b.join("config.json"),
                format!(r#"{{"ociVersion":"1.0.2","annotations":{{{annotations}}}}}"#),
            )
            .unwrap();
        };
        let (k8s, nerd, crio, dock) = (
            "a".repeat(64),
            "b".repeat(64),
            "c".repeat(64),
            "e".repeat(64),
        );
        bundle(
            "k8s.io",
            &k8s,
            r#""io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"web","io.kubernetes.cri.sandbox-name":"web-7d9f","io.kubernetes.cri.sandbox-namespace":"shop""#,
        );
        bundle("default", &nerd, r#""nerdctl/name":"cache""#);
        let storage = dir.path().join("storage/overlay-containers");
        std::fs::create_dir_all(&storage).unwrap();
        std::fs::write(
            storage.join("containers.json"),
            format!(r#"[{{"id":"{crio}","names":["k8s_db_db-0_data_{UID}_1"]}}]"#),
        )
        .unwrap();
        let c = dir.path().join("docker/containers").join(&dock);
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(
            c.join("config.v2.json"),
            r#"{"Name":"/k8s_api_api-5_default_x_0","Config":{"Labels":{"io.kubernetes.container.name":"api","io.kubernetes.pod.name":"api-5","io.kubernetes.pod.namespace":"default"}}}"#,
        )
        .unwrap();
        let mut cache = NameCache::new(NameSources {
            docker_data_root: dir.path().join("docker"),
            containers_storage: dir.path().join("storage"),
            containerd_state: dir.path().join("containerd"),
        });
        let names = |n: &str, p: Option<&str>, ns: Option<&str>| Names {
            name: Some(n.into()),
            pod: p.map(Into::into),
            namespace: ns.map(Into::into),
        };
        assert_eq!(
            cache.names(Engine::Containerd, &k8s),
            &names("web", Some("web-7d9f"), Some("shop"))
        );
        // The cgroupfs driver's bare id: containerd's first, then Docker's.
        assert_eq!(
            cache.names(Engine::Cri, &k8s),
            &names("web", Some("web-7d9f"), Some("shop"))
        );
        assert_eq!(
            cache.names(Engine::Cri, &dock),
            &names("api", Some("api-5"), Some("default"))
        );
        assert_eq!(
            cache.names(Engine::Containerd, &nerd),
            &names("cache", None, None)
        );
        assert_eq!(
            cache.names(Engine::CriO, &crio),
            &names("db", Some("db-0"), Some("data"))
        );
        assert_eq!(cache.names(Engine::Containerd, &crio), &Names::default());
        // The labels, sorted, with the pod's identity from the path.
        let path = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{k8s}.scope",
            UID.replace('-', "_")
        );
        let found = cache.names(Engine::Containerd, &k8s).clone();
        let labels = id_of(&path).labels(Some(&found));
        let keys: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "container_id",
                "engine",
                "name",
                "namespace",
                "pod",
                "pod_uid",
                "qos_class"
            ]
        );
        assert_eq!(labels[4].1, "web-7d9f");
    }

    #[test]
    fn only_well_formed_kubernetes_names_are_split() {
        assert_eq!(Names::from_name("/web").name.as_deref(), Some("web"));
        let plain = Names::from_name("k8s_but_not_really");
        assert_eq!(
            (plain.name.as_deref(), plain.pod),
            (Some("k8s_but_not_really"), None)
        );
        let k = Names::from_name("k8s_POD_web-1_ns_uid_0");
        assert_eq!(
            (k.name.as_deref(), k.pod.as_deref(), k.namespace.as_deref()),
            (Some("POD"), Some("web-1"), Some("ns"))
        );
    }
}
