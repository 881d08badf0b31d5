//! The exporter against cgroups this test makes on the real kernel (under
//! `boxwatch/exporter-test-<pid>`, removed by a Drop guard): the files it
//! keeps open between scrapes give the values of the scrape, limits
//! included. Needs root; under CI=true a missing prerequisite fails
//! instead of skipping.

mod common;

use common::*;
use exporter::Format;
use probes::host::{CgroupPath, CgroupVersion, Host};
use std::path::PathBuf;

/// `boxwatch/exporter-test-<pid>/c` in the cpu, memory and pids
/// hierarchies; removed on drop (with the parents the test made).
struct TestCgroups {
    root: CgroupPath,
    /// (version, `.../exporter-test-<pid>`) of each hierarchy.
    dirs: Vec<(CgroupVersion, PathBuf)>,
}

impl TestCgroups {
    fn new() -> TestCgroups {
        let layout = Host::new().layout().unwrap();
        let root = CgroupPath::new(&unique("/boxwatch/exporter-test")).unwrap();
        let mut set = TestCgroups {
            root: root.clone(),
            dirs: Vec::new(),
        };
        for c in ["cpu", "memory", "pids"] {
            let h = layout.hierarchy_for(c).unwrap();
            let dir = h.dir(&root);
            if set.dirs.iter().any(|(_, d)| *d == dir) {
                continue;
            }
            std::fs::create_dir_all(&dir).unwrap();
            if h.version == CgroupVersion::V2 {
                // Limits in the child need the controllers enabled here.
                let want: Vec<String> = ["cpu", "memory", "pids"]
                    .iter()
                    .filter(|c| h.has(c))
                    .map(|c| format!("+{c}"))
                    .collect();
                std::fs::write(dir.join("cgroup.subtree_control"), want.join(" ")).unwrap();
            }
            set.dirs.push((h.version, dir));
        }
        set
    }

    /// Makes `c` (again) with these limits.
    fn make(&self, quota_us: u64, memory: u64, pids: u64) {
        for (version, dir) in &self.dirs {
            let c = dir.join("c");
            let _ = std::fs::create_dir(&c);
            let write = |file: &str, value: String| {
                if c.join(file).exists() {
                    std::fs::write(c.join(file), value).unwrap();
                }
            };
            match version {
                CgroupVersion::V1 => {
                    write("cpu.cfs_period_us", "100000".into());
                    write("cpu.cfs_quota_us", quota_us.to_string());
                    write("memory.limit_in_bytes", memory.to_string());
                }
                CgroupVersion::V2 => {
                    write("cpu.max", format!("{quota_us} 100000"));
                    write("memory.max", memory.to_string());
                }
            }
            write("pids.max", pids.to_string());
        }
    }

    fn remove_c(&self) {
        for (_, dir) in &self.dirs {
            let _ = std::fs::remove_dir(dir.join("c"));
        }
    }
}

impl Drop for TestCgroups {
    fn drop(&mut self) {
        self.remove_c();
        for (_, dir) in &self.dirs {
            let _ = std::fs::remove_dir(dir);
            let _ = std::fs::remove_dir(dir.parent().unwrap()); // fails while in use
        }
    }
}

/// An exporter built as `boxwatch exporter` builds it: a scrape of it in
/// process, in the text format, at each call.
fn live(args: &exporter::ExporterArgs) -> impl Fn() -> String {
    let exporter = exporter::build(args).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    move || {
        let s = rt.block_on(exporter.scrape());
        String::from_utf8(s.body(Format::Text).to_vec()).unwrap()
    }
}

#[test]
fn held_files_give_each_scrape_the_limits_of_the_moment() {
    if !have_root("held_files_give_each_scrape_the_limits_of_the_moment") {
        return;
    }
    let set = TestCgroups::new();
    set.make(20_000, 64 << 20, 64);
    let args = fake_args(std::path::Path::new("/"), &[set.root.as_str()]);
    let scrape = live(&args);
    let c = format!("{{cgroup=\"{}/c\"}} ", set.root);
    let limits = |text: &str| {
        (
            value_of(text, &format!("boxwatch_cgroup_cpu_quota_cores{c}")),
            value_of(text, &format!("boxwatch_cgroup_memory_limit_bytes{c}")),
            value_of(text, &format!("boxwatch_cgroup_pids_limit{c}")),
        )
    };
    let mib = |n: u64| Some((n << 20) as f64);
    assert_eq!(limits(&scrape()), (Some(0.2), mib(64), Some(64.0)));

    // Changed in place: the next scrape, through the same open files,
    // has the new limits.
    set.make(30_000, 32 << 20, 32);
    let text = scrape();
    assert_eq!(limits(&text), (Some(0.3), mib(32), Some(32.0)));

    // Removed and made again between two scrapes: the files held belong
    // to the removed cgroup; the scrape reads the new one.
    set.remove_c();
    set.make(50_000, 16 << 20, 16);
    let text = scrape();
    assert_eq!(limits(&text), (Some(0.5), mib(16), Some(16.0)));
    assert_eq!(
        value_of(&text, "boxwatch_exporter_cgroup_read_errors_total "),
        Some(0.0)
    );

    // Gone: left out, not an error.
    set.remove_c();
    let text = scrape();
    assert_eq!(limits(&text), (None, None, None));
    assert_eq!(
        value_of(&text, "boxwatch_exporter_cgroup_read_errors_total "),
        Some(0.0)
    );
}

