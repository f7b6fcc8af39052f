//! Druid native batch ingestion specs (`index_parallel`, S3 input, Parquet
//! input format) derived from the schema, in two shapes ([`Shape`]).

use dredge_core::enrich::{columns, Column, ColumnType, SideField, Source, TIMESTAMP};
use dredge_core::flowlog::Field;
use serde_json::{json, Value};

use crate::layout::{Interval, Location};

/// What a datasource keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Every flow, every column a dimension, no rollup: datasource `flows`.
    Flows,
    /// Application-level traffic per minute: the sides' app, stack,
    /// cluster, account, region, zone, VPC, kind and attribution, protocol,
    /// action and the cross flags as dimensions; `count` and a `longSum`
    /// of every metric column. Datasource `flows_rollup`.
    Rollup,
}

impl Shape {
    pub fn datasource(self) -> &'static str {
        match self {
            Shape::Flows => "flows",
            Shape::Rollup => "flows_rollup",
        }
    }

    fn keeps(self, column: &Column) -> bool {
        match self {
            Shape::Flows => column.source != Source::Timestamp,
            Shape::Rollup => is_rollup_dimension(column),
        }
    }
}

/// The dimensions of an application-level rollup.
fn is_rollup_dimension(column: &Column) -> bool {
    use SideField as S;
    match column.source {
        Source::Side(_, field) => matches!(
            field,
            S::App | S::Stack | S::Cluster | S::AccountId | S::Region | S::Az | S::VpcId | S::Kind | S::Attribution
        ),
        Source::Flow(field) => matches!(field, Field::Protocol | Field::Action),
        Source::Cross(_) => true,
        Source::Timestamp | Source::FlowId => false,
    }
}

/// Druid has long and string dimensions; booleans are ingested as strings
/// (`true`/`false`).
fn dimension(column: &Column) -> Value {
    let ty = match column.ty {
        ColumnType::Long | ColumnType::TimestampMillis => "long",
        ColumnType::String | ColumnType::Bool => "string",
    };
    json!({ "type": ty, "name": column.name })
}

/// The ingestion spec of one shape. Without an interval Druid reads every
/// file under the prefix; with one, only the days the interval touches.
pub fn ingestion_spec(location: &Location, shape: Shape, interval: Option<&Interval>) -> Value {
    let dimensions: Vec<Value> = columns().iter().filter(|c| shape.keeps(c)).map(dimension).collect();
    let (metrics, query_granularity, rollup) = match shape {
        Shape::Flows => (Vec::new(), "NONE", false),
        Shape::Rollup => {
            let mut metrics = vec![json!({ "type": "count", "name": "count" })];
            metrics.extend(
                columns()
                    .iter()
                    .filter(|c| c.is_metric())
                    .map(|c| json!({ "type": "longSum", "name": c.name, "fieldName": c.name })),
            );
            (metrics, "MINUTE", true)
        }
    };
    let mut granularity = json!({
        "type": "uniform",
        "segmentGranularity": "HOUR",
        "queryGranularity": query_granularity,
        "rollup": rollup,
    });
    let prefixes: Vec<String> = match interval {
        Some(i) => {
            granularity["intervals"] = json!([i.to_druid()]);
            i.days().map(|d| location.day(d)).collect()
        }
        None => vec![location.root()],
    };
    json!({
        "type": "index_parallel",
        "spec": {
            "dataSchema": {
                "dataSource": shape.datasource(),
                "timestampSpec": { "column": TIMESTAMP, "format": "millis" },
                "dimensionsSpec": { "dimensions": dimensions },
                "metricsSpec": metrics,
                "granularitySpec": granularity,
            },
            "ioConfig": {
                "type": "index_parallel",
                "inputSource": { "type": "s3", "prefixes": prefixes },
                "inputFormat": { "type": "parquet", "binaryAsString": false },
                "appendToExisting": false,
            },
            "tuningConfig": {
                "type": "index_parallel",
                "partitionsSpec": { "type": "dynamic" },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &Value, key: &str) -> Vec<String> {
        v["spec"]["dataSchema"][key]
            .as_array()
            .or_else(|| v["spec"]["dataSchema"]["dimensionsSpec"][key].as_array())
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn flows_has_every_column_as_a_typed_dimension() {
        let l = Location::new("b-1", "p").unwrap();
        let spec = ingestion_spec(&l, Shape::Flows, None);
        let dims = &spec["spec"]["dataSchema"]["dimensionsSpec"]["dimensions"];
        assert_eq!(dims.as_array().unwrap().len(), columns().len() - 1);
        assert!(dims.as_array().unwrap().contains(&json!({"type": "long", "name": "bytes"})));
        assert!(dims.as_array().unwrap().contains(&json!({"type": "string", "name": "cross_az"})));
        assert_eq!(spec["spec"]["ioConfig"]["inputSource"]["prefixes"], json!(["s3://b-1/p/"]));
        assert_eq!(spec["spec"]["dataSchema"]["granularitySpec"]["rollup"], json!(false));
    }

    #[test]
    fn rollup_sums_every_metric_by_application() {
        let l = Location::new("b-1", "p").unwrap();
        let i = Interval::parse("2026-11-30T00:00:00Z/2026-11-30T01:00:00Z").unwrap();
        let spec = ingestion_spec(&l, Shape::Rollup, Some(&i));
        let dims = names(&spec, "dimensions");
        for d in ["src_app", "dst_cluster", "src_attribution", "protocol", "action", "cross_region", "dst_az"] {
            assert!(dims.contains(&d.to_string()), "{d}");
        }
        for d in ["srcaddr", "src_eni_id", "bytes", "timestamp", "src_asg"] {
            assert!(!dims.contains(&d.to_string()), "{d}");
        }
        let metrics = names(&spec, "metricsSpec");
        let mut want = vec!["count".to_string()];
        want.extend(columns().iter().filter(|c| c.is_metric()).map(|c| c.name.clone()));
        assert_eq!(metrics, want);
        assert!(metrics.contains(&"packets_lost_no_route".to_string()));
        let g = &spec["spec"]["dataSchema"]["granularitySpec"];
        assert_eq!((g["queryGranularity"].as_str(), g["segmentGranularity"].as_str()), (Some("MINUTE"), Some("HOUR")));
        assert_eq!(g["intervals"], json!(["2026-11-30T00:00:00Z/2026-11-30T01:00:00Z"]));
        assert_eq!(spec["spec"]["ioConfig"]["inputSource"]["prefixes"], json!(["s3://b-1/p/dt=2026-11-30/"]));
    }
}
