//! The Druid specs and the Athena DDL kept in the repository are what the
//! schema generates today: a column added to the schema fails this test
//! until they are regenerated (the commands are in the failure message).

use std::path::PathBuf;

use dredge_columnar::athena::{create_table, glue_columns, glue_schema_version, DEFAULT_SINCE};
use dredge_columnar::druid::{ingestion_spec, Shape};
use dredge_columnar::layout::{Location, DEFAULT_BUCKET, DEFAULT_PREFIX};

fn checked_in(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_current(relative: &str, generated: &str, command: &str) {
    assert!(
        checked_in(relative) == generated,
        "{relative} differs from what the schema generates; regenerate it with\n    cargo run -q -p dredge-cli -- {command} > {relative}"
    );
}

#[test]
fn druid_specs_match_the_schema() {
    let location = Location::new(DEFAULT_BUCKET, DEFAULT_PREFIX).unwrap();
    for (shape, file, command) in [
        (Shape::Flows, "druid/flows-spec.json", "druid-spec"),
        (Shape::Rollup, "druid/rollup-spec.json", "druid-spec --rollup"),
    ] {
        let spec = serde_json::to_string_pretty(&ingestion_spec(&location, shape, None)).unwrap() + "\n";
        assert_current(file, &spec, command);
    }
}

#[test]
fn athena_ddl_matches_the_schema() {
    let location = Location::new(DEFAULT_BUCKET, DEFAULT_PREFIX).unwrap();
    assert_current("athena/flows.sql", &create_table(&location, "default", "flows", DEFAULT_SINCE), "athena-ddl");
}

/// The Glue table in `template.yaml` has the schema's columns and version.
#[test]
fn the_templates_glue_table_matches_the_schema() {
    let template = checked_in("template.yaml");
    let marker = "            # Generated: dredge athena-ddl --glue-columns\n";
    let start = template.find(marker).expect("the generated-columns marker in template.yaml") + marker.len();
    let block: String = template[start..]
        .lines()
        .take_while(|l| l.trim_start().starts_with("- { Name:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        block == glue_columns(),
        "template.yaml's Glue columns differ from the schema; replace them with the output of\n    \
         cargo run -q -p dredge-cli -- athena-ddl --glue-columns"
    );
    assert!(template.contains(&glue_schema_version()), "template.yaml's Glue table names another schema version");
}
