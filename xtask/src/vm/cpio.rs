//! A writer for the kernel's initramfs format: cpio "newc" (see the kernel's
//! Documentation/driver-api/early-userspace/buffer-format.rst).

use std::io::{self, Write};

/// One entry of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
    CharDev {
        path: String,
        mode: u32,
        major: u32,
        minor: u32,
    },
}

impl Entry {
    fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. }
            | Entry::File { path, .. }
            | Entry::Symlink { path, .. }
            | Entry::CharDev { path, .. } => path,
        }
    }
}

/// Writes `entries` and the trailer as a newc archive.
pub fn write_archive(out: &mut impl Write, entries: &[Entry]) -> io::Result<()> {
    for (i, e) in entries.iter().enumerate() {
        let ino = i as u32 + 1;
        let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match e {
            Entry::Dir { mode, .. } => (0o040000 | mode, &[], (0, 0)),
            Entry::File { mode, data, .. } => (0o100000 | mode, data, (0, 0)),
            Entry::Symlink { target, .. } => (0o120777, target.as_bytes(), (0, 0)),
            Entry::CharDev {
                mode, major, minor, ..
            } => (0o020000 | mode, &[], (*major, *minor)),
        };
        let nlink = if matches!(e, Entry::Dir { .. }) { 2 } else { 1 };
        write_entry(out, ino, mode, nlink, rdev, e.path(), data)?;
    }
    write_entry(out, 0, 0, 1, (0, 0), "TRAILER!!!", &[])
}

fn write_entry(
    out: &mut impl Write,
    ino: u32,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    name: &str,
    data: &[u8],
) -> io::Result<()> {
    let name = name.trim_start_matches('/');
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        data.len() as u32,
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0, // check
    ];
    let mut header = String::from("070701");
    for f in fields {
        header.push_str(&format!("{f:08x}"));
    }
    out.write_all(header.as_bytes())?;
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    pad(out, 110 + name.len() + 1)?;
    out.write_all(data)?;
    pad(out, data.len())
}

/// Pads to the next multiple of four bytes.
fn pad(out: &mut impl Write, len: usize) -> io::Result<()> {
    let n = (4 - len % 4) % 4;
    out.write_all(&[0u8; 3][..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_is_aligned_and_ends_with_the_trailer() {
        let mut buf = Vec::new();
        write_archive(
            &mut buf,
            &[
                Entry::Dir {
                    path: "bin".into(),
                    mode: 0o755,
                },
                Entry::File {
                    path: "init".into(),
                    mode: 0o755,
                    data: b"#!/bin/sh\n".to_vec(),
                },
                Entry::Symlink {
                    path: "bin/sh".into(),
                    target: "busybox".into(),
                },
                Entry::CharDev {
                    path: "dev/console".into(),
                    mode: 0o600,
                    major: 5,
                    minor: 1,
                },
            ],
        )
        .unwrap();
        assert_eq!(buf.len() % 4, 0);
        assert!(buf.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&buf);
        assert!(text.contains("TRAILER!!!"));
        assert!(text.contains("#!/bin/sh"));
    }

    #[test]
    fn the_real_cpio_tool_reads_what_we_write() {
        if std::process::Command::new("cpio")
            .arg("--version")
            .output()
            .is_err()
        {
            return; // cpio is only a cross-check; the kernel is the real reader (cargo xtask vm)
        }
        let dir = std::env::temp_dir().join(format!("bw-cpio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut buf = Vec::new();
        write_archive(
            &mut buf,
            &[
                Entry::Dir {
                    path: "d".into(),
                    mode: 0o755,
                },
                Entry::File {
                    path: "d/f".into(),
                    mode: 0o644,
                    data: b"hello".to_vec(),
                },
                Entry::Symlink {
                    path: "d/l".into(),
                    target: "f".into(),
                },
            ],
        )
        .unwrap();
        let mut child = std::process::Command::new("cpio")
            .args(["-i", "--quiet", "-d"])
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&buf).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(std::fs::read_to_string(dir.join("d/f")).unwrap(), "hello");
        assert_eq!(
            std::fs::read_link(dir.join("d/l")).unwrap().to_str(),
            Some("f")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
