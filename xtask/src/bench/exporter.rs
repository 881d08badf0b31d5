//! `cargo xtask bench exporter` and `cargo xtask bench exporter-load`.
//!
//! `exporter`: creates N cgroups (100, 1000, 5000 by default) under
//! `boxwatch/bench-<pid>/` in every hierarchy the exporter reads, each
//! with a CPU quota, a memory limit and a pids limit (on cgroup v2 the
//! bench enables `+cpu +memory +pids` in the cgroups it created, so every
//! file the exporter reads exists; a first scrape checks that), starts
//! the release `boxwatch exporter` on a loopback port, and measures scrape
//! latency (p50/p99), CPU per scrape and RSS; in the same run the same
//! figures for Debian's `prometheus-node-exporter` as a reference. Then
//! each target is printed with whether it was met.
//!
//! `exporter-load`: 200 concurrent scrapers, slow clients that never finish
//! their request and malformed requests against one exporter over 1000
//! cgroups, bounded in count and time; prints answered/failed counts,
//! latency and the exporter's peak RSS.
//!
//! Everything it creates (cgroups, processes) is removed by PID/path on
//! success, error and Ctrl-C: SIGINT/SIGTERM are blocked and a thread
//! waits for them and sets a flag every loop checks. Network traffic goes
//! to 127.0.0.1 only.

use super::common::{check_interrupted, interrupted, nearest_rank, percentile};
use super::facts::{CGROUP_METRICS, DEFAULT_MAX_OPEN_FILES, READ};
use anyhow::{bail, ensure, Context, Result};
use probes::host::{CgroupPath, CgroupVersion, Hierarchy, Host};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `cargo xtask bench exporter`.
#[derive(clap::Args)]
pub struct ExporterBenchArgs {
    /// Cgroup counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,5000")]
    cgroups: Vec<usize>,
    /// Timed scrapes per measurement (enough for a p99 that is not
    /// the maximum).
    #[arg(long, default_value_t = 200)]
    scrapes: usize,
    /// Timed scrapes per measurement from 5,000 cgroups up (p99 is
    /// then the 99th of 100).
    #[arg(long, default_value_t = 100)]
    scrapes_large: usize,
    /// The exporter's --max-open-files (its default when not given):
    /// with room for every file, a large tree is read with no
    /// per-scrape opens, at the cost of a kernel page per file.
    #[arg(long)]
    max_open_files: Option<usize>,
}

