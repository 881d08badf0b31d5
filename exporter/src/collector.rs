//! The cgroup collector: reads the cgroup tree at scrape time and turns
//! each cgroup's [`CgroupStats`] into metrics labelled with its path.
//!
//! [`CgroupCollector::read`] gives the per-cgroup figures as a
//! [`CgroupTable`], which the exporter writes straight into the
//! exposition; the collector's own metrics (how many cgroups, how long,
//! errors) go through the `prometheus` registry as [`CgroupSelfMetrics`].
//! As a plain [`Collector`], [`CgroupCollector`] gives both as objects.
//!
//! # What a scrape costs, and the budget of open files
//!
//! Nothing is read between scrapes; a scrape reads what it serves. The
//! collector keeps the cgroups' control files open from one scrape to the
//! next (a [`probes::host::HeldCgroup`] per cgroup, read by a
//! [`probes::host::LayoutReader`] per share of a scrape: a re-read is one
//! `pread` at offset 0). Each held file pins a 4 KiB kernel page (its
//! seq_file buffer), so they are held within one budget
//! ([`CollectorConfig::max_open_files`]), which `boxwatch exporter` sets
//! to the smallest of `--max-open-files`, [`FILES_PER_CGROUP`] files per
//! `--max-cgroups`, and the process's open-file limit (raised first when
//! it can be) less room for `--max-connections` and 256 more. With a
//! single `--cgroup-root`, what the files leave of the budget holds the
//! walk's directories open ([`probes::host::WalkCache`], `O_PATH`; `fstat`
//! on the descriptor when the listing shows the same inode under the same
//! name). Files beyond the budget are opened at every scrape, relative to
//! their parent directory.
//!
//! The per-cgroup families are written straight into the exposition
//! (`table.rs`, byte for byte what the `prometheus` encoder gives);
//! the `prometheus` registry serves everything else. Each row is labelled
//! from its path's conventions (engine, container id, pod, QoS class) by
//! `identity.rs`, which reads a container's name from its engine's
//! files once, when the cgroup set changes (its `NameCache`).

use crate::identity::{Identity, NameCache, NameSources, Role};
use crate::table::{CgroupTable, Label, Labels, Row};
use probes::host::parse::IoLimit;
use probes::host::{
    CgroupLayout, CgroupPath, CgroupStats, Controllers, FileBudget, HeldCgroup, Host, LayoutReader,
    Subtree, WalkCache,
};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Whether a metric only goes up (counter) or goes up and down (gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (a total).
    Counter,
    /// Goes up and down (a level).
    Gauge,
}

impl Kind {
    fn metric_type(self) -> MetricType {
        match self {
            Kind::Counter => MetricType::COUNTER,
            Kind::Gauge => MetricType::GAUGE,
        }
    }
}

/// One per-cgroup metric: its name, help, kind and how to get its value
/// from the stats (`None`: no sample for that cgroup).
pub struct CgroupMetric {
    /// The family's name.
    pub name: &'static str,
    /// Its `# HELP` text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Reads the value from a cgroup's stats.
    pub value: fn(&CgroupStats) -> Option<f64>,
}

fn secs(ns: Option<u64>) -> Option<f64> {
    ns.map(|n| n as f64 / 1e9)
}

fn num(v: Option<u64>) -> Option<f64> {
    v.map(|n| n as f64)
}

fn psi(us: Option<u64>) -> Option<f64> {
    us.map(|n| n as f64 / 1e6)
}

