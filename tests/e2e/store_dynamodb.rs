//! The ownership store conformance suite against `DynamoOwnershipStore` on
//! the moto server (a fresh table per store), with the default head size and
//! with a head of two marks (so most lookups take the Query fallback), plus
//! what only DynamoDB has: round trips, unprocessed keys, TTL, the head
//! item, concurrent writers and error mapping.

#[macro_use]
#[path = "../conformance/mod.rs"]
mod conformance;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextMut};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, KeysAndAttributes, TimeToLiveStatus};
use aws_sdk_dynamodb::Client;
use conformance::{at, close, in_vpc, open, owner, T0};
use dredge_aws::{create_table, DynamoOwnershipStore, DEFAULT_HEAD_MARKS, INSTANCE_INDEX};
use dredge_core::ownership::{
    AddressKey, Eni, EniRecord, EniRef, EniWrite, InstanceRecord, Mark, OwnershipStore, StoreError, Timeline, UnixTime,
};

type StoreFuture = Pin<Box<dyn Future<Output = DynamoOwnershipStore> + Send>>;

async fn fresh_store(client: Client, head_marks: usize) -> DynamoOwnershipStore {
    let table = dredge_tests::unique_name("ownership");
    create_table(&client, &table).await.expect("create_table");
    DynamoOwnershipStore::new(client, table).with_head_marks(head_marks)
}

fn factory(client: Client, head_marks: usize) -> impl Fn() -> StoreFuture {
    move || Box::pin(fresh_store(client.clone(), head_marks))
}

async fn moto_client(case: &str) -> Option<Client> {
    Some(Client::new(&dredge_tests::moto_config(case).await?))
}

async fn dynamodb(case: &str) -> Option<impl Fn() -> StoreFuture> {
    Some(factory(moto_client(case).await?, DEFAULT_HEAD_MARKS))
}

conformance_suite!(dynamodb);

/// The whole suite again with heads of two marks: nearly every lookup in
/// the past and every late delivery goes through the mark items.
mod head_of_two {
    use super::*;

    async fn dynamodb(case: &str) -> Option<impl Fn() -> StoreFuture> {
        Some(factory(moto_client(case).await?, 2))
    }

    conformance_suite!(dynamodb);
}

// ---- instrumentation --------------------------------------------------------

/// Records the operation of every HTTP request the client sends (retries
/// included): the round trips.
#[derive(Debug, Clone, Default)]
struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "CountRoundTrips"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(operation(context).to_owned());
        Ok(())
    }
}

/// The DynamoDB operation a request calls (`DynamoDB_20120810.UpdateItem`
/// in its `x-amz-target` header): `UpdateItem`.
fn operation<'a>(context: &'a BeforeTransmitInterceptorContextRef<'_>) -> &'a str {
    let target = context.request().headers().get("x-amz-target").unwrap_or("?");
    target.rsplit('.').next().unwrap_or(target)
}

/// Once armed, makes the next BatchGetItem answer look like DynamoDB under
/// pressure: half its items moved to `UnprocessedKeys`.
#[derive(Debug, Clone, Default)]
struct LeaveHalfUnprocessed {
    armed: Arc<AtomicBool>,
}

impl LeaveHalfUnprocessed {
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

impl Intercept for LeaveHalfUnprocessed {
    fn name(&self) -> &'static str {
        "LeaveHalfUnprocessed"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Ok(output)) = context.output_or_error_mut() else { return Ok(()) };
        let Some(out) = output.downcast_mut::<BatchGetItemOutput>() else { return Ok(()) };
        if !self.armed.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let mut unprocessed = HashMap::new();
        for (table, items) in out.responses.iter_mut().flatten() {
            let moved = items.split_off(items.len() / 2);
            let keys: Vec<HashMap<String, AttributeValue>> = moved
                .into_iter()
                .map(|item| item.into_iter().filter(|(name, _)| name == "pk" || name == "sk").collect())
                .collect();
            unprocessed.insert(
                table.clone(),
                KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build()?,
            );
        }
        out.unprocessed_keys = Some(unprocessed);
        Ok(())
    }
}

/// Once armed, holds the next UpdateItem the client sends until released:
/// a writer whose update lands after another writer's.
#[derive(Debug, Clone, Default)]
struct HoldNextUpdate {
    armed: Arc<AtomicBool>,
    /// 0 idle, 1 holding, 2 released.
    state: Arc<(Mutex<u8>, Condvar)>,
}

impl HoldNextUpdate {
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    fn set(&self, state: u8) {
        *self.state.0.lock().unwrap() = state;
        self.state.1.notify_all();
    }

