//! The JSON report.

use crate::model::Report;

/// The report as pretty JSON, fields in schema order, ending in a newline.
pub fn json(report: &Report) -> String {
    // The model has only string map keys and plain data: serialization into
    // memory cannot fail (non-finite floats are written as null).
    let mut out = serde_json::to_string_pretty(report).expect("the report model always serializes");
    out.push('\n');
    out
}
