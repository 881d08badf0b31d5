//! The OCI bundle for a [`ContainerSpec`]: `config.json` (written with the
//! `oci-spec` crate) and a `rootfs/` skeleton.
//!
//! The container gets what the builtin runtime gives it: the requested
//! namespaces, the minimal root (read-only binds of the host's /usr, /lib*,
//! /etc; /bin and /sbin as symlinks on merged-/usr hosts), a fresh /proc, a
//! read-only /sys, a small /dev, a /tmp, the boxwatch binary at
//! [`CONTAINER_EXE`], Docker's capability set plus the kept ones,
//! no_new_privs, boxwatch's seccomp profile (`crate::seccomp`) as
//! `linux.seccomp`, runc's masked and read-only paths, the default device
//! allow-list, and the limits in `linux.resources` (swap = the memory
//! limit, so no swap), in the cgroup `cgroupsPath`.

use crate::error::{Error, Result};
use crate::init::DEFAULT_PATH;
use crate::rootfs::{CONTAINER_EXE, MASKED_PATHS, READONLY_PATHS};
use crate::spec::{ContainerSpec, IdMap, Namespace, RootfsSpec, DEFAULT_CAPABILITIES};
use oci_spec::runtime::{
    Capability as OciCap, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Host top-level entries the minimal root takes over: a directory is bound
/// read-only, a symlink (merged /usr) is recreated in the bundle's rootfs.
pub(crate) const HOST_DIRS: [&str; 8] = [
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc",
];

/// `argv[1]` of boxwatch's tiny init when an OCI runtime runs it as PID 1
/// (the equivalent of `docker run --init`).
pub(crate) const OCI_INIT_ARG: &str = "__boxwatch-oci-init";

/// What the bundle needs besides the spec.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// The boxwatch binary on the host, bound at [`CONTAINER_EXE`].
    pub exe: PathBuf,
    /// `linux.cgroupsPath`: `/boxwatch/<run-id>/<name>`.
    pub cgroups_path: PathBuf,
    /// The caller's TERM, passed on.
    pub term: Option<String>,
    /// A file holding the container's hostname, bound over /etc/hostname
    /// (None: the host has no /etc/hostname file).
    pub hostname_file: Option<PathBuf>,
    /// How each host entry of `HOST_DIRS` looks: a directory, a symlink
    /// to a target, or absent.
    pub host_entries: Vec<(String, HostEntry)>,
}

impl BundleOptions {
    /// The options the OCI backend writes its bundles with, for a bundle
    /// at `dir` whose container's cgroup is `cgroups_path`: the caller's
    /// TERM, a hostname file in the bundle when the host has
    /// /etc/hostname, and `host_entries` (see [`host_entries`]).
    pub fn for_host(
        exe: &Path,
        cgroups_path: PathBuf,
        dir: &Path,
        host_entries: Vec<(String, HostEntry)>,
    ) -> BundleOptions {
        BundleOptions {
            exe: exe.to_path_buf(),
            cgroups_path,
            term: std::env::var("TERM").ok(),
            hostname_file: Path::new("/etc/hostname")
                .is_file()
                .then(|| dir.join("hostname")),
            host_entries,
        }
    }
}

/// A top-level host entry, as [`host_entries`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEntry {
    /// A directory.
    Dir,
    /// A symbolic link to this target.
    Symlink(PathBuf),
    /// Not on this host.
    Absent,
}

/// How the host's top-level `HOST_DIRS` look on this machine.
pub fn host_entries() -> Vec<(String, HostEntry)> {
    HOST_DIRS
        .iter()
        .map(|d| {
            let p = Path::new("/").join(d);
            let e = match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => std::fs::read_link(&p)
                    .map(HostEntry::Symlink)
                    .unwrap_or(HostEntry::Absent),
                Ok(m) if m.is_dir() => HostEntry::Dir,
                _ => HostEntry::Absent,
            };
            (d.to_string(), e)
        })
        .collect()
}