    async fn holding(&self) {
        for _ in 0..3000 {
            if *self.state.0.lock().unwrap() == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no UpdateItem was held");
    }

    fn release(&self) {
        self.set(2);
    }
}

impl Intercept for HoldNextUpdate {
    fn name(&self) -> &'static str {
        "HoldNextUpdate"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if operation(context) != "UpdateItem" || !self.armed.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        self.set(1);
        // Blocks the thread: the writer runs on a runtime of its own.
        let (lock, released) = &*self.state;
        let guard = lock.lock().unwrap();
        let (state, _) = released.wait_timeout_while(guard, Duration::from_secs(30), |s| *s != 2).unwrap();
        if *state != 2 {
            return Err("held UpdateItem never released".into());
        }
        Ok(())
    }
}

/// A store on a fresh table whose client reports its round trips.
async fn instrumented(
    case: &str,
    head_marks: usize,
    extra: Option<LeaveHalfUnprocessed>,
) -> Option<(DynamoOwnershipStore, Calls)> {
    let config = dredge_tests::moto_config(case).await?;
    let calls = Calls::default();
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&config).interceptor(calls.clone());
    if let Some(e) = extra {
        builder = builder.interceptor(e);
    }
    let store = fresh_store(Client::from_conf(builder.build()), head_marks).await;
    calls.take();
    Some((store, calls))
}

fn count(calls: &[String]) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for c in calls {
        match counts.iter_mut().find(|(name, _)| name == c) {
            Some((_, n)) => *n += 1,
            None => counts.push((c.clone(), 1)),
        }
    }
    counts
}

async fn lookup_apps(store: &DynamoOwnershipStore, queries: &[(AddressKey, i64)]) -> Vec<Option<String>> {
    let queries: Vec<(AddressKey, UnixTime)> = queries.iter().map(|(k, t)| (k.clone(), at(*t))).collect();
    conformance::apps(&store.lookup(&queries).await.expect("lookup"))
}

/// Marks to store, then queries and their expected apps.
type Workload = (Vec<(AddressKey, Mark)>, Vec<(AddressKey, i64)>, Vec<Option<String>>);

/// 100 addresses: odd ones owned by app-i since T0, even ones released at
/// T0+100 and reused by "reused" at T0+200; one query per address, at
/// different times, with mixed answers.
fn hundred_addresses(prefix: &str) -> Workload {
    let key = |i: i64| in_vpc("vpc-1", &format!("{prefix}.{i}"));
    let mut marks = Vec::new();
    let mut queries = Vec::new();
    let mut want = Vec::new();
    for i in 0..100 {
        let eni = format!("eni-{i}");
        let app = format!("app-{i}");
        marks.push((key(i), open(T0, &eni, &app)));
        if i % 2 == 0 {
            marks.push((key(i), close(T0 + 100, &eni)));
            marks.push((key(i), open(T0 + 200, &format!("eni-r{i}"), "reused")));
        }
        let (t, owner) = match i % 8 {
            0 => (T0 + 300, Some("reused".to_owned())),
            4 => (T0 + 50, Some(app)),
            2 | 6 => (T0 + 150, None),
            1 | 5 => (T0 - 10, None),
            _ => (T0 + 250, Some(app)),
        };
        queries.push((key(i), t));
        want.push(owner);
    }
    (marks, queries, want)
}

async fn raw_item(store: &DynamoOwnershipStore, pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get_item")
        .item
        .unwrap_or_else(|| panic!("no item {pk} / {sk}"))
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name).map(|v| v.as_n().expect("a number").parse().expect("an integer"))
}

async fn expires_at_of(store: &DynamoOwnershipStore, key: &AddressKey, mark: &Mark) -> Option<i64> {
    let pk = format!("A#{}#{}", key.scope, key.address);
    number(&raw_item(store, &pk, &format!("M#{}", mark.sort_key())).await, "expires_at")
}

async fn head_of(store: &DynamoOwnershipStore, key: &AddressKey) -> HashMap<String, AttributeValue> {
    raw_item(store, &format!("A#{}#{}", key.scope, key.address), "HEAD").await
}

fn head_marks(head: &HashMap<String, AttributeValue>) -> Timeline {
    serde_json::from_str(head["marks"].as_s().expect("marks is a string")).expect("marks JSON")
}

// ---- DynamoDB-only tests ---------------------------------------------------------

