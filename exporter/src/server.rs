//! The HTTP side: `/metrics`, `/healthz` and an index page, served by
//! hyper on tokio with bounded concurrency and timeouts.
//!
//! - At most [`ServerConfig::max_connections`] connections are served at
//!   once; further ones wait in the listen backlog (1024).
//! - A client must send its request headers within
//!   [`ServerConfig::header_timeout`], must take each response within
//!   [`ServerConfig::write_timeout`] (a client that stops reading a large
//!   exposition is dropped then), and a connection lives at most
//!   [`ServerConfig::connection_timeout`] (then it is shut down gracefully,
//!   and dropped 2 s later if it still hangs): slow clients cannot pin
//!   connections.
//! - A request whose handling panics (a collector's panic included) is
//!   answered 500 and counted in `boxwatch_exporter_panics_total`; the
//!   server goes on.
//! - Scrapes are coalesced: one collection runs at a time, and a request
//!   that arrives while one runs is answered by the next collection that
//!   starts after it arrived. 200 concurrent scrapers cost two collections,
//!   not 200.

use crate::collector::{CgroupCollector, CgroupSelfMetrics};
use crate::openmetrics::{self, Format};
use crate::table::CgroupTable;
use crate::webconfig::WebConfig;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};

/// Limits of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client has to send its request headers.
    pub header_timeout: Duration,
    /// Time a response may take to be handed to the client's socket (from
    /// its first byte to its last); a client that does not read is dropped
    /// after it.
    pub write_timeout: Duration,
    /// Longest life of one connection (keep-alive included).
    pub connection_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 256,
            header_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
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
    cgroups: Option<CgroupTable>,
    text: OnceLock<Bytes>,
    openmetrics: OnceLock<Bytes>,
    /// The buffer of an earlier scrape's body, for this one's first.
    spare: std::sync::Mutex<Option<Vec<u8>>>,
}

impl Scrape {
    /// The exposition in `format`.
    pub fn body(&self, format: Format) -> Bytes {
        let cell = match format {
            Format::Text => &self.text,
            Format::OpenMetrics => &self.openmetrics,
        };
        cell.get_or_init(|| {
            let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
            Bytes::from(openmetrics::render_into(
                spare.unwrap_or_default(),
                &self.families,
                self.cgroups.as_ref(),
                format,
            ))
        })
        .clone()
    }

    /// The allocation of a body nobody holds any more (emptied), to
    /// render the next scrape's body into: a body of thousands of cgroups
    /// is megabytes, which the allocator would otherwise keep, once per
    /// thread that rendered one, after it is freed.
    fn into_buffer(self) -> Option<Vec<u8>> {
        let bodies = [self.text.into_inner(), self.openmetrics.into_inner()];
        for body in bodies.into_iter().flatten() {
            if let Ok(mut b) = body.try_into_mut() {
                b.clear();
                return Some(b.into());
            }
        }
        self.spare.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// The families gathered by the registry (without the per-cgroup
    /// ones, see [`Self::cgroups`]).
    pub fn families(&self) -> &[MetricFamily] {
        &self.families
    }

    /// The per-cgroup figures, when the exporter reads cgroups.
    pub fn cgroups(&self) -> Option<&CgroupTable> {
        self.cgroups.as_ref()
    }
}

/// The exporter: a registry of collectors and the coalescing scrape cache.
pub struct Exporter {
    registry: Registry,
    /// The cgroup collector, whose per-cgroup families bypass the
    /// registry's objects (its own metrics are in the registry).
    cgroups: Option<Arc<CgroupCollector>>,
    /// The name of every metric family a registered collector describes.
    metric_names: Vec<String>,
    last: Mutex<Option<Arc<Scrape>>>,
    requests: IntCounterVec,
    panics: IntCounter,
}

impl Exporter {
    /// An exporter serving `collectors`, plus its own counters of requests
    /// and of panics.
    pub fn new(collectors: Vec<Box<dyn Collector>>) -> crate::Result<Arc<Self>> {
        Self::build(None, collectors)
    }

