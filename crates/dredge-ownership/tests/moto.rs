//! The Lambda's real wiring against the moto server that `scripts/test`
//! starts (`AWS_ENDPOINT_URL`): the SDK configuration from `dredge-aws`,
//! the DynamoDB store, and the EC2 describer (DescribeNetworkInterfaces,
//! DescribeInstances) behind the same handler. Without the emulator the test
//! says SKIPPED and passes; under `CI=true` it fails instead.

#![cfg(feature = "lambda")]

use std::net::IpAddr;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use dredge_aws::DynamoOwnershipStore;
use dredge_core::ownership::{AddressKey, OwnerKind, OwnershipStore, Scope, SnapshotScope, TagPolicy, UnixTime};
use dredge_lambda::emf::Sink;
use dredge_lambda::Reporter;
use dredge_ownership::ec2::Ec2Api;
use dredge_ownership::{Disposition, Ec2Describer, Handler, Reported};
use serde_json::json;

async fn moto(test: &str) -> Option<aws_config::SdkConfig> {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: AWS_ENDPOINT_URL is not set; run the tests through scripts/test");
        }
        eprintln!("{test}: SKIPPED, no moto server (AWS_ENDPOINT_URL unset); run scripts/test");
        return None;
    }
    Some(dredge_lambda::entry::sdk_config().await)
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn rfc3339(t: UnixTime) -> String {
    t.to_string()
}

#[tokio::test]
async fn the_lambda_wiring_against_moto() {
    let Some(sdk) = moto("the_lambda_wiring_against_moto").await else { return };
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique("ownership");
    dredge_aws::create_table(&dynamodb, &table).await.expect("create the ownership table");

    // An instance of an auto scaling group, and a bare ENI with two
    // addresses and an app tag.
    let image = ec2.describe_images().owners("amazon").send().await.unwrap().images()[0].image_id().unwrap().to_owned();
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(Tag::builder().key("aws:autoscaling:groupName").value("billing-prod-v007").build())
        .tags(Tag::builder().key("team").value("payments").build())
        .build();
    let launched = ec2.run_instances().image_id(image).min_count(1).max_count(1).tag_specifications(tags).send().await;
    let instance = launched.expect("run_instances").instances()[0].clone();
    let instance_id = instance.instance_id().unwrap().to_owned();
    let vpc = instance.vpc_id().unwrap().to_owned();
    let instance_ip: IpAddr = instance.private_ip_address().unwrap().parse().unwrap();
    let bare = ec2
        .create_network_interface()
        .subnet_id(instance.subnet_id().unwrap())
        .secondary_private_ip_address_count(1)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::NetworkInterface)
                .tags(Tag::builder().key("app").value("ledger").build())
                .build(),
        )
        .send()
        .await
        .expect("create_network_interface");
    let bare = bare.network_interface().unwrap();
    let bare_id = bare.network_interface_id().unwrap().to_owned();
    let bare_ips: Vec<IpAddr> =
        bare.private_ip_addresses().iter().map(|p| p.private_ip_address().unwrap().parse().unwrap()).collect();
    assert_eq!(bare_ips.len(), 2);

    let describer = Ec2Api::new(ec2.clone());
    let described = describer.describe_instance(&instance_id).await.expect("describe the instance");
    assert_eq!(described.len(), 1);
    assert_eq!(described[0].private_addresses, [instance_ip]);
    assert_eq!(described[0].tags.get("team").map(String::as_str), Some("payments"), "instance tags merged");

    let store = DynamoOwnershipStore::new(dynamodb.clone(), table.clone());
    let (sink, metrics) = Sink::memory();
    let handler = Reported::new(Handler::new(store, describer, TagPolicy::default()), Reporter::new("ownership", sink));
    let key = |ip: IpAddr| AddressKey::new(Scope::of(ip, Some(&vpc)).unwrap(), ip);
    let now = UnixTime::now();
    // The instance started a minute and a half ago: a describe now still
    // stands for that time (`DESCRIBE_FRESH_SECONDS`).
    let (started, seeded, gone) = (UnixTime(now.0 - 90), UnixTime(now.0 - 60), UnixTime(now.0 - 30));

    // The instance comes up: the table knows none of its ENIs, so EC2 is
    // asked.
    let running = json!({
        "version": "0", "id": "moto-1", "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2", "account": "123456789012", "time": rfc3339(started), "region": "us-east-1",
        "resources": [], "detail": {"instance-id": instance_id, "state": "running"}
    });
    let s = handler.handle(running).await.expect("state change");
    let addresses = described[0].addresses().count() as u64;
    assert_eq!(
        (s.result, s.stats.needs_describe, s.described_enis, s.stats.opened),
        (Disposition::Applied, 1, 1, addresses)
    );
    let owner = handler.store().lookup(&[(key(instance_ip), seeded)]).await.unwrap().pop().unwrap().unwrap();
    assert_eq!(owner.kind, OwnerKind::Instance);
    assert_eq!(owner.instance_id.as_deref(), Some(instance_id.as_str()));
    assert_eq!((owner.app.as_deref(), owner.cluster.as_deref()), (Some("billing"), Some("billing-prod")));

    // A reconcile learns the bare ENI (and whatever else moto holds).
    let scope = SnapshotScope { account_id: Some("123456789012".into()), region: Some("us-east-1".into()) };
    let reconcile = json!({"reconcile": true, "at": seeded.0});
    let s = handler.handle_in(reconcile.clone(), &scope).await.expect("reconcile");
    let r = s.reconcile.unwrap();
    assert!(r.enis >= 2 && r.opened >= 2 && r.unchanged >= 1, "{r:?}");
    for ip in &bare_ips {
        let owner = handler.store().lookup(&[(key(*ip), seeded)]).await.unwrap().pop().unwrap().unwrap();
        assert_eq!((owner.eni_id.as_str(), owner.app.as_deref()), (bare_id.as_str(), Some("ledger")));
        assert_eq!(owner.account_id.as_deref(), Some("123456789012"));
    }
    let again = handler.handle_in(reconcile, &scope).await.unwrap().reconcile.unwrap();
    assert_eq!((again.opened, again.closed), (0, 0), "{again:?}");

    // The bare ENI is deleted: the next reconcile closes its addresses.
    ec2.delete_network_interface().network_interface_id(&bare_id).send().await.expect("delete_network_interface");
    let s = handler.handle_in(json!({"reconcile": true, "at": gone.0}), &scope).await.unwrap();
    assert!(s.reconcile.unwrap().closed >= 2);
    for ip in &bare_ips {
        assert!(handler.store().lookup(&[(key(*ip), gone)]).await.unwrap()[0].is_none());
        assert!(handler.store().lookup(&[(key(*ip), seeded)]).await.unwrap()[0].is_some(), "history is kept");
    }
    let lines = String::from_utf8(metrics.lock().unwrap().clone()).unwrap();
    assert_eq!(lines.lines().count(), 4, "one EMF line per invocation");

    ec2.terminate_instances().instance_ids(&instance_id).send().await.unwrap();
    dynamodb.delete_table().table_name(&table).send().await.unwrap();
}