#[tokio::test]
async fn warm_lookup_of_100_addresses_is_one_round_trip() {
    let Some((store, calls)) =
        instrumented("warm_lookup_of_100_addresses_is_one_round_trip", DEFAULT_HEAD_MARKS, None).await
    else {
        return;
    };
    let (marks, queries, want) = hundred_addresses("10.2.0");
    store.put_marks(&marks).await.expect("put_marks");
    eprintln!("put_marks: {} marks on 100 new addresses: {:?}", marks.len(), count(&calls.take()));

    assert_eq!(lookup_apps(&store, &queries).await, want);
    assert_eq!(calls.take(), vec!["BatchGetItem"], "100 distinct warm addresses: one BatchGetItem");

    // Several times per address (300 queries, 100 addresses): still one.
    let mut many = queries.clone();
    many.extend(queries.iter().map(|(k, t)| (k.clone(), t + 1)));
    many.extend(queries.iter().map(|(k, _)| (k.clone(), T0 + 1_000)));
    let answers = lookup_apps(&store, &many).await;
    assert_eq!(&answers[..100], &want[..]);
    assert_eq!(calls.take(), vec!["BatchGetItem"]);

    // Replaying the same marks: reads, conditional writes that fail, no head writes.
    store.put_marks(&marks).await.expect("replay");
    let replay = count(&calls.take());
    eprintln!("put_marks replay: {replay:?}");
    assert!(replay.iter().any(|(op, n)| op == "BatchGetItem" && *n == 1), "{replay:?}");
    assert!(
        replay.iter().all(|(op, n)| op != "PutItem" || *n == marks.len()),
        "only the refused mark puts: {replay:?}"
    );
}

#[tokio::test]
async fn unprocessed_keys_are_retried() {
    let trouble = LeaveHalfUnprocessed::default();
    let Some((store, calls)) =
        instrumented("unprocessed_keys_are_retried", DEFAULT_HEAD_MARKS, Some(trouble.clone())).await
    else {
        return;
    };
    let (marks, queries, want) = hundred_addresses("10.4.0");
    store.put_marks(&marks).await.expect("put_marks");
    calls.take();

    trouble.arm();
    assert_eq!(lookup_apps(&store, &queries).await, want);
    assert_eq!(calls.take(), vec!["BatchGetItem", "BatchGetItem"], "the unprocessed half asked again");

    // Writes read heads the same way.
    trouble.arm();
    let more: Vec<_> = marks.iter().map(|(k, _)| (k.clone(), close(T0 + 5_000, "eni-nobody"))).collect();
    store.put_marks(&more).await.expect("put_marks with unprocessed keys");
    assert_eq!(count(&calls.take()).into_iter().find(|(op, _)| op == "BatchGetItem"), Some(("BatchGetItem".into(), 2)));
    assert_eq!(lookup_apps(&store, &queries).await, want);
}

