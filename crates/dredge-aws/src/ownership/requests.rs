//! The requests the store sends to its table: thin wrappers over the SDK
//! calls (table name, error mapping, pagination, batching), and the bounded
//! concurrency every store call runs its requests with. The rest of the
//! store talks to DynamoDB only through [`Requests`], which counts every
//! request it sends: the store's [`calls`](dredge_core::ownership::OwnershipStore::calls).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::query::{QueryError, QueryOutput};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use aws_smithy_async::future::pagination_stream::PaginationStream;
use dredge_core::ownership::{StoreError, StoreResult};
use tokio::task::JoinSet;

use super::errors::{build_error, store_error};
use super::items::Item;
use super::retry_policy;

/// Keys per BatchGetItem call (the service limit).
const BATCH_GET_MAX: usize = 100;
/// Requests in flight at once for one store call.
const CONCURRENCY: usize = 16;
/// Attempts at a BatchGetItem that keeps leaving keys unprocessed.
const BATCH_ATTEMPTS: u32 = 10;

/// One table's requests. Cheap to clone (the client and the count are
/// shared).
#[derive(Debug, Clone)]
pub(super) struct Requests {
    client: Client,
    table: Arc<str>,
    /// Requests sent: one per operation the SDK was asked for, each page of
    /// a Query or Scan and each BatchGetItem retry of unprocessed keys
    /// included (the SDK's own retries of one request are not seen here).
    sent: Arc<AtomicU64>,
}

/// Outcome of a conditional write.
pub(super) enum Written {
    /// Written; the item it replaced, if any.
    Done(Option<Item>),
    /// The condition failed; the item as stored, when the service returned it.
    Refused(Option<Item>),
}

/// One page of a Query or Scan.
pub(super) struct Page {
    pub items: Vec<Item>,
    /// No page follows.
    pub last: bool,
}

/// The pages of a Query or Scan, fetched one request at a time as they are
/// asked for: dropping it early sends no more.
pub(super) struct Pages<O, E> {
    stream: PaginationStream<Result<O, SdkError<E, HttpResponse>>>,
    operation: &'static str,
    page: fn(O) -> Page,
    sent: Arc<AtomicU64>,
}

impl<O, E> Pages<O, E>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    /// The next page; `None` after the last.
    pub async fn next(&mut self) -> Option<StoreResult<Page>> {
        let page = self.stream.next().await?;
        // Every page the stream yields is one request, answered or failed.
        self.sent.fetch_add(1, Ordering::Relaxed);
        Some(page.map(self.page).map_err(|e| store_error(self.operation, e)))
    }

    /// Every item of every page.
    pub async fn all(mut self) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        while let Some(page) = self.next().await {
            items.extend(page?.items);
        }
        Ok(items)
    }
}

/// Whether a page's `LastEvaluatedKey` says it was the last.
fn is_last(next: Option<&Item>) -> bool {
    next.is_none_or(HashMap::is_empty)
}

impl Requests {
    pub fn new(client: Client, table: String) -> Self {
        Requests { client, table: Arc::from(table), sent: Arc::default() }
    }

    /// Requests sent so far, by this value and its clones.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Counts a request about to be sent.
    fn sending(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A strongly consistent GetItem.
    pub async fn get_item(&self, key: Item) -> StoreResult<Option<Item>> {
        self.sending();
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out.item)
    }

