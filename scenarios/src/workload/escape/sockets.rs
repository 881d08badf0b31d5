//! Engine sockets: none of docker.sock, containerd.sock, podman.sock,
//! crio.sock may be reachable inside. A socket found is connected to and
//! closed at once; nothing is sent.

use super::{list, HostFacts};
use serde_json::{Map, Value};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Where engines put their API sockets.
pub const WELL_KNOWN: [&str; 10] = [
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/docker/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/var/run/podman/podman.sock",
    "/run/crio/crio.sock",
    "/var/run/crio/crio.sock",
    "/run/buildkit/buildkitd.sock",
];

fn is_socket(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// The well-known engine sockets present on the host.
pub fn present_on_host() -> Vec<PathBuf> {
    WELL_KNOWN
        .iter()
        .map(PathBuf::from)
        .filter(|p| is_socket(p))
        .collect()
}

/// Mount points inside whose name says engine socket (a bind of one under
/// another name, e.g. `-v /run/docker.sock:/tmp/d.sock`).
fn socket_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|t| probes::host::parse::parse_mountinfo(&t).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.extension().is_some_and(|e| e == "sock"))
        .collect()
}

pub fn probe(r: &mut Map<String, Value>, facts: &HostFacts) {
    let mut candidates: Vec<PathBuf> = WELL_KNOWN.iter().map(PathBuf::from).collect();
    candidates.extend(facts.sockets.iter().cloned());
    candidates.extend(socket_mounts());
    candidates.sort();
    candidates.dedup();
    let mut reachable = Vec::new();
    for p in candidates.iter().filter(|p| is_socket(p)) {
        match std::os::unix::net::UnixStream::connect(p) {
            Ok(s) => {
                drop(s);
                reachable.push(format!("{} (connected)", p.display()));
            }
            Err(e) => reachable.push(format!("{} (present, connect: {e})", p.display())),
        }
    }
    r.insert("engine_sockets".into(), list(&reachable));
    let host: Vec<String> = facts
        .sockets
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    r.insert("host_engine_sockets".into(), list(&host));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_is_found_and_reached() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("docker.sock");
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let facts = HostFacts {
            block_dev: None,
            sockets: vec![path.clone()],
        };
        let mut r = Map::new();
        probe(&mut r, &facts);
        let found = r["engine_sockets"].as_str().unwrap();
        assert!(found.contains("docker.sock (connected)"), "{found}");
    }
}
