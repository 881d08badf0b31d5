//! `boxwatch run`: one command in a fresh container.

use anyhow::{Context, Result};
use clap::Args;
use nix::sys::signal::{SigSet, Signal};
use runtime::lxcfs::Lxcfs;
use runtime::{
    Capability, ContainerSpec, CpuQuota, CpuSet, Exit, MemoryBytes, Namespace, RootfsSpec, Runtime,
    RuntimeConfig,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(after_help = "\
Exit status:
  the command's own exit code; 128+N when it was killed by signal N (137: SIGKILL, the OOM killer)
  125  boxwatch itself refused or failed: a bad flag or value (the message names it), a setup step
  126  the command was found but cannot be executed (a directory, no execute permission)
  127  the command was not found in the container")]
pub struct RunArgs {
    /// CPU limit in CPUs (0.2 = 20% of one CPU), or QUOTA/PERIOD in µs.
    #[arg(long, value_name = "CPUS", allow_negative_numbers = true)]
    cpus: Option<CpuQuota>,
    /// Memory limit (64M, 1G, ...); swap is off.
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true)]
    memory: Option<MemoryBytes>,
    /// Maximum number of processes (1 to 4194304).
    #[arg(long, value_name = "N", value_parser = runtime::units::parse_pids, allow_negative_numbers = true)]
    pids: Option<u64>,
    /// CPUs the container may run on (0, 0-1, 0,2).
    #[arg(long, value_name = "LIST")]
    cpuset: Option<CpuSet>,
    /// Hostname inside the container (default: the container name).
    #[arg(long)]
    hostname: Option<String>,
    /// Container name (default: `run-<pid>`).
    #[arg(long)]
    name: Option<String>,
    /// Use DIR as the root filesystem instead of the minimal throwaway root.
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,
    /// Keep a capability beyond Docker's default set (CAP_SYS_TIME, net_admin...).
    #[arg(long = "keep-cap", value_name = "CAP")]
    keep_cap: Vec<Capability>,
    /// Seccomp profile: `default` (boxwatch's Docker-like deny-list of the
    /// system calls escapes use) or `unconfined` (no filter).
    #[arg(long, value_name = "PROFILE", default_value = "default")]
    seccomp: runtime::SeccompMode,
    /// Also create a user namespace (root inside maps to an unprivileged id range outside).
    #[arg(long)]
    userns: bool,
    /// Also create a time namespace, with this CLOCK_MONOTONIC offset in seconds.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = parse_time_offset)]
    timens_offset: Option<i64>,
    /// Do not create this namespace (repeatable): pid, mount, uts, ipc, net, cgroup.
    #[arg(long = "share", value_name = "NS")]
    share: Vec<Namespace>,
    /// Run a tiny init as PID 1 that reaps orphans and forwards signals.
    #[arg(long)]
    init: bool,
    /// Virtualize /proc/meminfo, cpuinfo, stat, uptime... and the online
    /// CPU list with lxcfs, so they show the container's limits: a private
    /// lxcfs that boxwatch starts and stops, or the one mounted at DIR
    /// (e.g. /var/lib/lxcfs).
    #[arg(long, value_name = "DIR", num_args = 0..=1, require_equals = true)]
    lxcfs: Option<Option<PathBuf>>,
    /// Set an environment variable in the container (KEY=VALUE).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Parent cgroup for boxwatch's cgroups.
    #[arg(long, value_name = "PATH", default_value = runtime::cgroup::DEFAULT_PARENT)]
    cgroup_parent: String,
    /// Seconds to wait after forwarding SIGINT/SIGTERM before killing the
    /// container (0 to 3600).
    #[arg(long, default_value_t = 5, value_name = "SECS", allow_negative_numbers = true, value_parser = parse_grace)]
    grace: u64,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// The longest `--grace`: an hour.
const MAX_GRACE_SECS: u64 = 3600;

fn parse_grace(s: &str) -> Result<u64, String> {
    let expected = format!("expected whole seconds from 0 to {MAX_GRACE_SECS}");
    match s.trim().parse::<i128>() {
        Ok(n) if n < 0 => Err(format!("a grace period cannot be negative: {expected}")),
        Ok(n) if n > MAX_GRACE_SECS as i128 => Err(format!("too long: {expected}")),
        Ok(n) => Ok(n as u64),
        Err(_) => Err(format!(
            "not a whole number: {expected} (no unit: 5, not 5s)"
        )),
    }
}

/// `--timens-offset`: checked against the clocks now, so that an offset
/// the kernel would refuse (ERANGE) is refused here, with the range.
fn parse_time_offset(s: &str) -> Result<i64, String> {
    let secs: i64 = s.trim().parse().map_err(|_| {
        format!(
            "not a whole number of seconds from {} to {}",
            i64::MIN,
            i64::MAX
        )
    })?;
    for (clock, id) in [
        ("CLOCK_MONOTONIC", nix::time::ClockId::CLOCK_MONOTONIC),
        ("CLOCK_BOOTTIME", nix::time::ClockId::CLOCK_BOOTTIME),
    ] {
        let now = nix::time::clock_gettime(id).map_or(0, |t| t.tv_sec());
        runtime::units::check_time_offset(clock, secs, now).map_err(|e| match e {
            runtime::Error::InvalidValue { expected, .. } => {
                format!("out of range: expected {expected}")
            }
            e => e.to_string(),
        })?;
    }
    Ok(secs)
}

/// The number of CPUs online on the host.
fn host_cpus() -> Option<u64> {
    let n = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN).ok()??;
    u64::try_from(n).ok()
}

