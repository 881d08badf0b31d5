//! Devices: a node for a block device of the host, made with mknod inside,
//! must not open (the devices cgroup on v1, the BPF device program on v2;
//! or a `nodev` mount where the node could be made), and /dev holds only
//! the default devices.

use super::{list, HostFacts};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use serde_json::{Map, Value};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Where a device node may be made, in order.
const PLACES: [&str; 6] = ["/tmp", "/dev", "/dev/shm", "/run", "/var", "/"];

/// The device nodes a container's /dev may hold (runc's, crun's and
/// Docker's default set): everything else is a host device let in.
const DEFAULT_DEV: [&str; 9] = [
    "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx", "pts/ptmx",
];

/// A block device of the host that the host itself can open: the one
/// holding `/`, then those of /proc/partitions, then `loop0` (7:0). A device
/// the host cannot open either (some hosts refuse even root their disk)
/// would prove nothing about the container. With no candidate that opens,
/// the first one. An open is O_RDONLY|O_NONBLOCK of the host's own node,
/// closed at once, never read.
pub fn host_block_device() -> Option<(u64, u64)> {
    let parts = std::fs::read_to_string("/proc/partitions").unwrap_or_default();
    let mut candidates = Vec::new();
    if let Ok(st) = nix::sys::stat::stat("/") {
        let d = st.st_dev;
        candidates.push((nix::sys::stat::major(d), nix::sys::stat::minor(d)));
    }
    candidates.extend(parse_partitions(&parts));
    candidates.push((7, 0));
    candidates.retain(|&(ma, _)| ma != 0);
    candidates
        .iter()
        .copied()
        .find(|&dev| host_node(dev).is_some_and(|p| opens(&p)))
        .or(candidates.first().copied())
}

/// The host's /dev node of a block device, from /sys/dev/block.
fn host_node((ma, mi): (u64, u64)) -> Option<PathBuf> {
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{ma}:{mi}/uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    Some(Path::new("/dev").join(name))
}

fn opens(p: &Path) -> bool {
    nix::fcntl::open(
        p,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .map(|fd| {
        let _ = nix::unistd::close(fd);
    })
    .is_ok()
}

/// `(major, minor)` of every line of /proc/partitions.
pub fn parse_partitions(text: &str) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let ma = f.next()?.parse().ok()?;
            let mi = f.next()?.parse().ok()?;
            f.next()?.parse::<u64>().ok()?;
            f.next()?;
            Some((ma, mi))
        })
        .collect()
}

/// One attempt: where, what mknod said, what open said.
struct Attempt {
    place: String,
    made: Result<(), Errno>,
    opened: Option<Result<(), Errno>>,
}

impl Attempt {
    /// The open went past the device check: it succeeded, or the driver
    /// answered (no such device), which it only does once the device cgroup
    /// and the mount allowed the open.
    fn reached_device(&self) -> bool {
        matches!(
            self.opened,
            Some(Ok(())) | Some(Err(Errno::ENXIO)) | Some(Err(Errno::ENODEV))
        )
    }

    fn describe(&self) -> String {
        let e = |r: &Result<(), Errno>| match r {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        match &self.opened {
            None => format!("{}: mknod {}", self.place, e(&self.made)),
            Some(o) => format!("{}: mknod ok, open {}", self.place, e(o)),
        }
    }
}

fn attempt(dir: &Path, dev: (u64, u64)) -> Attempt {
    let node = dir.join(format!(".boxwatch-blk-{}", std::process::id()));
    let made = mknod(
        &node,
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o600),
        makedev(dev.0, dev.1),
    );
    let opened = made.is_ok().then(|| {
        // A real open (O_PATH would skip the device check); never read.
        let r = nix::fcntl::open(
            &node,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
            Mode::empty(),
        );
        r.map(|fd| {
            let _ = nix::unistd::close(fd);
        })
    });
    if made.is_ok() {
        let _ = std::fs::remove_file(&node);
    }
    Attempt {
        place: dir.display().to_string(),
        made,
        opened,
    }
}

