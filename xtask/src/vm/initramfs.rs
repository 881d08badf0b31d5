//! The VM's whole userland, as one initramfs: busybox, the boxwatch binary
//! and the shared libraries it needs, and an /init script that mounts the
//! cgroup hierarchies, runs one boxwatch job, sends its stdout out through
//! the second serial port and powers off.

use super::cpio::{write_archive, Entry};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Cgroup layout to give the VM.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CgroupLayout {
    /// v1 controllers only, cpu and cpuacct co-mounted (as systemd does).
    V1,
    /// The unified hierarchy only (`cgroup_no_v1=all`).
    V2,
}

impl std::fmt::Display for CgroupLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CgroupLayout::V1 => "v1",
            CgroupLayout::V2 => "v2",
        })
    }
}

/// Lines the init script prints on the console, read by the host.
pub const MARK_STARTED: &str = "BOXWATCH-INIT-STARTED";
pub const MARK_EXIT: &str = "BOXWATCH-JOB-EXIT";
/// `BOXWATCH-KERNEL-LACKS CONFIG_X what is missing`: an option the VM needs.
pub const MARK_LACKS: &str = "BOXWATCH-KERNEL-LACKS";

/// What the console says the kernel lacks, if it says so: the init's own
/// checks ([`MARK_LACKS`] lines), or the panic of a kernel that did not
/// unpack the initramfs and found no root filesystem.
pub fn lacking_options(console: &str) -> Option<String> {
    let lacks: Vec<String> = console
        .lines()
        .filter_map(|l| l.split_once(MARK_LACKS))
        .map(|(_, rest)| {
            let rest = rest.trim();
            match rest.split_once(' ') {
                Some((opt, why)) => format!("{opt} ({why})"),
                None => rest.to_string(),
            }
        })
        .collect();
    if !lacks.is_empty() {
        return Some(format!("this kernel lacks {}", lacks.join(", ")));
    }
    let panicked_without_root = console.contains("VFS: Unable to mount root fs")
        || console.contains("No working init found");
    (panicked_without_root && !console.contains(MARK_STARTED)).then(|| {
        "this kernel lacks CONFIG_BLK_DEV_INITRD (it did not run the initramfs' /init and \
         panicked looking for a root filesystem)"
            .to_string()
    })
}

/// Applets linked at build time (the script installs the rest at boot).
const APPLETS: [&str; 12] = [
    "sh", "mount", "mkdir", "cat", "echo", "poweroff", "stty", "sleep", "hostname", "ip", "sync",
    "uname",
];

/// Builds the initramfs at `out`.
pub fn build(out: &Path, boxwatch: &Path, busybox: &Path, init: &str) -> Result<()> {
    let mut entries = Vec::new();
    let mut dirs = BTreeSet::new();
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "run", "root",
        "var",
    ] {
        add_dir(&mut entries, &mut dirs, d);
    }
    entries.push(Entry::CharDev {
        path: "dev/console".into(),
        mode: 0o600,
        major: 5,
        minor: 1,
    });
    add_binary(&mut entries, &mut dirs, busybox, "bin/busybox")?;
    for a in APPLETS {
        entries.push(Entry::Symlink {
            path: format!("bin/{a}"),
            target: "busybox".into(),
        });
    }
    add_binary(&mut entries, &mut dirs, boxwatch, "bin/boxwatch")?;
    for (path, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("etc/hosts", "127.0.0.1 localhost\n"),
        ("etc/hostname", "boxwatch-vm\n"),
    ] {
        entries.push(Entry::File {
            path: path.into(),
            mode: 0o644,
            data: text.as_bytes().to_vec(),
        });
    }
    entries.push(Entry::File {
        path: "init".into(),
        mode: 0o755,
        data: init.as_bytes().to_vec(),
    });
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    write_archive(&mut file, &entries)?;
    Ok(())
}

fn add_dir(entries: &mut Vec<Entry>, dirs: &mut BTreeSet<String>, path: &str) {
    let mut acc = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        if dirs.insert(acc.clone()) {
            entries.push(Entry::Dir {
                path: acc.clone(),
                mode: 0o755,
            });
        }
    }
}

/// Adds a binary and every shared library `ldd` says it needs, each at its
/// host path (so the dynamic loader finds them).
fn add_binary(
    entries: &mut Vec<Entry>,
    dirs: &mut BTreeSet<String>,
    host: &Path,
    at: &str,
) -> Result<()> {
    let data = std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
    entries.push(Entry::File {
        path: at.into(),
        mode: 0o755,
        data,
    });
    for lib in shared_libraries(host)? {
        let rel = lib.to_string_lossy().trim_start_matches('/').to_string();
        if entries
            .iter()
            .any(|e| matches!(e, Entry::File { path, .. } if *path == rel))
        {
            continue;
        }
        if let Some(parent) = Path::new(&rel).parent() {
            add_dir(entries, dirs, &parent.to_string_lossy());
        }
        let data = std::fs::read(&lib).with_context(|| format!("reading {}", lib.display()))?;
        entries.push(Entry::File {
            path: rel,
            mode: 0o755,
            data,
        });
    }
    Ok(())
}

