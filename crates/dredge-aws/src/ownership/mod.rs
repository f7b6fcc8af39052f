//! The ownership table in DynamoDB: [`DynamoOwnershipStore`] implements
//! [`OwnershipStore`] with the semantics of the embedded
//! [`MemoryStore`](dredge_core::ownership::MemoryStore). The table design
//! (keys, items, index, TTL, cost per access pattern) is described in
//! `crates/dredge-aws/TABLE.md`.

mod errors;
mod expiry;
mod items;
mod table;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use dredge_core::ownership::{
    AddressKey, EniRecord, EniRef, InstanceRecord, Mark, Owner, OwnershipStore, Resolution, StoreError, StoreResult,
    Timeline, UnixTime,
};
use tokio::task::JoinSet;

use errors::{build_error, store_error};
use items::{Head, Item};
pub use table::{create_table, INSTANCE_INDEX};

/// How long closed intervals stay in the table by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How many of an address's latest marks its head item holds by default:
/// four release/reuse cycles, about 3 KB with typical owners (one 4 KB read
/// unit).
pub const DEFAULT_HEAD_MARKS: usize = 8;

/// Keys per BatchGetItem call (the service limit).
const BATCH_GET_MAX: usize = 100;
/// Requests in flight at once for one store call.
const CONCURRENCY: usize = 16;
/// Attempts at a head update that keeps losing to concurrent writers.
const HEAD_ATTEMPTS: u32 = 12;
/// Attempts at a BatchGetItem that keeps leaving keys unprocessed.
const BATCH_ATTEMPTS: u32 = 10;
/// Marks per page when reading an address's history backwards.
const HISTORY_PAGE: i32 = 32;

/// The time-ranged IP ownership table in DynamoDB (see `TABLE.md`).
///
/// Cheap to clone (the client is shared); build one per process from one
/// client.
#[derive(Debug, Clone)]
pub struct DynamoOwnershipStore {
    client: Client,
    table: Arc<str>,
    /// Seconds.
    retention: i64,
    head_marks: usize,
}

/// Outcome of a conditional write.
enum Written {
    Done,
    /// The condition failed; the item as stored, when the service returned it.
    Refused(Option<Item>),
}

