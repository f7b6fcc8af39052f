//! The retry queue against the moto server: messages packed into
//! SendMessageBatch calls and sent through `SqsQueue` come back, when their
//! delay is over, to a raw ReceiveMessage; and what `check_send_batch` and
//! `check_entry` refuse (so `MemoryQueue` too), SQS refuses when sent raw.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use dredge_aws::SqsQueue;
use dredge_core::retry_queue::{batches, check_entry, check_send_batch, QueueMessage, RetryQueue, MAX_BATCH_BYTES};

fn msg(id: &str, body: &str, delay_seconds: u32) -> QueueMessage {
    QueueMessage { id: id.into(), body: body.into(), delay_seconds }
}

async fn create_queue(client: &aws_sdk_sqs::Client) -> String {
    let name = dredge_tests::unique_name("retry");
    let created = client.create_queue().queue_name(&name).send().await.expect("create_queue");
    created.queue_url().expect("queue url").to_owned()
}

/// Bodies received (and deleted) until `want` of them have come or
/// `within` is over; long polls of at most one second.
async fn receive(client: &aws_sdk_sqs::Client, url: &str, want: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut bodies = Vec::new();
    while bodies.len() < want && Instant::now() < deadline {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive_message");
        for m in out.messages() {
            bodies.push(m.body().unwrap_or_default().to_owned());
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete_message");
        }
    }
    bodies
}

fn set(bodies: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    bodies.into_iter().collect()
}

#[tokio::test]
async fn retry_queue_delays_then_delivers() {
    let Some(config) = dredge_tests::moto_config("retry_queue_delays_then_delivers").await else {
        return;
    };
    let client = aws_sdk_sqs::Client::new(&config);
    let url = create_queue(&client).await;
    let queue = SqsQueue::new(client.clone(), &url);

    // 13 now and 12 in two seconds: three calls.
    let messages: Vec<_> = (0..25)
        .map(|i| {
            let delay = if i % 2 == 0 { 0 } else { 2 };
            msg(&format!("m{i}"), &format!("{{\"flow\":{i},\"delay\":{delay},\"note\":\"é\\t\"}}"), delay)
        })
        .collect();
    let now = set(messages.iter().filter(|m| m.delay_seconds == 0).map(|m| m.body.clone()));
    let later = set(messages.iter().filter(|m| m.delay_seconds > 0).map(|m| m.body.clone()));
    let packed = batches(messages);
    assert!(packed.too_large.is_empty());
    assert_eq!(packed.calls.len(), 3);
    let sent = Instant::now();
    for call in &packed.calls {
        let results = queue.send(call).await.expect("send");
        assert_eq!(results, vec![Ok(()); call.len()]);
    }

    let first = receive(&client, &url, now.len(), Duration::from_secs(3)).await;
    assert_eq!(set(first.clone()), now, "only the undelayed messages, each once: {first:?}");
    assert_eq!(first.len(), now.len());
    let second = receive(&client, &url, later.len(), Duration::from_secs(6)).await;
    assert!(sent.elapsed() >= Duration::from_secs(2), "delayed messages came early");
    assert_eq!(set(second.clone()), later, "{second:?}");
    assert_eq!(second.len(), later.len());

    // An entry SQS fails by itself fails alone, as the embedded queue's does.
    let results = queue.send(&[msg("late", "x", 901), msg("ok", "y", 0)]).await.expect("send");
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(err.code, "InvalidParameterValue");
    assert!(!err.is_transient());
    assert_eq!(results[1], Ok(()));
    assert_eq!(receive(&client, &url, 1, Duration::from_secs(3)).await, vec!["y".to_owned()]);

    // A whole-call refusal never reaches SQS, and is permanent.
    let err = queue.send(&[]).await.unwrap_err();
    assert!(!err.is_transient() && err.message().contains("EmptyBatchRequest"), "{err}");
    client.delete_queue().queue_url(&url).send().await.expect("delete_queue");
}

/// A raw SendMessageBatch with no local checks.
async fn send_raw(
    client: &aws_sdk_sqs::Client,
    url: &str,
    batch: &[QueueMessage],
) -> Result<
    aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput,
    aws_sdk_sqs::error::SdkError<aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError>,