    /// PutItem under `condition`; a failed condition is an answer, not an
    /// error.
    pub async fn put_if(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<Written> {
        self.sending();
        let result = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(expression_names(names))
            .set_expression_attribute_values(expression_values(values))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Written::Done(out.attributes.filter(|a| !a.is_empty()))),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => Ok(Written::Refused(c.item().cloned())),
                _ => Err(store_error("PutItem", e)),
            },
        }
    }

    /// An unconditional PutItem; returns the item it replaced.
    pub async fn put(&self, item: Item) -> StoreResult<Option<Item>> {
        self.sending();
        let out = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        Ok(out.attributes.filter(|a| !a.is_empty()))
    }

    /// UpdateItem under `condition`; a failed condition leaves the item as
    /// it was and is no error.
    pub async fn update_if(
        &self,
        key: Item,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<()> {
        self.sending();
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(expression_names(names))
            .set_expression_attribute_values(expression_values(values))
            .send()
            .await;
        unless_refused("UpdateItem", result)
    }

    /// UpdateItem, unconditional.
    pub async fn update(
        &self,
        key: Item,
        update: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<()> {
        self.sending();
        self.client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .update_expression(update)
            .set_expression_attribute_names(expression_names(names))
            .set_expression_attribute_values(expression_values(values))
            .send()
            .await
            .map_err(|e| store_error("UpdateItem", e))
            .map(drop)
    }

    /// DeleteItem under `condition`; a failed condition leaves the item and
    /// is no error.
    pub async fn delete_if(
        &self,
        key: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<()> {
        self.sending();
        let result = self
            .client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .condition_expression(condition)
            .set_expression_attribute_names(expression_names(names))
            .set_expression_attribute_values(expression_values(values))
            .send()
            .await;
        unless_refused("DeleteItem", result)
    }

    /// BatchGetItem of distinct keys, 100 per call (calls run concurrently),
    /// retrying unprocessed keys with backoff. Items come in no particular
    /// order; missing items are absent.
    pub async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let calls: Vec<_> = keys
            .chunks(BATCH_GET_MAX)
            .map(|chunk| {
                let me = self.clone();
                let chunk = chunk.to_vec();
                async move { me.batch_get_chunk(chunk).await }
            })
            .collect();
        Ok(run_all(calls).await?.into_iter().flatten().collect())
    }

    async fn batch_get_chunk(&self, mut pending: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(pending.len());
        let retry = retry_policy(BATCH_ATTEMPTS);
        let mut attempt = 0;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            self.sending();
            let out = self
                .client
                .batch_get_item()
                .request_items(&*self.table, request)
                .send()
                .await
                .map_err(|e| store_error("BatchGetItem", e))?;
            found.extend(out.responses.and_then(|mut r| r.remove(&*self.table)).unwrap_or_default());
            pending = out.unprocessed_keys.and_then(|mut u| u.remove(&*self.table)).map(|k| k.keys).unwrap_or_default();
            if !pending.is_empty() {
                attempt += 1;
                if !retry.retries_after(attempt) {
                    return Err(StoreError::Transient(format!(
                        "DynamoDB BatchGetItem: {} keys still unprocessed after {attempt} attempts",
                        pending.len()
                    )));
                }
                tracing::debug!(unprocessed = pending.len(), attempt, "BatchGetItem left keys unprocessed; retrying");
                retry.pause(attempt).await;
            }
        }
        Ok(found)
    }

    /// A Query on the table, as `build` shapes it, page by page.
    pub fn query(
        &self,
        build: impl FnOnce(QueryFluentBuilder) -> QueryFluentBuilder,
    ) -> Pages<QueryOutput, QueryError> {
        let stream = build(self.client.query().table_name(&*self.table)).into_paginator().send();
        Pages {
            stream,
            sent: self.sent.clone(),
            operation: "Query",
            page: |out| Page { last: is_last(out.last_evaluated_key.as_ref()), items: out.items.unwrap_or_default() },
        }
    }

    /// Every item of the table that `filter` selects: a strongly consistent
    /// Scan of the whole table, every page.
    pub async fn scan(
        &self,
        filter: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<Vec<Item>> {
        let stream = self
            .client
            .scan()
            .table_name(&*self.table)
            .consistent_read(true)
            .filter_expression(filter)
            .set_expression_attribute_names(expression_names(names))
            .set_expression_attribute_values(expression_values(values))
            .into_paginator()
            .send();
        let pages = Pages {
            stream,
            sent: self.sent.clone(),
            operation: "Scan",
            page: |out| Page { last: is_last(out.last_evaluated_key.as_ref()), items: out.items.unwrap_or_default() },
        };
        pages.all().await
    }
}

/// A conditional write's outcome, where a failed condition leaves the item
/// as it was and is no error.
fn unless_refused<T, E>(operation: &str, result: Result<T, SdkError<E, HttpResponse>>) -> StoreResult<()>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
        Err(e) => Err(store_error(operation, e)),
    }
}

fn expression_names(names: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    (!names.is_empty()).then(|| names.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

fn expression_values(values: Vec<(&str, AttributeValue)>) -> Option<HashMap<String, AttributeValue>> {
    (!values.is_empty()).then(|| values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Runs the futures, at most [`CONCURRENCY`] at a time, and returns their
/// results in order; the first error wins (the rest are cancelled: every
/// write is idempotent, so the caller's retry repeats them harmlessly).
pub(super) async fn run_all<T, F>(futures: Vec<F>) -> StoreResult<Vec<T>>
where
    T: Send + 'static,
    F: Future<Output = StoreResult<T>> + Send + 'static,
{
    if futures.len() <= 1 {
        let mut out = Vec::with_capacity(1);
        for f in futures {
            out.push(f.await?);
        }
        return Ok(out);
    }
    let mut results: Vec<Option<T>> = std::iter::repeat_with(|| None).take(futures.len()).collect();
    let mut queue = futures.into_iter().enumerate();
    let mut running = JoinSet::new();
    loop {
        while running.len() < CONCURRENCY {
            let Some((i, f)) = queue.next() else { break };
            running.spawn(async move { (i, f.await) });
        }
        match running.join_next().await {
            None => break,
            Some(Ok((i, Ok(value)))) => results[i] = Some(value),
            Some(Ok((_, Err(e)))) => return Err(e),
            Some(Err(join)) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Some(Err(join)) => return Err(StoreError::Transient(format!("store task cancelled: {join}"))),
        }
    }
    Ok(results.into_iter().map(|r| r.expect("every task reported")).collect())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn run_all_keeps_order_and_reports_the_first_error() {
        let futures: Vec<_> = (0..50u64)
            .map(|i| async move {
                tokio::time::sleep(Duration::from_millis(50 - i)).await;
                Ok(i)
            })
            .collect();
        assert_eq!(run_all(futures).await.unwrap(), (0..50).collect::<Vec<_>>());

        let futures: Vec<_> = (0..20u64)
            .map(|i| async move {
                if i == 7 {
                    Err(StoreError::Permanent("seven".into()))
                } else {
                    Ok(i)
                }
            })
            .collect();
        assert!(matches!(run_all(futures).await, Err(StoreError::Permanent(m)) if m == "seven"));
    }
}
