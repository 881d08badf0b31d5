//! User-facing quantities: memory sizes ("64M"), CPU quotas ("0.2" cores) and
//! CPU lists ("0-1,3"). Each parser refuses malformed or out-of-range input
//! with an [`Error::InvalidValue`] that names the value and the accepted form.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Smallest memory limit boxwatch accepts: below this a container cannot even exec.
pub(crate) const MIN_MEMORY_BYTES: u64 = 1 << 20;
/// CFS bandwidth period bounds accepted by the kernel (1 ms .. 1 s), in microseconds.
pub(crate) const MIN_PERIOD_US: u64 = 1_000;
pub(crate) const MAX_PERIOD_US: u64 = 1_000_000;
/// Smallest CFS quota the kernel accepts, in microseconds.
pub(crate) const MIN_QUOTA_US: u64 = 1_000;
/// Default CFS period, as used by Docker and Kubernetes.
pub(crate) const DEFAULT_PERIOD_US: u64 = 100_000;
/// The kernel's PID_MAX_LIMIT on 64-bit: no pids.max above it is accepted.
pub(crate) const MAX_PIDS: u64 = 4_194_304;

fn invalid(what: &'static str, value: &str, expected: &str) -> Error {
    Error::InvalidValue {
        what,
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// A memory size in bytes, parsed from "64M", "1.5G", "512KiB", "4096".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "SizeRepr", into = "u64")]
pub struct MemoryBytes(u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Number(u64),
    Text(String),
}

impl TryFrom<SizeRepr> for MemoryBytes {
    type Error = Error;
    fn try_from(r: SizeRepr) -> Result<Self, Error> {
        match r {
            SizeRepr::Number(n) => MemoryBytes::new(n),
            SizeRepr::Text(s) => s.parse(),
        }
    }
}

impl From<MemoryBytes> for u64 {
    fn from(m: MemoryBytes) -> u64 {
        m.0
    }
}

const MEMORY_FORM: &str =
    "a positive size such as 64M, 1.5G, 512KiB or a byte count, at least 1 MiB (suffixes K, M, G, T are powers of 1024)";

impl MemoryBytes {
    /// `bytes`, refused below `MIN_MEMORY_BYTES` (1 MiB).
    pub fn new(bytes: u64) -> Result<Self, Error> {
        if bytes < MIN_MEMORY_BYTES {
            return Err(invalid("memory limit", &bytes.to_string(), MEMORY_FORM));
        }
        Ok(MemoryBytes(bytes))
    }
    /// The limit in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for MemoryBytes {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let err = || invalid("memory limit", s, MEMORY_FORM);
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, suffix) = t.split_at(split);
        if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
            return Err(err());
        }
        let shift = match suffix.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            _ => return Err(err()),
        };
        let bytes = if num.contains('.') {
            let v: f64 = num.parse().map_err(|_| err())?;
            let b = v * (1u64 << shift) as f64;
            if !b.is_finite() || b >= u64::MAX as f64 {
                return Err(err());
            }
            b.round() as u64
        } else {
            let v: u64 = num.parse().map_err(|_| err())?;
            v.checked_mul(1u64 << shift).ok_or_else(err)?
        };
        if bytes < MIN_MEMORY_BYTES {
            return Err(err());
        }
        Ok(MemoryBytes(bytes))
    }
}

impl fmt::Display for MemoryBytes {
    /// The largest unit that divides the value exactly: 64 MiB, 1536 KiB.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if self.0.is_multiple_of(1u64 << shift) {
                return write!(f, "{} {unit}", self.0 >> shift);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

/// A CFS bandwidth limit: `cores` CPUs' worth of time per `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuQuota {
    quota_us: u64,
    period_us: u64,
}

const CPU_FORM: &str = "a positive number of CPUs such as 0.2, 0.5 or 1.5 (at least 1 ms of quota per period, at most 1024 CPUs)";

impl CpuQuota {
    /// `cores` of CPU time per `period_us` (1000..=1_000_000).
    pub fn from_cores(cores: f64, period_us: u64) -> Result<Self, Error> {
        if !(MIN_PERIOD_US..=MAX_PERIOD_US).contains(&period_us) {
            return Err(invalid(
                "cpu period",
                &period_us.to_string(),
                "a period between 1000 and 1000000 microseconds",
            ));
        }
        if !cores.is_finite() || cores <= 0.0 || cores > 1024.0 {
            return Err(invalid("cpu quota", &cores.to_string(), CPU_FORM));
        }
        let quota_us = (cores * period_us as f64).round() as u64;
        if quota_us < MIN_QUOTA_US {
            return Err(invalid("cpu quota", &cores.to_string(), CPU_FORM));
        }
        Ok(CpuQuota {
            quota_us,
            period_us,
        })
    }
    /// The quota per period, in microseconds.
    pub fn quota_us(self) -> u64 {
        self.quota_us
    }
    /// The period, in microseconds.
    pub fn period_us(self) -> u64 {
        self.period_us
    }
    /// The limit as a number of CPUs (0.2 = 20% of one CPU).
    pub fn cores(self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }
}