    /// An exporter serving the cgroups of `cgroups` (each scrape's
    /// per-cgroup families written straight from its [`CgroupTable`], the
    /// collector's own metrics through the registry) and `collectors`,
    /// plus its own counters.
    pub fn with_cgroups(
        cgroups: CgroupCollector,
        collectors: Vec<Box<dyn Collector>>,
    ) -> crate::Result<Arc<Self>> {
        let cgroups = Arc::new(cgroups);
        let mut all: Vec<Box<dyn Collector>> = vec![Box::new(CgroupSelfMetrics(cgroups.clone()))];
        all.extend(collectors);
        Self::build(Some(cgroups), all)
    }

    fn build(
        cgroups: Option<Arc<CgroupCollector>>,
        collectors: Vec<Box<dyn Collector>>,
    ) -> crate::Result<Arc<Self>> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "boxwatch_exporter_http_requests_total",
                "HTTP requests answered, by handler and status code.",
            ),
            &["handler", "code"],
        )?;
        let panics = IntCounter::new(
            "boxwatch_exporter_panics_total",
            "Requests whose handling panicked (a collector's panic included): each was answered 500, the panic is on stderr.",
        )?;
        let mut metric_names = Vec::new();
        let own: [Box<dyn Collector>; 2] = [Box::new(requests.clone()), Box::new(panics.clone())];
        for c in collectors.into_iter().chain(own) {
            metric_names.extend(c.desc().iter().map(|d| d.fq_name.clone()));
            registry.register(c)?;
        }
        metric_names.sort();
        Ok(Arc::new(Exporter {
            registry,
            cgroups,
            metric_names,
            last: Mutex::new(None),
            requests,
            panics,
        }))
    }

    /// The name of every metric family the exporter can serve (from the
    /// descriptors its collectors registered), sorted.
    pub fn metric_names(&self) -> &[String] {
        &self.metric_names
    }

    /// A collection that started no earlier than this call: the running
    /// or next one, shared by every caller waiting for it. A collector's
    /// panic is resumed here (and becomes a 500 in [`Self::handle`]); the
    /// callers waiting for that collection then run their own.
    pub async fn scrape(&self) -> Arc<Scrape> {
        let asked = Instant::now();
        let mut last = self.last.lock().await;
        if let Some(s) = last.as_ref().filter(|s| s.started >= asked) {
            return s.clone();
        }
        // The last scrape is too old to answer anyone now; its body's
        // buffer (when no response holds it any more) takes the next body.
        let spare = last
            .take()
            .and_then(|old| Arc::try_unwrap(old).ok())
            .and_then(Scrape::into_buffer);
        let registry = self.registry.clone();
        let cgroups = self.cgroups.clone();
        let started = Instant::now();
        // The cgroups first: the collector's own metrics, gathered by the
        // registry, describe that read.
        let collect = move || {
            let table = cgroups.map(|c| c.read());
            (registry.gather(), table)
        };
        let (families, cgroups) = match tokio::task::spawn_blocking(collect).await {
            Ok(f) => f,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                tracing::error!("collection failed: {e}");
                (Vec::new(), None)
            }
        };
        let s = Arc::new(Scrape {
            started,
            families,
            cgroups,
            text: OnceLock::new(),
            openmetrics: OnceLock::new(),
            spare: std::sync::Mutex::new(spare),
        });
        *last = Some(s.clone());
        s
    }

    /// Answers one request. Never panics, whatever the request: the
    /// request runs as its own task, and a panic in it (or in a collector
    /// it waited for) is answered 500 and counted.
    pub async fn handle(self: &Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let handler = handler_of(req.uri().path());
        let this = self.clone();
        let mut task = AbortOnDrop(tokio::spawn(async move { this.route(handler, &req).await }));
        let resp = match (&mut task.0).await {
            Ok(resp) => resp,
            Err(e) => {
                if e.is_panic() {
                    self.panics.inc();
                }
                tracing::error!("{handler} request failed: {e}");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
            }
        };
        self.requests
            .with_label_values(&[handler, resp.status().as_str()])
            .inc();
        resp
    }

    async fn route(&self, handler: &'static str, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if handler == "other" {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
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
        if req.method() == Method::HEAD {
            let (parts, _) = resp.into_parts();
            Response::from_parts(parts, Full::new(Bytes::new()))
        } else {
            resp
        }
    }
}