> {
    let entries = batch
        .iter()
        .map(|m| {
            SendMessageBatchRequestEntry::builder()
                .id(&m.id)
                .message_body(&m.body)
                .delay_seconds(m.delay_seconds as i32)
                .build()
                .unwrap()
        })
        .collect();
    client.send_message_batch().queue_url(url).set_entries(Some(entries)).send().await
}

#[tokio::test]
async fn retry_queue_refusals_match_sqs() {
    let Some(config) = dredge_tests::moto_config("retry_queue_refusals_match_sqs").await else {
        return;
    };
    let client = aws_sdk_sqs::Client::new(&config);
    let url = create_queue(&client).await;

    let eleven: Vec<_> = (0..11).map(|i| msg(&format!("m{i}"), "b", 0)).collect();
    let whole_call: [(&str, Vec<QueueMessage>); 4] = [
        ("EmptyBatchRequest", vec![]),
        ("TooManyEntriesInBatchRequest", eleven),
        ("BatchEntryIdsNotDistinct", vec![msg("a", "1", 0), msg("b", "2", 0), msg("a", "3", 0)]),
        ("InvalidBatchEntryId", vec![msg("ok", "1", 0), msg("not.ok", "2", 0)]),
    ];
    for (code, batch) in &whole_call {
        let ours = check_send_batch(batch).unwrap_err();
        assert!(!ours.is_transient() && ours.message().contains(code), "{code}: {ours}");
        let theirs = send_raw(&client, &url, batch).await.expect_err(code);
        let their_code = theirs.code().unwrap_or_default();
        eprintln!("retry_queue_refusals_match_sqs: moto refused the call: {their_code}: {:?}", theirs.message());
        assert!(their_code.ends_with(code), "{code}: moto answered {their_code:?}: {theirs:?}");
        assert!(ours.message().starts_with(&format!("{their_code}: ")), "{their_code} vs {ours}");
        let classified = dredge_lambda::sdk_error::classify("SQS SendMessageBatch", &theirs);
        assert!(!classified.is_transient(), "{classified}");
    }

    // A delay over 900 seconds fails its entry, not the call.
    let batch = [msg("late", "x", 901), msg("fine", "y", 900)];
    check_send_batch(&batch).expect("a call SQS takes");
    let ours = check_entry(&batch[0]).unwrap_err();
    let out = send_raw(&client, &url, &batch).await.expect("the call is taken");
    assert_eq!(out.successful().iter().map(|s| s.id()).collect::<Vec<_>>(), vec!["fine"]);
    let [failed] = out.failed() else { panic!("one entry fails: {:?}", out.failed()) };
    assert_eq!((failed.id(), failed.sender_fault(), failed.code()), ("late", true, ours.code.as_str()));
    assert_eq!(failed.message(), Some(ours.message.as_str()));

    // Where moto is more lenient than SQS (and our checks): noted, not
    // asserted, so a stricter moto does not fail the test.
    let lenient = [
        ("a body over our 256 KiB call limit", vec![msg("big", &"x".repeat(MAX_BATCH_BYTES + 1), 0)]),
        ("a NUL in a body", vec![msg("nul", "a\u{0}b", 0)]),
        ("an empty body", vec![msg("empty", "", 0)]),
        ("a non-ASCII entry id", vec![msg("é", "b", 0)]),
    ];
    for (what, batch) in &lenient {
        let ours_refuse = check_send_batch(batch).is_err() || batch.iter().any(|m| check_entry(m).is_err());
        assert!(ours_refuse, "{what}");
        let answer = match send_raw(&client, &url, batch).await {
            Ok(out) if out.failed().is_empty() => "accepted".to_owned(),
            Ok(out) => format!("failed the entry: {:?}", out.failed()),
            Err(e) => format!("refused the call: {:?}", e.code()),
        };
        eprintln!("retry_queue_refusals_match_sqs: moto, for {what}: {answer}");
    }
    client.delete_queue().queue_url(&url).send().await.expect("delete_queue");
}