fn oci_err(e: oci_spec::OciSpecError) -> Error {
    Error::OciConfig {
        what: "building the OCI config".into(),
        source: e.into(),
    }
}

fn serialising_err(e: serde_json::Error) -> Error {
    Error::OciConfig {
        what: "serialising the OCI config".into(),
        source: e.into(),
    }
}

/// The OCI namespace type of a boxwatch namespace.
pub(crate) fn namespace_type(ns: Namespace) -> LinuxNamespaceType {
    match ns {
        Namespace::Pid => LinuxNamespaceType::Pid,
        Namespace::Mount => LinuxNamespaceType::Mount,
        Namespace::Uts => LinuxNamespaceType::Uts,
        Namespace::Ipc => LinuxNamespaceType::Ipc,
        Namespace::Net => LinuxNamespaceType::Network,
        Namespace::Cgroup => LinuxNamespaceType::Cgroup,
        Namespace::User => LinuxNamespaceType::User,
        Namespace::Time => LinuxNamespaceType::Time,
    }
}

/// The capabilities the container keeps, as OCI names them.
fn capabilities(spec: &ContainerSpec) -> Result<HashSet<OciCap>> {
    DEFAULT_CAPABILITIES
        .iter()
        .copied()
        .chain(spec.keep_caps.iter().map(|c| c.0))
        .map(|c| {
            serde_json::from_value::<OciCap>(serde_json::Value::String(c.to_string())).map_err(
                |e| Error::OciConfig {
                    what: format!("capability {c} has no OCI name"),
                    source: e.into(),
                },
            )
        })
        .collect()
}

/// The entry's environment, as the builtin runtime sets it.
pub(crate) fn entry_env(spec: &ContainerSpec, term: Option<&str>) -> Vec<String> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), "/root".into()),
        ("HOSTNAME".into(), spec.hostname().into()),
    ];
    if let Some(t) = term {
        env.push(("TERM".into(), t.into()));
    }
    for (k, v) in &spec.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn mount(dst: &str, typ: &str, src: impl AsRef<Path>, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(dst)
        .typ(typ)
        .source(src.as_ref())
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(oci_err)
}

/// The mounts of the container, in order.
fn mounts(spec: &ContainerSpec, opts: &BundleOptions) -> Result<Vec<Mount>> {
    let ns = &spec.namespaces;
    let mut m = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
    ];
    if ns.contains(Namespace::Ipc) {
        m.push(mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?);
    }
    m.push(mount(
        "/sys",
        "sysfs",
        "sysfs",
        &["nosuid", "noexec", "nodev", "ro"],
    )?);
    if spec.rootfs == RootfsSpec::Minimal {
        m.push(mount(
            "/tmp",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=1777"],
        )?);
        for (name, entry) in &opts.host_entries {
            if *entry == HostEntry::Dir {
                let host = Path::new("/").join(name);
                m.push(mount(&format!("/{name}"), "bind", host, &["rbind", "ro"])?);
            }
        }
    }
    m.push(mount(
        "/.boxwatch",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "mode=0755", "size=1m"],
    )?);
    m.push(mount(CONTAINER_EXE, "bind", &opts.exe, &["bind", "ro"])?);
    if let (Some(file), true) = (&opts.hostname_file, ns.contains(Namespace::Uts)) {
        m.push(mount("/etc/hostname", "bind", file, &["bind", "ro"])?);
    }
    // lxcfs's virtualized files over the fresh /proc and /sys, as Docker
    // users bind them (runc and crun allow exactly these under /proc).
    if let Some(lxcfs) = &spec.lxcfs {
        for file in crate::lxcfs::FILES {
            let src = lxcfs.join(file);
            if src.exists() {
                m.push(mount(&format!("/{file}"), "bind", src, &["bind", "rw"])?);
            }
        }
    }
    Ok(m)
}