/// Every per-cgroup metric, each with a `cgroup` label.
pub const CGROUP_METRICS: &[CgroupMetric] = &[
    CgroupMetric {
        name: "boxwatch_cgroup_cpu_usage_seconds_total",
        help: "CPU time used by the cgroup (v1 cpuacct.usage, v2 cpu.stat usage_usec).",
        kind: Kind::Counter,
        value: |s| secs(s.cpu_usage_ns),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_cpu_quota_cores",
        help: "CFS bandwidth limit in cores (quota / period); absent when unlimited.",
        kind: Kind::Gauge,
        value: |s| s.cpu_max.and_then(|m| m.cores()),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_cpu_periods_total",
        help: "CFS enforcement periods that elapsed with runnable tasks (cpu.stat nr_periods).",
        kind: Kind::Counter,
        value: |s| num(s.cpu_nr_periods),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_cpu_throttled_periods_total",
        help: "CFS periods in which the cgroup was throttled (cpu.stat nr_throttled).",
        kind: Kind::Counter,
        value: |s| num(s.cpu_nr_throttled),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_cpu_throttled_seconds_total",
        help: "Time the cgroup spent throttled (v1 throttled_time, v2 throttled_usec).",
        kind: Kind::Counter,
        value: |s| secs(s.cpu_throttled_ns),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_usage_bytes",
        help: "Memory charged to the cgroup (v1 memory.usage_in_bytes, v2 memory.current).",
        kind: Kind::Gauge,
        value: |s| num(s.memory_usage_bytes),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_limit_bytes",
        help: "Memory limit (v1 memory.limit_in_bytes, v2 memory.max); absent when unlimited.",
        kind: Kind::Gauge,
        value: |s| num(s.memory_limit.and_then(|l| l.value())),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_peak_bytes",
        help: "Highest memory usage recorded (v1 memory.max_usage_in_bytes, v2 memory.peak).",
        kind: Kind::Gauge,
        value: |s| num(s.memory_peak_bytes),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_limit_hits_total",
        help: "Times usage hit the hard memory limit (v2 memory.events max, v1 memory.failcnt). Absent on v1 where failcnt is 0 next to an OOM kill or a peak at the limit: with memory.memsw.limit_in_bytes set the kernel fails the charges on the memsw counter and counts nothing.",
        kind: Kind::Counter,
        value: |s| num(s.memory_limit_hits()),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_oom_kills_total",
        help: "Processes of the cgroup killed by the OOM killer (v2 memory.events oom_kill, v1 memory.oom_control oom_kill).",
        kind: Kind::Counter,
        value: |s| num(s.oom_kills),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_pids_current",
        help: "Tasks in the cgroup (pids.current).",
        kind: Kind::Gauge,
        value: |s| num(s.pids_current),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_pids_limit",
        help: "Task limit (pids.max); absent when unlimited.",
        kind: Kind::Gauge,
        value: |s| num(s.pids_max.and_then(|l| l.value())),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_working_set_bytes",
        help: "Memory usage less inactive file pages (memory.stat inactive_file; v1 total_inactive_file), as the kubelet and cAdvisor compute it: what the OOM killer weighs against the limit.",
        kind: Kind::Gauge,
        value: |s| num(s.memory_working_set_bytes()),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_swap_bytes",
        help: "Swap used by the cgroup (v2 memory.swap.current; v1 memory.memsw.usage_in_bytes less memory.usage_in_bytes, where swap accounting is on).",
        kind: Kind::Gauge,
        value: |s| num(s.memory_swap_bytes),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_high_bytes",
        help: "v2 memory.high: usage above it is throttled and reclaimed; absent when unlimited.",
        kind: Kind::Gauge,
        value: |s| num(s.memory_high.and_then(|l| l.value())),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_high_events_total",
        help: "Times usage went over memory.high and the cgroup was throttled (v2 memory.events high).",
        kind: Kind::Counter,
        value: |s| num(s.memory_events.and_then(|e| e.high)),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_low_events_total",
        help: "Times the cgroup was reclaimed below its memory.low protection (v2 memory.events low).",
        kind: Kind::Counter,
        value: |s| num(s.memory_events.and_then(|e| e.low)),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_oom_events_total",
        help: "Times the memory limit left the cgroup out of memory (v2 memory.events oom); each may or may not kill.",
        kind: Kind::Counter,
        value: |s| num(s.memory_events.and_then(|e| e.oom)),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_cpu_burst_seconds",
        help: "CFS burst: CPU time a cgroup may bank and spend above its quota in one period (v2 cpu.max.burst, v1 cpu.cfs_burst_us).",
        kind: Kind::Gauge,
        value: |s| s.cpu_burst_us.map(|us| us as f64 / 1e6),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_cpuset_cpus",
        help: "CPUs the cgroup may run on (the size of cpuset.cpus.effective; v1 cpuset.effective_cpus).",
        kind: Kind::Gauge,
        value: |s| s.cpuset_cpus_effective.as_ref().map(|c| c.len() as f64),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_cpu_pressure_some_seconds_total",
        help: "Time some of the cgroup's tasks waited for a CPU (cpu.pressure some total).",
        kind: Kind::Counter,
        value: |s| psi(s.cpu_pressure.and_then(|p| p.some_us)),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_cpu_pressure_full_seconds_total",
        help: "Time all of the cgroup's runnable tasks waited for a CPU at once (cpu.pressure full total).",
        kind: Kind::Counter,
        value: |s| psi(s.cpu_pressure.and_then(|p| p.full_us)),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_pressure_some_seconds_total",
        help: "Time some of the cgroup's tasks stalled on memory: reclaim, swap-in, refaults (memory.pressure some total).",
        kind: Kind::Counter,
        value: |s| psi(s.memory_pressure.and_then(|p| p.some_us)),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_pressure_full_seconds_total",
        help: "Time all of the cgroup's non-idle tasks stalled on memory at once (memory.pressure full total).",
        kind: Kind::Counter,
        value: |s| psi(s.memory_pressure.and_then(|p| p.full_us)),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_io_pressure_some_seconds_total",
        help: "Time some of the cgroup's tasks waited for I/O (io.pressure some total).",
        kind: Kind::Counter,
        value: |s| psi(s.io_pressure.and_then(|p| p.some_us)),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_io_pressure_full_seconds_total",
        help: "Time all of the cgroup's non-idle tasks waited for I/O at once (io.pressure full total).",
        kind: Kind::Counter,
        value: |s| psi(s.io_pressure.and_then(|p| p.full_us)),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_io_read_bytes_total",
        help: "Bytes read from block devices, all devices (v2 io.stat rbytes, v1 blkio.throttle.io_service_bytes_recursive Read).",
        kind: Kind::Counter,
        value: |s| s.io.map(|io| io.read_bytes as f64),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_io_written_bytes_total",
        help: "Bytes written to block devices, all devices (v2 io.stat wbytes, v1 blkio.throttle.io_service_bytes_recursive Write).",
        kind: Kind::Counter,
        value: |s| s.io.map(|io| io.write_bytes as f64),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_io_reads_total",
        help: "Read operations on block devices, all devices (v2 io.stat rios, v1 blkio.throttle.io_serviced_recursive Read).",
        kind: Kind::Counter,
        value: |s| s.io.map(|io| io.reads as f64),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_io_writes_total",
        help: "Write operations on block devices, all devices (v2 io.stat wios, v1 blkio.throttle.io_serviced_recursive Write).",
        kind: Kind::Counter,
        value: |s| s.io.map(|io| io.writes as f64),
    },
];