/// `cargo xtask bench exporter-load`.
#[derive(clap::Args)]
pub struct ExporterLoadArgs {
    #[arg(long, default_value_t = 1000)]
    cgroups: usize,
    #[arg(long, default_value_t = 200)]
    scrapers: usize,
    #[arg(long, default_value_t = 100)]
    slow_clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// `cargo xtask bench exporter`: the scrape figures over N cgroups.
pub fn main(bin: &Path, args: ExporterBenchArgs) -> Result<()> {
    bench(
        bin,
        &args.cgroups,
        args.scrapes,
        args.scrapes_large,
        args.max_open_files,
    )
}

/// `cargo xtask bench exporter-load`.
pub fn main_load(bin: &Path, args: ExporterLoadArgs) -> Result<()> {
    load(
        bin,
        args.cgroups,
        args.scrapers,
        args.slow_clients,
        args.seconds,
    )
}

/// The limits every bench cgroup gets.
const CPU_QUOTA_US: u64 = 50_000;
const CPU_PERIOD_US: u64 = 100_000;
const MEMORY_LIMIT: u64 = 64 << 20;
const PIDS_LIMIT: u64 = 64;

/// The bench's directories in one hierarchy.
struct BenchHierarchy {
    version: CgroupVersion,
    /// Controllers of the hierarchy (v1: the mounted ones; v2: the root's
    /// `cgroup.controllers`).
    controllers: Vec<String>,
    /// `boxwatch/bench-<pid>` in this hierarchy.
    root: PathBuf,
    /// The directories the bench created, outermost first (the shared
    /// `boxwatch` parent only when it did not exist).
    created: Vec<PathBuf>,
}

impl BenchHierarchy {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// Creates `root` (relative to `mount`) and the missing directories
    /// above it, recording each one made in `self.created` as it goes.
    fn create(&mut self, mount: &Path, root: &CgroupPath) -> Result<()> {
        let mut dir = mount.to_path_buf();
        for part in root.relative().components() {
            dir.push(part);
            match std::fs::create_dir(&dir) {
                Ok(()) => self.created.push(dir.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
            }
        }
        ensure!(
            self.created.last() == Some(&self.root),
            "{} existed already: another bench with this PID?",
            self.root.display()
        );
        Ok(())
    }

    /// v2: enables the read controllers for the children of every cgroup
    /// the bench created, outermost first, so that the bench cgroups get
    /// cpu.max, memory.* and pids.* (cgroups the bench did not create are
    /// never written).
    fn enable_controllers(&self) -> Result<()> {
        if self.version != CgroupVersion::V2 {
            return Ok(());
        }
        let wanted: Vec<&str> = ["cpu", "memory", "pids"]
            .into_iter()
            .filter(|c| self.has(c))
            .collect();
        let line: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
        for dir in &self.created {
            let file = dir.join("cgroup.subtree_control");
            std::fs::write(&file, line.join(" ")).with_context(|| {
                let offered =
                    std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
                format!(
                    "writing {:?} to {} ({} offers: {}); the parent cgroups the \
                     bench did not create must enable them",
                    line.join(" "),
                    file.display(),
                    dir.display(),
                    offered.trim()
                )
            })?;
        }
        Ok(())
    }

    /// The limit files of a bench cgroup in this hierarchy, with values.
    fn limits(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match self.version {
            CgroupVersion::V1 => {
                if self.has("cpu") {
                    out.push(("cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
                    out.push(("cpu.cfs_quota_us", CPU_QUOTA_US.to_string()));
                }
                if self.has("memory") {
                    out.push(("memory.limit_in_bytes", MEMORY_LIMIT.to_string()));
                }
            }
            CgroupVersion::V2 => {
                if self.has("cpu") {
                    out.push(("cpu.max", format!("{CPU_QUOTA_US} {CPU_PERIOD_US}")));
                }
                if self.has("memory") {
                    out.push(("memory.max", MEMORY_LIMIT.to_string()));
                }
            }
        }
        if self.has("pids") {
            out.push(("pids.max", PIDS_LIMIT.to_string()));
        }
        out
    }
}

/// The cgroups this bench made: `boxwatch/bench-<pid>/c<i>` in each
/// hierarchy the exporter reads, each with real limits; all removed on
/// drop (children first, then what the bench created above them).
struct BenchCgroups {
    hierarchies: Vec<BenchHierarchy>,
    made: usize,
    root: CgroupPath,
}

impl BenchCgroups {
    fn new() -> Result<Self> {
        let layout = Host::new().layout()?;
        let root = CgroupPath::new(&format!("/boxwatch/bench-{}", std::process::id()))?;
        Self::in_hierarchies(&layout.hierarchies_of(READ), root)
    }

    /// The bench's cgroups in `hierarchies` (the real ones, or a fake tree
    /// in tests).
    fn in_hierarchies(hierarchies: &[&Hierarchy], root: CgroupPath) -> Result<Self> {
        let mut set = BenchCgroups {
            hierarchies: Vec::new(),
            made: 0,
            root,
        };
        for h in hierarchies {
            // Registered before anything is made, so Drop sees all of it.
            set.hierarchies.push(BenchHierarchy {
                version: h.version,
                controllers: h.controllers.clone(),
                root: h.dir(&set.root),
                created: Vec::new(),
            });
            let b = set.hierarchies.last_mut().expect("pushed above");
            b.create(&h.mount_point, &set.root)?;
            b.enable_controllers()?;
        }
        Ok(set)
    }

    /// Creates limited cgroups until there are `n` of them.
    fn grow_to(&mut self, n: usize) -> Result<()> {
        while self.made < n {
            check_interrupted()?;
            for h in &self.hierarchies {
                let d = h.root.join(format!("c{}", self.made));
                std::fs::create_dir(&d).with_context(|| format!("creating {}", d.display()))?;
                for (file, value) in h.limits() {
                    std::fs::write(d.join(file), &value)
                        .with_context(|| format!("writing {value} to {}/{file}", d.display()))?;
                }
            }
            self.made += 1;
        }
        Ok(())
    }
}

impl Drop for BenchCgroups {
    fn drop(&mut self) {
        let mut left = 0;
        for h in &self.hierarchies {
            if h.created.is_empty() {
                continue;
            }
            for i in 0..self.made {
                let _ = std::fs::remove_dir(h.root.join(format!("c{i}")));
            }
            // Innermost first; a shared parent stays while another run
            // uses it.
            for dir in h.created.iter().rev() {
                if std::fs::remove_dir(dir).is_err() && dir.exists() && *dir == h.root {
                    left += 1;
                    eprintln!("bench: could not remove {}", dir.display());
                }
            }
        }
        if left == 0 {
            eprintln!("bench: removed {} cgroups under {}", self.made, self.root);
        }
    }
}

/// A process started here, killed by PID when dropped.
struct Proc(Child);

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..50 {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A memory cgroup of the exporter's own, `boxwatch/bench-<pid>-exporter`
/// (beside the bench cgroups, so the exporter does not export it): the
/// exporter starts in it (a shell moves itself in, then execs the
/// exporter, so every page from its first is charged there), and its
/// `memory.usage_in_bytes` / `memory.current` is the exporter's whole
/// footprint: RSS, page cache and the kernel memory its held cgroup files
/// pin, which RSS does not show. Removed on drop.
struct SelfCgroup {
    dir: PathBuf,
    version: CgroupVersion,
}

impl SelfCgroup {
    fn new(tag: &str) -> Result<Option<Self>> {
        let layout = Host::new().layout()?;
        let Some(h) = layout.hierarchy_for("memory") else {
            eprintln!("bench: no memory controller: the exporter's charged memory is not measured");
            return Ok(None);
        };
        let root = CgroupPath::new(&format!("/boxwatch/bench-{}-{tag}", std::process::id()))?;
        let dir = h.dir(&root);
        if !dir.parent().is_some_and(|p| p.is_dir()) {
            eprintln!(
                "bench: {} is missing: the exporter's charged memory is not measured",
                h.dir(&CgroupPath::new("/boxwatch")?).display()
            );
            return Ok(None);
        }
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let me = SelfCgroup {
            dir,
            version: h.version,
        };
        if !me.usage_file().exists() {
            eprintln!(
                "bench: {} has no memory accounting (memory not enabled in its parent's cgroup.subtree_control): \
                 the exporter's charged memory is not measured",
                me.dir.display()
            );
            return Ok(None);
        }
        Ok(Some(me))
    }

    fn usage_file(&self) -> PathBuf {
        self.dir.join(match self.version {
            CgroupVersion::V1 => "memory.usage_in_bytes",
            CgroupVersion::V2 => "memory.current",
        })
    }

    /// (charged, of which kernel) in MiB, now.
    fn charged_mib(&self) -> Result<(f64, f64)> {
        let read = |p: PathBuf| -> Result<f64> {
            Ok(std::fs::read_to_string(&p)
                .with_context(|| format!("reading {}", p.display()))?
                .trim()
                .parse::<f64>()?)
        };
        let total = read(self.usage_file())?;
        let kernel = match self.version {
            CgroupVersion::V1 => {
                read(self.dir.join("memory.kmem.usage_in_bytes")).unwrap_or(f64::NAN)
            }
            CgroupVersion::V2 => {
                let stat = std::fs::read_to_string(self.dir.join("memory.stat"))?;
                let get = |k: &str| {
                    stat.lines()
                        .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix(' ')))
                        .and_then(|v| v.trim().parse::<f64>().ok())
                };
                get("kernel").unwrap_or_else(|| {
                    ["slab", "kernel_stack", "pagetables", "percpu", "sock"]
                        .iter()
                        .filter_map(|k| get(k))
                        .sum()
                })
            }
        };
        Ok((total / 1048576.0, kernel / 1048576.0))
    }
}

/// A command running `program`, in `own` from its first instruction when
/// given (a shell moves itself into the cgroup, then execs it).
fn started_in(own: Option<&SelfCgroup>, program: &Path) -> Command {
    match own {
        Some(cg) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg("echo $$ > \"$0\" && exec \"$@\"")
                .arg(cg.dir.join("cgroup.procs"))
                .arg(program);
            c
        }
        None => Command::new(program),
    }
}

impl Drop for SelfCgroup {
    fn drop(&mut self) {
        // The exporter is gone (its Proc dropped first); its exit may take
        // a moment to leave the cgroup.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("bench: could not remove {}", self.dir.display());
    }
}

/// Starts `boxwatch exporter` over `root` and returns it with its address;
/// in `own` when given (the process starts there).
fn start_exporter(
    bin: &Path,
    root: &CgroupPath,
    walk: &str,
    max_open_files: Option<usize>,
) -> Result<(Proc, SocketAddr)> {
    start_exporter_in(bin, root, walk, max_open_files, None)
}

fn start_exporter_in(
    bin: &Path,
    root: &CgroupPath,
    walk: &str,
    max_open_files: Option<usize>,
    own: Option<&SelfCgroup>,
) -> Result<(Proc, SocketAddr)> {
    let budget = max_open_files.map(|n| ["--max-open-files".to_string(), n.to_string()]);
    let mut command = started_in(own, bin);
    let mut child = command
        .args([
            "exporter",
            "--listen",
            "127.0.0.1:0",
            "--max-cgroups",
            "100000",
        ])
        .args(["--cgroup-root", root.as_str(), "--walk", walk])
        .args(budget.iter().flatten())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting boxwatch exporter")?;
    let out = child.stdout.take().context("exporter stdout")?;
    let proc = Proc(child);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line)?;
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("no address in {line:?}"))?;
    Ok((proc, addr))
}

