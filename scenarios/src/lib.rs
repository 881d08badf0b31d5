//! boxwatch's scenarios: the catalog of data files, the workloads that run
//! inside containers, the expectations and their verdicts, and the runner
//! that ties them to the runtime, the probes and the reports.
//!
//! Data flows one way: scenario file -> `ContainerSpec` -> runtime spawns ->
//! the host view is sampled while the workload runs, the workload reports
//! the inside view -> outcome -> expectations -> verdicts -> report.

pub mod builtin;
pub mod catalog;
pub mod cli;
pub mod contention;
pub mod error;
pub mod expect;
pub mod facts;
pub mod hostlock;
pub mod metrics;
pub mod observe;
pub mod placement;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod signals;
mod sys;
pub mod workload;

pub use catalog::{Entry, LoadError, Scenario};
pub use error::{Error, Result};
