//! The cgroup collector: reads the cgroup tree at scrape time and turns
//! each cgroup's [`CgroupStats`] into metrics labelled with its path.

use probes::host::{CgroupLayout, CgroupPath, CgroupStats, Controllers, Host, StatsCache};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Whether a metric only goes up (counter) or goes up and down (gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
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
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub value: fn(&CgroupStats) -> Option<f64>,
}

fn secs(ns: Option<u64>) -> Option<f64> {
    ns.map(|n| n as f64 / 1e9)
}

fn num(v: Option<u64>) -> Option<f64> {
    v.map(|n| n as f64)
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
        help: "Times usage hit the memory limit (v1 memory.failcnt, v2 memory.events max).",
        kind: Kind::Counter,
        value: |s| num(s.memory_failcnt.or(s.memory_events.and_then(|e| e.max))),
    },
    CgroupMetric {
        name: "boxwatch_cgroup_memory_oom_kills_total",
        help: "Processes of the cgroup killed by the OOM killer.",
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

/// The controllers the exporter reads (not cpuset: it would cost a walk
/// of one more v1 hierarchy per scrape for a figure no panel uses).
const READ: Controllers = Controllers {
    cpu: true,
    memory: true,
    pids: true,
    cpuset: false,
};

/// Trees smaller than this are read on the scraping thread alone.
const PARALLEL_FROM: usize = 256;
/// Open-file caches, and reader threads for large trees.
const SHARDS: usize = 4;

/// The cache shard of a cgroup.
fn shard_of(cg: &CgroupPath) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    cg.hash(&mut h);
    (h.finish() % SHARDS as u64) as usize
}

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
    /// `pread`); beyond this, files are opened per scrape.
    pub max_open_files: usize,
}

/// The cgroups found by one walk, with whether the walk was cut short.
#[derive(Debug, Default)]
struct Walk {
    cgroups: BTreeSet<CgroupPath>,
    truncated: bool,
}

/// Reads the configured cgroup subtrees at every scrape.
pub struct CgroupCollector {
    config: CollectorConfig,
    descs: Vec<Desc>,
    read_errors: AtomicU64,
    /// Open-file caches, one per reader thread; a cgroup always goes to
    /// the shard its path hashes to, so its files stay cached.
    shards: Vec<Mutex<StatsCache>>,
}

