//! Creating the ownership table.

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use dredge_core::ownership::{StoreError, StoreResult};

use super::errors::{build_error, store_error};
use super::items::{EXPIRES_AT, GSI1PK, GSI1SK, PK, SK};

/// The global secondary index of ENI records by instance: partition key
/// `gsi1pk` = `I#<instance id>`, sort key `gsi1sk` = `E#<eni id>`, all
/// attributes projected.
pub const INSTANCE_INDEX: &str = "by_instance";

/// How long [`create_table`] waits for a new table to become active.
const ACTIVE_WAIT: Duration = Duration::from_secs(300);

fn string_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)
}

fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().map_err(build_error)
}

/// Creates the ownership table if it does not exist: on-demand capacity
/// (PAY_PER_REQUEST), key `pk`/`sk`, the [`INSTANCE_INDEX`] GSI, and TTL on
/// `expires_at`. Waits until the table is active. An existing table is
/// left as it is (only TTL is switched on if it is off); its key schema is
/// not checked.
pub async fn create_table(client: &Client, table: &str) -> StoreResult<()> {
    let index = GlobalSecondaryIndex::builder()
        .index_name(INSTANCE_INDEX)
        .key_schema(key_element(GSI1PK, KeyType::Hash)?)
        .key_schema(key_element(GSI1SK, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(build_error)?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute(PK)?)
        .attribute_definitions(string_attribute(SK)?)
        .attribute_definitions(string_attribute(GSI1PK)?)
        .attribute_definitions(string_attribute(GSI1SK)?)
        .key_schema(key_element(PK, KeyType::Hash)?)
        .key_schema(key_element(SK, KeyType::Range)?)
        .global_secondary_indexes(index)
        .send()
        .await;
    match created {
        Ok(_) => tracing::info!(table, "created the ownership table"),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {
            tracing::info!(table, "the ownership table exists");
        }
        Err(e) => return Err(store_error("CreateTable", e)),
    }
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(ACTIVE_WAIT)
        .await
        .map_err(|e| StoreError::Transient(format!("waiting for table {table} to become active: {e}")))?;

    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| store_error("DescribeTimeToLive", e))?;
    let status = ttl.time_to_live_description().and_then(|d| d.time_to_live_status());
    if matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)) {
        return Ok(());
    }
    let spec =
        TimeToLiveSpecification::builder().enabled(true).attribute_name(EXPIRES_AT).build().map_err(build_error)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| store_error("UpdateTimeToLive", e))?;
    Ok(())
}