/// The exporter's own per-scrape metrics (no labels), with `cgroup_info`
/// carrying a `mode` label.
const SELF_METRICS: &[(&str, &str, Kind)] = &[
    (
        "boxwatch_exporter_cgroups",
        "Cgroups exported by the last scrape.",
        Kind::Gauge,
    ),
    (
        "boxwatch_exporter_cgroups_truncated",
        "1 when the last scrape stopped at --max-cgroups.",
        Kind::Gauge,
    ),
    (
        "boxwatch_exporter_collect_duration_seconds",
        "Time the last scrape spent reading cgroupfs.",
        Kind::Gauge,
    ),
    (
        "boxwatch_exporter_cgroup_read_errors_total",
        "Things scrapes had to leave out: a cgroup whose file could not be read or parsed, a directory that could not be listed (with its subtree), the cgroup layout (every cgroup), a reader thread that panicked (its share of cgroups), a cgroup whose escaped name is another's.",
        Kind::Counter,
    ),
    (
        "boxwatch_exporter_cgroup_layout_info",
        "The host's cgroup layout (mode v1, v2 or hybrid); 1 when it could be read.",
        Kind::Gauge,
    ),
    (
        "boxwatch_host_pressure_seconds_total",
        "The host's pressure stall time (/proc/pressure/<resource>): kind some (some tasks stalled) or full (all non-idle tasks at once), resource cpu, memory or io.",
        Kind::Counter,
    ),
    (
        "boxwatch_cgroup_io_limit_bytes_per_second",
        "Bandwidth limit of the cgroup on one block device (v2 io.max rbps/wbps, v1 blkio.throttle.read_bps_device/write_bps_device): device MAJ:MIN, operation read or write; absent when unlimited.",
        Kind::Gauge,
    ),
    (
        "boxwatch_cgroup_io_limit_operations_per_second",
        "I/O operations limit of the cgroup on one block device (v2 io.max riops/wiops, v1 blkio.throttle.read_iops_device/write_iops_device): device MAJ:MIN, operation read or write; absent when unlimited.",
        Kind::Gauge,
    ),
    (
        "boxwatch_container_info",
        "One per container cgroup exported, with who it is: its engine, container id, name (from the engine's files, when on disk), Kubernetes pod name, namespace, pod UID and QoS class.",
        Kind::Gauge,
    ),
];