/// Starts Debian's node exporter on a free loopback port (in `own` when
/// given).
fn start_node_exporter(own: Option<&SelfCgroup>) -> Result<(Proc, SocketAddr)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let node = "/usr/bin/prometheus-node-exporter";
    let mut command = started_in(own, Path::new(node));
    let child = command
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting /usr/bin/prometheus-node-exporter (Debian package)")?;
    let proc = Proc(child);
    for _ in 0..100 {
        if scrape(addr, "/metrics").is_ok() {
            return Ok((proc, addr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("prometheus-node-exporter did not answer on {addr}")
}

/// One GET with Connection: close: (status, body length).
fn scrape(addr: SocketAddr, path: &str) -> Result<(u16, usize)> {
    let (status, body) = fetch(addr, path)?;
    Ok((status, body.len()))
}

/// One GET with Connection: close: (status, body).
fn fetch(addr: SocketAddr, path: &str) -> Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::with_capacity(1 << 20);
    s.read_to_end(&mut buf)?;
    let status = buf
        .split(|b| *b == b' ')
        .nth(1)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = match buf.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => buf.split_off(end + 4),
        None => Vec::new(),
    };
    Ok((status, body))
}

/// Checks that the exporter at `addr` gives every per-cgroup metric for
/// each of the `n` bench cgroups, with no read error: the figures then
/// include reading every file. Metrics a kernel may lack a file for are
/// reported; the limits and usage ones must be there.
fn check_coverage(addr: SocketAddr, root: &CgroupPath, n: usize) -> Result<()> {
    let (status, body) = fetch(addr, "/metrics")?;
    ensure!(status == 200, "scrape of {addr} answered {status}");
    let text = String::from_utf8(body).context("the exposition is not UTF-8")?;
    let prefix = format!("{{cgroup=\"{root}/c");
    let mut missing = Vec::new();
    for name in CGROUP_METRICS {
        let head = format!("{name}{prefix}");
        let found = text.lines().filter(|l| l.starts_with(&head)).count();
        if found < n {
            missing.push(format!("{name} ({found} of {n})"));
        }
    }
    let errors = text
        .lines()
        .find_map(|l| l.strip_prefix("boxwatch_exporter_cgroup_read_errors_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    ensure!(
        errors == Some(0.0),
        "the exporter counted read errors ({errors:?}): the figures would leave work out"
    );
    let required = [
        "boxwatch_cgroup_cpu_usage_seconds_total",
        "boxwatch_cgroup_cpu_quota_cores",
        "boxwatch_cgroup_memory_usage_bytes",
        "boxwatch_cgroup_memory_limit_bytes",
        "boxwatch_cgroup_pids_current",
        "boxwatch_cgroup_pids_limit",
    ];
    if let Some(m) = missing
        .iter()
        .find(|m| required.iter().any(|r| m.starts_with(&format!("{r} "))))
    {
        bail!("the bench cgroups lack {m}: their limits or controllers are not in place");
    }
    if !missing.is_empty() {
        eprintln!(
            "bench: this kernel does not give, for every bench cgroup: {}",
            missing.join(", ")
        );
    }
    Ok(())
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let stat = probes::host::parse::parse_pid_stat(&stat)?;
    let (Some(utime), Some(stime)) = (stat.utime, stat.stime) else {
        anyhow::bail!("/proc/{pid}/stat stops before utime and stime");
    };
    let ticks = (utime + stime) as f64;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.unwrap_or(100) as f64;
    Ok(ticks / hz)
}

/// (VmRSS, VmHWM) of `pid`, in MiB.
fn rss_mib(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    Ok((kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0))
}

/// Figures of one measured exporter.
struct Figures {
    scrapes: usize,
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms: f64,
    rss_mib: f64,
    peak_mib: f64,
    bytes: usize,
    /// Descriptors held on cgroupfs after the scrapes: (files,
    /// directories).
    cgroup_fds: (usize, usize),
    /// The process's open-file limit (soft, hard).
    nofile: (String, String),
    /// Memory charged to the exporter's own cgroup after the scrapes:
    /// (all, of which kernel), MiB; `None` when not measured.
    charged_mib: Option<(f64, f64)>,
}

/// `scrapes` sequential scrapes of `addr` after 3 warm-up ones; with the
/// charged memory of the exporter's cgroup `own`, when given.
fn measure_in(
    pid: u32,
    addr: SocketAddr,
    scrapes: usize,
    own: Option<&SelfCgroup>,
) -> Result<Figures> {
    ensure!(scrapes > 0, "at least one scrape");
    let mut bytes = 0;
    for _ in 0..3 {
        bytes = scrape(addr, "/metrics")?.1;
    }
    let cpu0 = cpu_seconds(pid)?;
    let mut lat = Vec::with_capacity(scrapes);
    for _ in 0..scrapes {
        check_interrupted()?;
        let t = Instant::now();
        let (status, _) = scrape(addr, "/metrics")?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        ensure!(status == 200, "scrape of {addr} answered {status}");
    }
    let cpu = cpu_seconds(pid)? - cpu0;
    lat.sort_by(f64::total_cmp);
    let (rss, peak) = rss_mib(pid)?;
    let cgroup_fds = cgroup_fds(pid)?;
    let nofile = nofile(pid)?;
    let charged_mib = match own {
        Some(cg) => Some(cg.charged_mib()?),
        None => None,
    };
    Ok(Figures {
        charged_mib,
        scrapes,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        cpu_ms: cpu * 1000.0 / scrapes as f64,
        rss_mib: rss,
        peak_mib: peak,
        bytes,
        cgroup_fds,
        nofile,
    })
}

/// Rounds of the floor measurement (the best one counts).
const FLOOR_ROUNDS: usize = 20;

/// What reading cgroupfs costs at the least, whoever reads it: the system
/// calls alone, timed in this process (thread CPU time, best of
/// [`FLOOR_ROUNDS`]), with no parsing and no encoding.
struct Floor {
    /// Files the exporter reads for the bench cgroups.
    files: usize,
    /// Chunks they were opened and timed in (1 when the open-file limit
    /// holds them all).
    chunks: usize,
    /// One `pread` of each of them, on descriptors opened beforehand.
    read_ms: f64,
    /// The walk's system calls: opening and listing the bench root and one
    /// `fstatat` per cgroup, in each hierarchy the union walk reads.
    walk_union_ms: f64,
    /// The same in the cpu hierarchy alone (`--walk cpu`).
    walk_cpu_ms: f64,
    /// The union walk with every cgroup directory held open (`O_PATH`)
    /// beforehand: `fstat` on the descriptor instead of `fstatat` by name
    /// (what the exporter does when its open-file budget has room); `None`
    /// when this process cannot hold them all.
    walk_union_held_ms: Option<f64>,
}

/// CPU time of this thread, in seconds.
fn thread_cpu() -> Result<f64> {
    use nix::time::{clock_gettime, ClockId};
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)?;
    Ok(t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
}

/// The least CPU time of `f` over [`FLOOR_ROUNDS`] rounds, after one
/// warm-up, in ms.
fn best_of(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut best = f64::INFINITY;
    for _ in 0..FLOOR_ROUNDS {
        check_interrupted()?;
        let t = thread_cpu()?;
        f()?;
        best = best.min(thread_cpu()? - t);
    }
    Ok(best * 1000.0)
}

/// Raises this process's open-file limit towards `n` as far as it may
/// (beyond the hard limit only with CAP_SYS_RESOURCE; fs.nr_open caps
/// it): the soft limit it got.
fn raise_nofile(n: usize) -> Result<usize> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let want = n as u64;
    if soft < want && setrlimit(Resource::RLIMIT_NOFILE, want, hard.max(want)).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(usize::try_from(soft).unwrap_or(usize::MAX))
}

/// The floor for the `n` bench cgroups below `root`: the files come from
/// [`probes::host::CgroupLayout::stat_files`], the very list the exporter's
/// reader goes through. When the open-file limit cannot hold them all,
/// they are opened and timed in chunks, and the chunks' times added.
fn floor(root: &CgroupPath, n: usize) -> Result<Floor> {
    use nix::dir::Dir;
    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::{fstatat, Mode};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let layout = Host::new().layout()?;
    let mut paths = Vec::new();
    for i in 0..n {
        paths.extend(layout.stat_files(&root.child(&format!("c{i}"))?, READ)?);
    }
    let limit = raise_nofile(paths.len() + 256)?;
    let chunk = limit.saturating_sub(256).max(1000);
    let mut read_ms = 0.0;
    let mut buf = vec![0u8; 4096];
    for part in paths.chunks(chunk) {
        let files = part
            .iter()
            .map(|p| std::fs::File::open(p).with_context(|| format!("opening {}", p.display())))
            .collect::<Result<Vec<_>>>()?;
        read_ms += best_of(|| {
            for f in &files {
                f.read_at(&mut buf, 0)?;
            }
            Ok(())
        })?;
    }
    let chunks = paths.len().div_ceil(chunk);
    let walk = |hierarchies: &[&Hierarchy]| {
        best_of(|| {
            for h in hierarchies {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
                let mut dir = Dir::open(&h.dir(root), flags, Mode::empty())?;
                let fd = dir.as_raw_fd();
                let names: Vec<std::ffi::CString> = dir
                    .iter()
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type() == Some(nix::dir::Type::Directory))
                    .map(|e| e.file_name().to_owned())
                    .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
                    .collect();
                for name in &names {
                    fstatat(Some(fd), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
                }
            }
            Ok(())
        })
    };
    let union = layout.hierarchies_of(READ);
    let cpu: Vec<&Hierarchy> = layout.hierarchy_for("cpu").into_iter().collect();
    let walk_union_held_ms = if n * union.len() + 256 <= limit {
        // Every cgroup directory of every hierarchy, open O_PATH.
        let mut held = Vec::new();
        for h in &union {
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            let dir = Dir::open(
                &h.dir(root),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )?;
            let mut fds = Vec::new();
            for i in 0..n {
                fds.push(nix::fcntl::openat(
                    Some(dir.as_raw_fd()),
                    format!("c{i}").as_str(),
                    flags,
                    Mode::empty(),
                )?);
            }
            held.push((*h, fds));
        }
        let ms = best_of(|| {
            for (h, fds) in &held {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
                let mut dir = Dir::open(&h.dir(root), flags, Mode::empty())?;
                let listed = dir.iter().filter_map(|e| e.ok()).count();
                ensure!(
                    listed > fds.len(),
                    "the bench root lists fewer entries than cgroups"
                );
                for fd in fds {
                    nix::sys::stat::fstat(*fd)?;
                }
            }
            Ok(())
        });
        for (_, fds) in held {
            for fd in fds {
                let _ = nix::unistd::close(fd);
            }
        }
        Some(ms?)
    } else {
        None
    };
    Ok(Floor {
        files: paths.len(),
        chunks,
        read_ms,
        walk_union_ms: walk(&union)?,
        walk_cpu_ms: walk(&cpu)?,
        walk_union_held_ms,
    })
}

/// Descriptors `pid` holds open on cgroupfs: (files, directories). Each
/// file that has been read keeps a page (4 KiB) of kernel memory, its
/// seq_file buffer, charged to the process's memory cgroup and not part
/// of its RSS; a directory held `O_PATH` keeps no buffer.
fn cgroup_fds(pid: u32) -> Result<(usize, usize)> {
    let (mut files, mut dirs) = (0, 0);
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(e) = e else { continue };
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        if target.starts_with("/sys/fs/cgroup") {
            if target.is_dir() {
                dirs += 1;
            } else {
                files += 1;
            }
        }
    }
    Ok((files, dirs))
}

