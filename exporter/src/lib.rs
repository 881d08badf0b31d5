//! boxwatch's Prometheus exporter.
//!
//! At each scrape (and only then: no background polling) the
//! [`collector::CgroupCollector`] walks the configured cgroup roots with
//! [`probes::host`] and turns each cgroup's usage and limits into metrics
//! labelled `cgroup="<path>"`; the [`verdicts::VerdictCollector`] publishes
//! the checks of the latest JSON report. [`server`] serves them over HTTP
//! (`/metrics` in the Prometheus text format, or OpenMetrics when asked;
//! `/healthz`; an index page) with bounded concurrency and timeouts, and
//! [`cli`] is the `boxwatch exporter` subcommand.
//!
//! Must not depend on: `runtime`, `scenarios`.

pub mod cli;
pub mod collector;
pub mod dashboards;
pub mod error;
pub mod identity;
pub mod openmetrics;
pub mod server;
pub mod table;
pub mod verdicts;
pub mod webconfig;

pub use error::{Error, Result};
