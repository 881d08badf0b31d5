//! boxwatch exporter crate.