/// Default id maps of a user namespace, as the builtin runtime writes them.
fn id_maps(given: &[IdMap], euid_or_egid: u32) -> Vec<IdMap> {
    if !given.is_empty() {
        return given.to_vec();
    }
    if euid_or_egid == 0 {
        vec![IdMap {
            inside: 0,
            outside: 100_000,
            count: 65_536,
        }]
    } else {
        vec![IdMap {
            inside: 0,
            outside: euid_or_egid,
            count: 1,
        }]
    }
}

fn oci_id_maps(maps: &[IdMap]) -> Result<Vec<oci_spec::runtime::LinuxIdMapping>> {
    maps.iter()
        .map(|m| {
            LinuxIdMappingBuilder::default()
                .container_id(m.inside)
                .host_id(m.outside)
                .size(m.count)
                .build()
                .map_err(oci_err)
        })
        .collect()
}

/// The OCI config for `spec`.
pub(crate) fn config(spec: &ContainerSpec, opts: &BundleOptions) -> Result<Spec> {
    let process = process(spec, opts)?;
    let linux = linux(spec, opts)?;
    let root_path = match &spec.rootfs {
        RootfsSpec::Minimal => PathBuf::from("rootfs"),
        RootfsSpec::Dir(dir) => dir.clone(),
        RootfsSpec::Host => {
            return Err(Error::InvalidSpec(
                "an OCI runtime needs a root filesystem of its own: the host rootfs is only for the builtin runtime".into(),
            ))
        }
    };
    let mut builder = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(root_path)
                .readonly(false)
                .build()
                .map_err(oci_err)?,
        )
        .process(process)
        .mounts(mounts(spec, opts)?)
        .linux(linux);
    if spec.namespaces.contains(Namespace::Uts) {
        builder = builder.hostname(spec.hostname());
    }
    builder.build().map_err(oci_err)
}

/// The container's process: the entry (behind boxwatch's init when asked),
/// root, no_new_privs, the capability set.
fn process(spec: &ContainerSpec, opts: &BundleOptions) -> Result<oci_spec::runtime::Process> {
    let caps = capabilities(spec)?;
    let mut args = Vec::new();
    if spec.init {
        args.extend([CONTAINER_EXE.to_string(), OCI_INIT_ARG.into(), "--".into()]);
    }
    args.extend(spec.command.iter().cloned());
    ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .map_err(oci_err)?,
        )
        .args(args)
        .env(entry_env(spec, opts.term.as_deref()))
        .cwd("/")
        .no_new_privileges(true)
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .inheritable(HashSet::new())
                .ambient(HashSet::new())
                .build()
                .map_err(oci_err)?,
        )
        .build()
        .map_err(oci_err)
}

/// The cgroup limits, and the device allow-list.
fn resources(l: &crate::spec::Limits) -> Result<oci_spec::runtime::LinuxResources> {
    let mut resources = LinuxResourcesBuilder::default().devices(device_rules()?);
    if l.cpu.is_some() || l.cpuset.is_some() {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(q) = l.cpu {
            cpu = cpu.quota(q.quota_us() as i64).period(q.period_us());
        }
        if let Some(set) = &l.cpuset {
            cpu = cpu.cpus(set.to_string());
        }
        resources = resources.cpu(cpu.build().map_err(oci_err)?);
    }
    if let Some(mem) = l.memory {
        let bytes = mem.bytes() as i64;
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(bytes)
                .swap(bytes)
                .build()
                .map_err(oci_err)?,
        );
    }
    if let Some(p) = l.pids {
        resources = resources.pids(
            LinuxPidsBuilder::default()
                .limit(p as i64)
                .build()
                .map_err(oci_err)?,
        );
    }
    resources.build().map_err(oci_err)
}