/// The labels of `boxwatch_container_info` (each sample has those it
/// knows).
const INFO_LABELS: &[&str] = &[
    "cgroup",
    "container_id",
    "engine",
    "name",
    "namespace",
    "pod",
    "pod_uid",
    "qos_class",
];

/// A metric family from its parts.
pub fn family(name: &str, help: &str, kind: Kind, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(name.to_string());
    mf.set_help(help.to_string());
    mf.set_field_type(kind.metric_type());
    mf.set_metric(metrics);
    mf
}

/// One sample with these labels.
pub fn sample(labels: &[(&str, &str)], kind: Kind, value: f64) -> proto::Metric {
    let mut m = proto::Metric::default();
    m.set_label(
        labels
            .iter()
            .map(|(k, v)| {
                let mut lp = proto::LabelPair::default();
                lp.set_name(k.to_string());
                lp.set_value(v.to_string());
                lp
            })
            .collect(),
    );
    match kind {
        Kind::Counter => {
            let mut c = proto::Counter::default();
            c.set_value(value);
            m.set_counter(c);
        }
        Kind::Gauge => {
            let mut g = proto::Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
    }
    m
}

/// A descriptor for the registry's consistency checks.
pub fn desc(name: &str, help: &str, labels: &[&str]) -> Desc {
    Desc::new(
        name.to_string(),
        help.to_string(),
        labels.iter().map(|l| l.to_string()).collect(),
        HashMap::new(),
    )
    .expect("static metric names and help are valid")
}

/// The controllers the exporter reads. The bench measures its read floor
/// on the same set.
pub const READ: Controllers = Controllers {
    cpu: true,
    memory: true,
    pids: true,
    cpuset: true,
    io: true,
};

/// The hierarchies a union walk lists: not cpuset's and blkio's (on v1,
/// two more trees to list at every scrape; engines make their cgroups in
/// every hierarchy, and a cgroup missing from those two just has no
/// cpuset or I/O figures).
pub const WALK: Controllers = Controllers {
    cpuset: false,
    io: false,
    ..READ
};

/// The I/O limits read, each with its cgroup's label index.
type Limits = Vec<(usize, Vec<IoLimit>)>;

/// Trees smaller than this are read on the scraping thread alone.
const PARALLEL_FROM: usize = 256;
/// Reader threads for larger trees (each reads a contiguous share).
const READERS: usize = 4;

/// The most files the reader keeps open for one cgroup (v1: cpuacct.usage;
/// cpu.stat, the quota, period and burst; seven memory files with
/// memory.stat and memsw; two pids files; the cpuset; two blkio
/// statistics files and four blkio throttle limits; from the v2 hierarchy
/// three pressure files, and cpu.stat when v1 has cpu but no cpuacct).
pub const FILES_PER_CGROUP: usize = 25;

/// How the collector finds the cgroups below its roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum WalkMode {
    /// The union of every hierarchy the figures come from (on a v1 host,
    /// cpu, cpuacct, memory and pids are separate trees that may differ).
    #[default]
    Union,
    /// Only the hierarchy serving the cpu controller: a fraction of the
    /// directory reads on v1, blind to cgroups that exist only in other
    /// hierarchies. The same as `union` on a pure v2 host.
    Cpu,
}

/// Which cgroups to export.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// Where cgroupfs and /proc are (the real host, or a fake tree).
    pub host: Host,
    /// Subtrees to export, each walked in full (`/boxwatch` by default).
    pub roots: Vec<CgroupPath>,
    /// At most this many cgroups per scrape, over all roots.
    pub max_cgroups: usize,
    /// Which hierarchies the walk reads.
    pub walk: WalkMode,
    /// Cgroup files kept open between scrapes (a re-read is then one
    /// `pread`; each keeps a 4 KiB page of kernel memory); beyond this,
    /// files are opened at every scrape, relative to their cgroup's parent
    /// directory.
    pub max_open_files: usize,
    /// Where containers' names are read (once per new container).
    pub names: NameSources,
}

/// The cgroups found by one walk, with whether the walk was cut short.
#[derive(Debug, Default)]
struct Walk {
    /// Sorted, each once.
    cgroups: Vec<CgroupPath>,
    truncated: bool,
}

/// The cgroups of the last scrape, kept for the next one.
#[derive(Default)]
struct Held {
    /// The layout the files were opened in.
    layout: Option<CgroupLayout>,
    /// Sorted by path, with their files held open.
    cgroups: Vec<HeldCgroup>,
    /// Their labels, in the same order.
    labels: Option<Labels>,
    /// `boxwatch_container_info`'s samples for those labels.
    info: Arc<Vec<proto::Metric>>,
    /// The containers' names, read once each.
    names: NameCache,
    /// The directories of each hierarchy walked (in walk order), held
    /// open for the next walk.
    walks: Vec<WalkCache>,
}

