//! The Arrow schema of the enriched record: one field per column of
//! [`columns`], in order, every one nullable except the timestamp.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use dredge_core::enrich::{columns, ColumnType, SCHEMA_VERSION};

/// Key of the schema version in Parquet key-value metadata (and in the
/// Arrow schema's metadata).
pub const SCHEMA_VERSION_KEY: &str = "dredge.schema_version";

/// The Arrow type a column is written as.
pub(crate) fn data_type(ty: ColumnType) -> DataType {
    match ty {
        // Parquet INT64 TIMESTAMP(MILLIS, isAdjustedToUTC=true): what
        // Druid's parquet-java reader converts to a time.
        ColumnType::TimestampMillis => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        ColumnType::Long => DataType::Int64,
        ColumnType::String => DataType::Utf8,
        ColumnType::Bool => DataType::Boolean,
    }
}

/// The Arrow schema, with the schema version in its metadata.
pub fn arrow_schema() -> SchemaRef {
    let fields: Vec<Field> =
        columns().iter().map(|c| Field::new(&c.name, data_type(c.ty), c.ty != ColumnType::TimestampMillis)).collect();
    let metadata = HashMap::from([(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string())]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_field_per_column_in_order() {
        let schema = arrow_schema();
        assert_eq!(schema.fields().len(), columns().len());
        for (field, column) in schema.fields().iter().zip(columns()) {
            assert_eq!(field.name(), &column.name);
            assert_eq!(field.data_type(), &data_type(column.ty));
        }
        assert_eq!(schema.field(0).data_type(), &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())));
        assert!(!schema.field(0).is_nullable());
        assert_eq!(schema.field_with_name("bytes").map(|f| f.data_type().clone()).ok(), Some(DataType::Int64));
        assert_eq!(schema.metadata()[SCHEMA_VERSION_KEY], SCHEMA_VERSION.to_string());
    }
}
