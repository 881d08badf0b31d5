//! boxwatch reports crate.
