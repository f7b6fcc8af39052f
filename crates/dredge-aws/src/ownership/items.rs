//! Keys and item layouts of the ownership table (see the README, section
//! "The ownership table (DynamoDB)").

use std::collections::HashMap;
use std::net::IpAddr;

use aws_sdk_dynamodb::types::AttributeValue;
use dredge_core::ownership::{
    AddressKey, Attached, Change, EniRecord, EniRef, InstanceNotes, InstanceRecord, Mark, Owner, Sighting, StoreError,
    Timeline, UnixTime,
};

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
/// Partition key of the instance index: `I#<instance id>` on ENI records.
pub(crate) const GSI1PK: &str = "gsi1pk";
/// Sort key of the instance index: `E#<eni id>`.
pub(crate) const GSI1SK: &str = "gsi1sk";
/// The TTL attribute (epoch seconds).
pub(crate) const EXPIRES_AT: &str = "expires_at";
/// On a mark item: the version of the address's head its `expires_at` was
/// told from.
pub(crate) const DATED_BY: &str = "dated_by";

pub(crate) const HEAD_SK: &str = "HEAD";
pub(crate) const MARK_PREFIX: &str = "M#";
pub(crate) const ADDRESS_PREFIX: &str = "A#";
pub(crate) const ENI_SK: &str = "ENI";
pub(crate) const ALIAS_SK: &str = "ALIAS";
pub(crate) const INSTANCE_SK: &str = "INSTANCE";
pub(crate) const NOTES_SK: &str = "NOTES";
/// The item of every scope's latest reconcile (partition and sort key).
pub(crate) const RECONCILED_KEY: &str = "RECONCILED";
/// Its attributes: `r#<scope label>`, epoch seconds.
pub(crate) const RECONCILED_PREFIX: &str = "r#";

// Mark items.
const AT: &str = "at";
const KIND: &str = "kind";
const ENI_ID: &str = "eni_id";
pub(crate) const OWNER: &str = "owner";
/// The instance a close is limited to.
pub(crate) const INSTANCE_ID: &str = "instance_id";
/// On a reconcile's close: released at or before its time.
pub(crate) const FOUND_GONE: &str = "found_gone";
/// On an instance's close: the interface outlived the end (ends nothing).
pub(crate) const SPARED: &str = "spared";
/// A relabel's basis (`Mark::Relabel`), when not 0.
pub(crate) const BASIS: &str = "basis";
// Head items.
const MARKS: &str = "marks";
const COMPLETE: &str = "complete";
const SEEN_PREFIX: &str = "seen#";
pub(crate) const VERSION: &str = "version";
// ENI records.
const RECORD: &str = "record";
// Kept changes.
const CHANGE: &str = "change";
// Instance records.
pub(crate) const RUNNING: &str = "running";
/// The number set of an instance's stops (on its `NOTES` item).
pub(crate) const STOPS: &str = "stops";
/// The string set of the ENIs attached to an instance (on its `NOTES` item).
pub(crate) const INTERFACES: &str = "interfaces";
pub(crate) const CHANGED_AT: &str = "changed_at";

pub(crate) fn address_pk(key: &AddressKey) -> String {
    format!("{ADDRESS_PREFIX}{}#{}", key.scope, key.address)
}

/// The address of an `A#<scope>#<ip>` partition key. Scopes never contain
/// `#` (see `Scope::from_str`), addresses never do.
pub(crate) fn parse_address_pk(pk: &str) -> Option<AddressKey> {
    let (scope, address) = pk.strip_prefix(ADDRESS_PREFIX)?.split_once('#')?;
    Some(AddressKey::new(scope.parse().ok()?, address.parse::<IpAddr>().ok()?))
}

pub(crate) fn mark_sk(mark: &Mark) -> String {
    format!("{MARK_PREFIX}{}", mark.sort_key())
}