/// The store's own count of its requests (`calls`, behind the enricher's
/// `StoreCalls`) is what its client sent: every operation, every page of a
/// Query or Scan, every BatchGetItem retry of unprocessed keys.
#[tokio::test]
async fn the_call_count_is_the_requests_sent() {
    let trouble = LeaveHalfUnprocessed::default();
    let Some((store, calls)) =
        instrumented("the_call_count_is_the_requests_sent", DEFAULT_HEAD_MARKS, Some(trouble.clone())).await
    else {
        return;
    };
    let mut counted = store.calls();
    let mut sent = |what: &str| -> Vec<String> {
        let sent = calls.take();
        let now = store.calls();
        assert_eq!(now - counted, sent.len() as u64, "{what}: {sent:?}");
        counted = now;
        sent
    };
    let (marks, queries, want) = hundred_addresses("10.10.0");
    store.put_marks(&marks).await.expect("put_marks");
    sent("put_marks");
    trouble.arm();
    assert_eq!(lookup_apps(&store, &queries).await, want);
    assert_eq!(sent("lookup with unprocessed keys"), ["BatchGetItem", "BatchGetItem"]);
    let keys: Vec<AddressKey> = queries.iter().map(|(k, _)| k.clone()).collect();
    store.heads(&keys).await.expect("heads");
    assert_eq!(sent("heads"), ["BatchGetItem"]);

    // An owner behind 70 closes of other ENIs: three pages of history
    // (32 marks each) read backwards.
    let long = in_vpc("vpc-1", "10.10.1.1");
    let mut history = vec![(long.clone(), open(T0, "eni-a", "alpha"))];
    history.extend((1..=70).map(|i| (long.clone(), close(T0 + i, &format!("eni-x{i}")))));
    // And cycles of owners, where the first page explains a recent time
    // and the next pages are never asked for.
    let cycles = in_vpc("vpc-1", "10.10.1.2");
    for i in 0..40 {
        let eni = format!("eni-c{i}");
        history.push((cycles.clone(), open(T0 + 10 * i, &eni, &format!("app-{i}"))));
        history.push((cycles.clone(), close(T0 + 10 * i + 5, &eni)));
    }
    store.put_marks(&history).await.expect("put_marks");
    sent("put_marks of long histories");
    assert_eq!(lookup_apps(&store, &[(long.clone(), T0 + 80)]).await, [Some("alpha".to_owned())]);
    assert_eq!(sent("a lookup three pages back"), ["BatchGetItem", "Query", "Query", "Query"]);
    assert_eq!(lookup_apps(&store, &[(cycles.clone(), T0 + 302)]).await, [Some("app-30".to_owned())]);
    assert_eq!(sent("a lookup the first page explains"), ["BatchGetItem", "Query"]);
    assert_eq!(store.timeline(&long).await.expect("timeline").marks().len(), 71);
    sent("timeline");
    assert_eq!(store.timelines().await.expect("timelines").len(), 102);
    sent("timelines");

    let mut eni = Eni::new("eni-counted");
    eni.attachment_id = Some("eni-attach-counted".into());
    eni.instance_id = Some("i-counted".into());
    assert_eq!(store.put_eni(&EniRecord::new(eni.clone(), at(T0))).await.expect("put_eni"), EniWrite::Written);
    sent("put_eni");
    eni.attachment_id = Some("eni-attach-other".into());
    let next = EniRecord { version: 1, ..EniRecord::new(eni, at(T0 + 1)) };
    assert_eq!(store.put_eni(&next).await.expect("put_eni dropping an alias"), EniWrite::Written);
    assert_eq!(sent("put_eni dropping an alias"), ["PutItem", "PutItem", "DeleteItem"]);
    let by_attachment = EniRef::Attachment("eni-attach-other".into());
    assert!(store.eni(&by_attachment).await.expect("eni").is_some());
    assert_eq!(sent("eni by attachment"), ["GetItem", "GetItem"]);
    store.enis_by_id(&["eni-counted".into(), "eni-unknown".into()]).await.expect("enis_by_id");
    sent("enis_by_id");
    assert_eq!(store.enis_of_instance("i-counted").await.expect("enis_of_instance").len(), 1);
    sent("enis_of_instance");
    assert_eq!(store.enis().await.expect("enis").len(), 1);
    sent("enis");
    store
        .put_instance(&InstanceRecord { instance_id: "i-counted".into(), running: true, changed_at: at(T0) })
        .await
        .unwrap();
    sent("put_instance");
    assert!(store.instance("i-counted").await.expect("instance").is_some());
    sent("instance");
    // Clones share the count.
    let clone = store.clone();
    clone.instance("i-counted").await.expect("instance");
    assert_eq!(sent("through a clone"), ["GetItem"]);
}

#[tokio::test]
async fn lookups_the_head_cannot_explain_query_the_marks() {
    let Some((store, calls)) = instrumented("lookups_the_head_cannot_explain_query_the_marks", 2, None).await else {
        return;
    };
    let key = in_vpc("vpc-1", "10.5.0.1");
    let marks = [
        open(T0, "eni-a", "alpha"),
        close(T0 + 60, "eni-a"),
        open(T0 + 100, "eni-b", "beta"),
        close(T0 + 160, "eni-b"),
        open(T0 + 200, "eni-c", "gamma"),
    ];
    let batch: Vec<_> = marks.iter().map(|m| (key.clone(), m.clone())).collect();
    store.put_marks(&batch).await.expect("put_marks");
    let head = head_of(&store, &key).await;
    assert_eq!(head_marks(&head), Timeline::from_marks(marks[3..].to_vec()));
    assert_eq!(head["complete"].as_bool(), Ok(&false));
    assert!(number(&head, "version").is_some());
    calls.take();

    assert_eq!(lookup_apps(&store, &[(key.clone(), T0 + 250)]).await, vec![Some("gamma".into())]);
    assert_eq!(calls.take(), vec!["BatchGetItem"], "explained by the head");
    assert_eq!(lookup_apps(&store, &[(key.clone(), T0 + 170)]).await, vec![None]);
    assert_eq!(calls.take(), vec!["BatchGetItem", "Query"], "a close without its open: ask the history");
    assert_eq!(
        lookup_apps(&store, &[(key.clone(), T0 + 30), (key.clone(), T0 + 130)]).await,
        vec![Some("alpha".into()), Some("beta".into())]
    );
    assert_eq!(calls.take(), vec!["BatchGetItem", "Query", "Query"]);
    // A new address has a complete head: before its first mark is known free.
    let fresh = in_vpc("vpc-1", "10.5.0.2");
    store.put_marks(&[(fresh.clone(), open(T0, "eni-f", "fresh"))]).await.expect("put_marks");
    calls.take();
    assert_eq!(lookup_apps(&store, &[(fresh.clone(), T0 - 100)]).await, vec![None]);
    assert_eq!(calls.take(), vec!["BatchGetItem"]);
}

