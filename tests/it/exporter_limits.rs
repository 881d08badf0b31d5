//! The `boxwatch exporter` process under more connections than it serves
//! at once: it keeps answering /healthz within a stated bound, and its
//! resident memory (VmRSS from /proc/<pid>/status) stays bounded. And it
//! stops on SIGTERM even when its parent had the signal blocked.
//!
//! The exporter reads a fake cgroup tree (`--host-root`), so the body size
//! is known; it listens on 127.0.0.1 and is ended by PID. Every client is
//! counted and every wait is bounded. Bounds here are liveness limits, not
//! speed targets.

use probes::host::fake::FakeTree;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_boxwatch");

/// The exporter process, ended by PID when dropped.
struct Exporter {
    child: Child,
    addr: SocketAddr,
}

impl Exporter {
    fn start(host_root: &Path, extra: &[&str]) -> Exporter {
        let mut child = Command::new(BIN)
            .args(["exporter", "--listen", "127.0.0.1:0", "--host-root"])
            .arg(host_root)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Exporter { child, addr }
    }

    /// VmRSS in MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb / 1024.0
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` with Connection: close: (status, body length), or None when
/// no answer came within `limit`.
fn get(addr: SocketAddr, path: &str, limit: Duration) -> Option<(u16, usize)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(&buf[..end])
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, buf.len() - end - 4))
}

/// /healthz while the connections are held, with VmRSS sampled every
/// 100 ms until it answers: (status, seconds it took, peak VmRSS in MiB).
fn healthz_under_load(exporter: &Exporter, limit: Duration) -> (u16, f64, f64) {
    let addr = exporter.addr;
    let started = Instant::now();
    let probe = std::thread::spawn(move || get(addr, "/healthz", limit));
    let mut peak: f64 = 0.0;
    while !probe.is_finished() {
        peak = peak.max(exporter.rss_mib());
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = probe.join().unwrap();
    let took = started.elapsed().as_secs_f64();
    peak = peak.max(exporter.rss_mib());
    (answer.map_or(0, |a| a.0), took, peak)
}

/// A v2 fake tree with `n` limited cgroups under `parent`.
fn fake_tree(dir: &Path, parent: &str, n: usize) {
    let t = FakeTree::new(dir)
        .v2(&["cpu", "memory", "pids"])
        .build()
        .unwrap();
    for i in 0..n {
        let c = format!("{parent}/c{i}");
        let files = [
            (
                "cpu.stat",
                "usage_usec 100\nnr_periods 1\nnr_throttled 0\nthrottled_usec 0\n",
            ),
            ("cpu.max", "20000 100000\n"),
            ("memory.current", "4096\n"),
            ("memory.max", "67108864\n"),
            ("pids.current", "1\n"),
            ("pids.max", "64\n"),
        ];
        for (file, text) in files {
            t.write("", &c, file, text).unwrap();
        }
    }
}

/// A tempdir in memory when /dev/shm exists (thousands of small files).
fn tempdir() -> tempfile::TempDir {
    if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

/// Opens `n` connections, each sending `request` (and reading nothing).
fn hold(addr: SocketAddr, n: usize, request: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
            s.write_all(request).unwrap();
            s
        })
        .collect()
}

/// 400 connections against the default cap of 256 (300 that never finish
/// their headers, 100 idle keep-alive ones whose answer nobody reads):
/// /healthz waits for a slot, which the 5 s header timeout frees, so it is
/// answered after 4 s and within 12 s; VmRSS stays within 32 MiB of what
/// it was after a few scrapes.
#[test]
fn above_the_connection_cap_healthz_answers_and_memory_stays_bounded() {
    let _room = room!();
    let dir = tempdir();
    fake_tree(dir.path(), "/boxwatch/run", 20);
    let exporter = Exporter::start(dir.path(), &[]);
    for _ in 0..3 {
        assert_eq!(
            get(exporter.addr, "/metrics", Duration::from_secs(10))
                .unwrap()
                .0,
            200
        );
    }
    let base = exporter.rss_mib();
    let mut held = hold(exporter.addr, 300, b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
    held.extend(hold(
        exporter.addr,
        100,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    ));
    let (status, took, peak) = healthz_under_load(&exporter, Duration::from_secs(30));
    eprintln!(
        "400 connections over a cap of 256: /healthz {status} after {took:.1} s; \
         VmRSS {base:.1} MiB before, {peak:.1} MiB at most"
    );
    assert_eq!(status, 200, "/healthz was not answered");
    assert!(
        took >= 4.0,
        "/healthz answered after {took:.1} s: the cap of 256 did not hold"
    );
    assert!(took < 12.0, "/healthz took {took:.1} s (bound: 12 s)");
    assert!(
        peak < base + 32.0,
        "VmRSS grew from {base:.1} to {peak:.1} MiB (bound: +32 MiB)"
    );
    drop(held);
    assert_eq!(
        get(exporter.addr, "/healthz", Duration::from_secs(10))
            .unwrap()
            .0,
        200
    );
}

/// Clients that ask for a large exposition and never read it, more of them
/// than the exporter serves at once (12 over a cap of 8, a body larger than
/// loopback's socket buffers): without a write timeout they would hold
/// every slot until the connection lifetime (60 s); with `--write-timeout
/// 3` /healthz is answered within 15 s, every reader is cut off, and VmRSS
/// stays within 64 MiB of what one scrape left (the body is shared, not
/// copied per connection).
#[test]
fn slow_readers_lose_their_slot_at_the_write_timeout() {
    let _room = room!();
    let dir = tempdir();
    // Long labels make a body of about 10 MiB from 2,500 cgroups.
    let parent = format!("/boxwatch/{}/{}", "x".repeat(200), "y".repeat(200));
    fake_tree(dir.path(), &parent, 2500);
    let exporter = Exporter::start(
        dir.path(),
        &["--max-connections", "8", "--write-timeout", "3"],
    );
    let (status, body) = get(exporter.addr, "/metrics", Duration::from_secs(60)).unwrap();
    assert_eq!(status, 200);
    assert!(
        body > 8 << 20,
        "a body of {body} bytes fits in the socket buffers: the test would prove nothing"
    );
    let base = exporter.rss_mib();
    let readers = hold(
        exporter.addr,
        12,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let (status, took, peak) = healthz_under_load(&exporter, Duration::from_secs(60));
    eprintln!(
        "12 slow readers over a cap of 8: /healthz {status} after {took:.1} s; \
         VmRSS {base:.1} MiB after one scrape, {peak:.1} MiB at most"
    );
    assert_eq!(status, 200, "/healthz was not answered");
    assert!(
        took < 15.0,
        "/healthz took {took:.1} s: slow readers held the slots (bound: 15 s)"
    );
    assert!(
        peak < base + 64.0,
        "VmRSS grew from {base:.1} to {peak:.1} MiB (bound: +64 MiB)"
    );
    // Every reader is cut off once it has held a slot without reading for
    // the write timeout: the 8 that got the slots first at about 3 s, the
    // 4 that waited in the backlog (whichever they are: the kernel's accept
    // order decides) 3 s after they got theirs. Nobody reads for 8 s more,
    // so each of the 12 has stalled past its timeout; reading now ends (EOF
    // or reset) short of the whole answer for all of them. Without the
    // timeout they would stay open.
    std::thread::sleep(Duration::from_secs(8));
    for (i, mut r) in readers.into_iter().enumerate() {
        r.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => {
                    panic!("reader {i}: still open after the write timeout ({e}, {got} bytes)")
                }
            }
        }
        assert!(
            got < body,
            "reader {i}: got the whole answer ({got} bytes) without reading for 8 s"
        );
    }
}