/// The open-file limit of `pid` (soft, hard), from `/proc/<pid>/limits`.
fn nofile(pid: u32) -> Result<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .context("no open-file limit in /proc/<pid>/limits")?;
    let mut f = line.split_whitespace();
    let soft = f.next().unwrap_or("?").to_string();
    let hard = f.next().unwrap_or("?").to_string();
    Ok((soft, hard))
}

/// Sizes from which `--scrapes-large` applies.
const LARGE: usize = 5000;

fn bench(
    bin: &Path,
    sizes: &[usize],
    scrapes: usize,
    scrapes_large: usize,
    max_open_files: Option<usize>,
) -> Result<()> {
    let mut cgroups = BenchCgroups::new()?;
    let mut rows: Vec<(usize, Vec<(&str, Figures)>)> = Vec::new();
    let mut floors: Vec<(usize, Floor)> = Vec::new();
    let mut budgets: Vec<(usize, usize, Figures)> = Vec::new();
    let node_cg = SelfCgroup::new("node-exporter")?;
    let (node, node_addr) = start_node_exporter(node_cg.as_ref())?;
    for &n in sizes {
        let t = Instant::now();
        cgroups.grow_to(n)?;
        eprintln!(
            "bench: {n} limited cgroups in {} hierarchies ready ({:.1} s)",
            cgroups.hierarchies.len(),
            t.elapsed().as_secs_f64()
        );
        floors.push((n, floor(&cgroups.root, n)?));
        let count = if n >= LARGE { scrapes_large } else { scrapes };
        let mut figures = Vec::new();
        for (walk, name) in [
            ("union", "boxwatch (walk union)"),
            ("cpu", "boxwatch (walk cpu)"),
        ] {
            let own = SelfCgroup::new(&format!("exporter-{walk}-{n}"))?;
            let (exporter, addr) =
                start_exporter_in(bin, &cgroups.root, walk, max_open_files, own.as_ref())?;
            check_coverage(addr, &cgroups.root, n)?;
            figures.push((name, measure_in(exporter.pid(), addr, count, own.as_ref())?));
        }
        figures.push((
            "node-exporter",
            measure_in(node.pid(), node_addr, count, node_cg.as_ref())?,
        ));
        rows.push((n, figures));
        // The held-file budget's trade-off: CPU per scrape against the
        // memory charged to the exporter.
        for budget in BUDGETS {
            let own = SelfCgroup::new(&format!("budget-{budget}-{n}"))?;
            let (exporter, addr) =
                start_exporter_in(bin, &cgroups.root, "union", Some(budget), own.as_ref())?;
            let count = (count / 4).max(20);
            budgets.push((
                n,
                budget,
                measure_in(exporter.pid(), addr, count, own.as_ref())?,
            ));
        }
    }
    drop(node);
    drop(node_cg);
    println!(
        "\n{:>7} | {:<22} | {:>7} | {:>8} | {:>8} | {:>10} | {:>10} | {:>8} | {:>8} | {:>8} | {:>8} | {:>7} | {:>11} | {:>10}",
        "cgroups",
        "exporter",
        "scrapes",
        "p50 ms",
        "p99 ms",
        "CPU ms/scr",
        "CPU µs/cg",
        "RSS MiB",
        "peak MiB",
        "body KiB",
        "cg files",
        "cg dirs",
        "charged MiB",
        "kernel MiB"
    );
    println!("{}", "-".repeat(175));
    let charged = |f: &Figures| match f.charged_mib {
        Some((all, kernel)) => (format!("{all:.1}"), format!("{kernel:.1}")),
        None => ("n/a".to_string(), "n/a".to_string()),
    };
    for (n, figures) in &rows {
        for (name, f) in figures {
            let (all, kernel) = charged(f);
            println!(
                "{n:>7} | {name:<22} | {:>7} | {:>8.2} | {:>8.2} | {:>10.2} | {:>10.2} | {:>8.1} | {:>8.1} | {:>8.0} | {:>8} | {:>7} | {all:>11} | {kernel:>10}",
                f.scrapes,
                f.p50_ms,
                f.p99_ms,
                f.cpu_ms,
                f.cpu_ms * 1000.0 / *n as f64,
                f.rss_mib,
                f.peak_mib,
                f.bytes as f64 / 1024.0,
                f.cgroup_fds.0,
                f.cgroup_fds.1
            );
        }
    }
    println!(
        "(sequential scrapes after 3 warm-ups; p99 by nearest rank: the {}th of {scrapes}, the {}th of {scrapes_large} from {LARGE} cgroups; \
         CPU = utime+stime of the exporter process / scrapes; peak = VmHWM; \
         cg files / cg dirs = files and directories the exporter holds open on cgroupfs after the scrapes; each file read keeps a \
         4 KiB page of kernel memory (its seq_file buffer) charged to the exporter's memory cgroup, outside RSS; a directory (O_PATH) keeps none; \
         each bench cgroup has a {} CPU quota, a {} MiB memory limit and a pids limit of {PIDS_LIMIT}; \
         charged = memory charged to the process's own memory cgroup (it started there): RSS, page cache and kernel memory; \
         kernel = the kernel part of it (v1 memory.kmem.usage_in_bytes, v2 memory.stat kernel))",
        nearest_rank(scrapes, 0.99),
        nearest_rank(scrapes_large, 0.99),
        CPU_QUOTA_US as f64 / CPU_PERIOD_US as f64,
        MEMORY_LIMIT >> 20
    );
    println!(
        "\nfloor: the system calls alone, timed in the bench process (thread CPU time, best of {FLOOR_ROUNDS} rounds), no parsing, no encoding"
    );
    println!(
        "{:>7} | {:>7} | {:>6} | {:>13} | {:>9} | {:>9} | {:>13} | {:>11} | {:>18}",
        "cgroups",
        "files",
        "chunks",
        "pread ms/scr",
        "µs/file",
        "µs/cg",
        "walk union ms",
        "walk cpu ms",
        "walk union held ms"
    );
    println!("{}", "-".repeat(116));
    for (n, f) in &floors {
        println!(
            "{n:>7} | {:>7} | {:>6} | {:>13.2} | {:>9.2} | {:>9.2} | {:>13.2} | {:>11.2} | {:>18}",
            f.files,
            f.chunks,
            f.read_ms,
            f.read_ms * 1000.0 / f.files.max(1) as f64,
            f.read_ms * 1000.0 / *n as f64,
            f.walk_union_ms,
            f.walk_cpu_ms,
            f.walk_union_held_ms
                .map_or("n/a".to_string(), |ms| format!("{ms:.2}"))
        );
    }
    println!(
        "(pread ms: one pread of every file the exporter reads for these cgroups (CgroupLayout::stat_files), on descriptors opened \
         beforehand, in chunks when this process's open-file limit cannot hold them all; walk: open and list the bench root, \
         one fstatat per cgroup, in each hierarchy the walk reads; walk union held: the same with every cgroup directory open \
         (O_PATH) beforehand and one fstat per descriptor, as the exporter walks when its open-file budget has room: \
         n/a when the bench cannot hold them all)"
    );
    print_budgets(&budgets, &floors);
    for name in ["boxwatch (walk union)", "boxwatch (walk cpu)"] {
        print_targets(name, &rows, &floors);
    }
    Ok(())
}

