//! The HTTP server on 127.0.0.1: routes, content negotiation, malformed
//! and slow requests, and many concurrent scrapers. Bounds in this file are
//! generous liveness limits, not speed targets (those are in the bench).

mod common;

use common::*;
use probes::host::fake::FakeTree;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn fake_server(dir: &std::path::Path) -> TestServer {
    let t = FakeTree::new(dir)
        .v2(&["cpu", "memory", "pids"])
        .build()
        .unwrap();
    for i in 0..20 {
        let c = format!("/boxwatch/run/c{i}");
        t.write(
            "",
            &c,
            "cpu.stat",
            "usage_usec 100\nnr_periods 1\nnr_throttled 0\nthrottled_usec 0\n",
        )
        .unwrap();
        t.write("", &c, "cpu.max", "20000 100000\n").unwrap();
        t.write("", &c, "memory.current", "4096\n").unwrap();
    }
    let mut args = fake_args(dir, &[]);
    args.header_timeout = 1;
    args.connection_timeout = 3;
    TestServer::start(&args)
}

#[test]
fn routes_and_negotiation() {
    let dir = tempfile::tempdir().unwrap();
    let srv = fake_server(dir.path());
    let (code, head, body) = get(srv.addr, "/metrics", "");
    assert_eq!(code, 200, "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let text = String::from_utf8(body).unwrap();
    assert_eq!(value_of(&text, "boxwatch_exporter_cgroups "), Some(22.0));
    if have_promtool("routes_and_negotiation") {
        promtool_check_text(&text);
    }

    let prom_accept = "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n";
    let (code, head, body) = get(srv.addr, "/metrics?x=1", prom_accept);
    assert_eq!(code, 200);
    assert!(
        head.contains("application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    let om = String::from_utf8(body).unwrap();
    assert!(om.ends_with("# EOF\n"));
    // `promtool check metrics` reads only the text format: OpenMetrics goes
    // through Prometheus's own OpenMetrics parser instead.
    if have_promtool("routes_and_negotiation") {
        promtool_check_openmetrics(&om);
    }

    let (code, _, body) = get(srv.addr, "/healthz", "");
    assert_eq!((code, body.as_slice()), (200, b"ok\n".as_slice()));
    let (code, head, body) = get(srv.addr, "/", "");
    assert_eq!(code, 200);
    assert!(head.contains("text/html"));
    assert!(String::from_utf8(body).unwrap().contains("/metrics"));
    assert_eq!(get(srv.addr, "/nope", "").0, 404);

    let (code, head, _) = raw_http(
        srv.addr,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert_eq!(code, 405);
    assert!(head.to_ascii_lowercase().contains("allow: get, head"));
    let (code, _, body) = raw_http(
        srv.addr,
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((code, body.len()), (200, 0));

    // The request counter counts what was answered.
    let text = String::from_utf8(get(srv.addr, "/metrics", "").2).unwrap();
    assert!(
        text.contains("boxwatch_exporter_http_requests_total{code=\"404\",handler=\"other\"} 1")
    );
    assert!(
        text.contains("boxwatch_exporter_http_requests_total{code=\"405\",handler=\"metrics\"} 1")
    );
    if have_promtool("routes_and_negotiation") {
        promtool_check_text(&text);
    }
}

#[test]
fn malformed_requests_get_errors_and_the_server_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let srv = fake_server(dir.path());
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"GARBAGE\r\n\r\n".to_vec()),
        ("binary", (0u8..=255).cycle().take(3000).collect()),
        ("bad version", b"GET /metrics HTTP/9.9\r\n\r\n".to_vec()),
        (
            "bad length",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(),
        ),
        ("no path", b"GET HTTP/1.1\r\n\r\n".to_vec()),
        (
            "nul in header",
            b"GET / HTTP/1.1\r\nHost: \0\r\n\r\n".to_vec(),
        ),
        ("huge header", huge.into_bytes()),
        (
            "absolute uri",
            b"GET http://evil/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        ("empty", Vec::new()),
    ];
    for (name, req) in cases {
        let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let _ = s.write_all(&req);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let (code, head, _) = split_response(&buf);
        assert!(
            code == 0 || (200..600).contains(&code),
            "{name}: odd answer {head}"
        );
        assert!(code != 500, "{name}: server error {head}");
    }
    assert_eq!(get(srv.addr, "/healthz", "").0, 200);
}

#[test]
fn slow_clients_are_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let srv = fake_server(dir.path());
    // Headers that never finish (header timeout 1 s) and an idle
    // keep-alive connection (connection life 3 s): both are closed.
    let mut slow = std::net::TcpStream::connect(srv.addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut idle = std::net::TcpStream::connect(srv.addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    for (name, mut s) in [("slow headers", slow), ("idle keep-alive", idle)] {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = Vec::new();
        let r = s.read_to_end(&mut buf);
        assert!(r.is_ok(), "{name}: not closed by the server: {r:?}");
    }
    // Liveness bound (30 s read timeout above); report how long it took.
    eprintln!("slow clients closed after {:?}", started.elapsed());
    assert_eq!(get(srv.addr, "/healthz", "").0, 200);
}

#[test]
fn two_hundred_concurrent_scrapers_and_slow_clients() {
    let dir = tempfile::tempdir().unwrap();
    let srv = fake_server(dir.path());
    // 40 slow clients hold connections while 200 scrapers run.
    let slow: Vec<std::net::TcpStream> = (0..40)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n");
            s
        })
        .collect();
    let addr = srv.addr;
    let scrapers: Vec<_> = (0..200)
        .map(|_| std::thread::spawn(move || get(addr, "/metrics", "")))
        .collect();
    let mut ok = 0;
    let mut bodies = std::collections::BTreeSet::new();
    for s in scrapers {
        let (code, _, body) = s.join().unwrap();
        let text = String::from_utf8(body).unwrap();
        if code == 200 && value_of(&text, "boxwatch_exporter_cgroups ") == Some(22.0) {
            ok += 1;
        }
        bodies.insert(text);
    }
    drop(slow);
    assert_eq!(ok, 200);
    assert_eq!(get(srv.addr, "/healthz", "").0, 200);
    // Coalesced scrapes share bodies: each distinct one is checked.
    if have_promtool("two_hundred_concurrent_scrapers_and_slow_clients") {
        for text in &bodies {
            promtool_check_text(text);
        }
    }
}
