//! The inside view, printed for the harness; optionally with a marker tmpfs
//! mounted inside, so that the harness can check it stays invisible on the
//! host while it exists.

use super::Emitter;
use crate::error::Result;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::json;
use std::time::Duration;

/// How long the probe waits for the harness to look before it goes on.
const HOLD: Duration = Duration::from_secs(10);

pub fn probe_inside(out: &Emitter, mount_marker: Option<&str>) -> Result<()> {
    let mut mounted = None;
    let mut mount_error = None;
    let dir = mount_marker.map(|m| format!("/tmp/{m}"));
    if let (Some(marker), Some(dir)) = (mount_marker, &dir) {
        let r = std::fs::create_dir_all(dir)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                mount(
                    Some(marker),
                    dir.as_str(),
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    Some("size=64k"),
                )
                .map_err(|e| format!("mount tmpfs on {dir}: {e}"))
            });
        mounted = Some(r.is_ok());
        mount_error = r.err();
    }
    let view = probes::inside::collect();
    out.emit_and_wait(
        "result",
        json!({ "mounted": mounted, "mount_error": mount_error, "view": view }),
        HOLD,
    );
    if mounted == Some(true) {
        if let Some(dir) = &dir {
            let _ = umount2(dir.as_str(), MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(dir);
        }
    }
    Ok(())
}
