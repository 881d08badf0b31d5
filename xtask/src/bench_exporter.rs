//! `cargo xtask bench exporter` and `cargo xtask bench exporter-load`.
//!
//! `exporter`: creates N cgroups (100, 1000, 5000 by default) under
//! `boxwatch/bench-<pid>/` in every hierarchy the exporter reads, starts
//! the release `boxwatch exporter` on a loopback port, and measures scrape
//! latency (p50/p99), CPU seconds per scrape and RSS; in the same run the
//! same figures for Debian's `prometheus-node-exporter` as a reference.
//!
//! `exporter-load`: 200 concurrent scrapers, slow clients that never finish
//! their request and malformed requests against one exporter over 1000
//! cgroups, bounded in count and time; prints answered/failed counts,
//! latency and the exporter's peak RSS.
//!
//! Everything it creates (cgroups, processes) is removed by PID/path on
//! success, error and Ctrl-C. Network traffic goes to 127.0.0.1 only.

use anyhow::{bail, ensure, Context, Result};
use probes::host::{CgroupPath, Host};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `cargo xtask bench <target>`.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    target: BenchTarget,
}

#[derive(clap::Subcommand)]
enum BenchTarget {
    /// Scrape latency, CPU per scrape and RSS of the exporter over N
    /// cgroups, next to prometheus-node-exporter.
    Exporter {
        /// Cgroup counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "100,1000,5000")]
        cgroups: Vec<usize>,
        /// Timed scrapes per measurement.
        #[arg(long, default_value_t = 50)]
        scrapes: usize,
    },
    /// Start-to-exit latency of a container running /bin/true: the
    /// builtin runtime, crun, runc and unshare side by side.
    Runtime(crate::bench_runtime::RuntimeBenchArgs),
    /// 200 concurrent scrapers, slow clients and malformed requests.
    ExporterLoad {
        #[arg(long, default_value_t = 1000)]
        cgroups: usize,
        #[arg(long, default_value_t = 200)]
        scrapers: usize,
        #[arg(long, default_value_t = 100)]
        slow_clients: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

/// Set by SIGINT/SIGTERM; every loop checks it and unwinds, so the Drop
/// guards remove what was created.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether SIGINT/SIGTERM arrived (for the other benches' loops).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe { sigaction(sig, &action) }.context("installing a signal handler")?;
    }
    Ok(())
}

fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

pub fn main(args: BenchArgs) -> Result<()> {
    ensure!(
        nix::unistd::geteuid().is_root(),
        "the exporter bench creates cgroups: run it as root"
    );
    install_signal_handlers()?;
    let bin = build_boxwatch()?;
    match args.target {
        BenchTarget::Exporter { cgroups, scrapes } => bench(&bin, &cgroups, scrapes),
        BenchTarget::Runtime(args) => crate::bench_runtime::main(&bin, args),
        BenchTarget::ExporterLoad {
            cgroups,
            scrapers,
            slow_clients,
            seconds,
        } => load(&bin, cgroups, scrapers, slow_clients, seconds),
    }
}