#[tokio::test]
async fn ended_intervals_carry_a_ttl() {
    let Some(client) = moto_client("ended_intervals_carry_a_ttl").await else { return };
    let day = 86_400;
    let store = fresh_store(client.clone(), DEFAULT_HEAD_MARKS).await.with_retention(Duration::from_secs(day as u64));
    let ttl = client.describe_time_to_live().table_name(store.table()).send().await.expect("describe_time_to_live");
    let ttl = ttl.time_to_live_description().expect("TTL description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));

    // In order: the close and the open it ends expire a day after the close.
    let key = in_vpc("vpc-1", "10.6.0.1");
    let (a, a_end, b) = (open(T0, "eni-a", "alpha"), close(T0 + 600, "eni-a"), open(T0 + 900, "eni-b", "beta"));
    store.put_marks(&[(key.clone(), a.clone()), (key.clone(), a_end.clone()), (key.clone(), b.clone())]).await.unwrap();
    assert_eq!(expires_at_of(&store, &key, &a_end).await, Some(T0 + 600 + day));
    assert_eq!(expires_at_of(&store, &key, &a).await, Some(T0 + 600 + day));
    assert_eq!(expires_at_of(&store, &key, &b).await, None, "the current owner never expires");
    assert_eq!(number(&head_of(&store, &key).await, "expires_at"), None);

    // A superseding open ends the current one; a close of the last owner
    // makes the whole address (head included) expire.
    let c = open(T0 + 2_000, "eni-c", "gamma");
    store.put_marks(&[(key.clone(), c.clone())]).await.unwrap();
    assert_eq!(expires_at_of(&store, &key, &b).await, Some(T0 + 2_000 + day));
    assert_eq!(expires_at_of(&store, &key, &c).await, None);
    let c_end = close(T0 + 3_000, "eni-c");
    store.put_marks(&[(key.clone(), c_end.clone())]).await.unwrap();
    assert_eq!(expires_at_of(&store, &key, &c).await, Some(T0 + 3_000 + day));
    assert_eq!(number(&head_of(&store, &key).await, "expires_at"), Some(T0 + 3_000 + day));
    // Still answered until the service deletes it.
    assert_eq!(lookup_apps(&store, &[(key.clone(), T0 + 1)]).await, vec![Some("alpha".into())]);

    // Out of order: the open arrives after the close that ends it, and a
    // late close moves an end earlier (never later).
    let late = in_vpc("vpc-1", "10.6.0.2");
    store.put_marks(&[(late.clone(), a_end.clone())]).await.unwrap();
    store.put_marks(&[(late.clone(), a.clone())]).await.unwrap();
    assert_eq!(expires_at_of(&store, &late, &a).await, Some(T0 + 600 + day));
    let earlier = in_vpc("vpc-1", "10.6.0.3");
    store.put_marks(&[(earlier.clone(), a.clone()), (earlier.clone(), b.clone())]).await.unwrap();
    assert_eq!(expires_at_of(&store, &earlier, &a).await, Some(T0 + 900 + day));
    store.put_marks(&[(earlier.clone(), a_end.clone())]).await.unwrap();
    assert_eq!(expires_at_of(&store, &earlier, &a).await, Some(T0 + 600 + day));
    store.put_marks(&[(earlier.clone(), b.clone())]).await.unwrap();
    assert_eq!(expires_at_of(&store, &earlier, &a).await, Some(T0 + 600 + day), "replay keeps the earliest end");

    // Deleted ENIs and stopped instances expire too; live ones do not.
    let mut eni = Eni::new("eni-gone");
    eni.attachment_id = Some("eni-attach-gone".into());
    let mut record = EniRecord::new(eni, at(T0));
    assert_eq!(store.put_eni(&record).await.unwrap(), EniWrite::Written);
    assert_eq!(number(&raw_item(&store, "E#eni-gone", "ENI").await, "expires_at"), None);
    record.deleted_at = Some(at(T0 + 50));
    record.version = 1;
    assert_eq!(store.put_eni(&record).await.unwrap(), EniWrite::Written);
    assert_eq!(number(&raw_item(&store, "E#eni-gone", "ENI").await, "expires_at"), Some(T0 + 50 + day));
    assert_eq!(number(&raw_item(&store, "ATT#eni-attach-gone", "ALIAS").await, "expires_at"), Some(T0 + 50 + day));
    store.put_instance(&InstanceRecord { instance_id: "i-1".into(), running: true, changed_at: at(T0) }).await.unwrap();
    assert_eq!(number(&raw_item(&store, "I#i-1", "INSTANCE").await, "expires_at"), None);
    store
        .put_instance(&InstanceRecord { instance_id: "i-1".into(), running: false, changed_at: at(T0 + 9) })
        .await
        .unwrap();
    assert_eq!(number(&raw_item(&store, "I#i-1", "INSTANCE").await, "expires_at"), Some(T0 + 9 + day));
}

#[tokio::test]
async fn late_history_beyond_the_head_is_dated_too() {
    let Some(client) = moto_client("late_history_beyond_the_head_is_dated_too").await else { return };
    let retention = 30 * 86_400;
    let store = fresh_store(client, 2).await;
    let key = in_vpc("vpc-1", "10.9.0.1");
    let mut marks = Vec::new();
    for c in 0..5 {
        let eni = format!("eni-{c}");
        marks.push(open(T0 + c * 100, &eni, &format!("app-{c}")));
        // Attached meanwhile: the relabel ends with the holding.
        marks.push(Mark::relabel(at(T0 + c * 100 + 30), owner(&eni, "attached")));
        marks.push(close(T0 + c * 100 + 60, &eni));
    }
    // Newest first, one at a time: every older mark lands behind the head.
    for m in marks.iter().rev() {
        store.put_marks(&[(key.clone(), m.clone())]).await.expect("put_marks");
    }
    // An open whose end arrives after closes of other ENIs pushed it out.
    let other = in_vpc("vpc-1", "10.9.0.2");
    let held = open(T0, "eni-h", "held");
    for m in [held.clone(), close(T0 + 10, "eni-x"), close(T0 + 20, "eni-y"), close(T0 + 30, "eni-h")] {
        store.put_marks(&[(other.clone(), m)]).await.expect("put_marks");
    }
    for m in &marks {
        let end = m.at().0 - m.at().0 % 100 + 60;
        assert_eq!(expires_at_of(&store, &key, m).await, Some(end + retention), "{m:?}");
    }
    assert_eq!(expires_at_of(&store, &other, &held).await, Some(T0 + 30 + retention));
}

/// An instance's end dates the open of its interface; a detach learned
/// afterwards, from before the end, shows the interface was spared: the
/// open is dated afresh, later or not at all (a head of two marks: the
/// same through the history behind it).
#[tokio::test]
async fn a_detach_learned_after_an_instance_end_dates_the_open_afresh() {
    let Some(client) = moto_client("a_detach_learned_after_an_instance_end_dates_the_open_afresh").await else {
        return;
    };
    let retention = 30 * 86_400;
    for head_marks in [DEFAULT_HEAD_MARKS, 2] {
        let store = fresh_store(client.clone(), head_marks).await;
        let key = in_vpc("vpc-1", "10.9.1.1");
        let attached = owner("eni-d", "app");
        let open = Mark::Open { at: at(T0), owner: attached.clone() };
        let end = Mark::Close {
            at: at(T0 + 300),
            eni_id: "eni-d".into(),
            instance_id: attached.instance_id.clone(),
            found_gone: false,
            spared: false,
        };
        store.put_marks(&[(key.clone(), open.clone()), (key.clone(), end.clone())]).await.expect("put_marks");
        assert_eq!(expires_at_of(&store, &key, &open).await, Some(T0 + 300 + retention), "ended by its instance");
        let mut bare = attached.clone();
        bare.instance_id = None;
        let detach = Mark::relabel(at(T0 + 200), bare.clone());
        store.put_marks(&[(key.clone(), detach.clone())]).await.expect("put_marks");
        assert_eq!(expires_at_of(&store, &key, &open).await, None, "head of {head_marks}: held on, detached");
        assert_eq!(expires_at_of(&store, &key, &detach).await, None);
        let owners = store.lookup(&[(key.clone(), at(T0 + 400))]).await.expect("lookup");
        assert_eq!(owners[0].as_ref().map(|o| o.instance_id.clone()), Some(None), "the bare interface");
        // The same with a later open (a reconcile's) already there when the
        // detach arrives: the open ends there now, later than it was dated.
        let key = in_vpc("vpc-1", "10.9.1.2");
        let reconciled = Mark::Open { at: at(T0 + 800), owner: bare };
        store.put_marks(&[(key.clone(), open.clone()), (key.clone(), end.clone())]).await.expect("put_marks");
        store.put_marks(&[(key.clone(), reconciled)]).await.expect("put_marks");
        assert_eq!(expires_at_of(&store, &key, &open).await, Some(T0 + 300 + retention));
        store.put_marks(&[(key.clone(), detach.clone())]).await.expect("put_marks");
        assert_eq!(expires_at_of(&store, &key, &open).await, Some(T0 + 800 + retention), "head of {head_marks}");
    }
}

/// Two writers race on one open's date: one merges an instance's end
/// (which dates the open) from a head without the detach the other merges
/// next (which shows the end did not reach the interface). The first
/// writer's update is held until the second is done: the date told from
/// the older head does not land over the newer one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_date_told_from_an_older_head_never_lands_over_a_newer_ones() {
    let case = "a_date_told_from_an_older_head_never_lands_over_a_newer_ones";
    let Some(config) = dredge_tests::moto_config(case).await else { return };
    let store = fresh_store(Client::new(&config), DEFAULT_HEAD_MARKS).await;
    let hold = HoldNextUpdate::default();
    let key = in_vpc("vpc-1", "10.9.2.1");
    let attached = owner("eni-d", "app");
    let open = Mark::Open { at: at(T0), owner: attached.clone() };
    store.put_marks(&[(key.clone(), open.clone())]).await.expect("put_marks");
    let end = Mark::Close {
        at: at(T0 + 300),
        eni_id: "eni-d".into(),
        instance_id: attached.instance_id.clone(),
        found_gone: false,
        spared: false,
    };
    hold.arm();
    // On a thread and runtime of its own, with its own client: the held
    // request blocks nothing the test needs (a blocked worker of the
    // test's runtime can stall its timers).
    let writer = std::thread::spawn({
        let (hold, table, batch) = (hold.clone(), store.table().to_owned(), vec![(key.clone(), end)]);
        move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let config = dredge_tests::moto_config(case).await.expect("moto");
                let conf = aws_sdk_dynamodb::config::Builder::from(&config).interceptor(hold).build();
                DynamoOwnershipStore::new(Client::from_conf(conf), table).put_marks(&batch).await
            })
        }
    });
    hold.holding().await;
    let mut bare = attached;
    bare.instance_id = None;
    store.put_marks(&[(key.clone(), Mark::relabel(at(T0 + 200), bare))]).await.expect("put_marks");
    assert_eq!(expires_at_of(&store, &key, &open).await, None, "undated by the newer head");
    hold.release();
    let written = tokio::task::spawn_blocking(move || writer.join()).await.expect("join");
    written.expect("writer thread").expect("put_marks");
    assert_eq!(expires_at_of(&store, &key, &open).await, None, "the older head's date did not land");
}

