//! The Athena (Hive DDL) table over the Parquet files, from the schema:
//! partitioned by `dt` and `hour`, found by partition projection (no
//! crawler, no `MSCK REPAIR`).

use std::fmt::Write;

use dredge_core::enrich::{columns, ColumnType, SCHEMA_VERSION};
use time::Date;

use crate::layout::{iso_date, Location};
use crate::schema::SCHEMA_VERSION_KEY;

/// The first day partition projection offers, unless told otherwise.
pub const DEFAULT_SINCE: Date = time::macros::date!(2026 - 01 - 01);

fn sql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::TimestampMillis => "timestamp",
        ColumnType::Long => "bigint",
        ColumnType::String => "string",
        ColumnType::Bool => "boolean",
    }
}

/// `CREATE EXTERNAL TABLE` for `database.table` over `location`, with
/// partitions projected from `since` to now.
pub fn create_table(location: &Location, database: &str, table: &str, since: Date) -> String {
    let mut ddl = format!("CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (\n");
    let cols = columns();
    for (i, c) in cols.iter().enumerate() {
        let comma = if i + 1 < cols.len() { "," } else { "" };
        let _ = writeln!(ddl, "  `{}` {}{comma}", c.name, sql_type(c.ty));
    }
    let properties = [
        ("projection.enabled", "true".to_string()),
        ("projection.dt.type", "date".into()),
        ("projection.dt.format", "yyyy-MM-dd".into()),
        ("projection.dt.range", format!("{},NOW", iso_date(since))),
        ("projection.dt.interval", "1".into()),
        ("projection.dt.interval.unit", "DAYS".into()),
        ("projection.hour.type", "integer".into()),
        ("projection.hour.range", "0,23".into()),
        ("projection.hour.digits", "2".into()),
        ("storage.location.template", location.template()),
        ("parquet.compression", "ZSTD".into()),
        (SCHEMA_VERSION_KEY, SCHEMA_VERSION.to_string()),
    ];
    let properties: Vec<String> = properties.iter().map(|(k, v)| format!("  '{k}'='{v}'")).collect();
    let _ = write!(
        ddl,
        ")\nPARTITIONED BY (`dt` string, `hour` string)\nSTORED AS PARQUET\nLOCATION '{}'\nTBLPROPERTIES (\n{}\n);\n",
        location.root(),
        properties.join(",\n"),
    );
    ddl
}

/// The `Columns` of the `AWS::Glue::Table` in `template.yaml`, one flow
/// mapping per line at the template's indentation: the same columns and
/// types as [`create_table`], kept in the template by
/// `dredge athena-ddl --glue-columns` (a test fails on drift).
pub fn glue_columns() -> String {
    let mut out = String::new();
    for c in columns() {
        let _ = writeln!(out, "            - {{ Name: {}, Type: {} }}", c.name, sql_type(c.ty));
    }
    out
}

/// The table parameter naming the schema version, as the template carries it.
pub fn glue_schema_version() -> String {
    format!("          {SCHEMA_VERSION_KEY}: \"{SCHEMA_VERSION}\"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_typed_column_per_schema_column_and_projected_partitions() {
        let l = Location::new("b-1", "p").unwrap();
        let ddl = create_table(&l, "db", "t", Date::from_calendar_date(2026, time::Month::January, 1).unwrap());
        assert!(ddl.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS `db`.`t` (\n  `timestamp` timestamp,\n"));
        assert!(ddl.contains("  `bytes` bigint,\n"));
        assert!(ddl.contains("  `cross_az` boolean"));
        assert_eq!(ddl.matches("\n  `").count(), columns().len());
        assert!(ddl.contains("'projection.dt.range'='2026-01-01,NOW'"));
        assert!(ddl.contains("'storage.location.template'='s3://b-1/p/dt=${dt}/hour=${hour}/'"));
        assert!(ddl.contains("LOCATION 's3://b-1/p/'"));
    }
}