/// The greatest sort key a mark at or before `at` can have.
pub(crate) fn mark_sk_upper(at: UnixTime) -> String {
    // Sort keys are `M#<012 digits>#<rank 0|1|2>#<eni>`; `#3` sorts after every rank.
    format!("{MARK_PREFIX}{:012}#3", at.0.max(0))
}

pub(crate) fn eni_pk(eni_id: &str) -> String {
    format!("E#{eni_id}")
}

pub(crate) fn attachment_pk(attachment_id: &str) -> String {
    format!("ATT#{attachment_id}")
}

pub(crate) fn association_pk(association_id: &str) -> String {
    format!("ASC#{association_id}")
}

pub(crate) fn instance_pk(instance_id: &str) -> String {
    format!("I#{instance_id}")
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

fn corrupt(what: &str, item: &Item) -> StoreError {
    let pk = get_s(item, PK).unwrap_or("?");
    let sk = get_s(item, SK).unwrap_or("?");
    StoreError::Permanent(format!("item {pk} / {sk}: {what}"))
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub(crate) fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn get_bool(item: &Item, name: &str) -> Option<bool> {
    item.get(name).and_then(|v| v.as_bool().ok()).copied()
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Permanent(format!("serialising: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    let text = get_s(item, name).ok_or_else(|| corrupt(&format!("no `{name}`"), item))?;
    serde_json::from_str(text).map_err(|e| corrupt(&format!("`{name}`: {e}"), item))
}

/// One mark as its own item. The owner of an open is JSON (serde of
/// `Owner`): read back whole, never queried by field.
pub(crate) fn mark_item(key: &AddressKey, mark: &Mark, expires_at: Option<i64>) -> Result<Item, StoreError> {
    let mut item = self::key(address_pk(key), &mark_sk(mark));
    item.insert(AT.into(), n(mark.at().0));
    item.insert(ENI_ID.into(), s(mark.eni_id()));
    match mark {
        Mark::Open { owner, .. } => {
            item.insert(KIND.into(), s("open"));
            item.insert(OWNER.into(), s(json(owner)?));
        }
        Mark::Relabel { owner, basis, .. } => {
            item.insert(KIND.into(), s("relabel"));
            item.insert(OWNER.into(), s(json(owner)?));
            if *basis > 0 {
                item.insert(BASIS.into(), n(*basis as i64));
            }
        }
        Mark::Close { instance_id, found_gone, spared, .. } => {
            item.insert(KIND.into(), s("close"));
            if let Some(i) = instance_id {
                item.insert(INSTANCE_ID.into(), s(i.as_str()));
            }
            for (name, set) in [(FOUND_GONE, *found_gone), (SPARED, *spared)] {
                if set {
                    item.insert(name.into(), AttributeValue::Bool(true));
                }
            }
        }
    }
    if let Some(e) = expires_at {
        item.insert(EXPIRES_AT.into(), n(e));
    }
    Ok(item)
}

pub(crate) fn parse_mark(item: &Item) -> Result<Mark, StoreError> {
    let at = UnixTime(get_n(item, AT).ok_or_else(|| corrupt("no `at`", item))?);
    match get_s(item, KIND) {
        Some("open") => Ok(Mark::Open { at, owner: from_json::<Owner>(item, OWNER)? }),
        Some("relabel") => {
            let basis = get_n(item, BASIS).map_or(0, |b| b as u64);
            Ok(Mark::Relabel { at, owner: from_json::<Owner>(item, OWNER)?, basis })
        }
        Some("close") => {
            let eni_id = get_s(item, ENI_ID).ok_or_else(|| corrupt("no `eni_id`", item))?.to_owned();
            let instance_id = get_s(item, INSTANCE_ID).map(str::to_owned);
            let found_gone = get_bool(item, FOUND_GONE).unwrap_or(false);
            let spared = get_bool(item, SPARED).unwrap_or(false);
            Ok(Mark::Close { at, eni_id, instance_id, found_gone, spared })
        }
        _ => Err(corrupt("`kind` is not `open`, `relabel` or `close`", item)),
    }
}

/// The summary item of one address: its latest marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub marks: Timeline,
    /// No mark was ever dropped: `marks` is the whole history.
    pub complete: bool,
    pub version: i64,
    pub expires_at: Option<i64>,
    /// One `seen#<eni>#<attached>` attribute each (epoch seconds), so a
    /// heartbeat is one UpdateItem that needs no read.
    pub seen: Vec<Sighting>,
}

/// The head attribute that holds the latest sighting of one ENI and
/// attachment.
pub(crate) fn seen_attribute(s: &Sighting) -> String {
    let attached = match &s.attached {
        Attached::To(instance) => format!("to:{instance}"),
        Attached::Nothing => "nothing".into(),
        Attached::Unknown => "unknown".into(),
    };
    format!("{SEEN_PREFIX}{}#{attached}", s.eni_id)
}

fn parse_seen(name: &str, value: &AttributeValue) -> Option<Sighting> {
    let (eni_id, attached) = name.strip_prefix(SEEN_PREFIX)?.split_once('#')?;
    let attached = match attached {
        "nothing" => Attached::Nothing,
        "unknown" => Attached::Unknown,
        other => Attached::To(other.strip_prefix("to:")?.to_owned()),
    };
    let at = value.as_n().ok()?.parse().ok()?;
    Some(Sighting { eni_id: eni_id.to_owned(), attached, at: UnixTime(at) })
}

pub(crate) fn head_item(key: &AddressKey, head: &Head) -> Result<Item, StoreError> {
    let mut item = self::key(address_pk(key), HEAD_SK);
    item.insert(MARKS.into(), s(json(&head.marks)?));
    item.insert(COMPLETE.into(), AttributeValue::Bool(head.complete));
    item.insert(VERSION.into(), n(head.version));
    if let Some(e) = head.expires_at {
        item.insert(EXPIRES_AT.into(), n(e));
    }
    for seen in &head.seen {
        item.insert(seen_attribute(seen), n(seen.at.0));
    }
    Ok(item)
}

pub(crate) fn parse_head(item: &Item) -> Result<Head, StoreError> {
    Ok(Head {
        marks: from_json(item, MARKS)?,
        complete: get_bool(item, COMPLETE).ok_or_else(|| corrupt("no `complete`", item))?,
        version: get_n(item, VERSION).ok_or_else(|| corrupt("no `version`", item))?,
        expires_at: get_n(item, EXPIRES_AT),
        seen: item.iter().filter_map(|(name, value)| parse_seen(name, value)).fold(Vec::new(), |mut all, s| {
            Sighting::merge(&mut all, s);
            all
        }),
    })
}

/// The record item; `version` is also an attribute of its own, for the
/// condition of the next write.
pub(crate) fn eni_item(record: &EniRecord, expires_at: Option<i64>) -> Result<Item, StoreError> {
    let eni_id = &record.eni.eni_id;
    let mut item = key(eni_pk(eni_id), ENI_SK);
    item.insert(RECORD.into(), s(json(record)?));
    item.insert(VERSION.into(), n(record.version as i64));
    if let Some(instance_id) = record.eni.instance_id.as_deref().filter(|i| !i.is_empty()) {
        item.insert(GSI1PK.into(), s(instance_pk(instance_id)));
        item.insert(GSI1SK.into(), s(eni_pk(eni_id)));
    }
    if let Some(e) = expires_at {
        item.insert(EXPIRES_AT.into(), n(e));
    }
    Ok(item)
}

pub(crate) fn parse_eni(item: &Item) -> Result<EniRecord, StoreError> {
    let mut record: EniRecord = from_json(item, RECORD)?;
    record.version = get_n(item, VERSION).map_or(0, |v| v as u64);
    Ok(record)
}

/// The alias partition keys an ENI record is found by: its attachments
/// (current and remembered) and its public IP associations.
pub(crate) fn alias_pks(record: &EniRecord) -> Vec<String> {
    record
        .references()
        .into_iter()
        .filter_map(|r| match r {
            EniRef::Id(_) => None,
            EniRef::Attachment(a) => Some(attachment_pk(&a)),
            EniRef::Association(a) => Some(association_pk(&a)),
        })
        .collect()
}

/// Partition key of the changes kept for an ENI not known yet.
pub(crate) fn pending_pk(reference: &EniRef) -> String {
    match reference {
        EniRef::Id(id) => format!("P#{}", eni_pk(id)),
        EniRef::Attachment(a) => format!("P#{}", attachment_pk(a)),
        EniRef::Association(a) => format!("P#{}", association_pk(a)),
    }
}

/// The item of one kept change: sorted by time, told apart by a digest of
/// the change (FNV-1a: stable across builds, unlike std's hasher).
pub(crate) fn pending_item(reference: &EniRef, change: &Change, expires_at: i64) -> Result<Item, StoreError> {
    let body = json(change)?;
    let mut item = key(pending_pk(reference), &pending_sk(change.at(), &body));
    item.insert(CHANGE.into(), s(body));
    item.insert(EXPIRES_AT.into(), n(expires_at));
    Ok(item)
}

pub(crate) fn pending_key(reference: &EniRef, change: &Change) -> Result<Item, StoreError> {
    Ok(key(pending_pk(reference), &pending_sk(change.at(), &json(change)?)))
}

fn pending_sk(at: UnixTime, body: &str) -> String {
    let digest = body.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("C#{:012}#{digest:016x}", at.0.max(0))
}

pub(crate) fn parse_pending(item: &Item) -> Result<Change, StoreError> {
    from_json(item, CHANGE)
}

/// An instance's notes item.
pub(crate) fn parse_notes(item: &Item) -> InstanceNotes {
    let mut notes = InstanceNotes::default();
    if let Some(AttributeValue::Ns(values)) = item.get(STOPS) {
        notes.stops = values.iter().filter_map(|v| v.parse().ok()).map(UnixTime).collect();
        notes.stops.sort();
    }
    if let Some(AttributeValue::Ss(values)) = item.get(INTERFACES) {
        notes.interfaces = values.clone();
        notes.interfaces.sort();
    }
    notes
}

pub(crate) fn alias_item(pk: String, eni_id: &str, expires_at: Option<i64>) -> Item {
    let mut item = key(pk, ALIAS_SK);
    item.insert(ENI_ID.into(), s(eni_id));
    if let Some(e) = expires_at {
        item.insert(EXPIRES_AT.into(), n(e));
    }
    item
}

pub(crate) fn alias_target(item: &Item) -> Result<String, StoreError> {
    get_s(item, ENI_ID).map(str::to_owned).ok_or_else(|| corrupt("no `eni_id`", item))
}

pub(crate) const ALIAS_ENI_ID: &str = ENI_ID;

pub(crate) fn instance_item(record: &InstanceRecord, expires_at: Option<i64>) -> Item {
    let mut item = key(instance_pk(&record.instance_id), INSTANCE_SK);
    item.insert(RUNNING.into(), AttributeValue::Bool(record.running));
    item.insert(CHANGED_AT.into(), n(record.changed_at.0));
    if let Some(e) = expires_at {
        item.insert(EXPIRES_AT.into(), n(e));
    }
    item
}

pub(crate) fn parse_instance(instance_id: &str, item: &Item) -> Result<InstanceRecord, StoreError> {
    Ok(InstanceRecord {
        instance_id: instance_id.to_owned(),
        running: get_bool(item, RUNNING).ok_or_else(|| corrupt("no `running`", item))?,
        changed_at: UnixTime(get_n(item, CHANGED_AT).ok_or_else(|| corrupt("no `changed_at`", item))?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dredge_core::ownership::{Eni, OwnerKind, Scope};

    fn owner() -> Owner {
        let mut o = Owner::new("eni-1", OwnerKind::Instance);
        o.app = Some("api".into());
        o
    }

    #[test]
    fn address_keys_round_trip() {
        for (scope, ip) in [
            (Scope::Vpc("vpc-0abc".into()), "10.0.0.1"),
            (Scope::Global, "54.1.2.3"),
            (Scope::Global, "2600:1f18::1"),
            (Scope::Vpc("vpc-1".into()), "fd00::1:2"),
        ] {
            let key = AddressKey::new(scope, ip.parse().unwrap());
            let pk = address_pk(&key);
            assert!(pk.starts_with("A#"));
            assert_eq!(parse_address_pk(&pk), Some(key));
        }
        assert_eq!(parse_address_pk("E#eni-1"), None);
        assert_eq!(parse_address_pk("A#subnet-1#10.0.0.1"), None);
    }

    #[test]
    fn marks_round_trip_and_sort_like_their_keys() {
        let key = AddressKey::new(Scope::Global, "54.1.2.3".parse().unwrap());
        let open = Mark::Open { at: UnixTime(1_700_000_000), owner: owner() };
        let close = Mark::close(UnixTime(1_700_000_000), "eni-1");
        let gone = Mark::found_gone(UnixTime(1_700_000_000), "eni-1");
        let relabel = Mark::relabel(UnixTime(1_700_000_000), owner());
        let retold = Mark::Relabel { at: UnixTime(1_700_000_000), owner: owner(), basis: 7 };
        let spared = Mark::Close {
            at: UnixTime(1_700_000_000),
            eni_id: "eni-1".into(),
            instance_id: Some("i-1".into()),
            found_gone: false,
            spared: true,
        };
        for m in [&open, &close, &gone, &relabel, &retold, &spared] {
            let item = mark_item(&key, m, Some(5)).unwrap();
            assert_eq!(&parse_mark(&item).unwrap(), m);
            assert_eq!(get_n(&item, EXPIRES_AT), Some(5));
            assert!(mark_sk(m) <= mark_sk_upper(m.at()));
            assert!(mark_sk(m) > mark_sk_upper(UnixTime(m.at().0 - 1)));
        }
        assert!(mark_sk(&close) < mark_sk(&open) && mark_sk(&open) < mark_sk(&relabel));
        // Mark queries use `sk BETWEEN "M#" AND ...`: the head is never in range.
        assert!(HEAD_SK < MARK_PREFIX);
    }

    #[test]
    fn heads_and_records_round_trip() {
        let key = AddressKey::new(Scope::Vpc("vpc-1".into()), "10.0.0.1".parse().unwrap());
        let head = Head {
            marks: Timeline::from_marks([Mark::Open { at: UnixTime(1), owner: owner() }]),
            complete: false,
            version: 7,
            expires_at: None,
            seen: vec![
                Sighting { eni_id: "eni-1".into(), attached: Attached::To("i-1".into()), at: UnixTime(9) },
                Sighting { eni_id: "eni-1".into(), attached: Attached::Unknown, at: UnixTime(8) },
                Sighting { eni_id: "eni-2".into(), attached: Attached::Nothing, at: UnixTime(7) },
            ],
        };
        assert_eq!(parse_head(&head_item(&key, &head).unwrap()).unwrap(), head);

        let mut eni = Eni::new("eni-9");
        eni.instance_id = Some("i-1".into());
        eni.attachment_id = Some("eni-attach-1".into());
        let mut record = EniRecord::new(eni, UnixTime(10));
        record.associations.insert("eipassoc-1".into(), "54.1.2.3".parse().unwrap());
        let item = eni_item(&record, None).unwrap();
        assert_eq!(parse_eni(&item).unwrap(), record);
        assert_eq!(get_s(&item, GSI1PK), Some("I#i-1"));
        assert_eq!(alias_pks(&record), vec!["ATT#eni-attach-1".to_owned(), "ASC#eipassoc-1".to_owned()]);

        let inst = InstanceRecord { instance_id: "i-1".into(), running: false, changed_at: UnixTime(3) };
        assert_eq!(parse_instance("i-1", &instance_item(&inst, Some(9))).unwrap(), inst);
    }
}