/// The namespaces, resources, cgroup path, masked and read-only paths and
/// id maps.
fn linux(spec: &ContainerSpec, opts: &BundleOptions) -> Result<oci_spec::runtime::Linux> {
    let namespaces = spec
        .namespaces
        .iter()
        .map(|ns| {
            LinuxNamespaceBuilder::default()
                .typ(namespace_type(ns))
                .build()
                .map_err(oci_err)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources(&spec.limits)?)
        .cgroups_path(opts.cgroups_path.clone())
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        );
    if spec.namespaces.contains(Namespace::User) {
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        linux = linux
            .uid_mappings(oci_id_maps(&id_maps(&spec.uid_map, euid))?)
            .gid_mappings(oci_id_maps(&id_maps(&spec.gid_map, egid))?);
    }
    linux.build().map_err(oci_err)
}

/// The device cgroup rules: deny everything, then allow the default
/// devices (runc and crun add the same ones themselves; written out so the
/// bundle says what the container may open).
fn device_rules() -> Result<Vec<oci_spec::runtime::LinuxDeviceCgroup>> {
    use oci_spec::runtime::LinuxDeviceType;
    let mut rules = vec![LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(oci_err)?];
    for (typ, major, minor, access) in crate::spec::DEFAULT_DEVICES {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(if typ == 'c' {
                LinuxDeviceType::C
            } else {
                LinuxDeviceType::B
            })
            .major(major)
            .access(access);
        if let Some(minor) = minor {
            b = b.minor(minor);
        }
        rules.push(b.build().map_err(oci_err)?);
    }
    Ok(rules)
}

/// `config` as JSON, with what `oci-spec` 0.7 cannot express added:
/// `linux.timeOffsets` in the runtime spec's shape
/// (`{"monotonic": {"secs": N, "nanosecs": 0}}`).
pub(crate) fn config_json(spec: &ContainerSpec, opts: &BundleOptions) -> Result<serde_json::Value> {
    let cfg = config(spec, opts)?;
    let mut v = serde_json::to_value(&cfg).map_err(serialising_err)?;
    if spec.namespaces.contains(Namespace::Time) {
        let o = spec.time_offsets;
        v["linux"]["timeOffsets"] = serde_json::json!({
            "monotonic": {"secs": o.monotonic_secs, "nanosecs": 0},
            "boottime": {"secs": o.boottime_secs, "nanosecs": 0},
        });
    }
    let seccomp = crate::seccomp::oci_json(spec);
    if !seccomp.is_null() {
        v["linux"]["seccomp"] = seccomp;
    }
    Ok(v)
}

