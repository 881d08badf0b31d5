//! `boxwatch exporter`: arguments and the entry point.

use crate::collector::{CgroupCollector, CollectorConfig, WalkMode, FILES_PER_CGROUP};
use crate::server::{self, Exporter, ServerConfig};
use crate::verdicts::VerdictCollector;
use crate::{Error, Result};
use probes::host::{CgroupPath, Host};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Serve per-cgroup usage against quota, and the latest scenario verdicts,
/// to Prometheus.
#[derive(Debug, Clone, clap::Args)]
pub struct ExporterArgs {
    /// Address to listen on: HOST:PORT, `[IPv6]:PORT`, `:PORT` (every
    /// interface, as node_exporter reads it) or `localhost:PORT`; port 0
    /// picks a free one (the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:9417", value_name = "ADDR", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Cgroup subtree to export, relative to each hierarchy root
    /// (`/boxwatch`, `/docker`, `/kubepods.slice`); repeatable. Default:
    /// boxwatch's own `/boxwatch`.
    #[arg(long = "cgroup-root", value_name = "PATH")]
    pub cgroup_roots: Vec<String>,
    /// Export at most this many cgroups per scrape.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_cgroups: usize,
    /// Cgroup control files kept open between scrapes (a read through a
    /// kept file costs about a quarter of an open, read and close). Each
    /// one pins a page of kernel memory once read (4.3 KiB measured),
    /// charged to the exporter's memory cgroup and not in its RSS: the
    /// default, 4096, is about 17 MiB at most, enough for ~240 cgroups on
    /// a v1 host (17 files each); files beyond it are opened at each read.
    /// More trades memory for CPU (`cargo xtask bench exporter` prints the
    /// table). The open-file limit is raised, where allowed, to hold them;
    /// 0 keeps none.
    #[arg(long, default_value_t = DEFAULT_MAX_OPEN_FILES, value_name = "N")]
    pub max_open_files: usize,
    /// Which hierarchies to walk for cgroups: `union` of all (v1 hosts
    /// keep separate trees per controller), or `cpu` only (faster on v1).
    #[arg(long, value_enum, default_value_t = WalkMode::Union)]
    pub walk: WalkMode,
    /// Where containers' names are read.
    #[command(flatten)]
    pub names: crate::identity::NameSources,
    /// TLS and basic authentication.
    #[command(flatten)]
    pub web: crate::webconfig::WebArgs,
    /// The latest JSON report, whose check verdicts are published.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Connections served at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections: usize,
    /// Seconds a client has to send its request headers.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub header_timeout: u64,
    /// Seconds a client has to take a response (a client that stops
    /// reading a large exposition is dropped then).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub write_timeout: u64,
    /// Longest life of a connection, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub connection_timeout: u64,
    /// Read cgroupfs and /proc under this directory instead of `/` (a fake
    /// tree, for tests).
    #[arg(long, value_name = "DIR", hide = true, default_value = "/")]
    pub host_root: PathBuf,
}

/// `--listen`: a socket address, `:PORT` (every interface) or a host name
/// with a port (`localhost:9100`), which is resolved once, here.
pub fn parse_listen(s: &str) -> std::result::Result<SocketAddr, String> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    let expected = "expected HOST:PORT such as 127.0.0.1:9417, [::1]:9417, :9417 (every interface) or localhost:9417";
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("no port: {expected}"));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?} is not a number from 0 to 65535: {expected}"))?;
    if host.is_empty() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    use std::net::ToSocketAddrs;
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("host {host:?} has no address: {expected}")),
        Err(e) => Err(format!(
            "host {host:?} cannot be resolved ({e}): {expected}"
        )),
    }
}

impl ExporterArgs {
    /// The cgroup roots, validated; `/boxwatch` when none was given.
    pub fn roots(&self) -> Result<Vec<CgroupPath>> {
        if self.cgroup_roots.is_empty() {
            return Ok(vec![CgroupPath::new("/boxwatch")?]);
        }
        self.cgroup_roots
            .iter()
            .map(|r| {
                CgroupPath::new(r)
                    .map_err(|e| Error::BadArgument(format!("--cgroup-root {r:?}: {e}")))
            })
            .collect()
    }

