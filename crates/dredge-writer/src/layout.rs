//! Where the writer's objects go. All times are UTC.
//!
//! - staged objects, one per batch and hour of flow time:
//!   `staging/{prefix}/dt=YYYY-MM-DD/hour=HH/{shard}_{first}_{last}.parquet`,
//!   named from the batch's position on the stream so that a retry of the
//!   same batch overwrites its own objects;
//! - final objects, written by compaction:
//!   `{prefix}/dt=YYYY-MM-DD/hour=HH/part-{run}-{n}.parquet`;
//! - the hour's manifest: `{prefix}/dt=YYYY-MM-DD/hour=HH/_manifest.json`.
//!
//! Staging sits outside `{prefix}/` so that Druid and Athena, reading the
//! final prefix, never see a staged (possibly duplicated) flow. Nothing
//! from record content reaches a key but the hour, which is computed from
//! a parsed integer; the shard and sequence numbers come from the event and
//! are checked.

use std::fmt;

use dredge_columnar::layout::iso_date;
use time::OffsetDateTime;

/// One hour of flow time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour {
    /// Seconds since the epoch at the start of the hour.
    start: i64,
}

impl Hour {
    /// The hour holding `ms` (epoch milliseconds); `None` outside the
    /// years 0 to 9999, which no key can name.
    pub fn of_millis(ms: i64) -> Option<Hour> {
        let start = ms.div_euclid(3_600_000) * 3600;
        let t = OffsetDateTime::from_unix_timestamp(start).ok()?;
        (0..=9999).contains(&t.year()).then_some(Hour { start })
    }

    pub fn start(self) -> i64 {
        self.start
    }

    /// The first second after the hour.
    pub fn end(self) -> i64 {
        self.start + 3600
    }

    /// `dt=YYYY-MM-DD/hour=HH`.
    pub fn partition(self) -> String {
        let t = OffsetDateTime::from_unix_timestamp(self.start).expect("checked when built");
        format!("dt={}/hour={:02}", iso_date(t.date()), t.hour())
    }

    /// The hour a key's `dt=YYYY-MM-DD/hour=HH` names, wherever it stands.
    pub fn in_key(key: &str) -> Option<Hour> {
        let at = key.find("dt=")?;
        let rest = &key[at + 3..];
        let (date, rest) = (rest.get(..10)?, rest.get(10..)?);
        let hour = rest.strip_prefix("/hour=")?.get(..2)?;
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let (y, m, d) = (date.get(..4)?, date.get(5..7)?, date.get(8..10)?);
        if !(digits(y) && digits(m) && digits(d) && digits(hour) && &date[4..5] == "-" && &date[7..8] == "-") {
            return None;
        }
        let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
        let date = time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
        let hour: i64 = hour.parse().ok().filter(|h| *h < 24)?;
        let start = date.midnight().assume_utc().unix_timestamp() + hour * 3600;
        Some(Hour { start })
    }
}

impl fmt::Display for Hour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.partition())
    }
}

/// A batch's position on the stream: its shard and first and last sequence
/// numbers. Checked, since it names objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchName(String);

impl BatchName {
    /// `shard` as Kinesis names shards (`shardId-` and digits), sequence
    /// numbers as digits.
    pub fn new(shard: &str, first: &str, last: &str) -> Option<BatchName> {
        let digits = |s: &str| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_digit());
        let shard_ok = shard.strip_prefix("shardId-").is_some_and(digits);
        (shard_ok && digits(first) && digits(last)).then(|| BatchName(format!("{shard}_{first}_{last}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The keys of one deployment's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

impl Layout {
    /// `prefix` is `DATA_PREFIX`: non-empty, without leading or trailing
    /// slashes, of path-safe characters.
    pub fn new(prefix: &str) -> Option<Layout> {
        let prefix = prefix.trim_matches('/');
        let ok = !prefix.is_empty()
            && prefix.len() <= 200
            && prefix.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
            && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=".contains(&b));
        ok.then(|| Layout { prefix: prefix.to_owned() })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where every staged object of this deployment is.
    pub fn staging_root(&self) -> String {
        format!("staging/{}/", self.prefix)
    }

    pub fn staged(&self, hour: Hour, batch: &BatchName) -> String {
        format!("staging/{}/{}/{}.parquet", self.prefix, hour.partition(), batch.as_str())
    }

    /// The folder of an hour's final objects and manifest.
    pub fn final_dir(&self, hour: Hour) -> String {
        format!("{}/{}/", self.prefix, hour.partition())
    }

    pub fn final_object(&self, hour: Hour, run: i64, n: usize) -> String {
        format!("{}part-{run}-{n:04}.parquet", self.final_dir(hour))
    }

    pub fn manifest(&self, hour: Hour) -> String {
        format!("{}{MANIFEST}", self.final_dir(hour))
    }
}

/// The name of an hour's manifest.
pub const MANIFEST: &str = "_manifest.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_in_utc_and_back_from_keys() {
        // 2026-11-30T13:45:10.123Z
        let h = Hour::of_millis(1_796_046_310_123).unwrap();
        assert_eq!(h.partition(), "dt=2026-11-30/hour=13");
        assert_eq!(h.end() - h.start(), 3600);
        assert_eq!(Hour::of_millis(h.start() * 1000), Some(h));
        assert_eq!(Hour::of_millis(h.end() * 1000 - 1), Some(h));
        let layout = Layout::new("flows").unwrap();
        let batch = BatchName::new("shardId-000000000006", "4959", "4960").unwrap();
        let staged = layout.staged(h, &batch);
        assert_eq!(staged, "staging/flows/dt=2026-11-30/hour=13/shardId-000000000006_4959_4960.parquet");
        assert_eq!(Hour::in_key(&staged), Some(h));
        assert_eq!(layout.manifest(h), "flows/dt=2026-11-30/hour=13/_manifest.json");
        assert_eq!(layout.final_object(h, 1796050000, 2), "flows/dt=2026-11-30/hour=13/part-1796050000-0002.parquet");
        assert_eq!(Hour::in_key(&layout.final_object(h, 1, 0)), Some(h));
        // Before 1970 too.
        assert_eq!(Hour::of_millis(-1).unwrap().partition(), "dt=1969-12-31/hour=23");
    }

    #[test]
    fn nothing_unchecked_names_an_object() {
        assert_eq!(Hour::of_millis(i64::MAX), None, "year 292 million");
        for bad in
            ["dt=2026-13-01/hour=00", "dt=2026-11-31/hour=00", "dt=2026-11-30/hour=24", "dt=2026-1a-30/hour=00", "x"]
        {
            assert_eq!(Hour::in_key(bad), None, "{bad}");
        }
        assert!(BatchName::new("shardId-../x", "1", "2").is_none());
        assert!(BatchName::new("shardId-000000000001", "1/2", "3").is_none());
        assert!(BatchName::new("shardId-000000000001", "", "3").is_none());
        for bad in ["", "/", "a/../b", "a//b", "a b", "é"] {
            assert!(Layout::new(bad).is_none(), "{bad:?}");
        }
        assert_eq!(Layout::new("/data/flows/").unwrap().prefix(), "data/flows");
    }
}