impl Held {
    /// Follows the cgroup set to `cgroups` (sorted): cgroups still there
    /// keep their open files, new ones start with none, gone ones close
    /// theirs. The labels are made again only when the set changed.
    fn follow(&mut self, cgroups: Vec<CgroupPath>, budget: &FileBudget) {
        let before = std::mem::take(&mut self.cgroups);
        let mut changed = before.len() != cgroups.len();
        let mut before = before.into_iter().peekable();
        let mut now = Vec::with_capacity(cgroups.len());
        for cg in cgroups {
            while before.next_if(|h| h.cgroup() < &cg).is_some() {
                changed = true;
            }
            match before.next_if(|h| h.cgroup() == &cg) {
                Some(h) => now.push(h),
                None => {
                    changed = true;
                    now.push(HeldCgroup::new(cg, budget));
                }
            }
        }
        self.cgroups = now;
        if changed || self.labels.is_none() {
            self.relabel();
        }
    }

    /// Makes the labels (and the info samples) of the cgroups held: each
    /// path's identity, with the names of containers not seen before read
    /// from disk.
    fn relabel(&mut self) {
        let mut labels = Vec::with_capacity(self.cgroups.len());
        let mut info = Vec::new();
        let mut live = std::collections::HashSet::new();
        for h in &self.cgroups {
            let path = h.cgroup().as_str();
            let Some(id) = Identity::of(path) else {
                labels.push(Label::new(path));
                continue;
            };
            let names = match (id.role, id.engine, &id.container_id) {
                (Role::Container, Some(engine), Some(cid)) => {
                    live.insert((engine, cid.clone()));
                    Some(self.names.names(engine, cid).clone())
                }
                _ => None,
            };
            let extra = id.labels(names.as_ref());
            if id.role == Role::Container && id.is_top {
                let mut pairs: Vec<(&str, &str)> = vec![("cgroup", path)];
                pairs.extend(
                    extra
                        .iter()
                        .filter(|(k, _)| *k != "role")
                        .map(|(k, v)| (*k, v.as_str())),
                );
                info.push(sample(&pairs, Kind::Gauge, 1.0));
            }
            labels.push(Label::with(path, extra));
        }
        self.names
            .retain(|e, id| live.contains(&(e, id.to_string())));
        self.labels = Some(labels.into());
        self.info = Arc::new(info);
    }
}

/// What the last read found, for the collector's own metrics.
#[derive(Debug, Clone, Default)]
struct LastRead {
    exported: usize,
    truncated: bool,
    seconds: f64,
    /// The layout mode, when the layout could be read.
    mode: Option<String>,
    /// `boxwatch_container_info`'s samples.
    info: Arc<Vec<proto::Metric>>,
    /// The I/O limits' samples: bytes, operations per second.
    io_limits: [Vec<proto::Metric>; 2],
}

/// The samples of the I/O limit families (bytes, operations per second)
/// of the cgroups read: one per device, operation and limit set, with the
/// cgroup's labels.
fn io_limit_samples(labels: &[Label], limits: &[(usize, Vec<IoLimit>)]) -> [Vec<proto::Metric>; 2] {
    let mut out: [Vec<proto::Metric>; 2] = Default::default();
    for (i, devices) in limits {
        let Some(label) = labels.get(*i) else {
            continue;
        };
        for l in devices {
            let device = l.device();
            for (family, op, v) in [
                (0, "read", l.read_bps),
                (0, "write", l.write_bps),
                (1, "read", l.read_iops),
                (1, "write", l.write_iops),
            ] {
                let Some(v) = v else { continue };
                let mut pairs = label.pairs();
                pairs.push(("device", &device));
                pairs.push(("operation", op));
                pairs.sort_by_key(|(k, _)| *k);
                out[family].push(sample(&pairs, Kind::Gauge, v as f64));
            }
        }
    }
    out
}

/// Reads the configured cgroup subtrees at every scrape.
pub struct CgroupCollector {
    config: CollectorConfig,
    descs: Vec<Desc>,
    read_errors: AtomicU64,
    /// Control files held open. With `dirs`, within
    /// `config.max_open_files`: the files first.
    budget: FileBudget,
    /// Directories held open for the walk, with what the files leave.
    dirs: FileBudget,
    held: Mutex<Held>,
    last: Mutex<LastRead>,
}