    /// The server limits.
    pub fn server_config(&self) -> Result<ServerConfig> {
        for (flag, secs) in [
            ("--header-timeout", self.header_timeout),
            ("--write-timeout", self.write_timeout),
            ("--connection-timeout", self.connection_timeout),
        ] {
            if secs == 0 {
                return Err(Error::BadArgument(format!(
                    "{flag} 0: a timeout must be at least 1 s"
                )));
            }
        }
        Ok(ServerConfig {
            max_connections: self.max_connections.max(1),
            header_timeout: Duration::from_secs(self.header_timeout),
            write_timeout: Duration::from_secs(self.write_timeout),
            connection_timeout: Duration::from_secs(self.connection_timeout),
        })
    }
}

/// The exporter for `args`: registry with the cgroup collector and, with
/// `--report`, the verdict collector.
pub fn build(args: &ExporterArgs) -> Result<Arc<Exporter>> {
    if args.max_cgroups == 0 {
        return Err(Error::BadArgument(
            "--max-cgroups must be at least 1".into(),
        ));
    }
    let cgroups = CgroupCollector::new(CollectorConfig {
        host: Host::with_root(&args.host_root),
        roots: args.roots()?,
        max_cgroups: args.max_cgroups,
        walk: args.walk,
        max_open_files: open_file_budget(
            args.max_connections,
            args.max_cgroups
                .saturating_mul(FILES_PER_CGROUP)
                .min(args.max_open_files),
        ),
        names: args.names.clone(),
    });
    let mut collectors: Vec<Box<dyn prometheus::core::Collector>> = Vec::new();
    if let Some(report) = &args.report {
        collectors.push(Box::new(VerdictCollector::new(report.clone())));
    }
    Exporter::with_cgroups(cgroups, collectors)
}

/// The default of `--max-open-files`: about 17 MiB of kernel pages at
/// most, so RSS plus charged kernel memory stays under 40 MiB at 1,000
/// cgroups (measured: 2048 held files 8.9 MiB of kernel memory, 8192
/// 35 MiB, 16384 70 MiB), at about twice the CPU per scrape of holding
/// every file.
pub const DEFAULT_MAX_OPEN_FILES: usize = 4096;

/// `--report FILE` is checked once at start, so that a typo is refused
/// now, not found at the first scrape.
fn check_report(path: &std::path::Path) -> Result<()> {
    let report = |why: String| Error::Report {
        path: path.to_path_buf(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        report(format!(
            "cannot be read ({e}): give the report.json that `boxwatch scenarios --out DIR` wrote"
        ))
    })?;
    crate::verdicts::parse_report(&text)
        .map_err(|why| report(format!("is not a boxwatch JSON report: {why}")))?;
    Ok(())
}

/// Refuses a `--cgroup-root` given on the command line that exists in no
/// hierarchy: it would export nothing, silently.
fn check_roots(args: &ExporterArgs, layout: &probes::host::CgroupLayout) -> Result<()> {
    for (given, root) in args.cgroup_roots.iter().zip(args.roots()?) {
        if !layout.exists(&root) {
            let looked: Vec<String> = layout
                .hierarchies()
                .take(3)
                .map(|h| h.dir(&root).display().to_string())
                .collect();
            return Err(Error::BadArgument(format!(
                "--cgroup-root {given:?}: no such cgroup in any hierarchy (looked for {}, ...): \
                 give one that exists, as /proc/<pid>/cgroup names it (/docker, /system.slice)",
                looked.join(", ")
            )));
        }
    }
    Ok(())
}

