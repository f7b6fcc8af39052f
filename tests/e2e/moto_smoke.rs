//! Proves the emulator path: the AWS SDK for Rust against the moto server.

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};

#[tokio::test]
async fn dynamodb_create_and_describe_table() {
    let Some(config) = dredge_tests::moto_config("dynamodb_create_and_describe_table").await else {
        return;
    };
    let client = aws_sdk_dynamodb::Client::new(&config);
    let name = dredge_tests::unique_name("smoke");
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .expect("create_table");
    let described = client.describe_table().table_name(&name).send().await.expect("describe_table");
    let table = described.table().expect("table description");
    assert_eq!(table.table_name(), Some(name.as_str()));
    assert_eq!(table.key_schema()[0].attribute_name(), "pk");
    client.delete_table().table_name(&name).send().await.expect("delete_table");
}