impl FromStr for CpuQuota {
    type Err = Error;
    /// "0.2" (cores, default period) or "20000/100000" (quota/period in µs).
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        if let Some((q, p)) = t.split_once('/') {
            let err = || {
                invalid(
                    "cpu quota",
                    s,
                    "QUOTA/PERIOD in microseconds, such as 20000/100000",
                )
            };
            let q: u64 = q.trim().parse().map_err(|_| err())?;
            let p: u64 = p.trim().parse().map_err(|_| err())?;
            if !(MIN_PERIOD_US..=MAX_PERIOD_US).contains(&p) {
                return Err(invalid(
                    "cpu quota",
                    s,
                    &format!(
                        "a period of {MIN_PERIOD_US} to {MAX_PERIOD_US} µs (1 ms to 1 s); {p} µs is too {}",
                        if p < MIN_PERIOD_US { "short" } else { "long" }
                    ),
                ));
            }
            if q < MIN_QUOTA_US {
                return Err(invalid(
                    "cpu quota",
                    s,
                    &format!(
                        "a quota of at least {MIN_QUOTA_US} µs per period; {q} µs is too small"
                    ),
                ));
            }
            return Ok(CpuQuota {
                quota_us: q,
                period_us: p,
            });
        }
        if t.starts_with('-') && t[1..].parse::<f64>().is_ok() {
            return Err(invalid(
                "cpu quota",
                s,
                "a positive number of CPUs: a CPU limit cannot be negative (0.2 is 20% of one CPU; leave --cpus out for no limit)",
            ));
        }
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(invalid("cpu quota", s, CPU_FORM));
        }
        let cores: f64 = t.parse().map_err(|_| invalid("cpu quota", s, CPU_FORM))?;
        CpuQuota::from_cores(cores, DEFAULT_PERIOD_US)
            .map_err(|_| invalid("cpu quota", s, CPU_FORM))
    }
}

/// The kernel's KTIME_SEC_MAX: the largest time it represents, in seconds.
const KTIME_SEC_MAX: i64 = i64::MAX / 1_000_000_000;

/// Checks a time namespace offset of `secs` for `clock`, which reads `now`
/// seconds: the kernel refuses (ERANGE) an offset that would put the clock
/// below 0 or above KTIME_SEC_MAX / 2 (about 146 years).
pub fn check_time_offset(clock: &'static str, secs: i64, now: i64) -> Result<i64, Error> {
    let (lo, hi) = (-now, KTIME_SEC_MAX / 2 - now);
    if (lo..=hi).contains(&secs) {
        return Ok(secs);
    }
    Err(Error::InvalidValue {
        what: "time offset",
        value: secs.to_string(),
        expected: format!(
            "{lo} to {hi} seconds: {clock} reads {now} s and the kernel keeps it between 0 and {} s",
            KTIME_SEC_MAX / 2
        ),
    })
}

/// A set of CPU numbers, parsed from the kernel's list format "0-1,3".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CpuSet(Vec<u32>);

const CPUSET_FORM: &str = "a CPU list such as 0, 0-1 or 0,2-3";

impl CpuSet {
    /// The CPUs, in ascending order.
    pub fn cpus(&self) -> &[u32] {
        &self.0
    }
    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: u32) -> bool {
        self.0.binary_search(&cpu).is_ok()
    }
}

const PIDS_FORM: &str =
    "a positive number of processes such as 64, at most 4194304 (the kernel's PID_MAX_LIMIT)";

/// Checks a pids limit: 1 ..= [`MAX_PIDS`].
pub(crate) fn check_pids(n: u64) -> Result<u64, Error> {
    if (1..=MAX_PIDS).contains(&n) {
        Ok(n)
    } else {
        Err(invalid("pids limit", &n.to_string(), PIDS_FORM))
    }
}

/// Parses a pids limit ("64").
pub fn parse_pids(s: &str) -> Result<u64, Error> {
    let n = s
        .trim()
        .parse::<u64>()
        .map_err(|_| invalid("pids limit", s, PIDS_FORM))?;
    check_pids(n).map_err(|_| invalid("pids limit", s, PIDS_FORM))
}

impl FromStr for CpuSet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let err = || invalid("cpuset", s, CPUSET_FORM);
        let mut cpus = Vec::new();
        for part in s.trim().split(',') {
            let part = part.trim();
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let lo: u32 = lo.parse().map_err(|_| err())?;
            let hi: u32 = hi.parse().map_err(|_| err())?;
            if lo > hi || hi >= 8192 {
                return Err(err());
            }
            cpus.extend(lo..=hi);
        }
        cpus.sort_unstable();
        cpus.dedup();
        if cpus.is_empty() {
            return Err(err());
        }
        Ok(CpuSet(cpus))
    }
}