/// A relabel retold for another instance (a newer basis) replaces the
/// version an instance's close had dated: nothing ends the new one, so it
/// does not keep that date.
#[tokio::test]
async fn a_retold_relabel_does_not_keep_the_replaced_versions_date() {
    let Some(client) = moto_client("a_retold_relabel_does_not_keep_the_replaced_versions_date").await else {
        return;
    };
    let store = fresh_store(client, DEFAULT_HEAD_MARKS).await;
    let key = in_vpc("vpc-1", "10.9.3.1");
    let on = |instance: Option<&str>| {
        let mut o = owner("eni-g", "app");
        o.instance_id = instance.map(str::to_owned);
        o
    };
    let told = |instance: &str, basis: u64| Mark::Relabel { at: at(T0 + 50), owner: on(Some(instance)), basis };
    let end = Mark::Close {
        at: at(T0 + 400),
        eni_id: "eni-g".into(),
        instance_id: Some("i-1".into()),
        found_gone: false,
        spared: false,
    };
    for mark in [Mark::Open { at: at(T0), owner: on(None) }, told("i-1", 3), end] {
        store.put_marks(&[(key.clone(), mark)]).await.expect("put_marks");
    }
    assert!(expires_at_of(&store, &key, &told("i-1", 3)).await.is_some(), "ended by i-1's close");
    store.put_marks(&[(key.clone(), told("i-2", 4))]).await.expect("put_marks");
    let owners = store.lookup(&[(key.clone(), at(T0 + 500))]).await.expect("lookup");
    assert_eq!(owners[0].as_ref().and_then(|o| o.instance_id.clone()).as_deref(), Some("i-2"));
    assert_eq!(expires_at_of(&store, &key, &told("i-2", 4)).await, None, "the current owner's label never expires");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_converge() {
    let Some(client) = moto_client("concurrent_writers_converge").await else { return };
    let store = fresh_store(client, 4).await;
    let key = in_vpc("vpc-1", "10.7.0.1");
    let shared = open(T0 + 10_000, "eni-z", "last");
    let mut all = vec![shared.clone()];
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let eni = format!("eni-{w}");
        let mine = vec![open(T0 + w * 100, &eni, &format!("app-{w}")), close(T0 + w * 100 + 50, &eni), shared.clone()];
        all.extend(mine[..2].iter().cloned());
        let store = store.clone();
        let batch: Vec<_> = mine.into_iter().map(|m| (key.clone(), m)).collect();
        writers.spawn(async move { store.put_marks(&batch).await });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer task").expect("put_marks");
    }
    let everything = Timeline::from_marks(all);
    assert_eq!(store.timeline(&key).await.unwrap(), everything);
    let head = head_of(&store, &key).await;
    assert_eq!(head_marks(&head), everything.latest(4));
    assert_eq!(head["complete"].as_bool(), Ok(&false));
    let mut queries = Vec::new();
    let mut want = Vec::new();
    for w in 0..8 {
        queries.push((key.clone(), T0 + w * 100 + 10));
        want.push(Some(format!("app-{w}")));
        queries.push((key.clone(), T0 + w * 100 + 60));
        want.push(None);
    }
    queries.push((key.clone(), T0 + 20_000));
    want.push(Some("last".into()));
    assert_eq!(lookup_apps(&store, &queries).await, want);
    // Every ended open is dated, whoever wrote what.
    for w in 0..8 {
        let o = open(T0 + w * 100, &format!("eni-{w}"), &format!("app-{w}"));
        assert_eq!(expires_at_of(&store, &key, &o).await, Some(T0 + w * 100 + 50 + 30 * 86_400), "eni-{w}");
    }
}

