//! A real Prometheus server scrapes `boxwatch exporter` while a boxwatch
//! container spins under a 20% CPU quota; the Prometheus HTTP API must show
//! rate(CPU usage) / quota near 1 for that container, and every query of
//! the shipped Grafana dashboards must return data. The shipped rules
//! (`exporter/rules/`) are loaded: a memory hog in a second container is
//! OOM-killed and `BoxwatchContainerOOMKilled` must fire for its cgroup.
//!
//! Everything runs on 127.0.0.1; every process started here is ended by its
//! PID (Drop guards), all waits are bounded. Needs root, cgroups and the
//! Debian `prometheus` package; under CI=true a missing prerequisite fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::promtool;

const BIN: &str = env!("CARGO_BIN_EXE_boxwatch");
const PROMETHEUS: &str = "/usr/bin/prometheus";
const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/exporter/rules/boxwatch.rules.yml"
);

fn prerequisites(test: &str) -> bool {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("root")
    } else if !Path::new(PROMETHEUS).exists() {
        Some("/usr/bin/prometheus (Debian package prometheus)")
    } else if !Path::new("/sys/fs/cgroup").is_dir() {
        Some("a cgroup filesystem")
    } else {
        None
    };
    let Some(what) = missing else { return true };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs {what}, and CI=true forbids skipping it"
    );
    eprintln!("skipping {test}: needs {what}");
    false
}

/// A child process ended by PID when dropped: SIGTERM, then SIGKILL after
/// `grace`.
struct Proc {
    name: &'static str,
    child: Child,
    grace: Duration,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} (pid {pid}) ignored SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Minimal HTTP GET (Connection: close) against 127.0.0.1: (status, body).
