//! boxwatch reports: the report model with its versioned JSON schema
//! (`SCHEMA.md`), the renderers (JSON, Markdown, JUnit XML, HTML, terminal)
//! and the baseline diff.
//!
//! Flow: the scenario runner fills [`ScenarioResult`]s, [`Report::assemble`]
//! judges them with [`scenario_status`] and counts the [`Summary`],
//! [`Report::with_baseline`] adds the [`Regression`]s found by [`compare`],
//! and the renderers turn the report into text.
//!
//! Must not depend on: `runtime`, `probes`, `scenarios`, `exporter`.

pub mod build;
pub mod diff;
pub mod error;
pub mod fixture;
pub mod model;
pub mod render;
pub mod status;
pub mod verdict;

pub use build::{load_report, parse_report};
pub use diff::compare;
pub use error::{Error, Result};
pub use model::*;
pub use render::{
    check_out_dir, html, human, json, junit, markdown, markdown_cell, write_all, Color, Format,
};
pub use status::{scenario_status, summarize};
pub use verdict::{Evidence, Verdict};
