//! Exposition formats: the Prometheus text format (the `prometheus`
//! crate's encoder) and OpenMetrics 1.0 (written here, as the crate has no
//! OpenMetrics encoder), and the choice between them from `Accept`.
//! [`render_with`] merges the registry's families with the per-cgroup
//! ones of a [`CgroupTable`], which writes its own.

use crate::table::CgroupTable;
use prometheus::proto::{MetricFamily, MetricType};
use prometheus::Encoder;
use std::io::Write;

/// Content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Picks the format from an `Accept` header: OpenMetrics when the client
/// lists `application/openmetrics-text` with a quality at least that of
/// `text/plain` (and of `*/*`), the text format otherwise (also for a
/// missing or unreadable header).
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let (mut om, mut text) = (0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .filter(|q| q.is_finite())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        match media.as_str() {
            "application/openmetrics-text" => om = om.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    if om > 0.0 && om >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// Renders `families` in `format`.
pub fn render(families: &[MetricFamily], format: Format) -> Vec<u8> {
    render_with(families, None, format)
}

/// Renders `families` (sorted by name, as the registry gives them) and
/// the per-cgroup families of `table` in `format`, every family in name
/// order, as if they had all come from the registry.
pub fn render_with(
    families: &[MetricFamily],
    table: Option<&CgroupTable>,
    format: Format,
) -> Vec<u8> {
    render_into(Vec::new(), families, table, format)
}

/// [`render_with`], written into `out` (emptied first; its allocation is
/// kept, and grown once to the size the table announces).
pub fn render_into(
    mut out: Vec<u8>,
    families: &[MetricFamily],
    table: Option<&CgroupTable>,
    format: Format,
) -> Vec<u8> {
    let names = table.map(CgroupTable::names).unwrap_or_default();
    let hint = table.map_or(0, CgroupTable::size_hint);
    out.clear();
    out.reserve(hint + 64 * 1024);
    let mut direct = names.into_iter().peekable();
    for mf in families {
        while let Some((_, i)) = direct.next_if(|(name, _)| *name < mf.get_name()) {
            if let Some(t) = table {
                t.write_family(i, format, &mut out);
            }
        }
        match format {
            Format::Text => write_text_family(mf, &mut out),
            Format::OpenMetrics => write_openmetrics_family(mf, &mut out),
        }
    }
    for (_, i) in direct {
        if let Some(t) = table {
            t.write_family(i, format, &mut out);
        }
    }
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
    out
}

/// The Prometheus text format, by the `prometheus` crate's encoder.
pub fn render_text(families: &[MetricFamily]) -> Vec<u8> {
    render(families, Format::Text)
}

/// Appends one family in the text format, by the `prometheus` crate's
/// encoder.
fn write_text_family(mf: &MetricFamily, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail; the encoder only fails on I/O errors
    // and on families with no metrics, which the registry prunes.
    if let Err(e) = prometheus::TextEncoder::new().encode(std::slice::from_ref(mf), out) {
        tracing::error!("text encoding failed: {e}");
    }
}

/// Escapes a label value or HELP text for OpenMetrics: `\`, `"` and
/// newline.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// An OpenMetrics number: `NaN`, `+Inf`, `-Inf` or a decimal.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The unit OpenMetrics can declare for a family name (it must be the
/// name's suffix).
fn unit_of(name: &str) -> Option<&'static str> {
    ["seconds", "bytes"]
        .into_iter()
        .find(|u| name.ends_with(&format!("_{u}")))
}

/// Writes the `# TYPE`, `# UNIT` (when the name ends in one) and `# HELP`
/// (when there is help) lines of OpenMetrics family `family_name`.
pub fn write_header(out: &mut Vec<u8>, family_name: &str, om_type: &str, help: &str) {
    let _ = writeln!(out, "# TYPE {family_name} {om_type}");
    if let Some(unit) = unit_of(family_name) {
        let _ = writeln!(out, "# UNIT {family_name} {unit}");
    }
    if !help.is_empty() {
        let _ = writeln!(out, "# HELP {family_name} {}", escape(help));
    }
}

/// OpenMetrics 1.0 text of counter and gauge families; other types are
/// skipped (the exporter makes none). Counter families are named without `_total`, their samples with
/// it. Ends with `# EOF`.
pub fn render_openmetrics(families: &[MetricFamily]) -> String {
    String::from_utf8(render(families, Format::OpenMetrics))
        .expect("the families' strings are UTF-8")
}

/// Appends one counter or gauge family in OpenMetrics (nothing for other
/// types).
fn write_openmetrics_family(mf: &MetricFamily, out: &mut Vec<u8>) {
    let (om_type, family_name, suffix) = match mf.get_field_type() {
        MetricType::COUNTER => (
            "counter",
            mf.get_name()
                .strip_suffix("_total")
                .unwrap_or(mf.get_name()),
            "_total",
        ),
        MetricType::GAUGE => ("gauge", mf.get_name(), ""),
        _ => return,
    };
    write_header(out, family_name, om_type, mf.get_help());
    for m in mf.get_metric() {
        let value = match mf.get_field_type() {
            MetricType::COUNTER => m.get_counter().get_value(),
            _ => m.get_gauge().get_value(),
        };
        out.extend_from_slice(family_name.as_bytes());
        out.extend_from_slice(suffix.as_bytes());
        let labels = m.get_label();
        if !labels.is_empty() {
            out.push(b'{');
            for (i, l) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = write!(out, "{}=\"{}\"", l.get_name(), escape(l.get_value()));
            }
            out.push(b'}');
        }
        let _ = writeln!(out, " {}", format_value(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::{family, sample, Kind};
    use proptest::prelude::*;

    #[test]
    fn negotiation() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(negotiate(None), Format::Text);
        assert_eq!(negotiate(Some("*/*")), Format::Text);
        assert_eq!(negotiate(Some("text/plain")), Format::Text);
        assert_eq!(
            negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0.2, text/plain;q=0.9")),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(negotiate(Some(";;;,,q=x")), Format::Text);
    }

    #[test]
    fn openmetrics_shape() {
        let fams = vec![
            family(
                "x_cpu_seconds_total",
                "CPU \"time\"\\ used\n",
                Kind::Counter,
                vec![sample(&[("cgroup", "/a\"b\\c\nd")], Kind::Counter, 1.5)],
            ),
            family(
                "x_up",
                "",
                Kind::Gauge,
                vec![sample(&[], Kind::Gauge, f64::INFINITY)],
            ),
        ];
        let om = render_openmetrics(&fams);
        assert_eq!(
            om,
            "# TYPE x_cpu_seconds counter\n# UNIT x_cpu_seconds seconds\n\
             # HELP x_cpu_seconds CPU \\\"time\\\"\\\\ used\\n\n\
             x_cpu_seconds_total{cgroup=\"/a\\\"b\\\\c\\nd\"} 1.5\n\
             # TYPE x_up gauge\nx_up +Inf\n# EOF\n"
        );
    }

    #[test]
    fn values() {
        assert_eq!(format_value(0.2), "0.2");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }

    proptest! {
        #[test]
        fn negotiate_never_panics(s in "\\PC*") {
            let _ = negotiate(Some(&s));
        }

        #[test]
        fn escaped_values_have_no_raw_newlines_or_lone_quotes(s in "\\PC*|[\"\\\\\n]{0,10}") {
            let e = escape(&s);
            prop_assert!(!e.contains('\n'));
            // Unescaping gives the input back.
            let mut back = String::new();
            let mut it = e.chars();
            while let Some(c) = it.next() {
                if c == '\\' {
                    match it.next() {
                        Some('n') => back.push('\n'),
                        Some(o) => back.push(o),
                        None => prop_assert!(false, "dangling backslash"),
                    }
                } else {
                    prop_assert!(c != '"', "unescaped quote");
                    back.push(c);
                }
            }
            prop_assert_eq!(back, s);
        }

        #[test]
        fn values_parse_back(v in any::<f64>()) {
            let s = format_value(v);
            let back: f64 = match s.as_str() { "+Inf" => f64::INFINITY, other => other.parse().unwrap() };
            if v.is_nan() { prop_assert!(back.is_nan()) } else { prop_assert_eq!(back, v) }
        }
    }
}