/// The `--max-open-files` values the trade-off table measures (the
/// open-file limit may hold fewer: `held` says how many were).
const BUDGETS: [usize; 4] = [0, 2048, 8192, 32768];

/// The held-file budget's trade-off: CPU per scrape against memory
/// charged to the exporter, per size and budget.
fn print_budgets(budgets: &[(usize, usize, Figures)], floors: &[(usize, Floor)]) {
    println!(
        "\nheld-file budget (--max-open-files, walk union): CPU per scrape against the memory charged to the exporter's own cgroup"
    );
    println!(
        "{:>7} | {:>7} | {:>6} | {:>8} | {:>10} | {:>11} | {:>11} | {:>10} | {:>8}",
        "cgroups",
        "budget",
        "held",
        "p99 ms",
        "CPU ms/scr",
        "x read flr",
        "charged MiB",
        "kernel MiB",
        "RSS MiB"
    );
    println!("{}", "-".repeat(100));
    for (n, budget, f) in budgets {
        let floor = floors
            .iter()
            .find(|(m, _)| m == n)
            .map(|(_, fl)| fl.read_ms);
        let (all, kernel) = f.charged_mib.unwrap_or((f64::NAN, f64::NAN));
        println!(
            "{n:>7} | {budget:>7} | {:>6} | {:>8.2} | {:>10.2} | {:>11} | {all:>11.1} | {kernel:>10.1} | {:>8.1}",
            f.cgroup_fds.0,
            f.p99_ms,
            f.cpu_ms,
            floor.map_or("n/a".into(), |fl| format!("{:.2}", f.cpu_ms / fl)),
            f.rss_mib
        );
    }
    println!(
        "(held = cgroup files the exporter holds after the scrapes, within the budget and its open-file limit; \
         each pins a 4 KiB kernel page charged to its cgroup; files beyond it are opened and closed at every read)"
    );
}

