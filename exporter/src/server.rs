//! The HTTP side: `/metrics`, `/healthz` and an index page, served by
//! hyper on tokio with bounded concurrency and timeouts.
//!
//! - At most [`ServerConfig::max_connections`] connections are served at
//!   once; further ones wait in the listen backlog.
//! - A client must send its request headers within
//!   [`ServerConfig::header_timeout`], and a connection lives at most
//!   [`ServerConfig::connection_timeout`] (then it is shut down gracefully,
//!   and dropped 2 s later if it still hangs): slow clients cannot pin
//!   connections.
//! - Scrapes are coalesced: one collection runs at a time, and a request
//!   that arrives while one runs is answered by the next collection that
//!   starts after it arrived. 200 concurrent scrapers cost two collections,
//!   not 200.

use crate::openmetrics::{self, Format};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, Opts, Registry};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};

/// Limits of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client has to send its request headers.
    pub header_timeout: Duration,
    /// Longest life of one connection (keep-alive included).
    pub connection_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 256,
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(60),
        }
    }
}

/// Largest request head accepted (larger ones get 431 and are closed).
const MAX_REQUEST_BUFFER: usize = 16 * 1024;

/// One collection's result, rendered lazily once per format.
pub struct Scrape {
    started: Instant,
    families: Vec<MetricFamily>,
    text: OnceLock<Bytes>,
    openmetrics: OnceLock<Bytes>,
}

impl Scrape {
    /// The exposition in `format`.
    pub fn body(&self, format: Format) -> Bytes {
        let cell = match format {
            Format::Text => &self.text,
            Format::OpenMetrics => &self.openmetrics,
        };
        cell.get_or_init(|| Bytes::from(openmetrics::render(&self.families, format)))
            .clone()
    }

    /// The gathered families.
    pub fn families(&self) -> &[MetricFamily] {
        &self.families
    }
}

/// The exporter: a registry of collectors and the coalescing scrape cache.
pub struct Exporter {
    registry: Registry,
    /// The name of every metric family a registered collector describes.
    metric_names: Vec<String>,
    last: Mutex<Option<Arc<Scrape>>>,
    requests: IntCounterVec,
}

impl Exporter {
    /// An exporter serving `collectors` (plus its own request counter).
    pub fn new(collectors: Vec<Box<dyn Collector>>) -> crate::Result<Arc<Self>> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "boxwatch_exporter_http_requests_total",
                "HTTP requests answered, by handler and status code.",
            ),
            &["handler", "code"],
        )?;
        let mut metric_names = Vec::new();
        let own: Box<dyn Collector> = Box::new(requests.clone());
        for c in collectors.into_iter().chain([own]) {
            metric_names.extend(c.desc().iter().map(|d| d.fq_name.clone()));
            registry.register(c)?;
        }
        metric_names.sort();
        Ok(Arc::new(Exporter {
            registry,
            metric_names,
            last: Mutex::new(None),
            requests,
        }))
    }

    /// The name of every metric family the exporter can serve (from the
    /// descriptors its collectors registered), sorted.
    pub fn metric_names(&self) -> &[String] {
        &self.metric_names
    }

    /// A collection that started no earlier than this call: the running
    /// or next one, shared by every caller waiting for it.
    pub async fn scrape(&self) -> Arc<Scrape> {
        let asked = Instant::now();
        let mut last = self.last.lock().await;
        if let Some(s) = last.as_ref().filter(|s| s.started >= asked) {
            return s.clone();
        }
        let registry = self.registry.clone();
        let started = Instant::now();
        let families = match tokio::task::spawn_blocking(move || registry.gather()).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!("collection failed: {e}");
                Vec::new()
            }
        };
        let s = Arc::new(Scrape {
            started,
            families,
            text: OnceLock::new(),
            openmetrics: OnceLock::new(),
        });
        *last = Some(s.clone());
        s
    }

    /// Answers one request. Never panics, whatever the request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (handler, resp) = self.route(&req).await;
        self.requests
            .with_label_values(&[handler, resp.status().as_str()])
            .inc();
        resp
    }

    async fn route(&self, req: &Request<Incoming>) -> (&'static str, Response<Full<Bytes>>) {
        let handler = match req.uri().path() {
            "/metrics" => "metrics",
            "/healthz" => "healthz",
            "/" => "index",
            _ => return ("other", plain(StatusCode::NOT_FOUND, "not found\n")),
        };
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return (handler, r);
        }
        let resp = match handler {
            "metrics" => {
                let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
                let format = openmetrics::negotiate(accept);
                let body = self.scrape().await.body(format);
                with_type(body, format.content_type())
            }
            "healthz" => plain(StatusCode::OK, "ok\n"),
            _ => with_type(
                Bytes::from_static(INDEX.as_bytes()),
                "text/html; charset=utf-8",
            ),
        };
        let resp = if req.method() == Method::HEAD {
            let (parts, _) = resp.into_parts();
            Response::from_parts(parts, Full::new(Bytes::new()))
        } else {
            resp
        };
        (handler, resp)
    }
}

const INDEX: &str = "<!doctype html>
<html><head><meta charset=\"utf-8\"><title>boxwatch exporter</title></head>
<body><h1>boxwatch exporter</h1>
<p>Per-cgroup usage against quota, and the latest scenario verdicts.</p>
<ul><li><a href=\"/metrics\">/metrics</a> (Prometheus text; OpenMetrics with
<code>Accept: application/openmetrics-text</code>)</li>
<li><a href=\"/healthz\">/healthz</a></li></ul></body></html>
";

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = with_type(
        Bytes::from_static(text.as_bytes()),
        "text/plain; charset=utf-8",
    );
    *r.status_mut() = status;
    r
}

fn with_type(body: Bytes, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> crate::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| crate::Error::Bind { addr, source })
}

/// Serves `exporter` on `listener` until `shutdown` completes. Connections
/// still open then are dropped.
pub async fn serve(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> crate::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => return Ok(()),
        };
        let stream = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => return Ok(()),
        };
        let (stream, peer) = match stream {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let exporter = exporter.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, exporter, config).await;
            drop(permit);
        });
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    exporter: Arc<Exporter>,
    config: ServerConfig,
) {
    let service = service_fn(move |req| {
        let exporter = exporter.clone();
        async move { Ok::<_, Infallible>(exporter.handle(req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(MAX_REQUEST_BUFFER)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!("connection from {peer}: {e}");
            }
        }
        _ = tokio::time::sleep(config.connection_timeout) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}
