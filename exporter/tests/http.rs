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
    check_text("routes_and_negotiation", &text);

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
    check_openmetrics("routes_and_negotiation", &om);

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
    check_text("routes_and_negotiation", &text);
}

#[test]
fn malformed_requests_get_errors_and_the_server_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let srv = fake_server(dir.path());
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    // (name, request, the status expected; 0: closed without an answer).
    // Each client shuts down its side after sending, as `nc -N` does.
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage", b"GARBAGE\r\n\r\n".to_vec(), 400),
        ("binary", (0u8..=255).cycle().take(3000).collect(), 400),
        ("bad version", b"GET /metrics HTTP/9.9\r\n\r\n".to_vec(), 400),
        (
            "bad length",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(),
            400,
        ),
        ("no path", b"GET HTTP/1.1\r\n\r\n".to_vec(), 400),
        (
            "nul in header",
            b"GET / HTTP/1.1\r\nHost: \0\r\n\r\n".to_vec(),
            400,
        ),
        ("no colon", b"GET / HTTP/1.1\r\nHost x\r\n\r\n".to_vec(), 400),
        ("huge header", huge.into_bytes(), 431),
        (
            "absolute uri",
            b"GET http://evil/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            200,
        ),
        (
            "delete",
            b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            405,
        ),
        (
            "unknown path",
            b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            404,
        ),
        // Both framings: hyper goes by the chunked one, answers and closes.
        (
            "length and chunked",
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            405,
        ),
        ("http/1.0", b"GET /healthz HTTP/1.0\r\n\r\n".to_vec(), 200),
        ("empty", Vec::new(), 0),
    ];
    for (name, req, expected) in cases {
        let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let _ = s.write_all(&req);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut buf = Vec::new();
        let r = s.read_to_end(&mut buf);
        assert!(r.is_ok(), "{name}: not closed by the server: {r:?}");
        let (code, head, _) = split_response(&buf);
        assert_eq!(code, expected, "{name}: {head}");
        if name == "length and chunked" {
            assert!(
                head.to_ascii_lowercase().contains("connection: close"),
                "{head}"
            );
        }
    }
    // Only the well-formed requests reached the service and were counted.
    let text = String::from_utf8(get(srv.addr, "/metrics", "").2).unwrap();
    for (labels, n) in [
        ("code=\"200\",handler=\"metrics\"", 1.0),
        ("code=\"200\",handler=\"healthz\"", 1.0),
        ("code=\"404\",handler=\"other\"", 1.0),
        ("code=\"405\",handler=\"metrics\"", 2.0),
    ] {
        let line = format!("boxwatch_exporter_http_requests_total{{{labels}}} ");
        assert_eq!(value_of(&text, &line), Some(n), "{line}\n{text}");
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
fn a_busy_connection_ends_at_the_connection_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let srv = fake_server(dir.path());
    // One keep-alive connection asking /healthz every 200 ms: the header
    // timeout (1 s) never fires, the connection lifetime (3 s) must. The
    // server then shuts it down gracefully (2 s more at most).
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut answered = 0;
    let closed_after = loop {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the connection outlived its 3 s lifetime by far ({answered} answers)"
        );
        if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .is_err()
        {
            break started.elapsed();
        }
        // One whole answer (a fixed 3-byte body), or the end.
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\nok\n") {
            match s.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => break,
            }
        }
        if !buf.ends_with(b"\r\n\r\nok\n") {
            break started.elapsed();
        }
        answered += 1;
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("busy connection closed after {closed_after:?}, {answered} answers");
    assert!(
        answered >= 5,
        "only {answered} answers: closed before its lifetime"
    );
    assert!(
        closed_after >= Duration::from_millis(2900),
        "closed after {closed_after:?}, before the 3 s lifetime"
    );
    assert_eq!(get(srv.addr, "/healthz", "").0, 200);
}

/// A collector that panics at its first `panics` collections.
struct Panicky {
    desc: prometheus::core::Desc,
    panics: std::sync::atomic::AtomicUsize,
}

impl prometheus::core::Collector for Panicky {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        use std::sync::atomic::Ordering;
        let left = self.panics.load(Ordering::SeqCst);
        if left > 0 {
            self.panics.store(left - 1, Ordering::SeqCst);
            panic!("a collector bug");
        }
        let kind = exporter::Kind::Gauge;
        let sample = exporter::sample(&[], kind, 1.0);
        vec![exporter::family(
            "test_panicky",
            "Collections that did not panic.",
            kind,
            vec![sample],
        )]
    }
}

#[test]
fn a_panic_while_answering_is_a_500_and_counted() {
    let panicky = Panicky {
        desc: exporter::desc("test_panicky", "Collections that did not panic.", &[]),
        panics: std::sync::atomic::AtomicUsize::new(1),
    };
    let exporter = exporter::Exporter::new(vec![Box::new(panicky)]).unwrap();
    let srv = TestServer::serve(exporter, Default::default());
    let (code, head, body) = get(srv.addr, "/metrics", "");
    assert_eq!(code, 500, "{head}");
    assert_eq!(body, b"internal error\n");
    // The server lives on, and the next scrape shows what happened.
    assert_eq!(get(srv.addr, "/healthz", "").0, 200);
    let (code, _, body) = get(srv.addr, "/metrics", "");
    assert_eq!(code, 200);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(
        value_of(&text, "boxwatch_exporter_panics_total "),
        Some(1.0)
    );
    assert_eq!(
        value_of(
            &text,
            "boxwatch_exporter_http_requests_total{code=\"500\",handler=\"metrics\"} "
        ),
        Some(1.0)
    );
    assert_eq!(value_of(&text, "test_panicky "), Some(1.0));
    check_text("a_panic_while_answering_is_a_500_and_counted", &text);
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
    for text in &bodies {
        check_text("two_hundred_concurrent_scrapers_and_slow_clients", text);
    }
}
