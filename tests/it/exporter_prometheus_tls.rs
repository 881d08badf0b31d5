//! `--web.config.file` for real: a real Prometheus scrapes `boxwatch
//! exporter` over TLS (a certificate made here with openssl, trusted
//! through its CA file) with a user and password (a bcrypt hash in the
//! file); curl without the password gets 401, with a wrong one too, and
//! plain HTTP gets no answer. A bad file is refused at start with the
//! reason.
//!
//! Everything runs on 127.0.0.1; every process started here is ended by
//! its PID. Needs prometheus, openssl and curl; under CI=true a
//! missing one fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::promtool;

const BIN: &str = env!("CARGO_BIN_EXE_boxwatch");
const PROMETHEUS: &str = "/usr/bin/prometheus";
const USER: &str = "prometheus";
const PASSWORD: &str = "scrape-me-7f3a";

fn prerequisites(test: &str) -> bool {
    let missing = [
        (
            PROMETHEUS,
            "/usr/bin/prometheus (Debian package prometheus)",
        ),
        ("/usr/bin/openssl", "openssl (Debian package openssl)"),
        ("/usr/bin/curl", "curl (Debian package curl)"),
    ]
    .into_iter()
    .find(|(p, _)| !Path::new(p).exists())
    .map(|(_, what)| what);
    promtool::require(missing.is_none(), test, missing.unwrap_or_default())
}

/// A child ended by PID when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Plain HTTP GET to Prometheus: the body.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_string())
}

/// curl's status code for `url` with `args`.
fn curl(args: &[&str], url: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn prometheus_scrapes_over_tls_with_a_password() {
    let _room = room!();
    let test = "prometheus_scrapes_over_tls_with_a_password";
    if !prerequisites(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("tls.key"))
        .arg("-out")
        .arg(dir.join("tls.crt"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success(), "openssl req failed");
    let hash = bcrypt::hash(PASSWORD, 10).unwrap();
    std::fs::write(
        dir.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n\
             basic_auth_users:\n  {USER}: '{hash}'\n"
        ),
    )
    .unwrap();

    // A bad file: refused at start, with the reason, before listening.
    std::fs::write(
        dir.join("bad.yml"),
        format!("basic_auth_users:\n  {USER}: {PASSWORD}\n"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["exporter", "--listen", "127.0.0.1:0", "--web.config.file"])
        .arg(dir.join("bad.yml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad web config was accepted");
    assert!(
        err.contains("bad.yml")
            && err.contains(&format!("basic_auth_users.{USER}: not a bcrypt hash")),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "it listened: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let mut child = Command::new(BIN)
        .args(["exporter", "--listen", "127.0.0.1:0", "--web.config.file"])
        .arg(dir.join("web.yml"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let exporter = Proc(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("boxwatch exporter listening on https://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("not an https address: {line:?}"))
        .parse()
        .unwrap();
    let url = format!("https://{addr}/metrics");
    let ca = dir.join("tls.crt");
    let ca = ca.to_str().unwrap();
    assert_eq!(curl(&["--cacert", ca], &url), "401", "no password");
    assert_eq!(
        curl(&["--cacert", ca, "-u", &format!("{USER}:nope")], &url),
        "401"
    );
    assert_eq!(
        curl(&["--cacert", ca, "-u", &format!("nobody:{PASSWORD}")], &url),
        "401"
    );
    assert_eq!(
        curl(&["--cacert", ca, "-u", &format!("{USER}:{PASSWORD}")], &url),
        "200"
    );
    assert_eq!(
        curl(&[], &format!("http://{addr}/metrics")),
        "000",
        "plain HTTP answered"
    );

    let prom_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: boxwatch\n    scheme: https\n    scrape_timeout: 1s\n    \
             tls_config:\n      ca_file: {ca}\n    \
             basic_auth:\n      username: {USER}\n      password: {PASSWORD}\n    \
             static_configs:\n      - targets: ['{addr}']\n  \
             - job_name: boxwatch-no-password\n    scheme: https\n    scrape_timeout: 1s\n    \
             tls_config:\n      ca_file: {ca}\n    \
             static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let prometheus = Proc(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let targets = wait_for("both targets scraped", Duration::from_secs(60), || {
        let body = http_get(prom_addr, "/api/v1/targets")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let t = v["data"]["activeTargets"].as_array()?.clone();
        (t.len() == 2 && t.iter().all(|t| t["health"] != "unknown")).then_some(t)
    });
    let by_job = |job: &str| {
        targets
            .iter()
            .find(|t| t["labels"]["job"] == job)
            .unwrap_or_else(|| panic!("no {job} target: {targets:?}"))
            .clone()
    };
    let good = by_job("boxwatch");
    assert_eq!(good["health"], "up", "{good}");
    assert_eq!(good["lastError"], "", "{good}");
    let bad = by_job("boxwatch-no-password");
    assert_eq!(bad["health"], "down", "{bad}");
    assert!(
        bad["lastError"].as_str().unwrap_or("").contains("401"),
        "{bad}"
    );
    let body = wait_for(
        "the exporter's figures in Prometheus",
        Duration::from_secs(30),
        || {
            let body = http_get(
                prom_addr,
                "/api/v1/query?query=boxwatch_exporter_cgroup_layout_info",
            )?;
            body.contains("\"mode\"").then_some(body)
        },
    );
    eprintln!("{body}");
    drop(prometheus);
    drop(exporter);
}