impl CgroupCollector {
    /// A collector for `config`. Nothing is read until the first scrape.
    pub fn new(config: CollectorConfig) -> Self {
        let mut descs: Vec<Desc> = CGROUP_METRICS
            .iter()
            .map(|m| desc(m.name, m.help, &["cgroup"]))
            .collect();
        for (name, help, _) in SELF_METRICS {
            let labels: &[&str] = if *name == "boxwatch_container_info" {
                INFO_LABELS
            } else if name.starts_with("boxwatch_cgroup_io_limit_") {
                &["cgroup", "device", "operation"]
            } else if *name == "boxwatch_host_pressure_seconds_total" {
                &["kind", "resource"]
            } else if name.ends_with("_info") {
                &["mode"]
            } else {
                &[]
            };
            descs.push(desc(name, help, labels));
        }
        CgroupCollector {
            budget: FileBudget::new(config.max_open_files),
            dirs: FileBudget::new(0),
            descs,
            read_errors: AtomicU64::new(0),
            held: Mutex::new(Held {
                names: NameCache::new(config.names.clone()),
                ..Held::default()
            }),
            last: Mutex::new(LastRead::default()),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CollectorConfig {
        &self.config
    }

    /// Cgroup files (and directories) held open now.
    pub fn open_files(&self) -> usize {
        self.budget.open_files() + self.dirs.open_files()
    }

    /// Walks the roots and reads every cgroup now: one row per cgroup
    /// read, in label order. Also sets what [`Self::self_families`]
    /// reports.
    pub fn read(&self) -> CgroupTable {
        let started = Instant::now();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let layout = match self.config.host.layout() {
            Ok(layout) => layout,
            Err(e) => {
                tracing::warn!("cgroup layout: {}", probes::error::chain(&e));
                self.error(1);
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = LastRead {
                    seconds: started.elapsed().as_secs_f64(),
                    ..LastRead::default()
                };
                return CgroupTable::empty();
            }
        };
        if held.layout.as_ref() != Some(&layout) {
            // Files are filed by hierarchy position: a new layout starts
            // afresh.
            held.cgroups.clear();
            held.walks.clear();
            held.layout = Some(layout.clone());
        }
        // Directories may be held with what the files of the cgroups known
        // (none on a first scrape) leave of the budget...
        let total = self.config.max_open_files;
        let known = held.cgroups.len();
        let room = |cgroups: usize| match cgroups {
            0 => 0,
            n => total.saturating_sub(n.saturating_mul(FILES_PER_CGROUP)),
        };
        self.dirs.set_max(room(known));
        let walk = self.walk(&layout, known >= PARALLEL_FROM, &mut held.walks);
        // ... and, once the walk counted them, of the cgroups found.
        let room = room(walk.cgroups.len());
        for cache in held.walks.iter_mut() {
            let over = self.dirs.open_files().saturating_sub(room);
            cache.shrink_to(cache.len().saturating_sub(over));
        }
        self.dirs.set_max(room);
        self.budget
            .set_max(total.saturating_sub(self.dirs.open_files()));
        held.follow(walk.cgroups, &self.budget);
        let (rows, limits) = self.read_rows(&layout, &mut held.cgroups);
        let labels = held.labels.clone().expect("set by follow");
        let io_limits = io_limit_samples(&labels, &limits);
        let table = CgroupTable::new(labels, rows);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = LastRead {
            exported: table.len(),
            truncated: walk.truncated,
            seconds: started.elapsed().as_secs_f64(),
            mode: Some(format!("{:?}", layout.mode()).to_lowercase()),
            info: held.info.clone(),
            io_limits,
        };
        table
    }

    /// Walks every root, in each hierarchy through its cache in `caches`
    /// (made as needed). `large`: the last scrape found a large tree, so
    /// the hierarchies of a union walk are walked on parallel threads (a
    /// v1 host has four).
    fn walk(&self, layout: &CgroupLayout, large: bool, caches: &mut Vec<WalkCache>) -> Walk {
        let mut walk = Walk::default();
        let hierarchies = match (self.config.walk, layout.hierarchy_for("cpu")) {
            (WalkMode::Cpu, Some(h)) => vec![h],
            _ => layout.hierarchies_of(WALK),
        };
        caches.resize_with(hierarchies.len(), || WalkCache::new(&self.dirs));
        // One root in several hierarchies would share their caches: a
        // cache holds one root's directories (the others walk by name).
        let cached = self.config.roots.len() == 1;
        let parallel = large && hierarchies.len() > 1;
        for root in &self.config.roots {
            let left = self.config.max_cgroups.saturating_sub(walk.cgroups.len());
            let one = |h: &&probes::host::Hierarchy, cache: &mut WalkCache| {
                if cached {
                    layout.list_subtree_cached(h, root, left, cache)
                } else {
                    layout.list_subtree_in(h, root, left)
                }
            };
            let subs: Vec<_> = if parallel {
                std::thread::scope(|scope| {
                    let walks: Vec<_> = hierarchies
                        .iter()
                        .zip(caches.iter_mut())
                        .map(|(h, cache)| scope.spawn(move || one(h, cache)))
                        .collect();
                    walks
                        .into_iter()
                        .map(|w| {
                            w.join().unwrap_or_else(|_| {
                                tracing::error!("a cgroup walker thread panicked");
                                Ok(Subtree::default())
                            })
                        })
                        .collect()
                })
            } else {
                hierarchies
                    .iter()
                    .zip(caches.iter_mut())
                    .map(|(h, cache)| one(h, cache))
                    .collect()
            };
            for sub in subs {
                match sub {
                    Ok(sub) => {
                        walk.truncated |= sub.truncated;
                        let found = std::mem::take(&mut walk.cgroups);
                        walk.cgroups = merge_sorted(found, sub.cgroups);
                        for dir in &sub.unreadable {
                            tracing::warn!("walking {root}: skipped what lies below {dir}");
                        }
                        self.error(sub.unreadable.len());
                    }
                    Err(e) => {
                        tracing::warn!("walking {root}: {}", probes::error::chain(&e));
                        self.error(1);
                    }
                }
            }
        }
        // Overlapping roots (or hierarchies walked apart) can push the
        // union past the limit.
        if walk.cgroups.len() > self.config.max_cgroups {
            walk.cgroups.truncate(self.config.max_cgroups);
            walk.truncated = true;
        }
        self.drop_ambiguous(&mut walk);
        walk
    }

    /// Counts `n` problems in the read-errors counter.
    fn error(&self, n: usize) {
        if n > 0 {
            self.read_errors.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// A cgroup whose name is not UTF-8 is labelled with its escaped text
    /// (`\xNN`), which a UTF-8 sibling could spell out literally; two
    /// series with one label would be one. The UTF-8 cgroup keeps the
    /// label; the other is left out and counted as an error.
    fn drop_ambiguous(&self, walk: &mut Walk) {
        if walk.cgroups.iter().all(CgroupPath::is_utf8) {
            return;
        }
        let ambiguous: BTreeSet<CgroupPath> = walk
            .cgroups
            .iter()
            .filter(|cg| !cg.is_utf8())
            .filter(|cg| {
                CgroupPath::new(cg.as_str())
                    .is_ok_and(|twin| walk.cgroups.binary_search(&twin).is_ok())
            })
            .cloned()
            .collect();
        for cg in &ambiguous {
            tracing::warn!(
                "cgroup {cg}: its name is not UTF-8 and its escaped label is the name of another cgroup; left out"
            );
        }
        walk.cgroups.retain(|cg| !ambiguous.contains(cg));
        self.error(ambiguous.len());
    }

    /// Reads every cgroup of `cgroups` (sorted): one row per cgroup
    /// read, in their order. Large trees are split into contiguous shares
    /// read on parallel threads (reading cgroupfs is all system calls,
    /// which run in parallel); a reader thread that panics loses its share
    /// (counted as one error), not the scrape.
    fn read_rows(&self, layout: &CgroupLayout, cgroups: &mut [HeldCgroup]) -> (Vec<Row>, Limits) {
        if cgroups.len() < PARALLEL_FROM {
            return self.read_share(layout, 0, cgroups);
        }
        let n = cgroups.len();
        let share = n.div_ceil(READERS);
        std::thread::scope(|scope| {
            let handles: Vec<_> = cgroups
                .chunks_mut(share)
                .enumerate()
                .map(|(i, part)| scope.spawn(move || self.read_share(layout, i * share, part)))
                .collect();
            let mut rows = Vec::with_capacity(n);
            let mut limits = Vec::new();
            for h in handles {
                match h.join() {
                    Ok((mut part, mut part_limits)) => {
                        rows.append(&mut part);
                        limits.append(&mut part_limits);
                    }
                    Err(_) => {
                        tracing::error!("a cgroup reader thread panicked");
                        self.error(1);
                    }
                }
            }
            (rows, limits)
        })
    }

    /// Reads `cgroups`, the first of which has label `first`.
    fn read_share(
        &self,
        layout: &CgroupLayout,
        first: usize,
        cgroups: &mut [HeldCgroup],
    ) -> (Vec<Row>, Limits) {
        let mut reader = LayoutReader::new(layout, READ);
        let mut rows = Vec::with_capacity(cgroups.len());
        let mut limits = Vec::new();
        for (i, held) in cgroups.iter_mut().enumerate() {
            match reader.stats(held) {
                Ok(mut stats) => {
                    rows.push(Row::new(first + i, &stats));
                    if let Some(l) = stats.io_limits.take().filter(|l| !l.is_empty()) {
                        limits.push((first + i, l));
                    }
                }
                // Removed between the walk and the read: not an error.
                Err(probes::Error::CgroupNotFound(_)) => {}
                Err(e) => {
                    tracing::warn!("reading cgroup {}: {e}", held.cgroup());
                    self.error(1);
                }
            }
        }
        (rows, limits)
    }

    /// The collector's own families (cgroups exported, truncation, read
    /// time, errors, layout), from the last [`Self::read`].
    pub fn self_families(&self) -> Vec<MetricFamily> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let g = |v: f64| vec![sample(&[], Kind::Gauge, v)];
        let errors = self.read_errors.load(Ordering::Relaxed) as f64;
        let layout_info = match &last.mode {
            Some(mode) => vec![sample(&[("mode", mode)], Kind::Gauge, 1.0)],
            None => Vec::new(),
        };
        vec![
            self.self_family(0, g(last.exported as f64)),
            self.self_family(1, g(f64::from(u8::from(last.truncated)))),
            self.self_family(2, g(last.seconds)),
            self.self_family(3, vec![sample(&[], Kind::Counter, errors)]),
            self.self_family(4, layout_info),
            self.self_family(5, self.host_pressure()),
            self.self_family(6, last.io_limits[0].clone()),
            self.self_family(7, last.io_limits[1].clone()),
            self.self_family(8, last.info.to_vec()),
        ]
    }

    /// The host's /proc/pressure figures (none where the kernel has no
    /// PSI, or it is off: `psi=0`).
    fn host_pressure(&self) -> Vec<proto::Metric> {
        let mut out = Vec::new();
        for resource in ["cpu", "io", "memory"] {
            let path = self
                .config
                .host
                .resolve(format!("/proc/pressure/{resource}"));
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            match probes::host::parse::parse_pressure(&text) {
                Ok(p) => {
                    for (kind, us) in [("full", p.full_us), ("some", p.some_us)] {
                        if let Some(us) = us {
                            let labels = [("kind", kind), ("resource", resource)];
                            out.push(sample(&labels, Kind::Counter, us as f64 / 1e6));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("{}: {e}", path.display());
                    self.error(1);
                }
            }
        }
        out
    }

    fn self_family(&self, index: usize, metrics: Vec<proto::Metric>) -> MetricFamily {
        let (name, help, kind) = SELF_METRICS[index];
        family(name, help, kind, metrics)
    }
}

/// The union of two sorted lists without duplicates, sorted.
fn merge_sorted(a: Vec<CgroupPath>, b: Vec<CgroupPath>) -> Vec<CgroupPath> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x < y => a.next(),
            (Some(x), Some(y)) if x > y => b.next(),
            (Some(_), Some(_)) => {
                b.next();
                a.next()
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

/// The collector's own metrics, for a registry whose per-cgroup families
/// come from [`CgroupCollector::read`] (the exporter's): describes every
/// family the collector makes, collects only its own ones.
pub struct CgroupSelfMetrics(pub Arc<CgroupCollector>);

impl Collector for CgroupSelfMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.self_families()
    }
}

impl Collector for CgroupCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    /// Reads the cgroups now: their families (as objects) and the
    /// collector's own.
    fn collect(&self) -> Vec<MetricFamily> {
        let mut out = self.read().families();
        out.extend(self.self_families());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn merged_lists_are_the_sorted_union(
            a in proptest::collection::btree_set("/[a-c]{1,3}", 0..12),
            b in proptest::collection::btree_set("/[a-c]{1,3}", 0..12),
        ) {
            let paths = |s: &BTreeSet<String>| -> Vec<CgroupPath> {
                s.iter().map(|p| CgroupPath::new(p).unwrap()).collect()
            };
            let want = paths(&a.union(&b).cloned().collect());
            prop_assert_eq!(merge_sorted(paths(&a), paths(&b)), want);
        }
    }
}
