//! The per-cgroup families as a table, written straight into the
//! exposition.
//!
//! A scrape of 1,000 cgroups carries 12,000 per-cgroup samples. As
//! `prometheus` objects (a `Metric` with its own `LabelPair` per sample,
//! sorted by the registry, then encoded) they cost more CPU than parsing
//! the files they come from. Here a scrape is one row of numbers per
//! cgroup; each cgroup's label is escaped once and kept for as long as the
//! cgroup set does not change; and the families are written in the text
//! format and in OpenMetrics byte for byte as the `prometheus` encoder and
//! [`crate::openmetrics`] write the same families as objects
//! ([`CgroupTable::families`]: the tests below compare the two on random
//! tables).
//!
//! The registry still serves everything else (the exporter's own metrics,
//! the verdicts); [`crate::openmetrics::render_with`] merges the two by
//! family name, as the registry orders its families.

use crate::collector::{family, sample, Kind, CGROUP_METRICS};
use crate::openmetrics::{self, Format};
use probes::host::CgroupStats;
use prometheus::proto::MetricFamily;
use std::io::Write;
use std::sync::Arc;

/// Per-cgroup metrics (the length of [`CGROUP_METRICS`]).
pub const METRICS: usize = 30;
const _: () = assert!(CGROUP_METRICS.len() == METRICS);

/// The name of the label carrying the cgroup path.
const LABEL: &str = "cgroup";

