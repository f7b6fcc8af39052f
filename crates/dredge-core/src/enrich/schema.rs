//! The enriched record's one schema definition: [`columns`]. The JSON
//! writers the enricher uses (`FlowWriter`, `SideWriter`) are compiled from
//! it, so nothing lists the columns a second time; so are the Parquet
//! columns, the Druid ingestion specs and the Athena table (`dredge-columnar`).
//!
//! Columns, in order: `timestamp` (flow start, epoch milliseconds),
//! `flow_id` (the flow's source position, unique per source line and stable
//! across retries and replays: `super::FlowId`), every flow-log field (snake_case, as `dredge parse` prints them; null when the
//! flow log's format lacks it), `src_*` and `dst_*` for each [`SideField`],
//! then `cross_region`, `cross_az`, `cross_vpc`, `cross_account`.

use std::sync::LazyLock;

use crate::flowlog::{Field, Kind};

/// A column's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Epoch milliseconds (Parquet INT64 TIMESTAMP(MILLIS, UTC)).
    TimestampMillis,
    /// Signed 64-bit integer.
    Long,
    String,
    Bool,
}

/// Which side of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Src,
    Dst,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Src, Side::Dst];

    pub const fn prefix(self) -> &'static str {
        match self {
            Side::Src => "src",
            Side::Dst => "dst",
        }
    }
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }
    };
}

named_enum!(
    /// What is said of each side.
    SideField {
        App => "app",
        Stack => "stack",
        Detail => "detail",
        Cluster => "cluster",
        Asg => "asg",
        AccountId => "account_id",
        Region => "region",
        Az => "az",
        VpcId => "vpc_id",
        SubnetId => "subnet_id",
        InstanceId => "instance_id",
        EniId => "eni_id",
        Kind => "kind",
        Attribution => "attribution",
    }
);

named_enum!(
    /// Whether the two sides differ, when both are known.
    Cross {
        Region => "cross_region",
        Az => "cross_az",
        Vpc => "cross_vpc",
        Account => "cross_account",
    }
);

impl Cross {
    /// The side field both sides are compared on.
    pub const fn compares(self) -> SideField {
        match self {
            Cross::Region => SideField::Region,
            Cross::Az => SideField::Az,
            Cross::Vpc => SideField::VpcId,
            Cross::Account => SideField::AccountId,
        }
    }
}

/// Where a column's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Timestamp,
    /// The flow's source position ([`super::FlowId`]).
    FlowId,
    Flow(Field),
    Side(Side, SideField),
    Cross(Cross),
}

/// One column of the enriched record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    pub source: Source,
}

impl Column {
    /// Flow counters that Druid rolls up as sums rather than dimensions.
    pub fn is_metric(&self) -> bool {
        matches!(
            self.source,
            Source::Flow(
                Field::Packets
                    | Field::Bytes
                    | Field::PacketsLostNoRoute
                    | Field::PacketsLostBlackhole
                    | Field::PacketsLostMtuExceeded
                    | Field::PacketsLostTtlExpired
            )
        )
    }
}

/// The version of [`columns`], written into every Parquet file and table
/// definition made from it. Increase it with every change to the columns;
/// columns are only ever added (never renamed, retyped or removed), so
/// readers of an older version read newer files and null-fill the rest.
pub const SCHEMA_VERSION: u32 = 1;

/// The name of the timestamp column.
pub const TIMESTAMP: &str = "timestamp";

/// The name of the column consumers drop duplicates by.
pub const FLOW_ID: &str = "flow_id";

static COLUMNS: LazyLock<Vec<Column>> = LazyLock::new(|| {
    let mut cols = vec![
        Column { name: TIMESTAMP.into(), ty: ColumnType::TimestampMillis, source: Source::Timestamp },
        Column { name: FLOW_ID.into(), ty: ColumnType::String, source: Source::FlowId },
    ];
    for &field in Field::ALL {
        let ty = match field.kind() {
            Kind::UInt { .. } => ColumnType::Long,
            _ => ColumnType::String,
        };
        cols.push(Column { name: field.snake_name().into(), ty, source: Source::Flow(field) });
    }
    for side in Side::BOTH {
        for &f in SideField::ALL {
            cols.push(Column {
                name: format!("{}_{}", side.prefix(), f.name()),
                ty: ColumnType::String,
                source: Source::Side(side, f),
            });
        }
    }
    for &c in Cross::ALL {
        cols.push(Column { name: c.name().into(), ty: ColumnType::Bool, source: Source::Cross(c) });
    }
    cols
});

/// Every column, in order.
pub fn columns() -> &'static [Column] {
    &COLUMNS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_flat() {
        let cols = columns();
        let mut names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), cols.len());
        assert_eq!(cols.len(), 2 + Field::COUNT + 2 * SideField::ALL.len() + Cross::ALL.len());
        assert!(cols.iter().all(|c| c.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    #[test]
    fn carries_the_documented_columns() {
        let find = |n: &str| columns().iter().find(|c| c.name == n).unwrap_or_else(|| panic!("{n}"));
        assert_eq!(find("timestamp").ty, ColumnType::TimestampMillis);
        assert_eq!(columns()[1].name, "flow_id", "right after the timestamp");
        assert_eq!(find("flow_id").ty, ColumnType::String);
        assert_eq!(find("bytes").ty, ColumnType::Long);
        assert!(find("bytes").is_metric());
        assert_eq!(find("srcaddr").ty, ColumnType::String);
        for side in ["src", "dst"] {
            for f in SideField::ALL {
                find(&format!("{side}_{}", f.name()));
            }
        }
        assert_eq!(find("cross_az").ty, ColumnType::Bool);
    }
}