/// A warning when the limits cannot bite: a CPU quota above the CPUs the
/// container can run on is never reached.
fn quota_warning(
    cpus: Option<CpuQuota>,
    cpuset: Option<&CpuSet>,
    host: Option<u64>,
) -> Option<String> {
    let q = cpus?;
    let (usable, of) = match cpuset {
        Some(set) => (set.cpus().len() as u64, format!("--cpuset {set}")),
        None => (host?, format!("the host's {} CPUs", host?)),
    };
    (q.cores() > usable as f64).then(|| {
        format!(
            "--cpus {} is more than {of}: the quota can never be used up, so it will not limit the container",
            q.cores()
        )
    })
}

impl RunArgs {
    fn spec(&self) -> Result<ContainerSpec> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("run-{}", std::process::id()));
        let mut spec = ContainerSpec::new(name, self.command.clone());
        spec.hostname = self.hostname.clone();
        spec.limits.cpu = self.cpus;
        spec.limits.memory = self.memory;
        spec.limits.pids = self.pids;
        spec.limits.cpuset = self.cpuset.clone();
        spec.keep_caps = self.keep_cap.clone();
        spec.seccomp = self.seccomp;
        spec.init = self.init;
        if let Some(dir) = &self.rootfs {
            spec.rootfs = RootfsSpec::Dir(
                dir.canonicalize()
                    .with_context(|| format!("--rootfs {}", dir.display()))?,
            );
        }
        if self.userns {
            spec.namespaces.insert(Namespace::User);
        }
        if let Some(secs) = self.timens_offset {
            spec.namespaces.insert(Namespace::Time);
            spec.time_offsets.monotonic_secs = secs;
            spec.time_offsets.boottime_secs = secs;
        }
        for ns in &self.share {
            spec.namespaces.remove(*ns);
        }
        if !spec.namespaces.contains(Namespace::Mount) {
            spec.rootfs = RootfsSpec::Host;
        }
        for kv in &self.env {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--env {kv:?}: expected KEY=VALUE"))?;
            spec.env.push((k.to_string(), v.to_string()));
        }
        Ok(spec)
    }
}

pub fn main(args: RunArgs) -> Result<ExitCode> {
    let spec = args.spec()?;
    if let Some(w) = quota_warning(args.cpus, args.cpuset.as_ref(), host_cpus()) {
        eprintln!("boxwatch: warning: {w}");
    }
    let mut config =
        RuntimeConfig::new(std::env::current_exe().context("locating the boxwatch binary")?);
    config.cgroup_parent =
        runtime::cgroup::parse_parent(&args.cgroup_parent).context("--cgroup-parent")?;
    // Block the termination signals before any thread exists, so that only
    // the forwarding thread below receives them (the container's setup stage
    // resets its mask).
    let signals = termination_signals();
    signals.thread_block().context("blocking signals")?;
    let rt = Runtime::new(config)?;
    let mut spec = spec;
    // Dropped before `rt`, which removes the run's state directory.
    let private_lxcfs = match &args.lxcfs {
        Some(None) => {
            let lxcfs = Lxcfs::start(&rt.run_state_dir().join("lxcfs"))?;
            spec.lxcfs = Some(lxcfs.path().to_path_buf());
            Some(lxcfs)
        }
        Some(Some(dir)) => {
            spec.lxcfs = Some(dir.clone());
            None
        }
        None => None,
    };
    let container = rt.spawn(&spec, runtime::Stdio::default())?;
    let killer = container.killer();
    let grace = Duration::from_secs(args.grace);
    std::thread::spawn(move || forward_signals(signals, killer, grace));
    let outcome = container.wait()?;
    if outcome.oom_killed {
        let limit = spec
            .limits
            .memory
            .map(|m| m.to_string())
            .unwrap_or_else(|| "none".into());
        eprintln!("boxwatch: the container was killed by the OOM killer (memory limit {limit})");
    } else if let Exit::Signal(sig) = outcome.exit {
        let name = Signal::try_from(sig)
            .map(|s| s.as_str())
            .unwrap_or("unknown signal");
        eprintln!("boxwatch: the container was killed by {name}");
    }
    drop(private_lxcfs);
    drop(rt);
    Ok(ExitCode::from(outcome.exit.shell_code().clamp(0, 255) as u8))
}

fn termination_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(s);
    }
    set
}

/// Passes SIGINT/SIGTERM/SIGHUP/SIGQUIT to the container's PID 1; if it is
/// still running `grace` later (a PID 1 without a handler ignores them), or
/// on a second signal, kills the whole container.
fn forward_signals(signals: SigSet, killer: runtime::Killer, grace: Duration) {
    let Ok(first) = signals.wait() else { return };
    killer.signal(first);
    let k = killer.clone();
    std::thread::spawn(move || {
        std::thread::sleep(grace);
        let _ = k.kill();
    });
    if signals.wait().is_ok() {
        let _ = killer.kill();
    }
}