/// A whole disk of this machine (not a loop, ram or zram device, nor a
/// partition): its `MAJ:MIN`, for the I/O limits the kernel accepts.
fn a_disk() -> Option<String> {
    let mut disks: Vec<_> = std::fs::read_dir("/sys/block").ok()?.flatten().collect();
    disks.sort_by_key(|d| d.file_name());
    disks.into_iter().find_map(|d| {
        let name = d.file_name().to_string_lossy().into_owned();
        let size: u64 = std::fs::read_to_string(d.path().join("size"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let virtual_ = ["loop", "ram", "zram", "nbd"]
            .iter()
            .any(|p| name.starts_with(p));
        (!virtual_ && size > 0)
            .then(|| std::fs::read_to_string(d.path().join("dev")).ok())
            .flatten()
            .map(|s| s.trim().to_string())
    })
}

/// `boxwatch/exporter-io-test-<pid>/c` in the io (v2) or blkio (v1)
/// hierarchy, and (as engines make them) in the cpu, memory and pids ones
/// the exporter walks; removed on drop.
struct IoCgroup {
    root: CgroupPath,
    version: CgroupVersion,
    /// The io or blkio hierarchy's directory.
    dir: PathBuf,
    /// Every hierarchy's.
    dirs: Vec<PathBuf>,
}

impl IoCgroup {
    fn new() -> IoCgroup {
        let layout = Host::new().layout().unwrap();
        let root = CgroupPath::new(&unique("/boxwatch/exporter-io-test")).unwrap();
        let h = layout
            .hierarchy_for("blkio")
            .expect("an io or blkio controller");
        let dir = h.dir(&root);
        let mut dirs = vec![dir.clone()];
        for c in ["cpu", "memory", "pids"] {
            if let Some(d) = layout.hierarchy_for(c).map(|h| h.dir(&root)) {
                if !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
        }
        for d in &dirs {
            std::fs::create_dir_all(d.join("c")).unwrap();
        }
        if h.version == CgroupVersion::V2 {
            // io.max in `c` needs io enabled in each parent below the
            // hierarchy's root (boxwatch's own and this test's).
            let parent = dir.parent().unwrap().to_path_buf();
            for d in [parent, dir.clone()] {
                std::fs::write(d.join("cgroup.subtree_control"), "+io").unwrap();
            }
        }
        IoCgroup {
            root,
            version: h.version,
            dir,
            dirs,
        }
    }

    fn limit(&self, device: &str, read_bps: u64, write_iops: u64) {
        let c = self.dir.join("c");
        match self.version {
            CgroupVersion::V2 => std::fs::write(
                c.join("io.max"),
                format!("{device} rbps={read_bps} wiops={write_iops}"),
            )
            .unwrap(),
            CgroupVersion::V1 => {
                std::fs::write(
                    c.join("blkio.throttle.read_bps_device"),
                    format!("{device} {read_bps}"),
                )
                .unwrap();
                std::fs::write(
                    c.join("blkio.throttle.write_iops_device"),
                    format!("{device} {write_iops}"),
                )
                .unwrap();
            }
        }
    }
}

impl Drop for IoCgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d.join("c"));
            let _ = std::fs::remove_dir(d);
            let _ = std::fs::remove_dir(d.parent().unwrap()); // fails while in use
        }
    }
}

/// io.max (v2) or the blkio throttle files (v1) of a cgroup the test
/// limits on a real disk: exported per device and operation, the limits
/// not set left out, and a change seen by the next scrape.
#[test]
fn io_limits_of_a_real_cgroup_per_device_and_operation() {
    let test = "io_limits_of_a_real_cgroup_per_device_and_operation";
    if !have_root(test) {
        return;
    }
    let Some(device) = a_disk() else {
        require(false, test, "a block device (a disk in /sys/block)");
        return;
    };
    let io = IoCgroup::new();
    io.limit(&device, 1 << 20, 77);
    let args = fake_args(std::path::Path::new("/"), &[io.root.as_str()]);
    let scrape = live(&args);
    let series = |family: &str, op: &str| {
        format!(
            "boxwatch_cgroup_io_limit_{family}{{cgroup=\"{}/c\",device=\"{device}\",operation=\"{op}\"}} ",
            io.root
        )
    };
    let limits = |text: &str| {
        [
            value_of(text, &series("bytes_per_second", "read")),
            value_of(text, &series("bytes_per_second", "write")),
            value_of(text, &series("operations_per_second", "read")),
            value_of(text, &series("operations_per_second", "write")),
        ]
    };
    let text = scrape();
    assert_eq!(
        limits(&text),
        [Some(1048576.0), None, None, Some(77.0)],
        "{text}"
    );
    // The parent has no limit: no series.
    assert!(
        !text.contains(&format!("cgroup=\"{}\",device=", io.root)),
        "{text}"
    );
    io.limit(&device, 2 << 20, 99);
    assert_eq!(limits(&scrape()), [Some(2097152.0), None, None, Some(99.0)]);
    if have_promtool(test) {
        promtool_check_text(&scrape());
    }
}