/// The figures of exporter `name` at `n` cgroups.
fn row<'a>(rows: &'a [(usize, Vec<(&str, Figures)>)], name: &str, n: usize) -> Option<&'a Figures> {
    let (_, figures) = rows.iter().find(|(m, _)| *m == n)?;
    figures.iter().find(|(e, _)| *e == name).map(|(_, f)| f)
}

/// Each target of `name`, its figure and whether it was met.
fn print_targets(name: &str, rows: &[(usize, Vec<(&str, Figures)>)], floors: &[(usize, Floor)]) {
    let verdict = |met: bool| if met { "met" } else { "NOT MET" };
    println!("\ntargets, {name}:");
    match row(rows, name, 1000) {
        Some(f) => {
            println!(
                "  p99 < 25 ms at 1,000 cgroups:           {:>8.2} ms   {}",
                f.p99_ms,
                verdict(f.p99_ms < 25.0)
            );
            println!(
                "  CPU < 5 ms per scrape at 1,000 cgroups: {:>8.2} ms   {}",
                f.cpu_ms,
                verdict(f.cpu_ms < 5.0)
            );
            if let Some((_, fl)) = floors.iter().find(|(n, _)| *n == 1000) {
                println!(
                    "  CPU <= 1.3x the read floor at 1,000:    {:>8.2} x    {} (floor {:.2} ms)",
                    f.cpu_ms / fl.read_ms,
                    verdict(f.cpu_ms <= 1.3 * fl.read_ms),
                    fl.read_ms
                );
            }
            match f.charged_mib {
                Some((all, kernel)) => println!(
                    "  RSS + charged kernel < 40 MiB at 1,000: {:>8.1} MiB  {} (all charged: {all:.1} MiB, of which kernel {kernel:.1} MiB; RSS {:.1} MiB)",
                    f.rss_mib + kernel,
                    verdict(f.rss_mib + kernel < 40.0),
                    f.rss_mib
                ),
                None => println!("  RSS + charged kernel at 1,000: not measured (no memory cgroup of its own)"),
            }
            if let Some((_, fl)) = floors.iter().find(|(n, _)| *n == 1000) {
                // The walk as the exporter does it at 1,000 cgroups: the
                // union one with its directories held when it can.
                let (walk, how) = match (name.contains("union"), fl.walk_union_held_ms) {
                    (true, Some(held)) => (held, "with the directories held open"),
                    (true, None) => (fl.walk_union_ms, "by name"),
                    (false, _) => (fl.walk_cpu_ms, "by name"),
                };
                println!(
                    "    floor at 1,000 cgroups: {:.2} ms to pread the {} files alone (+ {walk:.2} ms for the walk's system calls, {how}); \
                     the exporter is at {:.2}x the read floor, {:.2}x reads + walk",
                    fl.read_ms,
                    fl.files,
                    f.cpu_ms / fl.read_ms,
                    f.cpu_ms / (fl.read_ms + walk)
                );
                if fl.read_ms >= 5.0 {
                    println!(
                        "    the read floor alone is above 5 ms: no exporter reading these files on this kernel can meet this target"
                    );
                }
            }
        }
        None => println!("  p99 and CPU at 1,000 cgroups: not measured (no 1000 in --cgroups)"),
    }
    let peaks: Vec<(usize, f64)> = rows
        .iter()
        .filter_map(|(n, _)| row(rows, name, *n).map(|f| (*n, f.peak_mib)))
        .collect();
    if let Some((n, peak)) = peaks.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)) {
        println!(
            "  RSS < 30 MiB (peak, every size):        {peak:>8.1} MiB  {} (highest at {n} cgroups)",
            verdict(peak < 30.0)
        );
    }
    let per_cg: Vec<(usize, f64)> = rows
        .iter()
        .filter_map(|(n, _)| row(rows, name, *n).map(|f| (*n, f.cpu_ms * 1000.0 / *n as f64)))
        .collect();
    let listed: Vec<String> = per_cg
        .iter()
        .map(|(n, us)| format!("{us:.2} µs at {n}"))
        .collect();
    match (row(rows, name, 1000), row(rows, name, LARGE)) {
        (Some(a), Some(b)) => {
            let large = b;
            let (a, b) = (a.cpu_ms / 1000.0, b.cpu_ms / LARGE as f64);
            println!(
                "  linear growth, CPU per cgroup: {}   {} (at {LARGE}: {:.2}x the cost per cgroup at 1,000; met when <= 1.5x)",
                listed.join(", "),
                verdict(b <= 1.5 * a),
                b / a
            );
            if let Some((_, fl)) = floors.iter().find(|(n, _)| *n == LARGE) {
                if large.cgroup_fds.0 < fl.files {
                    println!(
                        "    at {LARGE} the exporter holds {} of the {} files open (its --max-open-files budget, default {} = \
                         ~{} MiB of kernel pages, and its open-file limit, {} soft, {} hard, raised past the hard limit only with \
                         CAP_SYS_RESOURCE): the other {} are opened, read and \
                         closed at every scrape, ~4x the cost of a held read",
                        large.cgroup_fds.0,
                        fl.files,
                        DEFAULT_MAX_OPEN_FILES,
                        DEFAULT_MAX_OPEN_FILES * 4 / 1024,
                        large.nofile.0,
                        large.nofile.1,
                        fl.files - large.cgroup_fds.0
                    );
                }
            }
        }
        _ => println!(
            "  linear growth, CPU per cgroup: {}   (needs 1000 and {LARGE} in --cgroups to judge)",
            listed.join(", ")
        ),
    }
}