/// One cgroup's labels: the `cgroup` path and what
/// [`crate::identity`] tells of it, with the label set escaped once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    value: Box<str>,
    /// The other label pairs, sorted by name (all after `cgroup`).
    extra: Box<[(&'static str, Box<str>)]>,
    /// What follows `{cgroup="` in a sample line, up to the closing `"`:
    /// the escaped path, then `",name="value` for each other pair.
    rendered: Box<str>,
}

impl Label {
    /// The label for the cgroup path `value` alone.
    pub fn new(value: &str) -> Self {
        Label::with(value, Vec::new())
    }

    /// The label for the cgroup path `value` with `extra` pairs (sorted by
    /// name, each after `cgroup`).
    pub fn with(value: &str, extra: Vec<(&'static str, String)>) -> Self {
        debug_assert!(extra.windows(2).all(|w| w[0].0 < w[1].0));
        debug_assert!(extra.iter().all(|(k, _)| *k > LABEL));
        let esc = |v: &str| -> String {
            if v.contains(['\\', '"', '\n']) {
                openmetrics::escape(v)
            } else {
                v.to_string()
            }
        };
        let mut rendered = esc(value);
        for (k, v) in &extra {
            rendered.push_str("\",");
            rendered.push_str(k);
            rendered.push_str("=\"");
            rendered.push_str(&esc(v));
        }
        Label {
            value: value.into(),
            extra: extra.into_iter().map(|(k, v)| (k, v.into())).collect(),
            rendered: rendered.into(),
        }
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Every pair, `cgroup` first, the others sorted by name.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        std::iter::once((LABEL, self.value()))
            .chain(self.extra.iter().map(|(k, v)| (*k, &**v)))
            .collect()
    }

    /// The label set escaped for both exposition formats (`\\`, `\"`,
    /// `\n`), without the outer `cgroup="` and `"`.
    pub fn escaped(&self) -> &str {
        &self.rendered
    }
}

/// The labels of a cgroup set, sorted by value (the order of the
/// registry's samples); tables of successive scrapes share them while the
/// set does not change.
pub type Labels = Arc<[Label]>;

/// The figures of one cgroup: the value of each of [`CGROUP_METRICS`],
/// where it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Index of the cgroup's label in the table's [`Labels`].
    label: u32,
    /// Bit `i`: `values[i]` is a sample.
    present: u64,
    values: [f64; METRICS],
}

impl Row {
    /// The row of the cgroup whose label is `labels[label]`, from its
    /// stats; values that are not finite are left out (as before the
    /// table, a metric is a sample only with a finite value).
    pub fn new(label: usize, stats: &CgroupStats) -> Row {
        let mut row = Row::empty(label);
        for (i, m) in CGROUP_METRICS.iter().enumerate() {
            if let Some(v) = (m.value)(stats) {
                row.set(i, v);
            }
        }
        row
    }

    /// A row with no sample.
    pub fn empty(label: usize) -> Row {
        Row {
            label: u32::try_from(label).expect("fewer than 2^32 cgroups"),
            present: 0,
            values: [0.0; METRICS],
        }
    }

    /// Sets metric `i` to `v` (left out when `v` is not finite).
    pub fn set(&mut self, i: usize, v: f64) {
        if v.is_finite() {
            self.values[i] = v;
            self.present |= 1 << i;
        } else {
            self.present &= !(1 << i);
        }
    }

    /// The value of metric `i`, if it is a sample.
    pub fn get(&self, i: usize) -> Option<f64> {
        (self.present & (1 << i) != 0).then_some(self.values[i])
    }
}

/// One scrape's per-cgroup figures: rows in label order.
#[derive(Debug, Clone)]
pub struct CgroupTable {
    labels: Labels,
    rows: Vec<Row>,
}

/// The metric indices in family-name order (how the registry orders
/// families).
fn by_name() -> [usize; METRICS] {
    let mut order: [usize; METRICS] = std::array::from_fn(|i| i);
    order.sort_by_key(|&i| CGROUP_METRICS[i].name);
    order
}

impl CgroupTable {
    /// A table of `rows` (each naming its label in `labels`, in
    /// increasing label order: panics otherwise).
    pub fn new(labels: Labels, rows: Vec<Row>) -> Self {
        assert!(
            rows.windows(2).all(|w| w[0].label < w[1].label)
                && rows
                    .last()
                    .is_none_or(|r| (r.label as usize) < labels.len()),
            "rows out of label order"
        );
        CgroupTable { labels, rows }
    }

    /// A table with no cgroup.
    pub fn empty() -> Self {
        CgroupTable {
            labels: Arc::from([]),
            rows: Vec::new(),
        }
    }

    /// Cgroups in the table.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no cgroup.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The label of `row`.
    pub fn label(&self, row: &Row) -> &Label {
        &self.labels[row.label as usize]
    }

    /// The families as `prometheus` objects, one per metric of
    /// [`CGROUP_METRICS`] in its order (empty ones included, as a
    /// collector gives them; the registry drops those).
    pub fn families(&self) -> Vec<MetricFamily> {
        CGROUP_METRICS
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let samples = self
                    .rows
                    .iter()
                    .filter_map(|r| {
                        let v = r.get(i)?;
                        Some(sample(&self.label(r).pairs(), m.kind, v))
                    })
                    .collect();
                family(m.name, m.help, m.kind, samples)
            })
            .collect()
    }

    /// The names of the families with at least one sample, sorted, each
    /// with its index in [`CGROUP_METRICS`].
    pub fn names(&self) -> Vec<(&'static str, usize)> {
        let mut any = 0u64;
        for r in &self.rows {
            any |= r.present;
        }
        by_name()
            .into_iter()
            .filter(|&i| any & (1 << i) != 0)
            .map(|i| (CGROUP_METRICS[i].name, i))
            .collect()
    }

    /// Writes family `i` (of [`CGROUP_METRICS`]) in `format` to `out`:
    /// nothing when it has no sample.
    pub fn write_family(&self, i: usize, format: Format, out: &mut Vec<u8>) {
        let m = &CGROUP_METRICS[i];
        if !self.rows.iter().any(|r| r.get(i).is_some()) {
            return;
        }
        // Each sample line starts with `base` + `suffix`.
        let (base, suffix) = match format {
            Format::Text => {
                out.extend_from_slice(b"# HELP ");
                out.extend_from_slice(m.name.as_bytes());
                out.push(b' ');
                out.extend_from_slice(escape_help(m.help).as_bytes());
                out.extend_from_slice(b"\n# TYPE ");
                out.extend_from_slice(m.name.as_bytes());
                out.extend_from_slice(match m.kind {
                    Kind::Counter => b" counter\n",
                    Kind::Gauge => b" gauge\n",
                });
                (m.name, "")
            }
            Format::OpenMetrics => {
                // A counter family is named without `_total`, its samples
                // with it.
                let (om_type, base, suffix) = match m.kind {
                    Kind::Counter => (
                        "counter",
                        m.name.strip_suffix("_total").unwrap_or(m.name),
                        "_total",
                    ),
                    Kind::Gauge => ("gauge", m.name, ""),
                };
                openmetrics::write_header(out, base, om_type, m.help);
                (base, suffix)
            }
        };
        for r in &self.rows {
            let Some(v) = r.get(i) else { continue };
            out.extend_from_slice(base.as_bytes());
            out.extend_from_slice(suffix.as_bytes());
            out.extend_from_slice(b"{cgroup=\"");
            out.extend_from_slice(self.label(r).escaped().as_bytes());
            out.extend_from_slice(b"\"} ");
            write_value(out, v);
            out.push(b'\n');
        }
    }

    /// A close upper bound of what [`Self::write_family`] writes for
    /// every family, to size the body once.
    pub fn size_hint(&self) -> usize {
        let mut total = 0;
        for (name, i) in self.names() {
            let m = &CGROUP_METRICS[i];
            total += 3 * name.len() + 2 * m.help.len() + 64;
            for r in &self.rows {
                if let Some(v) = r.get(i) {
                    total += name.len() + self.label(r).escaped().len() + 22 + value_len(v);
                }
            }
        }
        total
    }
}

