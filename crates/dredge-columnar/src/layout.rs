//! Where the Parquet files live: `s3://BUCKET/PREFIX/dt=YYYY-MM-DD/hour=HH/`,
//! Hive-style partitions by the flows' hour (UTC). Athena projects them
//! ([`crate::athena`]); Druid lists them ([`crate::druid`]).

use time::{Date, OffsetDateTime};

/// The bucket and prefix of the checked-in Druid specs and Athena DDL.
pub const DEFAULT_BUCKET: &str = "dredge-data";
pub const DEFAULT_PREFIX: &str = "flows";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("bucket name {0:?}: expected 3 to 63 characters of a-z, 0-9, '.' and '-'")]
    Bucket(String),
    #[error("interval {0:?}: expected START/END, both RFC 3339, START before END")]
    Interval(String),
}

/// A bucket and a key prefix (without leading or trailing slashes; may be
/// empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    bucket: String,
    prefix: String,
}

impl Location {
    pub fn new(bucket: &str, prefix: &str) -> Result<Self, LayoutError> {
        let valid = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid {
            return Err(LayoutError::Bucket(bucket.into()));
        }
        Ok(Location { bucket: bucket.into(), prefix: prefix.trim_matches('/').into() })
    }

    /// `s3://BUCKET/PREFIX/`: every partition is under it.
    pub fn root(&self) -> String {
        match self.prefix.as_str() {
            "" => format!("s3://{}/", self.bucket),
            p => format!("s3://{}/{p}/", self.bucket),
        }
    }

    /// The partition of one day: `s3://BUCKET/PREFIX/dt=YYYY-MM-DD/`.
    pub fn day(&self, date: Date) -> String {
        format!("{}dt={}/", self.root(), iso_date(date))
    }

    /// Athena's `storage.location.template`.
    pub fn template(&self) -> String {
        format!("{}dt=${{dt}}/hour=${{hour}}/", self.root())
    }
}

/// `YYYY-MM-DD`.
pub fn iso_date(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// A time interval `[start, end)`, as Druid writes it: `START/END`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    start: OffsetDateTime,
    end: OffsetDateTime,
}

impl Interval {
    /// Parses `START/END` (RFC 3339 each, START before END).
    pub fn parse(text: &str) -> Result<Self, LayoutError> {
        use time::format_description::well_known::Rfc3339;
        let bad = || LayoutError::Interval(text.into());
        let (start, end) = text.split_once('/').ok_or_else(bad)?;
        let start = OffsetDateTime::parse(start, &Rfc3339).map_err(|_| bad())?;
        let end = OffsetDateTime::parse(end, &Rfc3339).map_err(|_| bad())?;
        if start >= end {
            return Err(bad());
        }
        Ok(Interval { start: start.to_offset(time::UtcOffset::UTC), end: end.to_offset(time::UtcOffset::UTC) })
    }

    /// Druid's text for it, in UTC.
    pub fn to_druid(&self) -> String {
        use time::format_description::well_known::Rfc3339;
        let f = |t: OffsetDateTime| t.format(&Rfc3339).expect("a UTC time formats");
        format!("{}/{}", f(self.start), f(self.end))
    }

    /// Every UTC day the interval touches.
    pub fn days(&self) -> impl Iterator<Item = Date> {
        let last = (self.end - time::Duration::nanoseconds(1)).date();
        std::iter::successors(Some(self.start.date()), move |d| d.next_day().filter(|n| *n <= last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_intervals() {
        let l = Location::new("dredge-data", "/flows/").unwrap();
        assert_eq!(l.root(), "s3://dredge-data/flows/");
        assert_eq!(l.template(), "s3://dredge-data/flows/dt=${dt}/hour=${hour}/");
        assert_eq!(Location::new("b-1", "").unwrap().root(), "s3://b-1/");
        assert!(Location::new("Bad_Bucket", "x").is_err());
        let i = Interval::parse("2026-11-30T22:00:00Z/2026-12-02T00:00:00Z").unwrap();
        let days: Vec<String> = i.days().map(|d| l.day(d)).collect();
        assert_eq!(days, ["s3://dredge-data/flows/dt=2026-11-30/", "s3://dredge-data/flows/dt=2026-12-01/"]);
        assert_eq!(i.to_druid(), "2026-11-30T22:00:00Z/2026-12-02T00:00:00Z");
        assert!(Interval::parse("2026-12-02T00:00:00Z/2026-12-01T00:00:00Z").is_err());
        assert!(Interval::parse("2026-12-01").is_err());
    }
}