/// Builds the release binary and returns its path.
fn build_boxwatch() -> Result<PathBuf> {
    crate::cmd(
        "cargo",
        &["build", "--release", "--quiet", "--bin", "boxwatch"],
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    Ok(target.join("release/boxwatch"))
}

/// The cgroups this bench made: `boxwatch/bench-<pid>/c<i>` in each
/// hierarchy; all removed on drop (children first).
struct BenchCgroups {
    parents: Vec<PathBuf>,
    made: usize,
    root: CgroupPath,
}

impl BenchCgroups {
    fn new() -> Result<Self> {
        let layout = Host::new().layout()?;
        let root = CgroupPath::new(&format!("/boxwatch/bench-{}", std::process::id()))?;
        let mut set = BenchCgroups {
            parents: Vec::new(),
            made: 0,
            root,
        };
        for h in layout.stat_hierarchies() {
            let dir = h.dir(&set.root);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            set.parents.push(dir);
        }
        Ok(set)
    }

    /// Creates cgroups until there are `n` of them.
    fn grow_to(&mut self, n: usize) -> Result<()> {
        while self.made < n {
            check_interrupted()?;
            for p in &self.parents {
                let d = p.join(format!("c{}", self.made));
                std::fs::create_dir(&d).with_context(|| format!("creating {}", d.display()))?;
            }
            self.made += 1;
        }
        Ok(())
    }
}

impl Drop for BenchCgroups {
    fn drop(&mut self) {
        let mut left = 0;
        for p in &self.parents {
            for i in 0..self.made {
                let _ = std::fs::remove_dir(p.join(format!("c{i}")));
            }
            if std::fs::remove_dir(p).is_err() && p.exists() {
                left += 1;
                eprintln!("bench: could not remove {}", p.display());
            }
            // The shared /boxwatch parent, unless another run still uses it.
            if let Some(parent) = p.parent() {
                let _ = std::fs::remove_dir(parent);
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

/// Starts `boxwatch exporter` over `root` and returns it with its address.
fn start_exporter(bin: &PathBuf, root: &CgroupPath, walk: &str) -> Result<(Proc, SocketAddr)> {
    let mut child = Command::new(bin)
        .args([
            "exporter",
            "--listen",
            "127.0.0.1:0",
            "--max-cgroups",
            "100000",
        ])
        .args(["--cgroup-root", root.as_str(), "--walk", walk])
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

/// Starts Debian's node exporter on a free loopback port.
fn start_node_exporter() -> Result<(Proc, SocketAddr)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let child = Command::new("/usr/bin/prometheus-node-exporter")
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
    Ok((status, buf.len()))
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
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
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms: f64,
    rss_mib: f64,
    peak_mib: f64,
    bytes: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `scrapes` sequential scrapes of `addr` after 3 warm-up ones.
fn measure(pid: u32, addr: SocketAddr, scrapes: usize) -> Result<Figures> {
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
    Ok(Figures {
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        cpu_ms: cpu * 1000.0 / scrapes as f64,
        rss_mib: rss,
        peak_mib: peak,
        bytes,
    })
}

fn bench(bin: &PathBuf, sizes: &[usize], scrapes: usize) -> Result<()> {
    let mut cgroups = BenchCgroups::new()?;
    let mut rows = Vec::new();
    let (node, node_addr) = start_node_exporter()?;
    for &n in sizes {
        let t = Instant::now();
        cgroups.grow_to(n)?;
        eprintln!(
            "bench: {n} cgroups in {} hierarchies ready ({:.1} s)",
            cgroups.parents.len(),
            t.elapsed().as_secs_f64()
        );
        let mut figures = Vec::new();
        for (walk, name) in [
            ("union", "boxwatch (walk union)"),
            ("cpu", "boxwatch (walk cpu)"),
        ] {
            let (exporter, addr) = start_exporter(bin, &cgroups.root, walk)?;
            figures.push((name, measure(exporter.pid(), addr, scrapes)?));
        }
        figures.push(("node-exporter", measure(node.pid(), node_addr, scrapes)?));
        rows.push((n, figures));
    }
    drop(node);
    println!(
        "\n{:>7} | {:<22} | {:>8} | {:>8} | {:>10} | {:>8} | {:>9} | {:>9}",
        "cgroups", "exporter", "p50 ms", "p99 ms", "CPU ms/scr", "RSS MiB", "peak MiB", "body KiB"
    );
    println!("{}", "-".repeat(100));
    for (n, figures) in &rows {
        for (name, f) in figures {
            println!(
                "{n:>7} | {name:<22} | {:>8.2} | {:>8.2} | {:>10.2} | {:>8.1} | {:>9.1} | {:>9.0}",
                f.p50_ms,
                f.p99_ms,
                f.cpu_ms,
                f.rss_mib,
                f.peak_mib,
                f.bytes as f64 / 1024.0
            );
        }
    }
    println!("({scrapes} sequential scrapes each after 3 warm-ups; CPU = utime+stime of the exporter process / scrapes)");
    Ok(())
}

/// Counters of the load test.
#[derive(Default)]
struct LoadCounts {
    ok: AtomicU64,
    failed: AtomicU64,
    malformed_answered: AtomicU64,
    malformed_closed: AtomicU64,
}

fn load(bin: &PathBuf, n: usize, scrapers: usize, slow: usize, seconds: u64) -> Result<()> {
    ensure!(
        scrapers <= 1000 && slow <= 1000 && seconds <= 120,
        "load is bounded: at most 1000 clients, 120 s"
    );
    let mut cgroups = BenchCgroups::new()?;
    cgroups.grow_to(n)?;
    let (exporter, addr) = start_exporter(bin, &cgroups.root, "union")?;
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
            while Instant::now() < deadline && !INTERRUPTED.load(Ordering::Relaxed) {
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
    while Instant::now() < deadline && !INTERRUPTED.load(Ordering::Relaxed) {
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
