//! SCHEMA.md documents every field of the JSON report, and nothing else.

use reports::{fixture, parse_report, SCHEMA_VERSION};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const SCHEMA_MD: &str = include_str!("../SCHEMA.md");

/// Objects whose keys are names (data), not fields: documented as `path.*`.
const MAPS: [&str; 3] = [
    "host.features",
    "scenarios[].measurements",
    "regressions[].measurements",
];

/// Every field path of `value`, as SCHEMA.md spells them.
fn field_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(fields) => {
            let is_map = MAPS.contains(&prefix);
            for (key, child) in fields {
                let name = if is_map { "*" } else { key.as_str() };
                let path = if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}.{name}")
                };
                if !is_map {
                    out.insert(path.clone());
                }
                field_paths(child, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                field_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// The paths in the first column of the fields table of SCHEMA.md.
fn documented_paths() -> BTreeSet<String> {
    let fields = SCHEMA_MD
        .split("## Fields")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("SCHEMA.md has a ## Fields section");
    fields
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(String::from)
        .collect()
}

fn report_paths() -> BTreeSet<String> {
    let json = serde_json::to_value(fixture::sample_report()).unwrap();
    let mut paths = BTreeSet::new();
    field_paths(&json, "", &mut paths);
    paths
}

#[test]
fn every_field_of_the_report_is_documented() {
    let undocumented: Vec<_> = report_paths()
        .difference(&documented_paths())
        .cloned()
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in SCHEMA.md: {undocumented:?}"
    );
}

#[test]
fn every_documented_field_is_in_the_report() {
    let stale: Vec<_> = documented_paths()
        .difference(&report_paths())
        .cloned()
        .collect();
    assert!(
        stale.is_empty(),
        "in SCHEMA.md but not in the model: {stale:?}"
    );
}

#[test]
fn the_doc_names_the_schema_version() {
    assert!(SCHEMA_MD.starts_with(&format!("# boxwatch report schema `{SCHEMA_VERSION}`")));
}

#[test]
fn the_example_in_the_doc_is_a_valid_report() {
    let example = SCHEMA_MD
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("SCHEMA.md has a json example");
    let report = parse_report(example, Path::new("SCHEMA.md")).unwrap();
    assert_eq!(report.scenarios[0].measurements["cpu_share"], 0.2013);
}
