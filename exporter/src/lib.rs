//! boxwatch's Prometheus exporter.
//!
//! At each scrape (and only then: no background polling) the
//! [`CgroupCollector`] walks the configured cgroup roots with
//! [`probes::host`] and turns each cgroup's usage and limits into metrics
//! labelled `cgroup="<path>"`; the [`VerdictCollector`] publishes the
//! checks of the latest JSON report. [`serve`] serves them over HTTP
//! (`/metrics` in the Prometheus text format, or OpenMetrics when asked;
//! `/healthz`; an index page) with bounded concurrency and timeouts, and
//! [`run`] is the `boxwatch exporter` subcommand.
//!
//! The modules are private: what other crates use is the `pub use` list
//! below.
//!
//! Must not depend on: `runtime`, `scenarios`.

mod cli;
mod collector;
mod dashboards;
mod error;
mod identity;
mod openmetrics;
mod server;
mod table;
mod verdicts;
mod webconfig;

pub use cli::{build, run, ExporterArgs, DEFAULT_MAX_OPEN_FILES};
pub use collector::{
    desc, family, sample, CgroupCollector, CgroupMetric, CollectorConfig, Kind, WalkMode,
    CGROUP_METRICS, FILES_PER_CGROUP, READ,
};
pub use dashboards::{
    instantiate, label_values, queries, variable_queries, LabelValues, DASHBOARDS,
};
pub use error::{Error, Result};
pub use identity::{NameCache, NameSources};
pub use openmetrics::{render, render_openmetrics, render_text, render_with, Format};
pub use server::{bind, serve, Exporter, Scrape, ServerConfig};
pub use table::CgroupTable;
pub use verdicts::VerdictCollector;
pub use webconfig::WebArgs;
