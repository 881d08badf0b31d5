//! boxwatch's judge. It reads the kernel's own files (cgroupfs, /proc)
//! directly and shares no code with the runtime it judges: a bug in the
//! runtime must not be able to pass itself.
//!
//! Must not depend on: `runtime`.

pub mod error;
pub mod host;
pub mod inside;
pub mod inspect;

pub use error::{Error, ParseError, Result};