/// Counters of the load test.
#[derive(Default)]
struct LoadCounts {
    ok: AtomicU64,
    failed: AtomicU64,
    malformed_answered: AtomicU64,
    malformed_closed: AtomicU64,
}

fn load(bin: &Path, n: usize, scrapers: usize, slow: usize, seconds: u64) -> Result<()> {
    ensure!(
        scrapers <= 1000 && slow <= 1000 && seconds <= 120,
        "load is bounded: at most 1000 clients, 120 s"
    );
    let mut cgroups = BenchCgroups::new()?;
    cgroups.grow_to(n)?;
    let (exporter, addr) = start_exporter(bin, &cgroups.root, "union", None)?;
    let pid = exporter.pid();
    let cpu0 = cpu_seconds(pid)?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let counts = Arc::new(LoadCounts::default());

    // Slow clients: half a request line, then silence.
    let mut slow_conns = Vec::new();
    for _ in 0..slow {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
            slow_conns.push(s);
        }
    }
    let mut threads = Vec::new();
    for _ in 0..scrapers {
        let counts = counts.clone();
        threads.push(std::thread::spawn(move || {
            let mut lat = Vec::new();
            while Instant::now() < deadline && !interrupted() {
                let t = Instant::now();
                match scrape(addr, "/metrics") {
                    Ok((200, _)) => {
                        counts.ok.fetch_add(1, Ordering::Relaxed);
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    // Malformed requests, sequentially, while the load runs.
    let garbage: [&[u8]; 4] = [
        b"GARBAGE\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: \x7f\x00\r\n\r\n",
    ];
    let mut peak_rss: f64 = 0.0;
    let mut i = 0;
    while Instant::now() < deadline && !interrupted() {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = s.write_all(garbage[i % garbage.len()]);
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            let c = if buf.starts_with(b"HTTP/1.1 4") {
                &counts.malformed_answered
            } else {
                &counts.malformed_closed
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
        peak_rss = peak_rss.max(rss_mib(pid)?.0);
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut lat: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    check_interrupted()?;
    let cpu = cpu_seconds(pid)? - cpu0;
    // Liveness after the storm.
    let alive = scrape(addr, "/healthz")
        .map(|r| r.0 == 200)
        .unwrap_or(false);
    let (rss, hwm) = rss_mib(pid)?;
    drop(slow_conns);
    drop(exporter);
    lat.sort_by(f64::total_cmp);
    let ok = counts.ok.load(Ordering::Relaxed);
    println!("\nload: {scrapers} concurrent scrapers + {slow} slow clients + malformed requests, {seconds} s, {n} cgroups");
    println!(
        "  scrapes answered 200: {ok} ({:.0}/s), failed: {}",
        ok as f64 / seconds as f64,
        counts.failed.load(Ordering::Relaxed)
    );
    if !lat.is_empty() {
        println!(
            "  latency under load: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat[lat.len() - 1]
        );
    }
    println!(
        "  malformed: {} answered 4xx, {} closed without answer",
        counts.malformed_answered.load(Ordering::Relaxed),
        counts.malformed_closed.load(Ordering::Relaxed)
    );
    println!(
        "  exporter CPU: {cpu:.2} s ({:.2} ms per answered scrape)",
        cpu * 1000.0 / ok.max(1) as f64
    );
    println!("  exporter RSS: {rss:.1} MiB now, {peak_rss:.1} MiB max sampled, {hwm:.1} MiB high-water mark");
    println!("  healthy afterwards: {alive}");
    ensure!(alive, "the exporter did not answer /healthz after the load");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes::host::fake::FakeTree;

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn v2_enables_controllers_only_in_what_the_bench_created() {
        let dir = tempfile::tempdir().unwrap();
        let t = FakeTree::new(dir.path())
            .v2(&["cpuset", "cpu", "io", "memory", "pids"])
            .build()
            .unwrap();
        let layout = t.host().layout().unwrap();
        let mount = t.mkdir("", "/").unwrap();
        let root = CgroupPath::new("/boxwatch/bench-1").unwrap();

        // No /boxwatch yet: the bench makes it and enables the controllers
        // there and in its own root.
        let mut set =
            BenchCgroups::in_hierarchies(&layout.hierarchies_of(READ), root.clone()).unwrap();
        set.grow_to(2).unwrap();
        for d in ["boxwatch", "boxwatch/bench-1"] {
            let f = mount.join(d).join("cgroup.subtree_control");
            assert_eq!(read(&f), "+cpu +memory +pids");
        }
        let c1 = mount.join("boxwatch/bench-1/c1");
        assert_eq!(read(&c1.join("cpu.max")), "50000 100000");
        assert_eq!(read(&c1.join("memory.max")), (64u64 << 20).to_string());
        assert_eq!(read(&c1.join("pids.max")), "64");
        // Fake directories hold plain files: removing them needs help here
        // (cgroupfs removes its files with the directory).
        for i in 0..2 {
            let c = mount.join(format!("boxwatch/bench-1/c{i}"));
            for f in ["cpu.max", "memory.max", "pids.max"] {
                std::fs::remove_file(c.join(f)).unwrap();
            }
        }
        for d in ["boxwatch/bench-1", "boxwatch"] {
            std::fs::remove_file(mount.join(d).join("cgroup.subtree_control")).unwrap();
        }
        drop(set);
        assert!(
            !mount.join("boxwatch").exists(),
            "the bench's /boxwatch stayed"
        );

        // A /boxwatch someone else made (in use by a run) is not written to
        // and stays.
        t.mkdir("", "/boxwatch/run-1").unwrap();
        let set = BenchCgroups::in_hierarchies(&layout.hierarchies_of(READ), root).unwrap();
        assert!(!mount.join("boxwatch/cgroup.subtree_control").exists());
        assert_eq!(
            read(&mount.join("boxwatch/bench-1/cgroup.subtree_control")),
            "+cpu +memory +pids"
        );
        std::fs::remove_file(mount.join("boxwatch/bench-1/cgroup.subtree_control")).unwrap();
        drop(set);
        assert!(!mount.join("boxwatch/bench-1").exists());
        assert!(mount.join("boxwatch/run-1").exists());
    }

    #[test]
    fn v1_limits_go_to_each_controllers_hierarchy() {
        let dir = tempfile::tempdir().unwrap();
        let t = FakeTree::new(dir.path())
            .v1(&["cpu"])
            .v1(&["cpuacct"])
            .v1(&["cpuset"])
            .v1(&["memory"])
            .v1(&["pids"])
            .build()
            .unwrap();
        let layout = t.host().layout().unwrap();
        let root = CgroupPath::new("/boxwatch/bench-2").unwrap();
        let mut set = BenchCgroups::in_hierarchies(&layout.hierarchies_of(READ), root).unwrap();
        // cpu, cpuacct, memory, pids and cpuset (the exporter reads the
        // cpuset size), as an engine makes them.
        assert_eq!(set.hierarchies.len(), 5);
        set.grow_to(1).unwrap();
        let c0 = |m: &str| t.mkdir(m, "/boxwatch/bench-2/c0").unwrap();
        assert_eq!(read(&c0("cpu").join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&c0("cpu").join("cpu.cfs_period_us")), "100000");
        assert_eq!(
            read(&c0("memory").join("memory.limit_in_bytes")),
            (64u64 << 20).to_string()
        );
        assert_eq!(read(&c0("pids").join("pids.max")), "64");
        assert_eq!(std::fs::read_dir(c0("cpuacct")).unwrap().count(), 0);
        assert!(!c0("cpu").join("cgroup.subtree_control").exists());
        std::mem::forget(set); // the tempdir goes with its plain files
    }
}