/// HELP text escaped as the text format wants it (`\\` and `\n`; quotes
/// stay).
fn escape_help(help: &str) -> std::borrow::Cow<'_, str> {
    if !help.contains(['\\', '\n']) {
        return help.into();
    }
    help.replace('\\', "\\\\").replace('\n', "\\n").into()
}

/// The largest integer below which every integer is an `f64` exactly.
const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Whether `v` prints as the integer it is (`{v}` of such an `f64` is its
/// decimal digits, no point, no exponent).
fn is_small_integer(v: f64) -> bool {
    v.is_sign_positive() && v < EXACT && v.fract() == 0.0
}

/// Writes `v` as `{v}` does (`value.to_string()` in the `prometheus`
/// encoder, [`openmetrics::format_value`] for finite values): integers
/// below 2^53 by a digit loop, the rest by `Display`.
pub fn write_value(out: &mut Vec<u8>, v: f64) {
    if is_small_integer(v) {
        let mut n = v as u64;
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[at..]);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// The length [`write_value`] gives `v`, or an upper bound of it.
fn value_len(v: f64) -> usize {
    if is_small_integer(v) {
        let mut n = v as u64;
        let mut len = 1;
        while n >= 10 {
            n /= 10;
            len += 1;
        }
        len
    } else {
        // `Display` never writes an exponent: at most 17 significant
        // digits, a point, a sign and up to 6 zeros after the point in
        // this range; outside it (never a cgroup figure) up to 309 digits
        // before the point or 323 zeros after it.
        if (1e-7..1e17).contains(&v.abs()) {
            26
        } else {
            345
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The body as the registry would have it: the table's families as
    /// objects, sorted by the registry, encoded by the encoders.
    fn reference(table: &CgroupTable, format: Format) -> Vec<u8> {
        let registry = prometheus::Registry::new();
        struct Families(Vec<MetricFamily>, Vec<prometheus::core::Desc>);
        impl prometheus::core::Collector for Families {
            fn desc(&self) -> Vec<&prometheus::core::Desc> {
                self.1.iter().collect()
            }
            fn collect(&self) -> Vec<MetricFamily> {
                self.0.clone()
            }
        }
        let descs = CGROUP_METRICS
            .iter()
            .map(|m| crate::collector::desc(m.name, m.help, &[LABEL]))
            .collect();
        registry
            .register(Box::new(Families(table.families(), descs)))
            .unwrap();
        let families = registry.gather();
        match format {
            Format::Text => openmetrics::render_text(&families),
            Format::OpenMetrics => openmetrics::render_openmetrics(&families).into_bytes(),
        }
    }

    /// The body as the table writes it.
    fn direct(table: &CgroupTable, format: Format) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, i) in table.names() {
            table.write_family(i, format, &mut out);
        }
        if format == Format::OpenMetrics {
            out.extend_from_slice(b"# EOF\n");
        }
        out
    }

    fn table(labels: &[&str], rows: Vec<Row>) -> CgroupTable {
        let labels: Labels = labels.iter().map(|l| Label::new(l)).collect();
        CgroupTable::new(labels, rows)
    }

    #[test]
    fn two_cgroups_byte_for_byte() {
        let mut a = Row::empty(0);
        for (i, v) in [(0, 1.5), (1, 0.5), (5, 4096.0), (6, 67108864.0), (10, 1.0)] {
            a.set(i, v);
        }
        let mut b = Row::empty(1);
        b.set(0, 1e-6);
        b.set(5, 9223372036854771712.0);
        b.set(6, f64::INFINITY); // left out
        let t = table(
            &["/boxwatch/a", "/boxwatch/we\"ird\\name\nline ü"],
            vec![a, b],
        );
        for format in [Format::Text, Format::OpenMetrics] {
            let (want, got) = (reference(&t, format), direct(&t, format));
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
        let text = String::from_utf8(direct(&t, Format::Text)).unwrap();
        assert!(text.contains(
            "boxwatch_cgroup_memory_usage_bytes{cgroup=\"/boxwatch/we\\\"ird\\\\name\\nline ü\"} 9223372036854772000\n"
        ));
        assert!(!text.contains("inf"));
    }

    #[test]
    fn an_empty_table_writes_nothing() {
        let t = CgroupTable::empty();
        assert!(t.names().is_empty());
        assert_eq!(direct(&t, Format::Text), reference(&t, Format::Text));
        let t = table(&["/a"], vec![Row::empty(0)]);
        assert!(t.names().is_empty());
        assert_eq!(direct(&t, Format::Text), b"");
    }

    #[test]
    #[should_panic(expected = "rows out of label order")]
    fn rows_must_follow_the_labels() {
        table(&["/a", "/b"], vec![Row::empty(1), Row::empty(0)]);
    }

    #[test]
    fn values_as_display_gives_them() {
        for v in [
            0.0,
            1.0,
            10.0,
            0.5,
            1e-6,
            123456789.0,
            9007199254740991.0,
            9007199254740992.0,
            9223372036854771712.0,
            1.8446744073709552e19,
            f64::MAX,
            f64::MIN_POSITIVE,
            -0.0,
            -3.0,
        ] {
            let mut out = Vec::new();
            write_value(&mut out, v);
            assert_eq!(String::from_utf8(out.clone()).unwrap(), v.to_string());
            assert!(out.len() <= value_len(v), "{v}");
        }
    }

    /// A label value: any text, often with the characters that need
    /// escaping.
    fn label_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "/[a-z0-9._-]{1,12}(/[a-z0-9._-]{1,12}){0,3}",
            "/\\PC{0,16}",
            "/[\"\\\\\n a-z]{0,10}",
        ]
    }

    /// A value as the stats give them: integers (u64 as f64, some huge),
    /// seconds with fractions, ratios; and some that are not finite.
    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(|n| n as f64),
            (0u64..1 << 40).prop_map(|n| n as f64),
            (0u64..u64::MAX / 1000).prop_map(|n| n as f64 / 1e9),
            (0u64..1_000_000, 1u64..1_000_000).prop_map(|(q, p)| q as f64 / p as f64),
            Just(f64::NAN),
            Just(f64::INFINITY),
        ]
    }

    proptest! {
        #[test]
        fn the_table_writes_what_the_encoders_write(
            labels in proptest::collection::btree_set(label_text(), 0..8),
            cells in proptest::collection::vec(
                proptest::collection::vec(proptest::option::of(value()), METRICS),
                8,
            ),
            skip in proptest::collection::vec(any::<bool>(), 8),
        ) {
            let labels: Vec<String> = labels.into_iter().collect();
            let mut rows = Vec::new();
            for (i, _) in labels.iter().enumerate() {
                if skip[i] {
                    continue; // a cgroup that could not be read
                }
                let mut r = Row::empty(i);
                for (m, v) in cells[i].iter().enumerate() {
                    if let Some(v) = v {
                        r.set(m, *v);
                    }
                }
                rows.push(r);
            }
            let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
            let t = table(&refs, rows);
            let mut hint = 0;
            for format in [Format::Text, Format::OpenMetrics] {
                let got = direct(&t, format);
                prop_assert_eq!(
                    String::from_utf8(got.clone()).unwrap(),
                    String::from_utf8(reference(&t, format)).unwrap()
                );
                hint = hint.max(got.len());
            }
            prop_assert!(hint <= t.size_hint() + 16, "{} > {}", hint, t.size_hint());
        }

        #[test]
        fn any_value_as_display_gives_it(v in any::<f64>()) {
            let mut out = Vec::new();
            write_value(&mut out, v);
            prop_assert_eq!(String::from_utf8(out.clone()).unwrap(), v.to_string());
            if v.is_finite() {
                prop_assert!(out.len() <= value_len(v));
            }
        }
    }
}
