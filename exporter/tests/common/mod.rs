//! Helpers shared by the exporter's tests: prerequisites (never skipped
//! under CI=true), promtool checks, fake trees and an in-process server.
#![allow(dead_code)]

mod promtool;

use exporter::Format;
use exporter::{build, ExporterArgs};
use std::path::{Path, PathBuf};

pub use promtool::*;

/// Root and a cgroup filesystem (see [`require`]).
pub fn have_root(test: &str) -> bool {
    require(
        nix::unistd::geteuid().is_root() && Path::new("/sys/fs/cgroup").is_dir(),
        test,
        "root and a cgroup filesystem",
    )
}

/// Exporter arguments for a fake tree at `root`.
pub fn fake_args(root: &Path, roots: &[&str]) -> ExporterArgs {
    ExporterArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        cgroup_roots: roots.iter().map(|r| r.to_string()).collect(),
        max_cgroups: 10_000,
        max_open_files: exporter::DEFAULT_MAX_OPEN_FILES,
        walk: exporter::WalkMode::Union,
        report: None,
        max_connections: 256,
        header_timeout: 5,
        write_timeout: 10,
        connection_timeout: 60,
        host_root: root.to_path_buf(),
        names: Default::default(),
        web: Default::default(),
    }
}

/// One scrape of the exporter for `args`, rendered in `format`.
pub fn scrape(args: &ExporterArgs, format: Format) -> String {
    let exporter = build(args).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let scrape = rt.block_on(exporter.scrape());
    String::from_utf8(scrape.body(format).to_vec()).unwrap()
}

/// The exposition with the (timing-dependent) collect duration masked.
pub fn redact(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("boxwatch_exporter_collect_duration_seconds ") {
                "boxwatch_exporter_collect_duration_seconds [duration]".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The value of the first sample line starting with `prefix`.
pub fn value_of(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A unique name for this test process.
pub fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

pub fn path(p: &str) -> PathBuf {
    PathBuf::from(p)
}

/// The exporter serving on a free loopback port in a background runtime;
/// stopped when dropped.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(args: &ExporterArgs) -> TestServer {
        Self::serve(build(args).unwrap(), args.server_config().unwrap())
    }

    /// Serves a given exporter (its own collectors) with `config`.
    pub fn serve(
        exporter: std::sync::Arc<exporter::Exporter>,
        config: exporter::ServerConfig,
    ) -> TestServer {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = exporter::bind("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                exporter::serve(listener, exporter, config, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            });
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
        });
        let addr = addr_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        TestServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A raw HTTP exchange: sends `request` as is, reads until the server
/// closes (or 15 s pass). Returns (status code or 0, head, body).
pub fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    split_response(&buf)
}

/// `GET <path>` with `Connection: close` and optional extra header lines.
pub fn get(addr: std::net::SocketAddr, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
    raw_http(addr, req.as_bytes())
}

pub fn split_response(buf: &[u8]) -> (u16, String, Vec<u8>) {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, String::from_utf8_lossy(buf).into_owned(), Vec::new());
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head, buf[end + 4..].to_vec())
}