/// How many cgroup files the collector may keep open: at most `wanted`,
/// and the soft `RLIMIT_NOFILE` less room for connections and everything
/// else. The limit is first raised to what `wanted` files need, capped by
/// the kernel's `fs.nr_open`: beyond the hard limit when the process may
/// raise it (`CAP_SYS_RESOURCE`), else to the hard limit.
fn open_file_budget(max_connections: usize, wanted_files: usize) -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let room = max_connections + 256;
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let wanted = (wanted_files + room) as u64;
    let wanted = wanted.min(nr_open).max(soft);
    let limit = if setrlimit(Resource::RLIMIT_NOFILE, wanted, hard.max(wanted)).is_ok() {
        wanted
    } else if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX).min(1 << 20);
    let budget = limit.saturating_sub(room).min(wanted_files);
    if budget < wanted_files {
        tracing::warn!(
            "{budget} cgroup files can be held open, not the {wanted_files} asked for: the open-file limit \
             is {limit} (hard {hard}; raising it past that needs CAP_SYS_RESOURCE, and fs.nr_open is {nr_open}), \
             less {room} for connections; the other files are opened at every scrape. Raise the hard limit \
             (ulimit -Hn, systemd LimitNOFILE=) to hold more"
        );
    }
    budget
}

/// Runs the exporter until SIGINT or SIGTERM.
pub fn run(args: ExporterArgs) -> Result<()> {
    if let Some(report) = &args.report {
        check_report(report)?;
    }
    let exporter = build(&args)?;
    let config = args.server_config()?;
    let web = match &args.web.web_config_file {
        Some(file) => crate::webconfig::WebConfig::load(file)?,
        None => crate::webconfig::WebConfig::none(),
    };
    // Fail early, with a clear message, when cgroupfs cannot be read.
    let layout = Host::with_root(&args.host_root).layout()?;
    check_roots(&args, &layout)?;
    // The signals that stop the exporter may come blocked from the parent
    // (a signal mask survives fork and exec; `cargo xtask bench` blocks
    // them to sigwait): unblocked here, before any other thread exists.
    let mut stop = nix::sys::signal::SigSet::empty();
    stop.add(nix::sys::signal::Signal::SIGINT);
    stop.add(nix::sys::signal::Signal::SIGTERM);
    stop.thread_unblock().map_err(std::io::Error::from)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = server::bind(args.listen).await?;
        let addr = listener.local_addr()?;
        let scheme = if web.tls().is_some() { "https" } else { "http" };
        println!("boxwatch exporter listening on {scheme}://{addr}/metrics");
        use std::io::Write;
        std::io::stdout().flush()?;
        server::serve_with(listener, exporter, config, web, shutdown_signal()).await
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_the_forms_node_exporter_users_type() {
        assert_eq!(
            parse_listen("127.0.0.1:9100").unwrap(),
            "127.0.0.1:9100".parse().unwrap()
        );
        assert_eq!(
            parse_listen(":9100").unwrap(),
            "0.0.0.0:9100".parse().unwrap()
        );
        assert!(parse_listen("localhost:9100").unwrap().ip().is_loopback());
        assert_eq!(
            parse_listen("[::1]:9100").unwrap(),
            "[::1]:9100".parse().unwrap()
        );
        let e = parse_listen("localhost").unwrap_err();
        assert!(e.starts_with("no port: expected HOST:PORT"), "{e}");
        let e = parse_listen(":99999").unwrap_err();
        assert!(
            e.starts_with("port \"99999\" is not a number from 0 to 65535"),
            "{e}"
        );
    }

    #[test]
    fn the_open_file_budget_never_exceeds_what_was_asked() {
        assert_eq!(open_file_budget(256, 0), 0, "--max-open-files 0 keeps none");
        assert_eq!(open_file_budget(256, 100), 100);
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let big = open_file_budget(256, DEFAULT_MAX_OPEN_FILES);
        assert!(big <= DEFAULT_MAX_OPEN_FILES);
        let (after, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert!(after >= soft, "the limit is only ever raised");
        assert!(big as u64 + 512 <= after, "room is left for connections");
    }
}
