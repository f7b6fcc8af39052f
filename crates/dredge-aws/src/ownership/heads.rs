//! Address timelines in the table: the head-merge protocol (mark items
//! first, then the head under optimistic concurrency, then the TTL of the
//! opens that ended), and reads: lookups through the heads with the mark
//! items as fallback, whole timelines.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dredge_core::ownership::{
    AddressKey, Mark, Owner, Resolution, Sighting, StoreError, StoreResult, Timeline, UnixTime,
};

use super::items::{self, Head, Item};
use super::requests::{run_all, Written};
use super::{expiry, retry_policy, DynamoOwnershipStore};

/// A mark's `expires_at` as one merged history dates it.
enum Expiry {
    At(i64),
    /// Removed: nothing ends the mark.
    Never,
}

/// Attempts at a head update that keeps losing to concurrent writers.
const HEAD_ATTEMPTS: u32 = 12;
/// Marks per page when reading an address's history backwards.
const HISTORY_PAGE: i32 = 32;

/// How many times a richer version of an open is tried over concurrent
/// writers of the same fact.
const MARK_ATTEMPTS: usize = 5;

impl DynamoOwnershipStore {
    /// Stores marks: see [`OwnershipStore::put_marks`](dredge_core::ownership::OwnershipStore::put_marks).
    pub(super) async fn merge_marks(&self, marks: &[(AddressKey, Mark)]) -> StoreResult<()> {
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

    /// The owner of each (address, time): through the heads, and the mark
    /// items for the times a head does not explain.
    pub(super) async fn owners(&self, queries: &[(AddressKey, UnixTime)]) -> StoreResult<Vec<Option<Owner>>> {
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

    /// The head of each key, in order: what the enricher's cache holds. An
    /// address without a head has no marks.
    pub(super) async fn heads_of(&self, keys: &[AddressKey]) -> StoreResult<Vec<dredge_core::ownership::Head>> {
        // BatchGetItem refuses duplicate keys; answers may repeat.
        let distinct: BTreeSet<&AddressKey> = keys.iter().collect();
        let heads = self.get_heads(distinct).await?;
        Ok(keys
            .iter()
            .map(|k| match heads.get(k).cloned() {
                Some(h) => dredge_core::ownership::Head { timeline: h.marks, complete: h.complete, seen: h.seen },
                None => dredge_core::ownership::Head::default_complete(),
            })
            .collect())
    }

    /// Sightings: one conditional UpdateItem per address, ENI and
    /// attachment on the address's head (never creating one), keeping the
    /// latest time. Concurrent and replayed writers converge.
    pub(super) async fn record_seen(&self, seen: &[(AddressKey, Sighting)]) -> StoreResult<()> {
        let mut latest: BTreeMap<(String, String), i64> = BTreeMap::new();
        for (key, s) in seen {
            let at = latest.entry((items::address_pk(key), items::seen_attribute(s))).or_insert(s.at.0);
            *at = (*at).max(s.at.0);
        }
        let updates: Vec<_> = latest
            .into_iter()
            .map(|((pk, attribute), at)| {
                let me = self.clone();
                async move {
                    me.requests
                        .update_if(
                            items::key(pk, items::HEAD_SK),
                            "SET #a = :t",
                            "attribute_exists(#pk) AND (attribute_not_exists(#a) OR #a < :t)",
                            &[("#pk", items::PK), ("#a", &attribute)],
                            vec![(":t", items::n(at))],
                        )
                        .await
                }
            })
            .collect();
        run_all(updates).await.map(drop)
    }

    /// A scope's reconcile: one conditional UpdateItem that only moves its
    /// time forward.
    pub(super) async fn record_reconciled(&self, scope: &str, at: UnixTime) -> StoreResult<()> {
        let attribute = format!("{}{scope}", items::RECONCILED_PREFIX);
        self.requests
            .update_if(
                items::key(items::RECONCILED_KEY.into(), items::RECONCILED_KEY),
                "SET #a = :t",
                "attribute_not_exists(#a) OR #a < :t",
                &[("#a", &attribute)],
                vec![(":t", items::n(at.0))],
            )
            .await
    }

    /// Every scope's latest reconcile: one GetItem.
    pub(super) async fn all_reconciled(&self) -> StoreResult<Vec<(String, UnixTime)>> {
        let item = self.requests.get_item(items::key(items::RECONCILED_KEY.into(), items::RECONCILED_KEY)).await?;
        Ok(item
            .iter()
            .flatten()
            .filter_map(|(name, value)| {
                let scope = name.strip_prefix(items::RECONCILED_PREFIX)?;
                Some((scope.to_owned(), UnixTime(value.as_n().ok()?.parse().ok()?)))
            })
            .collect())
    }

    /// The whole timeline of one address: its partition (mark items and
    /// head).
    pub(super) async fn timeline_of(&self, key: &AddressKey) -> StoreResult<Timeline> {
        let found = self.query_partition(key, None).await?;
        Ok(assemble_timeline(&found)?.unwrap_or_default())
    }

    /// Every address's timeline, from a Scan of the whole table.
    pub(super) async fn all_timelines(&self) -> StoreResult<Vec<(AddressKey, Timeline)>> {
        let found = self
            .requests
            .scan("begins_with(#pk, :a)", &[("#pk", items::PK)], vec![(":a", items::s(items::ADDRESS_PREFIX))])
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

    async fn get_head(&self, key: &AddressKey) -> StoreResult<Option<Head>> {
        self.requests
            .get_item(items::key(items::address_pk(key), items::HEAD_SK))
            .await?
            .as_ref()
            .map(items::parse_head)
            .transpose()
    }

    async fn get_heads(&self, keys: impl IntoIterator<Item = &AddressKey>) -> StoreResult<HashMap<AddressKey, Head>> {
        let requests: Vec<Item> = keys.into_iter().map(|k| items::key(items::address_pk(k), items::HEAD_SK)).collect();
        let mut heads = HashMap::with_capacity(requests.len());
        for item in self.requests.batch_get(requests).await? {
            let pk = items::get_s(&item, items::PK).unwrap_or_default();
            let key = items::parse_address_pk(pk)
                .ok_or_else(|| StoreError::Permanent(format!("head item with a malformed key `{pk}`")))?;
            heads.insert(key, items::parse_head(&item)?);
        }
        Ok(heads)
    }

    /// Writes one mark item unless the fact is stored already; returns the
    /// version stored. Of two versions of one fact, [`Mark::supersedes`]
    /// decides, as in a [`Timeline`]: the new one replaces the stored one
    /// only if that is still the one read.
    async fn put_mark(&self, key: AddressKey, mark: Mark) -> StoreResult<(AddressKey, Mark)> {
        let expires_at = match &mark {
            Mark::Close { at, .. } => Some(self.expires(*at)),
            // Dated once something ends it (see `date_ended_opens`).
            Mark::Open { .. } | Mark::Relabel { .. } => None,
        };
        let item = items::mark_item(&key, &mark, expires_at)?;
        let mut written =
            self.requests.put_if(item.clone(), "attribute_not_exists(#pk)", &[("#pk", items::PK)], vec![]).await?;
        for _ in 0..MARK_ATTEMPTS {
            let stored_item = match written {
                Written::Done(_) | Written::Refused(None) => return Ok((key, mark)),
                Written::Refused(Some(stored)) => stored,
            };
            let stored = items::parse_mark(&stored_item)?;
            if !mark.supersedes(&stored) {
                return Ok((key, stored));
            }
            // Replaced only if still the version read: the attributes that
            // tell versions apart are as read.
            let names: &[&str] = match &mark {
                Mark::Open { .. } => &[items::OWNER],
                Mark::Relabel { .. } => &[items::OWNER, items::BASIS],
                Mark::Close { .. } => &[items::INSTANCE_ID, items::FOUND_GONE, items::SPARED],
            };
            let placeholders: Vec<(String, String)> =
                (0..names.len()).map(|i| (format!("#a{i}"), format!(":a{i}"))).collect();
            let mut conditions = Vec::new();
            let mut values = Vec::new();
            for (name, (a, v)) in names.iter().zip(&placeholders) {
                match stored_item.get(*name) {
                    Some(value) => {
                        conditions.push(format!("{a} = {v}"));
                        values.push((v.as_str(), value.clone()));
                    }
                    None => conditions.push(format!("attribute_not_exists({a})")),
                }
            }
            let attribute_names: Vec<(&str, &str)> =
                placeholders.iter().zip(names).map(|((a, _), name)| (a.as_str(), *name)).collect();
            let mut item = item.clone();
            // A dated open keeps its expiry, and what dated it. A relabel's
            // new version may name another instance, which another close
            // ends: it is dated afresh as an input of the merge.
            if !matches!(mark, Mark::Relabel { .. }) {
                for name in [items::EXPIRES_AT, items::DATED_BY] {
                    if let Some(v) = stored_item.get(name) {
                        item.insert(name.into(), v.clone());
                    }
                }
            }
            written = self.requests.put_if(item, &conditions.join(" AND "), &attribute_names, values).await?;
        }
        Err(StoreError::Transient(format!("mark {} of {key} kept changing", mark.sort_key())))
    }

    /// Merges `inputs` into the head of `key` under optimistic concurrency.
    /// Returns the merged marks (the head as it was, plus `inputs`), where
    /// the head's window started (`None`: the head is the whole history)
    /// and the version of the head that holds them.
    async fn merge_head(
        &self,
        key: &AddressKey,
        inputs: &[Mark],
        mut head: Option<Head>,
    ) -> StoreResult<(Timeline, Option<Mark>, i64)> {
        let retry = retry_policy(HEAD_ATTEMPTS);
        for attempt in 1..=retry.attempts {
            let (mut ctx, complete_before, version) = match &head {
                Some(h) => (h.marks.clone(), h.complete, Some(h.version)),
                None => (Timeline::new(), true, None),
            };
            // Sightings written since the head was read are lost to this
            // write: knowing less is safe.
            let seen = head.as_ref().map(|h| h.seen.clone()).unwrap_or_default();
            let window_start = if complete_before { None } else { ctx.marks().first().cloned() };
            for mark in inputs {
                ctx.insert(mark.clone());
            }
            let marks = ctx.latest(self.head_marks);
            let complete = complete_before && ctx.marks().len() <= self.head_marks;
            let expires_at = expiry::head_expiry(&marks, complete, self.retention);
            if let Some(h) = &head {
                if h.marks == marks && h.complete == complete && h.expires_at == expires_at {
                    return Ok((ctx, window_start, h.version));
                }
            }
            let new_version = version.map_or(1, |v| v + 1);
            let new = Head { marks, complete, version: new_version, expires_at, seen };
            let item = items::head_item(key, &new)?;
            let written = match version {
                None => self.requests.put_if(item, "attribute_not_exists(#pk)", &[("#pk", items::PK)], vec![]).await?,
                Some(v) => {
                    self.requests.put_if(item, "#v = :v", &[("#v", items::VERSION)], vec![(":v", items::n(v))]).await?
                }
            };
            match written {
                Written::Done(_) => return Ok((ctx, window_start, new_version)),
                Written::Refused(stored) => {
                    tracing::debug!(%key, attempt, "head changed concurrently; merging again");
                    head = match stored {
                        Some(item) => Some(items::parse_head(&item)?),
                        None => self.get_head(key).await?,
                    };
                    // The first conflict is merged again at once: it already
                    // carries the stored head.
                    if attempt > 1 {
                        retry.pause(attempt - 1).await;
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
        let (ctx, window_start, version) = self.merge_head(&key, &inputs, head).await?;
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
        self.date_ended_opens(&key, &history, &inputs, version).await
    }

    /// Sets `expires_at` on every open and relabel of `history` that an
    /// input ends or that is an input and already ended, and on every open
    /// an input relabel falls in the holding of, whose end may move later
    /// (an instance's close no longer reaching it) or go
    /// ([`expiry::relabelled_opens`]). `history` holds everything the head
    /// of `version` does: each date is written with the version it was
    /// told from and never over a later one's, so of writers racing (one
    /// dating from a head without the other's relabel), the later head's
    /// dates stay, whatever order their updates land in.
    async fn date_ended_opens(
        &self,
        key: &AddressKey,
        history: &Timeline,
        inputs: &[Mark],
        version: i64,
    ) -> StoreResult<()> {
        let is_input = |m: &Mark| inputs.iter().any(|i| i.key() == m.key());
        let marks = history.marks();
        let dated = expiry::ended_opens(marks)
            .into_iter()
            .filter(|(open, end)| is_input(&marks[*open]) || is_input(&marks[*end]))
            .map(|(open, end)| (open, Expiry::At(self.expires(marks[end].at()))));
        let relabelled = expiry::relabelled_opens(marks, inputs)
            .into_iter()
            .map(|(open, end)| (open, end.map_or(Expiry::Never, |e| Expiry::At(self.expires(marks[e].at())))));
        let updates: Vec<_> = dated
            .chain(relabelled)
            .map(|(mark, expiry)| {
                let me = self.clone();
                let pk = items::address_pk(key);
                let sk = items::mark_sk(&marks[mark]);
                async move { me.set_expiry(pk, sk, expiry, version).await }
            })
            .collect();
        run_all(updates).await.map(drop)
    }

    async fn set_expiry(&self, pk: String, sk: String, expiry: Expiry, version: i64) -> StoreResult<()> {
        let names = [("#pk", items::PK), ("#d", items::DATED_BY), ("#e", items::EXPIRES_AT)];
        let key = items::key(pk, &sk);
        let not_later = "attribute_exists(#pk) AND (attribute_not_exists(#d) OR #d <= :d)";
        let mut values = vec![(":d", items::n(version))];
        let update = match expiry {
            Expiry::At(e) => {
                values.push((":e", items::n(e)));
                "SET #e = :e, #d = :d"
            }
            Expiry::Never => "REMOVE #e SET #d = :d",
        };
        self.requests.update_if(key, update, not_later, &names, values).await
    }

    /// All mark items of one address.
    async fn history(&self, key: &AddressKey) -> StoreResult<Timeline> {
        let lo = items::MARK_PREFIX.to_owned();
        let hi = items::mark_sk_upper(UnixTime(i64::MAX));
        let found = self.query_partition(key, Some((lo, hi))).await?;
        let mut t = Timeline::new();
        for item in &found {
            t.insert(items::parse_mark(item)?);
        }
        Ok(t)
    }

    /// Every item of an address's partition, or of its sort keys between
    /// `lo` and `hi`.
    async fn query_partition(&self, key: &AddressKey, sort_keys: Option<(String, String)>) -> StoreResult<Vec<Item>> {
        let pk = items::address_pk(key);
        self.requests
            .query(|q| {
                let q = q
                    .consistent_read(true)
                    .expression_attribute_names("#pk", items::PK)
                    .expression_attribute_values(":pk", items::s(pk));
                match sort_keys {
                    Some((lo, hi)) => q
                        .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                        .expression_attribute_names("#sk", items::SK)
                        .expression_attribute_values(":lo", items::s(lo))
                        .expression_attribute_values(":hi", items::s(hi)),
                    None => q.key_condition_expression("#pk = :pk"),
                }
            })
            .all()
            .await
    }

    /// The owner at `at` from the mark items, read backwards from `at` a
    /// page at a time until a page explains it: the fallback when the head
    /// does not reach back far enough.
    async fn resolve_from_history(&self, key: &AddressKey, at: UnixTime, head: Timeline) -> StoreResult<Option<Owner>> {
        let mut t = head;
        let mut pages = self.requests.query(|q| {
            q.consistent_read(true)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                .expression_attribute_names("#pk", items::PK)
                .expression_attribute_names("#sk", items::SK)
                .expression_attribute_values(":pk", items::s(items::address_pk(key)))
                .expression_attribute_values(":lo", items::s(items::MARK_PREFIX))
                .expression_attribute_values(":hi", items::s(items::mark_sk_upper(at)))
                .scan_index_forward(false)
                .limit(HISTORY_PAGE)
        });
        while let Some(page) = pages.next().await {
            let page = page?;
            for item in &page.items {
                t.insert(items::parse_mark(item)?);
            }
            match t.resolve(at, page.last) {
                Resolution::Owned(owner) => return Ok(Some(owner.clone())),
                Resolution::Free => return Ok(None),
                Resolution::Unknown => {}
            }
        }
        // The paginator stopped on a repeated page key: what was read is
        // all there is.
        Ok(t.owner_at(at).cloned())
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