fn http_get(addr: SocketAddr, path_and_query: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!("GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query through the Prometheus HTTP API: the result vector.
fn query(prom: SocketAddr, promql: &str) -> Vec<serde_json::Value> {
    let (status, body) = http_get(prom, &format!("/api/v1/query?query={}", urlencode(promql)))
        .unwrap_or_else(|| panic!("no answer from Prometheus for {promql}"));
    let v: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("bad JSON ({e}) for {promql}: {body}"));
    assert_eq!(status, 200, "{promql}: {body}");
    assert_eq!(v["status"], "success", "{promql}: {body}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn sample_value(r: &serde_json::Value) -> f64 {
    r["value"][1].as_str().unwrap().parse().unwrap()
}

/// Polls `f` every 500 ms until it gives `Some`, at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The cgroup path (relative to the hierarchies) of container `name` run
/// by boxwatch process `pid`: `/boxwatch/<pid>-.../<name>`.
fn container_cgroup(pid: u32, name: &str) -> Option<String> {
    let base = Path::new("/sys/fs/cgroup/cpu/boxwatch");
    let base = if base.exists() {
        base.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup/boxwatch")
    };
    std::fs::read_dir(&base).ok()?.flatten().find_map(|e| {
        let run = e.file_name().to_string_lossy().into_owned();
        (run.starts_with(&format!("{pid}-")) && e.path().join(name).is_dir())
            .then(|| format!("/boxwatch/{run}/{name}"))
    })
}

#[test]
fn prometheus_sees_usage_against_quota_and_dashboards_have_data() {
    let _room = room!();
    if !prerequisites("prometheus_sees_usage_against_quota_and_dashboards_have_data") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("prom-{}", std::process::id());

    // The container: a spin loop held to 20% of one CPU.
    let container = Proc {
        name: "boxwatch run",
        child: Command::new(BIN)
            .args(["run", "--cpus", "0.2", "--memory", "256M", "--pids", "64"])
            .args(["--grace", "1", "--name", &name, "--"])
            .args(["/bin/sh", "-c", "while :; do :; done"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        grace: Duration::from_secs(10),
    };
    let cgroup = wait_for("the container's cgroup", Duration::from_secs(20), || {
        container_cgroup(container.pid(), &name)
    });

    // The memory hog: once Prometheus has seen its cgroup for a few
    // seconds, `tail` holds a line of /dev/zero that never ends until the
    // OOM killer ends it; the container lives on, so its figures stay.
    let hog_name = format!("hog-{}", std::process::id());
    let hog = Proc {
        name: "boxwatch run (hog)",
        child: Command::new(BIN)
            .args(["run", "--memory", "32M", "--pids", "16"])
            .args(["--grace", "1", "--name", &hog_name, "--"])
            .args(["/bin/sh", "-c", "sleep 8; tail /dev/zero; sleep 300"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        grace: Duration::from_secs(10),
    };
    let hog_cgroup = wait_for("the hog's cgroup", Duration::from_secs(20), || {
        container_cgroup(hog.pid(), &hog_name)
    });

    // A report, so the verdict panels have something to show.
    let report = tmp.path().join("report.json");
    std::fs::write(
        &report,
        r#"{"generated_at": "2026-11-22T10:00:00Z", "scenarios": [
          {"id": "cpu-quota-20", "checks": [{"id": "usage-within-quota", "verdict": "enforced"}]},
          {"id": "proc-view", "checks": [{"id": "meminfo", "verdict": "leaked"}]}]}"#,
    )
    .unwrap();

    // The exporter, on a free port it picks and prints.
    let mut exporter_child = Command::new(BIN)
        .args(["exporter", "--listen", "127.0.0.1:0", "--report"])
        .arg(&report)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = exporter_child.stdout.take().unwrap();
    let exporter = Proc {
        name: "boxwatch exporter",
        child: exporter_child,
        grace: Duration::from_secs(5),
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let exporter_addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));

    // The real host's exposition passes promtool's parser and linter.
    let (status, exposition) = http_get(exporter_addr, "/metrics").unwrap();
    assert_eq!(status, 200, "{exposition}");
    assert!(
        exposition.contains(&format!("cgroup=\"{cgroup}\"")),
        "{cgroup} missing from the exposition:\n{exposition}"
    );
    promtool::check_text(
        "prometheus_sees_usage_against_quota_and_dashboards_have_data",
        &exposition,
    );

    // Prometheus, scraping every second.
    let prom_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: ['{RULES}']\n\
             scrape_configs:\n  - job_name: boxwatch\n    scrape_timeout: 1s\n    \
             static_configs:\n      - targets: ['{exporter_addr}']\n"
        ),
    )
    .unwrap();
    let prom_log = std::fs::File::create(tmp.path().join("prometheus.log")).unwrap();
    let prometheus = Proc {
        name: "prometheus",
        child: Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(prom_log)
            .spawn()
            .unwrap(),
        grace: Duration::from_secs(10),
    };
    wait_for("Prometheus to be ready", Duration::from_secs(30), || {
        http_get(prom_addr, "/-/ready").filter(|(s, _)| *s == 200)
    });

    // The target is up (scraped with OpenMetrics, Prometheus's first choice).
    wait_for(
        "the exporter target to be up",
        Duration::from_secs(30),
        || {
            let r = query(prom_addr, "up{job=\"boxwatch\"} == 1");
            (!r.is_empty()).then_some(())
        },
    );

    // rate(usage) / quota over 10 s, once 15 s of samples exist.
    std::thread::sleep(Duration::from_secs(15));
    let promql = format!(
        "rate(boxwatch_cgroup_cpu_usage_seconds_total{{cgroup=\"{cgroup}\"}}[10s]) \
         / boxwatch_cgroup_cpu_quota_cores{{cgroup=\"{cgroup}\"}}"
    );
    let ratio = wait_for("usage/quota data", Duration::from_secs(30), || {
        query(prom_addr, &promql).first().map(sample_value)
    });
    eprintln!("rate(cpu usage) / quota for {cgroup}: {ratio:.3}");
    assert!(
        (0.85..=1.15).contains(&ratio),
        "{cgroup}: usage/quota = {ratio}, expected about 1"
    );
    let quota = query(
        prom_addr,
        &format!("boxwatch_cgroup_cpu_quota_cores{{cgroup=\"{cgroup}\"}}"),
    );
    assert_eq!(quota.first().map(sample_value), Some(0.2));

    // Every dashboard query returns data, but those over per-cgroup
    // families this host gives for no exported cgroup (pressure and I/O of
    // cgroups that exist only in v1 hierarchies, on a hybrid host): those
    // are named. On a pure v2 host every query must have data.
    let pure_v2 = !Path::new("/sys/fs/cgroup/cpu").exists();
    let given = |metric: &str| exposition.contains(&format!("\n{metric}{{"));
    let mut without = Vec::new();
    for (file, json) in exporter::DASHBOARDS {
        for expr in exporter::queries(json).unwrap() {
            let absent: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("boxwatch_cgroup_") && !given(w))
                .collect();
            let q = exporter::instantiate(&expr, "10s", "1m");
            if !absent.is_empty() && !pure_v2 {
                without.push(format!("{q} ({} not given here)", absent.join(", ")));
                continue;
            }
            let r = query(prom_addr, &q);
            assert!(!r.is_empty(), "{file}: no data for {q}");
        }
    }
    if !without.is_empty() {
        eprintln!(
            "dashboard queries over figures this hybrid host gives for none of the exported cgroups:\n  {}",
            without.join("\n  ")
        );
    }

    // Every template variable's label_values(...) has values, through the
    // API Grafana's Prometheus data source uses for it; $cgroup offers the
    // container.
    let mut variables = 0;
    for (file, json) in exporter::DASHBOARDS {
        for q in exporter::variable_queries(json).unwrap() {
            let lv = exporter::label_values(&q)
                .unwrap_or_else(|| panic!("{file}: not a label_values query: {q}"));
            let mut path = format!("/api/v1/label/{}/values", lv.label);
            if let Some(sel) = &lv.selector {
                path.push_str(&format!("?match[]={}", urlencode(sel)));
            }
            let (status, body) = http_get(prom_addr, &path)
                .unwrap_or_else(|| panic!("no answer from Prometheus for {path}"));
            assert_eq!(status, 200, "{path}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let values: Vec<&str> = v["data"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            // $pod offers the pods of the exported containers: none where
            // no Kubernetes container is exported (this test's host).
            if lv.label == "pod" && !exposition.contains(",pod=\"") {
                assert!(values.is_empty(), "{file}: {q}: {body}");
                variables += 1;
                continue;
            }
            assert!(!values.is_empty(), "{file}: no values for {q}: {body}");
            if lv.label == "cgroup" {
                assert!(values.contains(&cgroup.as_str()), "{file}: {q}: {body}");
            }
            // $container offers the container by its name.
            if lv.label == "name" {
                assert!(values.contains(&name.as_str()), "{file}: {q}: {body}");
            }
            variables += 1;
        }
    }
    assert!(variables > 0, "the dashboards have no template variable");

    // No scrape errors on the target.
    let (_, targets) = http_get(prom_addr, "/api/v1/targets").unwrap();
    let t: serde_json::Value = serde_json::from_str(&targets).unwrap();
    let active = &t["data"]["activeTargets"][0];
    assert_eq!(active["health"], "up", "{targets}");
    assert_eq!(active["lastError"], "", "{targets}");

    // The shipped rules loaded and evaluate without error.
    let (_, rules) = http_get(prom_addr, "/api/v1/rules").unwrap();
    let r: serde_json::Value = serde_json::from_str(&rules).unwrap();
    let groups = r["data"]["groups"].as_array().cloned().unwrap_or_default();
    assert_eq!(groups.len(), 2, "{rules}");
    for g in &groups {
        for rule in g["rules"].as_array().unwrap() {
            assert_eq!(rule["health"], "ok", "{rule}");
        }
    }

    // The hog was OOM-killed: its alert fires, for its cgroup alone.
    let firing = wait_for("the OOM alert to fire", Duration::from_secs(60), || {
        let (_, body) = http_get(prom_addr, "/api/v1/alerts")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let alerts: Vec<serde_json::Value> = v["data"]["alerts"]
            .as_array()?
            .iter()
            .filter(|a| {
                a["labels"]["alertname"] == "BoxwatchContainerOOMKilled" && a["state"] == "firing"
            })
            .cloned()
            .collect();
        (!alerts.is_empty()).then_some(alerts)
    });
    eprintln!("firing: {firing:?}");
    assert!(
        firing
            .iter()
            .all(|a| a["labels"]["cgroup"] == hog_cgroup.as_str()),
        "the OOM alert fired for another cgroup than {hog_cgroup}: {firing:?}"
    );
    let kills = query(
        prom_addr,
        &format!("boxwatch_cgroup_memory_oom_kills_total{{cgroup=\"{hog_cgroup}\"}}"),
    );
    assert!(kills.first().map(sample_value) >= Some(1.0), "{kills:?}");
    // Its limit hits: counted on v2 (memory.events max); on v1, where the
    // memsw limit leaves memory.failcnt at 0, absent rather than a 0 next
    // to the kill.
    let hits = query(
        prom_addr,
        &format!("boxwatch_cgroup_memory_limit_hits_total{{cgroup=\"{hog_cgroup}\"}}"),
    );
    eprintln!("limit hits of {hog_cgroup}: {hits:?}");
    if pure_v2 {
        assert!(hits.first().map(sample_value) >= Some(1.0), "{hits:?}");
    } else {
        assert!(
            hits.first().is_none_or(|h| sample_value(h) >= 1.0),
            "a failcnt of 0 exported next to an OOM kill: {hits:?}"
        );
    }

    drop(prometheus);
    drop(exporter);
    drop(hog);
    drop(container);
}
