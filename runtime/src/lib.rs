//! boxwatch's built-in container runtime.
//!
//! A [`ContainerSpec`] says what to isolate and limit; [`Runtime::spawn`] turns
//! it into a running container (namespaces, private rootfs, cgroups), and
//! [`Container::wait`] turns that into an [`Outcome`]. All privileged and
//! unsafe code of the project lives in this crate, in `sys.rs`.

pub mod error;
pub mod spec;
pub mod units;

pub use error::Error;
pub use spec::{Capability, ContainerSpec, Limits, Namespace, NamespaceSet, RootfsSpec, TimeOffsets, IdMap};
pub use units::{CpuQuota, MemoryBytes, CpuSet};