#[tokio::test]
async fn a_missing_table_is_a_permanent_error() {
    let Some(client) = moto_client("a_missing_table_is_a_permanent_error").await else { return };
    let store = DynamoOwnershipStore::new(client, dredge_tests::unique_name("missing"));
    let key = in_vpc("vpc-1", "10.8.0.1");
    for result in [
        store.lookup(&[(key.clone(), at(T0))]).await.map(drop),
        store.put_marks(&[(key.clone(), open(T0, "eni-a", "alpha"))]).await,
        store.instance("i-1").await.map(drop),
    ] {
        match result {
            Err(StoreError::Permanent(message)) => assert!(message.contains("ResourceNotFound"), "{message}"),
            other => panic!("expected a permanent error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn sdk_config_honours_the_endpoint_environment() {
    if dredge_tests::moto_config("sdk_config_honours_the_endpoint_environment").await.is_none() {
        return;
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("moto_config found it");
    let config = dredge_lambda::entry::sdk_config().await;
    assert_eq!(config.endpoint_url(), Some(endpoint.as_str()));
    let client = Client::new(&config);
    let table = dredge_tests::unique_name("sdkconfig");
    create_table(&client, &table).await.expect("create_table through sdk_config");
    let described = client.describe_table().table_name(&table).send().await.expect("describe_table");
    assert_eq!(described.table().and_then(|t| t.table_name()), Some(table.as_str()));
}

#[tokio::test]
async fn create_table_is_idempotent_and_complete() {
    let Some(client) = moto_client("create_table_is_idempotent_and_complete").await else { return };
    let table = dredge_tests::unique_name("create");
    create_table(&client, &table).await.expect("create");
    create_table(&client, &table).await.expect("create again");
    let described = client.describe_table().table_name(&table).send().await.expect("describe_table");
    let t = described.table().expect("table");
    let keys: Vec<_> = t.key_schema().iter().map(|k| (k.attribute_name(), k.key_type().as_str())).collect();
    assert_eq!(keys, vec![("pk", "HASH"), ("sk", "RANGE")]);
    assert_eq!(t.billing_mode_summary().and_then(|b| b.billing_mode()), Some(&BillingMode::PayPerRequest));
    let index = t.global_secondary_indexes().iter().find(|i| i.index_name() == Some(INSTANCE_INDEX)).expect("GSI");
    let index_keys: Vec<_> = index.key_schema().iter().map(|k| k.attribute_name()).collect();
    assert_eq!(index_keys, vec!["gsi1pk", "gsi1sk"]);
    let ttl = client.describe_time_to_live().table_name(&table).send().await.expect("describe_time_to_live");
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.attribute_name()), Some("expires_at"));
}