impl DynamoOwnershipStore {
    /// A store on `table` (which must exist: see [`create_table`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoOwnershipStore {
            client,
            table: Arc::from(table.into()),
            retention: DEFAULT_RETENTION.as_secs() as i64,
            head_marks: DEFAULT_HEAD_MARKS,
        }
    }

    /// How long an ended interval's marks stay (DynamoDB TTL on
    /// `expires_at`; the service deletes expired items within days, not at
    /// once). Default [`DEFAULT_RETENTION`].
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// How many of an address's latest marks its head item keeps (at least
    /// one). Lookups at times the head does not explain cost an extra Query.
    /// Default [`DEFAULT_HEAD_MARKS`].
    pub fn with_head_marks(mut self, n: usize) -> Self {
        self.head_marks = n.max(1);
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention as u64)
    }

    pub fn head_marks(&self) -> usize {
        self.head_marks
    }

    /// Creates the table (see the free function [`create_table`]).
    pub async fn create_table(client: &Client, table: &str) -> StoreResult<()> {
        create_table(client, table).await
    }

    fn expires(&self, at: UnixTime) -> i64 {
        at.0.saturating_add(self.retention)
    }

    // ---- low-level operations -------------------------------------------

    async fn get_item(&self, key: Item) -> StoreResult<Option<Item>> {
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
    async fn put_if(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<Written> {
        let result = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(expression_names(names))
            .set_expression_attribute_values(expression_values(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Written::Done),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => Ok(Written::Refused(c.item().cloned())),
                _ => Err(store_error("PutItem", e)),
            },
        }
    }

    /// BatchGetItem of distinct keys, 100 per call (calls run concurrently),
    /// retrying unprocessed keys with backoff. Items come in no particular
    /// order; missing items are absent.
    async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
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
        let mut attempt = 0;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
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
                if attempt >= BATCH_ATTEMPTS {
                    return Err(StoreError::Transient(format!(
                        "DynamoDB BatchGetItem: {} keys still unprocessed after {attempt} attempts",
                        pending.len()
                    )));
                }
                tracing::debug!(unprocessed = pending.len(), attempt, "BatchGetItem left keys unprocessed; retrying");
                backoff(attempt).await;
            }
        }
        Ok(found)
    }

    /// Every item a Query or Scan request returns, page by page.
    async fn query_all(&self, pk: String, mark_range: Option<(String, String)>) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&*self.table)
                .consistent_read(true)
                .expression_attribute_names("#pk", items::PK)
                .expression_attribute_values(":pk", items::s(pk.clone()))
                .set_exclusive_start_key(start.take());
            q = match &mark_range {
                Some((lo, hi)) => q
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                    .expression_attribute_names("#sk", items::SK)
                    .expression_attribute_values(":lo", items::s(lo.clone()))
                    .expression_attribute_values(":hi", items::s(hi.clone())),
                None => q.key_condition_expression("#pk = :pk"),
            };
            let out = q.send().await.map_err(|e| store_error("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Scans the whole table (paginated) for the items `filter` selects.
    async fn scan_all(
        &self,
        filter: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        let names = expression_names(names);
        let values = expression_values(values);
        loop {
            let out = self
                .client
                .scan()
                .table_name(&*self.table)
                .consistent_read(true)
                .filter_expression(filter)
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(values.clone())
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("Scan", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    // ---- addresses --------------------------------------------------------

    async fn get_head(&self, key: &AddressKey) -> StoreResult<Option<Head>> {
        self.get_item(items::key(items::address_pk(key), items::HEAD_SK))
            .await?
            .as_ref()
            .map(items::parse_head)
            .transpose()
    }

    async fn get_heads(&self, keys: impl IntoIterator<Item = &AddressKey>) -> StoreResult<HashMap<AddressKey, Head>> {
        let requests: Vec<Item> = keys.into_iter().map(|k| items::key(items::address_pk(k), items::HEAD_SK)).collect();
        let mut heads = HashMap::with_capacity(requests.len());
        for item in self.batch_get(requests).await? {
            let pk = items::get_s(&item, items::PK).unwrap_or_default();
            let key = items::parse_address_pk(pk)
                .ok_or_else(|| StoreError::Permanent(format!("head item with a malformed key `{pk}`")))?;
            heads.insert(key, items::parse_head(&item)?);
        }
        Ok(heads)
    }

    /// Writes one mark item unless the fact is stored already; returns the
    /// version stored (the first one written wins, as in a [`Timeline`]).
    async fn put_mark(&self, key: AddressKey, mark: Mark) -> StoreResult<(AddressKey, Mark)> {
        let expires_at = match &mark {
            Mark::Close { at, .. } => Some(self.expires(*at)),
            // Dated once something ends it (see `date_ended_opens`).
            Mark::Open { .. } => None,
        };
        let item = items::mark_item(&key, &mark, expires_at)?;
        match self.put_if(item, "attribute_not_exists(#pk)", &[("#pk", items::PK)], vec![]).await? {
            Written::Done => Ok((key, mark)),
            Written::Refused(Some(stored)) => {
                let stored = items::parse_mark(&stored)?;
                Ok((key, stored))
            }
            Written::Refused(None) => Ok((key, mark)),
        }
    }

    /// Merges `inputs` into the head of `key` under optimistic concurrency.
    /// Returns the merged marks (the head as it was, plus `inputs`) and
    /// where the head's window started (`None`: the head is the whole
    /// history).
    async fn merge_head(
        &self,
        key: &AddressKey,
        inputs: &[Mark],
        mut head: Option<Head>,
    ) -> StoreResult<(Timeline, Option<Mark>)> {
        for attempt in 1..=HEAD_ATTEMPTS {
            let (mut ctx, complete_before, version) = match &head {
                Some(h) => (h.marks.clone(), h.complete, Some(h.version)),
                None => (Timeline::new(), true, None),
            };
            let window_start = if complete_before { None } else { ctx.marks().first().cloned() };
            for mark in inputs {
                ctx.insert(mark.clone());
            }
            let marks = ctx.latest(self.head_marks);
            let complete = complete_before && ctx.marks().len() <= self.head_marks;
            let expires_at = expiry::head_expiry(&marks, complete, self.retention);
            if let Some(h) = &head {
                if h.marks == marks && h.complete == complete && h.expires_at == expires_at {
                    return Ok((ctx, window_start));
                }
            }
            let new = Head { marks, complete, version: version.map_or(1, |v| v + 1), expires_at };
            let item = items::head_item(key, &new)?;
            let written = match version {
                None => self.put_if(item, "attribute_not_exists(#pk)", &[("#pk", items::PK)], vec![]).await?,
                Some(v) => self.put_if(item, "#v = :v", &[("#v", items::VERSION)], vec![(":v", items::n(v))]).await?,
            };
            match written {
                Written::Done => return Ok((ctx, window_start)),
                Written::Refused(stored) => {
                    tracing::debug!(%key, attempt, "head changed concurrently; merging again");
                    head = match stored {
                        Some(item) => Some(items::parse_head(&item)?),
                        None => self.get_head(key).await?,
                    };
                    if attempt > 1 {
                        backoff(attempt - 1).await;
                    }
                }
            }
        }
        Err(StoreError::Transient(format!(
            "head of {key}: kept conflicting with concurrent writers ({HEAD_ATTEMPTS} attempts)"
        )))
    }

    /// Adds the (already stored) marks `inputs` of one address to its head,
    /// then dates the opens they end and the opens among them that are
    /// already ended.
    async fn merge_address(&self, key: AddressKey, inputs: Vec<Mark>, head: Option<Head>) -> StoreResult<()> {
        let (ctx, window_start) = self.merge_head(&key, &inputs, head).await?;
        let history = if expiry::head_explains(&ctx, window_start.as_ref(), &inputs) {
            ctx
        } else {
            // Late history (older than the head): read it all. Rare.
            let mut full = self.history(&key).await?;
            for m in ctx.marks() {
                full.insert(m.clone());
            }
            full
        };
        self.date_ended_opens(&key, &history, &inputs).await
    }

    /// Sets `expires_at` on every open of `history` that an input ends or
    /// that is an input and already ended. Lowers only: the first end of an
    /// open can only move earlier as facts arrive, so concurrent and
    /// replayed writers converge on it.
    async fn date_ended_opens(&self, key: &AddressKey, history: &Timeline, inputs: &[Mark]) -> StoreResult<()> {
        let is_input = |m: &Mark| inputs.iter().any(|i| i.key() == m.key());
        let marks = history.marks();
        let updates: Vec<_> = expiry::ended_opens(marks)
            .into_iter()
            .filter(|(open, end)| is_input(&marks[*open]) || is_input(&marks[*end]))
            .map(|(open, end)| {
                let me = self.clone();
                let pk = items::address_pk(key);
                let sk = items::mark_sk(&marks[open]);
                let expires_at = self.expires(marks[end].at());
                async move { me.lower_expiry(pk, sk, expires_at).await }
            })
            .collect();
        run_all(updates).await.map(drop)
    }

    async fn lower_expiry(&self, pk: String, sk: String, expires_at: i64) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(pk, &sk)))
            .update_expression("SET #e = :e")
            .condition_expression("attribute_exists(#pk) AND (attribute_not_exists(#e) OR #e > :e)")
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_names("#e", items::EXPIRES_AT)
            .expression_attribute_values(":e", items::n(expires_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    /// All mark items of one address.
    async fn history(&self, key: &AddressKey) -> StoreResult<Timeline> {
        let lo = items::MARK_PREFIX.to_owned();
        let hi = items::mark_sk_upper(UnixTime(i64::MAX));
        let found = self.query_all(items::address_pk(key), Some((lo, hi))).await?;
        let mut t = Timeline::new();
        for item in &found {
            t.insert(items::parse_mark(item)?);
        }
        Ok(t)
    }

    /// The owner at `at` from the mark items, read backwards from `at` a
    /// page at a time until a page explains it: the fallback when the head
    /// does not reach back far enough.
    async fn resolve_from_history(&self, key: &AddressKey, at: UnixTime, head: Timeline) -> StoreResult<Option<Owner>> {
        let mut t = head;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                .expression_attribute_names("#pk", items::PK)
                .expression_attribute_names("#sk", items::SK)
                .expression_attribute_values(":pk", items::s(items::address_pk(key)))
                .expression_attribute_values(":lo", items::s(items::MARK_PREFIX))
                .expression_attribute_values(":hi", items::s(items::mark_sk_upper(at)))
                .scan_index_forward(false)
                .limit(HISTORY_PAGE)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            for item in out.items() {
                t.insert(items::parse_mark(item)?);
            }
            let more = out.last_evaluated_key.filter(|k| !k.is_empty());
            match t.resolve(at, more.is_none()) {
                Resolution::Owned(owner) => return Ok(Some(owner.clone())),
                Resolution::Free => return Ok(None),
                Resolution::Unknown => start = more,
            }
        }
    }

    // ---- ENIs -------------------------------------------------------------

    async fn eni_by_id(&self, eni_id: &str) -> StoreResult<Option<EniRecord>> {
        self.get_item(items::key(items::eni_pk(eni_id), items::ENI_SK))
            .await?
            .as_ref()
            .map(items::parse_eni)
            .transpose()
    }

    async fn eni_by_alias(&self, alias_pk: String) -> StoreResult<Option<EniRecord>> {
        let Some(alias) = self.get_item(items::key(alias_pk, items::ALIAS_SK)).await? else {
            return Ok(None);
        };
        self.eni_by_id(&items::alias_target(&alias)?).await
    }

    async fn delete_alias(&self, alias_pk: String, eni_id: String) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(items::key(alias_pk, items::ALIAS_SK)))
            .condition_expression("#e = :e")
            .expression_attribute_names("#e", items::ALIAS_ENI_ID)
            .expression_attribute_values(":e", items::s(eni_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(store_error("DeleteItem", e)),
        }
    }

    async fn put_plain(&self, item: Item) -> StoreResult<Option<Item>> {
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
}

impl OwnershipStore for DynamoOwnershipStore {
    /// One conditional PutItem per new mark (`attribute_not_exists`: a
    /// duplicate is a success), one BatchGetItem for the heads of up to 100
    /// addresses, one conditional PutItem per changed head (retried on
    /// version conflicts), and one conditional UpdateItem per open an input
    /// ends.
    async fn put_marks(&self, marks: &[(AddressKey, Mark)]) -> StoreResult<()> {
        // Per address, without duplicates; the first version of a fact wins.
        let mut by_key: BTreeMap<AddressKey, Timeline> = BTreeMap::new();
        for (key, mark) in marks {
            by_key.entry(key.clone()).or_default().insert(mark.clone());
        }
        if by_key.is_empty() {
            return Ok(());
        }
        // The facts first: a head never holds a mark whose item is missing.
        let puts: Vec<_> = by_key
            .iter()
            .flat_map(|(key, t)| t.marks().iter().map(move |m| (key.clone(), m.clone())))
            .map(|(key, mark)| {
                let me = self.clone();
                async move { me.put_mark(key, mark).await }
            })
            .collect();
        let mut stored: BTreeMap<AddressKey, Vec<Mark>> = BTreeMap::new();
        for (key, mark) in run_all(puts).await? {
            stored.entry(key).or_default().push(mark);
        }
        let mut heads = self.get_heads(stored.keys()).await?;
        let merges: Vec<_> = stored
            .into_iter()
            .map(|(key, inputs)| {
                let me = self.clone();
                let head = heads.remove(&key);
                async move { me.merge_address(key, inputs, head).await }
            })
            .collect();
        run_all(merges).await.map(drop)
    }

    /// One BatchGetItem per 100 distinct addresses; a Query (usually one
    /// page) only for an (address, time) its head does not explain.
    async fn lookup(&self, queries: &[(AddressKey, UnixTime)]) -> StoreResult<Vec<Option<Owner>>> {
        let mut out: Vec<Option<Owner>> = vec![None; queries.len()];
        if queries.is_empty() {
            return Ok(out);
        }
        let keys: BTreeSet<&AddressKey> = queries.iter().map(|(k, _)| k).collect();
        let heads = self.get_heads(keys).await?;
        let mut unexplained: BTreeMap<(&AddressKey, UnixTime), Vec<usize>> = BTreeMap::new();
        for (i, (key, at)) in queries.iter().enumerate() {
            let Some(head) = heads.get(key) else { continue };
            match head.marks.resolve(*at, head.complete) {
                Resolution::Owned(owner) => out[i] = Some(owner.clone()),
                Resolution::Free => {}
                Resolution::Unknown => unexplained.entry((key, *at)).or_default().push(i),
            }
        }
        if unexplained.is_empty() {
            return Ok(out);
        }
        let reads: Vec<_> = unexplained
            .keys()
            .map(|(key, at)| {
                let me = self.clone();
                let (key, at) = ((*key).clone(), *at);
                let head = heads.get(&key).map(|h| h.marks.clone()).unwrap_or_default();
                async move { me.resolve_from_history(&key, at, head).await }
            })
            .collect();
        for (indexes, owner) in unexplained.into_values().zip(run_all(reads).await?) {
            for i in indexes {
                out[i] = owner.clone();
            }
        }
        Ok(out)
    }

    /// One BatchGetItem of head items per 100 addresses: what the
    /// enricher's cache holds. An address without a head has no marks.
    async fn heads(&self, keys: &[AddressKey]) -> StoreResult<Vec<dredge_core::ownership::Head>> {
        // BatchGetItem refuses duplicate keys; answers may repeat.
        let distinct: BTreeSet<&AddressKey> = keys.iter().collect();
        let heads = self.get_heads(distinct).await?;
        Ok(keys
            .iter()
            .map(|k| match heads.get(k).cloned() {
                Some(h) => dredge_core::ownership::Head { timeline: h.marks, complete: h.complete },
                None => dredge_core::ownership::Head { timeline: Timeline::new(), complete: true },
            })
            .collect())
    }

    /// One BatchGetItem per 100 ENIs (run concurrently).
    async fn enis_by_id(&self, ids: &[String]) -> StoreResult<Vec<Option<EniRecord>>> {
        // BatchGetItem refuses duplicate keys; answers may repeat.
        let distinct: BTreeSet<&String> = ids.iter().collect();
        let keys: Vec<Item> = distinct.into_iter().map(|id| items::key(items::eni_pk(id), items::ENI_SK)).collect();
        let mut found: HashMap<String, EniRecord> = HashMap::with_capacity(ids.len());
        for item in self.batch_get(keys).await? {
            let record = items::parse_eni(&item)?;
            found.insert(record.eni.eni_id.clone(), record);
        }
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }

    /// One Query of the address's partition (paginated).
    async fn timeline(&self, key: &AddressKey) -> StoreResult<Timeline> {
        let found = self.query_all(items::address_pk(key), None).await?;
        Ok(assemble_timeline(&found)?.unwrap_or_default())
    }

    /// A full table Scan (paginated): for dump and reconcile only, never on
    /// a per-record path. Costs the whole table's size in read units.
    async fn timelines(&self) -> StoreResult<Vec<(AddressKey, Timeline)>> {
        let found = self
            .scan_all("begins_with(#pk, :a)", &[("#pk", items::PK)], vec![(":a", items::s(items::ADDRESS_PREFIX))])
            .await?;
        let mut by_pk: BTreeMap<&str, Vec<Item>> = BTreeMap::new();
        for item in &found {
            by_pk.entry(items::get_s(item, items::PK).unwrap_or_default()).or_default().push(item.clone());
        }
        let mut out = Vec::with_capacity(by_pk.len());
        for (pk, group) in by_pk {
            let Some(key) = items::parse_address_pk(pk) else {
                tracing::warn!(pk, "skipping items with a malformed address key");
                continue;
            };
            if let Some(t) = assemble_timeline(&group)? {
                out.push((key, t));
            }
        }
        out.sort_by_cached_key(|(k, _)| k.to_string());
        Ok(out)
    }

    /// By id: one GetItem. By attachment or association: two (the alias
    /// item, then the record), and the record must still name the alias.
    async fn eni(&self, by: &EniRef) -> StoreResult<Option<EniRecord>> {
        match by {
            EniRef::Id(id) => self.eni_by_id(id).await,
            EniRef::Attachment(a) => Ok(self
                .eni_by_alias(items::attachment_pk(a))
                .await?
                .filter(|r| r.eni.attachment_id.as_deref() == Some(a.as_str()))),
            EniRef::Association(a) => {
                Ok(self.eni_by_alias(items::association_pk(a)).await?.filter(|r| r.associations.contains_key(a)))
            }
        }
    }

    /// One Query of the instance index (eventually consistent, as every GSI
    /// read: an ENI written a moment ago may be missing).
    async fn enis_of_instance(&self, instance_id: &str) -> StoreResult<Vec<EniRecord>> {
        let mut records = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(INSTANCE_INDEX)
                .key_condition_expression("#g = :g")
                .expression_attribute_names("#g", items::GSI1PK)
                .expression_attribute_values(":g", items::s(items::instance_pk(instance_id)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            for item in out.items() {
                let record = items::parse_eni(item)?;
                if record.eni.instance_id.as_deref() == Some(instance_id) {
                    records.push(record);
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(records),
            }
        }
    }

    /// A full table Scan (paginated): for reconcile only.
    async fn enis(&self) -> StoreResult<Vec<EniRecord>> {
        let found = self.scan_all("#sk = :e", &[("#sk", items::SK)], vec![(":e", items::s(items::ENI_SK))]).await?;
        let mut records = found.iter().map(items::parse_eni).collect::<StoreResult<Vec<_>>>()?;
        records.sort_by(|a, b| a.eni.eni_id.cmp(&b.eni.eni_id));
        Ok(records)
    }

    /// The alias items first (PutItem each), then the record (PutItem,
    /// replacing it whole, as the embedded store does); aliases the previous
    /// version had and this one lacks are deleted (conditional on still
    /// naming this ENI). A deleted ENI's items expire `retention` after its
    /// deletion.
    async fn put_eni(&self, record: &EniRecord) -> StoreResult<()> {
        let eni_id = record.eni.eni_id.clone();
        let expires_at = record.deleted_at.map(|d| self.expires(d));
        let aliases = items::alias_pks(record);
        let puts: Vec<_> = aliases
            .iter()
            .map(|pk| {
                let me = self.clone();
                let item = items::alias_item(pk.clone(), &eni_id, expires_at);
                async move { me.put_plain(item).await }
            })
            .collect();
        run_all(puts).await?;
        let Some(old) = self.put_plain(items::eni_item(record, expires_at)?).await? else {
            return Ok(());
        };
        let old = items::parse_eni(&old)?;
        let stale: Vec<_> = items::alias_pks(&old)
            .into_iter()
            .filter(|pk| !aliases.contains(pk))
            .map(|pk| {
                let me = self.clone();
                let eni_id = eni_id.clone();
                async move { me.delete_alias(pk, eni_id).await }
            })
            .collect();
        run_all(stale).await.map(drop)
    }

    async fn instance(&self, instance_id: &str) -> StoreResult<Option<InstanceRecord>> {
        self.get_item(items::key(items::instance_pk(instance_id), items::INSTANCE_SK))
            .await?
            .map(|item| items::parse_instance(instance_id, &item))
            .transpose()
    }

    /// One PutItem, conditional on no newer state change being stored.
    async fn put_instance(&self, record: &InstanceRecord) -> StoreResult<()> {
        let expires_at = (!record.running).then(|| self.expires(record.changed_at));
        let item = items::instance_item(record, expires_at);
        self.put_if(
            item,
            "attribute_not_exists(#pk) OR #c <= :c",
            &[("#pk", items::PK), ("#c", items::CHANGED_AT)],
            vec![(":c", items::n(record.changed_at.0))],
        )
        .await
        .map(drop)
    }
}

/// The timeline of one address from the items of its partition: mark items
/// and the head (whose marks may outlive expired items). `None` without
/// any.
fn assemble_timeline(found: &[Item]) -> StoreResult<Option<Timeline>> {
    let mut t = Timeline::new();
    let mut head = None;
    for item in found {
        match items::get_s(item, items::SK) {
            Some(items::HEAD_SK) => head = Some(items::parse_head(item)?),
            Some(sk) if sk.starts_with(items::MARK_PREFIX) => {
                t.insert(items::parse_mark(item)?);
            }
            _ => {}
        }
    }
    if let Some(h) = &head {
        for m in h.marks.marks() {
            t.insert(m.clone());
        }
    }
    Ok((head.is_some() || !t.is_empty()).then_some(t))
}

fn expression_names(names: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    (!names.is_empty()).then(|| names.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

fn expression_values(values: Vec<(&str, AttributeValue)>) -> Option<HashMap<String, AttributeValue>> {
    (!values.is_empty()).then(|| values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Exponential backoff with jitter: about 25 ms, 50 ms, ... capped at 1.6 s.
async fn backoff(attempt: u32) {
    use std::hash::{BuildHasher, Hasher};
    let base_ms = 25u64 << attempt.saturating_sub(1).min(6);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let jitter = h.finish() % (base_ms / 2 + 1);
    tokio::time::sleep(Duration::from_millis(base_ms / 2 + jitter)).await;
}

/// Runs the futures, at most [`CONCURRENCY`] at a time, and returns their
/// results in order; the first error wins (the rest are cancelled: every
/// write is idempotent, so the caller's retry repeats them harmlessly).
async fn run_all<T, F>(futures: Vec<F>) -> StoreResult<Vec<T>>
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

    #[test]
    fn options_have_floors() {
        let client = Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                .build(),
        );
        let store = DynamoOwnershipStore::new(client, "t").with_head_marks(0).with_retention(Duration::from_secs(60));
        assert_eq!(store.head_marks(), 1);
        assert_eq!(store.retention(), Duration::from_secs(60));
        assert_eq!(store.table(), "t");
        assert_eq!(store.expires(UnixTime(100)), 160);
    }
}