impl TryFrom<String> for CpuSet {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<CpuSet> for String {
    fn from(c: CpuSet) -> String {
        c.to_string()
    }
}

impl fmt::Display for CpuSet {
    /// The kernel's list format, ranges folded: "0-2,5".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            parts.push(if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            });
            i += 1;
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn memory_sizes_parse_with_binary_suffixes() {
        assert_eq!("64M".parse::<MemoryBytes>().unwrap().bytes(), 64 << 20);
        assert_eq!("64MiB".parse::<MemoryBytes>().unwrap().bytes(), 64 << 20);
        assert_eq!("1.5G".parse::<MemoryBytes>().unwrap().bytes(), 3 << 29);
        assert_eq!("2048k".parse::<MemoryBytes>().unwrap().bytes(), 2 << 20);
        assert_eq!("1048576".parse::<MemoryBytes>().unwrap().bytes(), 1 << 20);
    }

    #[test]
    fn malformed_memory_sizes_are_refused_with_the_value_named() {
        for bad in [
            "64Q",
            "-1",
            "",
            "M",
            "0",
            "1k",
            ".5G",
            "5.G",
            "99999999999999999999T",
            "6 4M",
        ] {
            let e = bad.parse::<MemoryBytes>().unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn cpu_quotas_parse_as_cores_or_quota_over_period() {
        let q: CpuQuota = "0.2".parse().unwrap();
        assert_eq!((q.quota_us(), q.period_us()), (20_000, 100_000));
        let q: CpuQuota = "1.5".parse().unwrap();
        assert_eq!(q.quota_us(), 150_000);
        let q: CpuQuota = "50000/200000".parse().unwrap();
        assert!((q.cores() - 0.25).abs() < 1e-9);
    }

    #[test]
    fn bad_cpu_quotas_are_refused() {
        for bad in [
            "0", "-1", "0.001", "abc", "NaN", "inf", "1e3", "", "10/100", "2000/10",
        ] {
            assert!(bad.parse::<CpuQuota>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn cpusets_fold_and_refuse_nonsense() {
        let c: CpuSet = "3,0-1,1".parse().unwrap();
        assert_eq!(c.cpus(), &[0, 1, 3]);
        assert_eq!(c.to_string(), "0-1,3");
        for bad in ["", "1-0", "a", "0,,1", "-1"] {
            assert!(bad.parse::<CpuSet>().is_err(), "{bad} accepted");
        }
    }

    proptest! {
        #[test]
        fn memory_display_round_trips(mib in 1u64..1_000_000, extra_kib in 0u64..1024) {
            let m = MemoryBytes::new((mib << 20) + (extra_kib << 10)).unwrap();
            let shown = m.to_string().replace(' ', "").replace("bytes", "");
            prop_assert_eq!(shown.parse::<MemoryBytes>().unwrap(), m);
        }

        #[test]
        fn memory_parser_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<MemoryBytes>();
        }

        #[test]
        fn memory_parse_scales_integers(n in 1u64..1_000_000, unit in 0usize..4) {
            let (suffix, shift) = [("K", 10), ("M", 20), ("G", 30), ("T", 40)][unit];
            let parsed = format!("{n}{suffix}").parse::<MemoryBytes>();
            let bytes = n << shift;
            if bytes >= MIN_MEMORY_BYTES {
                prop_assert_eq!(parsed.unwrap().bytes(), bytes);
            } else {
                prop_assert!(parsed.is_err());
            }
        }

        #[test]
        fn cpu_quota_keeps_the_requested_share(milli in 10u64..64_000) {
            let cores = milli as f64 / 1000.0;
            let q: CpuQuota = cores.to_string().parse().unwrap();
            prop_assert!((q.cores() - cores).abs() <= 0.5 / 100_000.0 + 1e-9);
            prop_assert!(q.quota_us() >= MIN_QUOTA_US);
        }

        #[test]
        fn cpu_quota_parser_never_panics(s in "\\PC{0,16}") {
            let _ = s.parse::<CpuQuota>();
        }

        #[test]
        fn pids_in_range_parse_and_others_are_refused(n in any::<u64>()) {
            let parsed = parse_pids(&n.to_string());
            if (1..=MAX_PIDS).contains(&n) {
                prop_assert_eq!(parsed.unwrap(), n);
            } else {
                prop_assert!(parsed.unwrap_err().to_string().contains("PID_MAX_LIMIT"));
            }
        }

        #[test]
        fn pids_parser_never_panics(s in "\\PC{0,24}") {
            let _ = parse_pids(&s);
        }

        #[test]
        fn cpuset_display_round_trips(cpus in proptest::collection::btree_set(0u32..256, 1..40)) {
            let list = cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
            let set: CpuSet = list.parse().unwrap();
            let expected: Vec<u32> = cpus.iter().copied().collect();
            prop_assert_eq!(set.cpus(), expected.as_slice());
            prop_assert_eq!(set.to_string().parse::<CpuSet>().unwrap(), set);
        }
    }
}