/// The libraries `ldd` lists for `binary` (none for a static one).
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd")?;
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// Paths in ldd output: `libc.so.6 => /lib/.../libc.so.6 (0x..)` and the
/// loader line `/lib64/ld-linux-x86-64.so.2 (0x..)`.
pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The /init script for one VM.
pub fn init_script(layout: CgroupLayout, job: &[String]) -> String {
    let cgroups = match layout {
        CgroupLayout::V2 => "mount -t cgroup2 cgroup2 /sys/fs/cgroup || lacks CONFIG_CGROUPS 'cgroup2 cannot be mounted'".to_string(),
        CgroupLayout::V1 => [
            "mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup",
            "for c in cpu,cpuacct cpuset memory pids freezer devices blkio; do",
            "  grep -q \"^${c%%,*}\t\" /proc/cgroups || continue",
            "  mkdir -p /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c 2>/dev/null",
            "done",
            "# A v1 column without v1 cpu and memory hierarchies judges nothing of v1.",
            "grep -q ' /sys/fs/cgroup/cpu,cpuacct ' /proc/mounts || lacks CONFIG_CGROUP_SCHED 'no v1 cpu,cpuacct hierarchy could be mounted'",
            "if ! grep -q ' /sys/fs/cgroup/memory ' /proc/mounts; then",
            "  if grep -q '^memory\t' /proc/cgroups; then",
            "    lacks CONFIG_MEMCG_V1 'the memory controller cannot be mounted as cgroup v1 (since 6.11 a separate option; use --cgroup v2)'",
            "  else lacks CONFIG_MEMCG 'no memory controller in /proc/cgroups'; fi",
            "fi",
        ]
        .join("\n"),
    };
    let job: Vec<String> = job.iter().map(|a| shell_quote(a)).collect();
    format!(
        r#"#!/bin/sh
# boxwatch VM init: set up a minimal system, run one job, power off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "{MARK_STARTED} kernel=$(uname -r)"
# The options boxwatch cannot run without: named, instead of a job that
# fails in some odd way (or a console that waits forever).
lacking=
lacks() {{ echo "{MARK_LACKS} $1 $2"; lacking=1; }}
mount -t devtmpfs devtmpfs /dev || lacks CONFIG_DEVTMPFS 'devtmpfs cannot be mounted'
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
hostname boxwatch-vm
ip link set lo up
for ns in pid:PID_NS uts:UTS_NS ipc:IPC_NS net:NET_NS cgroup:CGROUPS; do
  [ -e /proc/self/ns/${{ns%%:*}} ] || lacks CONFIG_${{ns#*:}} "no ${{ns%%:*}} namespace in /proc/self/ns"
done
[ -e /dev/ttyS1 ] || lacks CONFIG_SERIAL_8250 'no second serial port (/dev/ttyS1) for the report'
{cgroups}
if [ -n "$lacking" ]; then
  echo
  echo "{MARK_EXIT} 125"
  poweroff -f
fi
stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo "cgroups: $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null || ls /sys/fs/cgroup | tr '\n' ' ')"
cd /tmp
# stderr through a pipe: not a terminal, so progress comes as plain lines
# that stream to the console instead of a bar redrawn over the log.
{{ /bin/boxwatch {job} > /tmp/job.out; echo $? > /tmp/job.rc; }} 2>&1 | cat
rc=$(cat /tmp/job.rc 2>/dev/null || echo 125)
cat /tmp/job.out > /dev/ttyS1
sync
echo
echo "{MARK_EXIT} $rc"
poweroff -f
"#,
        job = job.join(" ")
    )
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=,:*".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_yields_library_and_loader_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x1)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x2)\n\t/lib64/ld-linux-x86-64.so.2 (0x3)\n";
        assert_eq!(
            parse_ldd(text),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn the_init_script_mounts_the_asked_layout_and_quotes_the_job() {
        let v2 = init_script(
            CgroupLayout::V2,
            &["scenarios".into(), "--only".into(), "cpu quota*".into()],
        );
        assert!(v2.contains("mount -t cgroup2 cgroup2 /sys/fs/cgroup"));
        assert!(v2.contains("/bin/boxwatch scenarios --only 'cpu quota*' > /tmp/job.out"));
        let v1 = init_script(CgroupLayout::V1, &["scenarios".into()]);
        assert!(v1.contains("-o $c cgroup") && !v1.contains("cgroup2"));
    }
}