/// A task that ends with its handle: a request whose connection is gone
/// stops too.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The `handler` label of a request path.
fn handler_of(path: &str) -> &'static str {
    match path {
        "/metrics" => "metrics",
        "/healthz" => "healthz",
        "/" => "index",
        _ => "other",
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

/// Connections the kernel holds, handshake done, until the server takes
/// them (capped by `net.core.somaxconn`): beyond the served ones, this
/// many clients wait instead of having their SYNs dropped (and retried
/// seconds later). The standard library's 128 would be less than the 256
/// served at once.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> crate::Result<TcpListener> {
    let bind = || {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    bind().map_err(|source| crate::Error::Bind { addr, source })
}

/// Serves `exporter` on `listener` until `shutdown` completes. Connections
/// still open then are dropped.
pub async fn serve(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> crate::Result<()> {
    serve_with(listener, exporter, config, WebConfig::none(), shutdown).await
}

/// [`serve`] with a `--web.config.file`: TLS (the handshake must end
/// within the header timeout) and basic authentication (a request without
/// valid credentials is answered 401).
pub async fn serve_with(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    config: ServerConfig,
    web: WebConfig,
    shutdown: impl Future<Output = ()>,
) -> crate::Result<()> {
    let tls = web.tls().map(tokio_rustls::TlsAcceptor::from);
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
        let web = web.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, peer, exporter, config, web).await,
                Some(tls) => {
                    match tokio::time::timeout(config.header_timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, peer, exporter, config, web).await
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer}: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {peer}: timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    exporter: Arc<Exporter>,
    config: ServerConfig,
    web: WebConfig,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let exporter = exporter.clone();
        let web = web.clone();
        async move {
            if web.needs_auth() {
                let header = req
                    .headers()
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let ok = tokio::task::spawn_blocking(move || web.allows(header.as_deref()))
                    .await
                    .unwrap_or(false);
                if !ok {
                    let mut r = plain(StatusCode::UNAUTHORIZED, "unauthorized\n");
                    r.headers_mut().insert(
                        WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"boxwatch exporter\""),
                    );
                    return Ok::<_, Infallible>(r);
                }
            }
            Ok::<_, Infallible>(exporter.handle(req).await)
        }
    });
    let stream = WriteDeadline::new(stream, config.write_timeout);
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        // A client may shut down its side once its request is sent (as
        // `nc -N` does) and still get the answer.
        .half_close(true)
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

/// A stream whose writes fail with `TimedOut` when a response has not been
/// handed to the socket within `limit` of its first byte: the deadline is
/// armed by a write and cleared by the flush hyper makes once its buffers
/// (the whole response, for the full bodies served here) are written. A
/// client that stops reading is dropped then instead of holding its
/// connection slot until the connection's end of life.
struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> Self {
        WriteDeadline {
            inner,
            limit,
            deadline: None,
        }
    }

    /// `poll` (a write) unless the deadline passed while it is pending.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut S, &mut Context<'_>) -> Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        let limit = self.limit;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match poll(&mut self.inner, cx) {
            Poll::Pending if deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the client took no response for {limit:?}"),
                )))
            }
            other => other,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut()
            .guard(cx, |s, cx| Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut()
            .guard(cx, |s, cx| Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            this.deadline = None;
        }
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
