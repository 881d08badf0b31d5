//! boxwatch scenarios crate.