/// With CAP_SYS_ADMIN and only `nodev` places, a tmpfs of the container's
/// own (private mount namespace, checked by the catalog) is a place
/// without it: what an attacker holding the capability would use.
fn attempt_on_private_tmpfs(dev: (u64, u64)) -> Option<Attempt> {
    let dir = PathBuf::from(format!("/tmp/.boxwatch-devprobe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    let a = match mount(
        Some("boxwatch-devprobe"),
        &dir,
        Some("tmpfs"),
        flags,
        Some("size=16k"),
    ) {
        Ok(()) => {
            let mut a = attempt(&dir, dev);
            a.place = format!("{} (a tmpfs mounted inside)", a.place);
            let _ = umount2(&dir, MntFlags::MNT_DETACH);
            Some(a)
        }
        Err(_) => None,
    };
    let _ = std::fs::remove_dir(&dir);
    a
}

pub fn probe(r: &mut Map<String, Value>, facts: &HostFacts, private_mount: bool) {
    match facts.block_dev {
        None => {
            r.insert(
                "block_device_probe".into(),
                Value::from("no block device of the host was given (--block-dev)"),
            );
        }
        Some(dev) => {
            let mut attempts = Vec::new();
            for p in PLACES {
                let a = attempt(Path::new(p), dev);
                let done = a.reached_device();
                attempts.push(a);
                if done {
                    break;
                }
            }
            if private_mount && !attempts.iter().any(Attempt::reached_device) {
                attempts.extend(attempt_on_private_tmpfs(dev));
            }
            let opened = attempts.iter().any(Attempt::reached_device);
            let mut text = format!("{}:{}: ", dev.0, dev.1);
            text.push_str(
                &attempts
                    .iter()
                    .map(Attempt::describe)
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            r.insert("host_block_device_opened".into(), Value::from(opened));
            r.insert("block_device_probe".into(), Value::from(text));
        }
    }
    r.insert(
        "extra_dev_nodes".into(),
        list(&extra_dev_nodes(Path::new("/dev"))),
    );
}

/// Device nodes in `dev` (and one level below) that are not default ones.
fn extra_dev_nodes(dev: &Path) -> Vec<String> {
    let mut extra = Vec::new();
    walk(dev, "", 0, &mut |name| {
        if !is_default(name) {
            extra.push(name.to_string());
        }
    });
    extra.sort();
    extra
}

fn walk(dir: &Path, prefix: &str, depth: u32, found: &mut dyn FnMut(&str)) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() && depth == 0 {
            walk(&e.path(), &format!("{name}/"), 1, found);
        } else if ft.is_block_device() || ft.is_char_device() {
            found(&name);
        }
    }
}

fn is_default(name: &str) -> bool {
    DEFAULT_DEV.contains(&name)
        || name
            .strip_prefix("pts/")
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn partitions_are_parsed() {
        let text = "major minor  #blocks  name\n\n 254        0  268435456 vda\n 254 1 1000 vda1\n";
        assert_eq!(parse_partitions(text), vec![(254, 0), (254, 1)]);
    }

    #[test]
    fn default_devices_and_ptys_are_not_extra() {
        assert!(is_default("null") && is_default("pts/3") && is_default("pts/ptmx"));
        assert!(!is_default("vda") && !is_default("mem") && !is_default("pts/x"));
    }

    #[test]
    fn the_host_dev_has_extra_nodes() {
        // The host's own /dev holds its disks and more: what a container
        // given every device would show.
        let extra = extra_dev_nodes(Path::new("/dev"));
        assert!(!extra.is_empty());
        assert!(extra_dev_nodes(Path::new("/nonexistent")).is_empty());
    }

    proptest! {
        #[test]
        fn partition_parsing_never_panics(s in "\\PC{0,200}") {
            let _ = parse_partitions(&s);
        }
    }
}