/// Writes the bundle at `dir`: `config.json`, the hostname file, and for
/// the minimal root a `rootfs/` with the mount points and the merged-/usr
/// symlinks. `dir`'s parents are shared with other boxwatch processes,
/// which remove them when they find them empty: creating `dir` starts over
/// when one vanishes half-way.
pub fn write(dir: &Path, spec: &ContainerSpec, opts: &BundleOptions) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::OciBundle { path, source }
    };
    crate::shared_dir::create_dir_all_retrying(dir).map_err(io(dir))?;
    if let Some(file) = &opts.hostname_file {
        std::fs::write(file, format!("{}\n", spec.hostname())).map_err(io(file))?;
    }
    if spec.rootfs == RootfsSpec::Minimal {
        let root = dir.join("rootfs");
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        for (name, entry) in &opts.host_entries {
            let p = root.join(name);
            match entry {
                HostEntry::Dir => std::fs::create_dir_all(&p).map_err(io(&p))?,
                HostEntry::Symlink(target) => {
                    std::os::unix::fs::symlink(target, &p).map_err(io(&p))?
                }
                HostEntry::Absent => {}
            }
        }
        for d in ["root", "run", "var", "home", "tmp", "proc", "sys", "dev"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
    }
    let json = config_json(spec, opts)?;
    let path = dir.join("config.json");
    let text = serde_json::to_vec_pretty(&json).map_err(serialising_err)?;
    std::fs::write(&path, text).map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Capability;

    fn opts() -> BundleOptions {
        BundleOptions {
            exe: "/usr/local/bin/boxwatch".into(),
            cgroups_path: "/boxwatch/1-2-0/c1".into(),
            term: None,
            hostname_file: Some("/run/b/hostname".into()),
            host_entries: vec![
                ("usr".into(), HostEntry::Dir),
                ("bin".into(), HostEntry::Symlink("usr/bin".into())),
                ("lib32".into(), HostEntry::Absent),
                ("etc".into(), HostEntry::Dir),
            ],
        }
    }

    fn spec() -> ContainerSpec {
        let mut s = ContainerSpec::new("c1", vec!["sleep".into(), "1".into()]);
        s.limits.cpu = Some("0.2".parse().unwrap());
        s.limits.memory = Some("64M".parse().unwrap());
        s.limits.pids = Some(64);
        s.limits.cpuset = Some("0".parse().unwrap());
        s
    }

    #[test]
    fn the_limits_land_in_linux_resources_with_swap_equal_to_memory() {
        let v = config_json(&spec(), &opts()).unwrap();
        let r = &v["linux"]["resources"];
        assert_eq!(r["cpu"]["quota"], 20000);
        assert_eq!(r["cpu"]["period"], 100000);
        assert_eq!(r["cpu"]["cpus"], "0");
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["memory"]["swap"], 64 << 20);
        assert_eq!(r["pids"]["limit"], 64);
        assert_eq!(v["linux"]["cgroupsPath"], "/boxwatch/1-2-0/c1");
    }

    #[test]
    fn no_limit_means_no_resource_entry() {
        let s = ContainerSpec::new("c1", vec!["true".into()]);
        let v = config_json(&s, &opts()).unwrap();
        let r = &v["linux"]["resources"];
        assert!(r.get("cpu").is_none() && r.get("memory").is_none() && r.get("pids").is_none());
    }

    #[test]
    fn namespaces_follow_the_spec() {
        let mut s = spec();
        s.namespaces.remove(Namespace::Net);
        let v = config_json(&s, &opts()).unwrap();
        let types: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["pid", "mount", "uts", "ipc", "cgroup"]);
        assert_eq!(v["hostname"], "c1");
    }

    #[test]
    fn docker_capabilities_plus_kept_ones_and_no_new_privileges() {
        let mut s = spec();
        s.keep_caps.push("sys_admin".parse::<Capability>().unwrap());
        let v = config_json(&s, &opts()).unwrap();
        let p = &v["process"];
        assert_eq!(p["noNewPrivileges"], true);
        let mut eff: Vec<&str> = p["capabilities"]["effective"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        eff.sort();
        assert_eq!(eff.len(), DEFAULT_CAPABILITIES.len() + 1);
        assert!(eff.contains(&"CAP_SYS_ADMIN") && eff.contains(&"CAP_CHOWN"));
        assert!(!eff.contains(&"CAP_SYS_TIME"));
        assert_eq!(p["capabilities"]["ambient"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn mounts_bind_host_dirs_read_only_and_the_boxwatch_binary() {
        let v = config_json(&spec(), &opts()).unwrap();
        let mounts = v["mounts"].as_array().unwrap();
        let find = |d: &str| mounts.iter().find(|m| m["destination"] == d);
        let usr = find("/usr").unwrap();
        assert_eq!(usr["type"], "bind");
        assert!(usr["options"].as_array().unwrap().iter().any(|o| o == "ro"));
        assert!(find("/bin").is_none(), "a symlinked /bin is not a mount");
        assert!(find("/lib32").is_none());
        let exe = find(CONTAINER_EXE).unwrap();
        assert_eq!(exe["source"], "/usr/local/bin/boxwatch");
        assert!(find("/etc/hostname").is_some());
        assert!(find("/proc").is_some() && find("/sys").is_some() && find("/tmp").is_some());
        // /etc must be mounted before the hostname file on top of it.
        let pos = |d: &str| mounts.iter().position(|m| m["destination"] == d).unwrap();
        assert!(pos("/etc") < pos("/etc/hostname"));
    }

    #[test]
    fn lxcfs_files_are_bound_over_proc_and_sys_after_them() {
        let lxcfs = tempfile::tempdir().unwrap();
        for f in [
            "proc/meminfo",
            "proc/uptime",
            "sys/devices/system/cpu/online",
        ] {
            let p = lxcfs.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let mut s = spec();
        s.lxcfs = Some(lxcfs.path().to_path_buf());
        let v = config_json(&s, &opts()).unwrap();
        let mounts = v["mounts"].as_array().unwrap();
        let pos = |d: &str| mounts.iter().position(|m| m["destination"] == d);
        for d in [
            "/proc/meminfo",
            "/proc/uptime",
            "/sys/devices/system/cpu/online",
        ] {
            let at = pos(d).unwrap_or_else(|| panic!("{d} not bound"));
            assert_eq!(mounts[at]["type"], "bind");
            assert!(
                at > pos("/proc").unwrap() && at > pos("/sys").unwrap(),
                "{d} before its fs"
            );
        }
        assert!(
            pos("/proc/cpuinfo").is_none(),
            "only files lxcfs has are bound"
        );
        assert!(pos("/proc/meminfo").is_some());
        let without = config_json(&spec(), &opts()).unwrap();
        assert!(!without["mounts"].to_string().contains("meminfo"));
    }

    #[test]
    fn init_runs_boxwatch_tiny_init_before_the_command() {
        let mut s = spec();
        s.init = true;
        let v = config_json(&s, &opts()).unwrap();
        let args: Vec<&str> = v["process"]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args, [CONTAINER_EXE, OCI_INIT_ARG, "--", "sleep", "1"]);
    }

    #[test]
    fn time_offsets_use_the_runtime_spec_shape() {
        let mut s = spec();
        s.namespaces.insert(Namespace::Time);
        s.time_offsets.monotonic_secs = 864000;
        s.time_offsets.boottime_secs = 5;
        let v = config_json(&s, &opts()).unwrap();
        assert_eq!(v["linux"]["timeOffsets"]["monotonic"]["secs"], 864000);
        assert_eq!(v["linux"]["timeOffsets"]["boottime"]["secs"], 5);
    }

    #[test]
    fn the_host_rootfs_is_refused() {
        let mut s = spec();
        s.rootfs = RootfsSpec::Host;
        assert!(config(&s, &opts())
            .unwrap_err()
            .to_string()
            .contains("builtin"));
    }

    #[test]
    fn env_overrides_the_defaults() {
        let mut s = spec();
        s.env.push(("PATH".into(), "/x".into()));
        s.env.push(("A".into(), "b".into()));
        let env = entry_env(&s, Some("xterm"));
        assert!(env.contains(&"PATH=/x".to_string()));
        assert!(!env.iter().any(|e| e.starts_with("PATH=/usr")));
        assert!(env.contains(&"A=b".to_string()) && env.contains(&"TERM=xterm".to_string()));
    }

    #[test]
    fn the_bundle_is_written_with_symlinks_and_mount_points() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts();
        o.hostname_file = Some(dir.path().join("b/hostname"));
        write(&dir.path().join("b"), &spec(), &o).unwrap();
        let root = dir.path().join("b/rootfs");
        assert_eq!(
            std::fs::read_link(root.join("bin")).unwrap(),
            PathBuf::from("usr/bin")
        );
        assert!(root.join("usr").is_dir() && root.join("tmp").is_dir());
        assert!(!root.join("lib32").exists());
        let cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("b/config.json")).unwrap())
                .unwrap();
        assert_eq!(cfg["root"]["path"], "rootfs");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b/hostname")).unwrap(),
            "c1\n"
        );
    }
}
