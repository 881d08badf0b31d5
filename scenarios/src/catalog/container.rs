//! The `[container]` table: limits, namespaces, hostname, capabilities,
//! clock offsets, rootfs, lxcfs and seccomp, in the runtime's own types;
//! combinations that would touch the host are refused.

use super::file::{as_text, bad, parse_duration, Bad, FileContainer};
use super::ContainerDef;
use runtime::{Capability, CpuQuota, CpuSet, Limits, MemoryBytes, Namespace, NamespaceSet};
use toml::Spanned;

/// The container of a `[container]` table, in the runtime's types.
pub(super) fn container(c: FileContainer) -> Result<ContainerDef, Bad> {
    let limits = limits(&c)?;
    let namespaces = namespaces(&c)?;
    let hostname =
        match &c.hostname {
            Some(h) if !namespaces.contains(Namespace::Uts) => return Err(bad(
                h,
                "a hostname needs the uts namespace: setting it without one would rename the host",
            )),
            Some(h) => Some(h.get_ref().clone()),
            None => None,
        };
    let mut keep_caps = Vec::new();
    for cap in &c.keep_caps {
        keep_caps.push(
            cap.get_ref()
                .parse::<Capability>()
                .map_err(|e| bad(cap, e.to_string()))?,
        );
    }
    let monotonic_offset_secs = clock_offset(&c.monotonic_offset, &namespaces)?;
    let boottime_offset_secs = clock_offset(&c.boottime_offset, &namespaces)?;
    let host_rootfs = host_rootfs(&c, &namespaces)?;
    let lxcfs = match &c.lxcfs {
        Some(l) if *l.get_ref() && !namespaces.contains(Namespace::Mount) => return Err(bad(
            l,
            "lxcfs files are bound in the container's mount namespace: add \"mount\" to namespaces",
        )),
        Some(l) => *l.get_ref(),
        None => false,
    };
    let seccomp = match &c.seccomp {
        None => runtime::SeccompMode::Default,
        Some(m) => m
            .get_ref()
            .parse::<runtime::SeccompMode>()
            .map_err(|e| bad(m, e.to_string()))?,
    };
    Ok(ContainerDef {
        lxcfs,
        seccomp,
        namespaces,
        hostname,
        limits,
        keep_caps,
        init: c.init,
        monotonic_offset_secs,
        boottime_offset_secs,
        host_rootfs,
        env: c.env,
    })
}

/// cpu, memory, pids and cpuset, parsed by the runtime's own parsers.
fn limits(c: &FileContainer) -> Result<Limits, Bad> {
    let mut limits = Limits::default();
    if let Some(cpu) = &c.cpu {
        limits.cpu = Some(
            as_text(cpu)?
                .parse::<CpuQuota>()
                .map_err(|e| bad(cpu, e.to_string()))?,
        );
    }
    if let Some(mem) = &c.memory {
        limits.memory = Some(
            as_text(mem)?
                .parse::<MemoryBytes>()
                .map_err(|e| bad(mem, e.to_string()))?,
        );
    }
    if let Some(p) = &c.pids {
        limits.pids = Some(
            runtime::units::parse_pids(&p.get_ref().to_string())
                .map_err(|e| bad(p, e.to_string()))?,
        );
    }
    if let Some(set) = &c.cpuset {
        limits.cpuset = Some(
            set.get_ref()
                .parse::<CpuSet>()
                .map_err(|e| bad(set, e.to_string()))?,
        );
    }
    Ok(limits)
}

/// The namespaces listed, or the runtime's default set.
fn namespaces(c: &FileContainer) -> Result<NamespaceSet, Bad> {
    let Some(list) = &c.namespaces else {
        return Ok(NamespaceSet::default());
    };
    let mut namespaces = NamespaceSet::empty();
    for n in list {
        namespaces.insert(
            n.get_ref()
                .parse::<Namespace>()
                .map_err(|e| bad(n, e.to_string()))?,
        );
    }
    Ok(namespaces)
}

/// A time namespace clock offset ("10d", "-2h") in seconds: only with the
/// time namespace.
fn clock_offset(o: &Option<Spanned<String>>, namespaces: &NamespaceSet) -> Result<i64, Bad> {
    let Some(s) = o else {
        return Ok(0);
    };
    if !namespaces.contains(Namespace::Time) {
        return Err(bad(
            s,
            "clock offsets need the time namespace: add \"time\" to namespaces",
        ));
    }
    let d = parse_duration(s.get_ref().trim_start_matches('-')).map_err(|e| bad(s, e))?;
    let secs = d.as_secs() as i64;
    Ok(if s.get_ref().starts_with('-') {
        -secs
    } else {
        secs
    })
}

/// Whether the container uses the host's root: without a mount namespace
/// it must, and a minimal root needs one.
fn host_rootfs(c: &FileContainer, namespaces: &NamespaceSet) -> Result<bool, Bad> {
    match &c.rootfs {
        None => Ok(!namespaces.contains(Namespace::Mount)),
        Some(r) => match r.get_ref().as_str() {
            "minimal" if namespaces.contains(Namespace::Mount) => Ok(false),
            "minimal" => Err(bad(r, "the minimal rootfs needs the mount namespace")),
            "host" => Ok(true),
            other => Err(bad(
                r,
                format!("unknown rootfs {other:?}: expected \"minimal\" or \"host\""),
            )),
        },
    }
}