impl CgroupCollector {
    /// A collector for `config`. Nothing is read until the first scrape.
    pub fn new(config: CollectorConfig) -> Self {
        let config_files = config.max_open_files;
        let mut descs: Vec<Desc> = CGROUP_METRICS
            .iter()
            .map(|m| desc(m.name, m.help, &["cgroup"]))
            .collect();
        for (name, help, _) in SELF_METRICS {
            let labels: &[&str] = if name.ends_with("_info") {
                &["mode"]
            } else {
                &[]
            };
            descs.push(desc(name, help, labels));
        }
        CgroupCollector {
            config,
            descs,
            read_errors: AtomicU64::new(0),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(StatsCache::new(READ, config_files / SHARDS)))
                .collect(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CollectorConfig {
        &self.config
    }

    fn walk(&self, layout: &CgroupLayout) -> Walk {
        let mut walk = Walk::default();
        for root in &self.config.roots {
            let left = self.config.max_cgroups.saturating_sub(walk.cgroups.len());
            let sub = match (self.config.walk, layout.hierarchy_for("cpu")) {
                (WalkMode::Cpu, Some(h)) => layout.list_subtree_in(h, root, left),
                _ => layout.list_subtree_of(root, left, READ),
            };
            match sub {
                Ok(sub) => {
                    walk.truncated |= sub.truncated;
                    walk.cgroups.extend(sub.cgroups);
                    for dir in &sub.unreadable {
                        tracing::warn!("walking {root}: skipped what lies below {dir}");
                    }
                    self.error(sub.unreadable.len());
                }
                Err(e) => {
                    tracing::warn!("walking {root}: {e}");
                    self.error(1);
                }
            }
        }
        // Overlapping roots can push the union past the limit.
        while walk.cgroups.len() > self.config.max_cgroups {
            walk.cgroups.pop_last();
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
        let ambiguous: Vec<CgroupPath> = walk
            .cgroups
            .iter()
            .filter(|cg| !cg.is_utf8())
            .filter(|cg| {
                CgroupPath::new(cg.as_str()).is_ok_and(|twin| walk.cgroups.contains(&twin))
            })
            .cloned()
            .collect();
        for cg in &ambiguous {
            tracing::warn!(
                "cgroup {cg}: its name is not UTF-8 and its escaped label is the name of another cgroup; left out"
            );
            walk.cgroups.remove(cg);
        }
        self.error(ambiguous.len());
    }

    /// Reads every cgroup and fills one sample vector per metric. The
    /// cgroups are split over [`SHARDS`] open-file caches by path hash;
    /// large trees read the shards on parallel threads (reading cgroupfs
    /// is all system calls, which run in parallel). The registry sorts the
    /// samples afterwards.
    fn cgroup_samples(
        &self,
        layout: &CgroupLayout,
        walk: &Walk,
    ) -> (Vec<Vec<proto::Metric>>, usize) {
        let mut parts: Vec<Vec<&CgroupPath>> = vec![Vec::new(); SHARDS];
        for cg in &walk.cgroups {
            parts[shard_of(cg)].push(cg);
        }
        let results: Vec<_> = if walk.cgroups.len() < PARALLEL_FROM {
            parts
                .iter()
                .enumerate()
                .map(|(i, part)| Ok(self.read_shard(layout, i, part)))
                .collect()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = parts
                    .iter()
                    .enumerate()
                    .map(|(i, part)| scope.spawn(move || self.read_shard(layout, i, part)))
                    .collect();
                handles.into_iter().map(|h| h.join()).collect()
            })
        };
        let mut per_metric: Vec<Vec<proto::Metric>> = vec![Vec::new(); CGROUP_METRICS.len()];
        let mut exported = 0;
        for part in results {
            match part {
                Ok((samples, n)) => {
                    for (all, mut some) in per_metric.iter_mut().zip(samples) {
                        all.append(&mut some);
                    }
                    exported += n;
                }
                Err(_) => {
                    tracing::error!("a cgroup reader thread panicked");
                    self.error(1);
                }
            }
        }
        (per_metric, exported)
    }

    /// Reads `cgroups` through shard `shard`'s cache, then closes the
    /// files of cgroups it did not read: one sample vector per metric, and
    /// how many cgroups were exported.
    fn read_shard(
        &self,
        layout: &CgroupLayout,
        shard: usize,
        cgroups: &[&CgroupPath],
    ) -> (Vec<Vec<proto::Metric>>, usize) {
        let mut cache = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        let mut per_metric: Vec<Vec<proto::Metric>> = vec![Vec::new(); CGROUP_METRICS.len()];
        let mut exported = 0;
        for cg in cgroups {
            let stats = match cache.stats(layout, cg) {
                Ok(s) => s,
                // Removed between the walk and the read: not an error.
                Err(probes::Error::CgroupNotFound(_)) => continue,
                Err(e) => {
                    tracing::warn!("reading cgroup {cg}: {e}");
                    self.error(1);
                    continue;
                }
            };
            exported += 1;
            for (metric, out) in CGROUP_METRICS.iter().zip(per_metric.iter_mut()) {
                if let Some(v) = (metric.value)(&stats).filter(|v| v.is_finite()) {
                    out.push(sample(&[("cgroup", cg.as_str())], metric.kind, v));
                }
            }
        }
        cache.sweep();
        (per_metric, exported)
    }

    fn self_family(&self, index: usize, metrics: Vec<proto::Metric>) -> MetricFamily {
        let (name, help, kind) = SELF_METRICS[index];
        family(name, help, kind, metrics)
    }
}

impl Collector for CgroupCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let started = Instant::now();
        let mut out = Vec::new();
        let mut exported = 0;
        let mut truncated = false;
        let mut layout_info = Vec::new();
        match self.config.host.layout() {
            Ok(layout) => {
                let mode = format!("{:?}", layout.mode()).to_lowercase();
                layout_info.push(sample(&[("mode", &mode)], Kind::Gauge, 1.0));
                let walk = self.walk(&layout);
                truncated = walk.truncated;
                let (per_metric, n) = self.cgroup_samples(&layout, &walk);
                exported = n;
                for (m, samples) in CGROUP_METRICS.iter().zip(per_metric) {
                    out.push(family(m.name, m.help, m.kind, samples));
                }
            }
            Err(e) => {
                tracing::warn!("cgroup layout: {e}");
                self.error(1);
            }
        }
        let g = |v: f64| vec![sample(&[], Kind::Gauge, v)];
        out.push(self.self_family(0, g(exported as f64)));
        out.push(self.self_family(1, g(f64::from(u8::from(truncated)))));
        out.push(self.self_family(2, g(started.elapsed().as_secs_f64())));
        let errors = self.read_errors.load(Ordering::Relaxed) as f64;
        out.push(self.self_family(3, vec![sample(&[], Kind::Counter, errors)]));
        out.push(self.self_family(4, layout_info));
        out
    }
}