/// A signal mask survives fork and exec, and std's `Command` does not
/// reset it: a parent that blocks SIGTERM to `sigwait` for it (as `cargo
/// xtask bench` does) would start an exporter deaf to SIGTERM. The
/// exporter unblocks it, and stops within 5 s with status 0.
#[test]
fn sigterm_stops_it_even_when_the_parent_blocked_it() {
    let _room = room!();
    use nix::sys::signal::{kill, SigSet, Signal};
    let dir = tempdir();
    fake_tree(dir.path(), "/boxwatch/run", 1);
    // Spawned from a thread of its own that blocks SIGTERM (only that
    // thread: the test process still gets its signals elsewhere).
    let root = dir.path().to_path_buf();
    let mut exporter = std::thread::spawn(move || {
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.thread_block().unwrap();
        Exporter::start(&root, &[])
    })
    .join()
    .unwrap();
    let pid = exporter.child.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let blocked = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(
        blocked & (1 << 14),
        0,
        "SIGTERM still blocked in the exporter"
    );
    assert_eq!(
        get(exporter.addr, "/healthz", Duration::from_secs(10))
            .unwrap()
            .0,
        200
    );
    kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let code = loop {
        if let Some(s) = exporter.child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            Instant::now() < deadline,
            "SIGTERM did not stop the exporter within 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
}
