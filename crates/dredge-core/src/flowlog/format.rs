//! Flow-log formats: which fields a line holds, in which order.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::field::Field;

/// An ordered list of distinct fields, with a reverse index so a decoded
/// record can be asked for a field in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct Format {
    fields: Vec<Field>,
    positions: [u8; Field::COUNT],
}

/// Marks a field that is not part of the format in `positions`.
const ABSENT: u8 = u8::MAX;

/// Why a format string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    #[error("empty format")]
    Empty,
    #[error("unknown field `{0}`")]
    UnknownField(String),
    #[error("field `{0}` appears twice")]
    Duplicate(Field),
}

/// The fields of the default (version 2) format, in order.
pub const DEFAULT_FIELDS: [Field; 14] = [
    Field::Version,
    Field::AccountId,
    Field::InterfaceId,
    Field::Srcaddr,
    Field::Dstaddr,
    Field::Srcport,
    Field::Dstport,
    Field::Protocol,
    Field::Packets,
    Field::Bytes,
    Field::Start,
    Field::End,
    Field::Action,
    Field::LogStatus,
];

impl Format {
    /// Builds a format from fields; each may appear once.
    pub fn new(fields: Vec<Field>) -> Result<Format, FormatError> {
        if fields.is_empty() {
            return Err(FormatError::Empty);
        }
        let mut positions = [ABSENT; Field::COUNT];
        for (i, f) in fields.iter().enumerate() {
            if positions[f.index()] != ABSENT {
                return Err(FormatError::Duplicate(*f));
            }
            // At most Field::COUNT (< 255) distinct fields, so `i` fits.
            positions[f.index()] = i as u8;
        }
        Ok(Format { fields, positions })
    }

    /// The default version 2 format AWS uses when none is given.
    pub fn default_v2() -> Format {
        Format::new(DEFAULT_FIELDS.to_vec()).expect("default format is valid")
    }

    /// Parses a format: `${field-name} ${field-name} ...` as given to
    /// CreateFlowLogs, or plain names (hyphens or underscores) separated by
    /// white space, as in a header line.
    pub fn parse(spec: &str) -> Result<Format, FormatError> {
        let fields = spec
            .split_ascii_whitespace()
            .map(|t| Field::from_name(t).ok_or_else(|| FormatError::UnknownField(t.to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        Format::new(fields)
    }

    /// If `line` is a header (its first token names a field), the format it
    /// declares. A data line never starts with a field name: its first token
    /// is a value (`2`, `eni-...`, `-`, ...).
    pub fn from_header(line: &str) -> Option<Result<Format, FormatError>> {
        let first = line.split_ascii_whitespace().next()?;
        Field::from_name(first)?;
        Some(Format::parse(line))
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Where `field` sits in a line of this format.
    #[inline]
    pub fn position(&self, field: Field) -> Option<usize> {
        match self.positions[field.index()] {
            ABSENT => None,
            p => Some(p as usize),
        }
    }

    pub fn contains(&self, field: Field) -> bool {
        self.position(field).is_some()
    }

    /// The format's version: the highest version among its fields.
    pub fn version(&self) -> u8 {
        self.fields.iter().map(|f| f.version()).max().unwrap_or(2)
    }

    /// The format as a CreateFlowLogs `LogFormat` string.
    pub fn to_aws_string(&self) -> String {
        self.fields.iter().map(|f| format!("${{{}}}", f.name())).collect::<Vec<_>>().join(" ")
    }
}

impl Default for Format {
    fn default() -> Self {
        Format::default_v2()
    }
}

impl FromStr for Format {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::parse(s)
    }
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Format").field(&self.fields).finish()
    }
}

impl fmt::Display for Format {
    /// The header-line spelling: hyphenated names separated by spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(field.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aws_placeholders_and_plain_names_alike() {
        let aws = Format::parse("${version} ${vpc-id} ${subnet-id} ${log-status}").unwrap();
        let plain = Format::parse("version vpc-id subnet_id  log-status").unwrap();
        assert_eq!(aws, plain);
        assert_eq!(aws.version(), 3);
        assert_eq!(aws.position(Field::SubnetId), Some(2));
        assert_eq!(aws.position(Field::Srcaddr), None);
    }

    #[test]
    fn round_trips_through_the_aws_string() {
        let f = Format::parse("srcaddr dstaddr reject-reason").unwrap();
        assert_eq!(f.to_aws_string(), "${srcaddr} ${dstaddr} ${reject-reason}");
        assert_eq!(Format::parse(&f.to_aws_string()).unwrap(), f);
        assert_eq!(f.version(), 8);
    }

    #[test]
    fn refuses_bad_formats() {
        assert_eq!(Format::parse("  "), Err(FormatError::Empty));
        assert_eq!(Format::parse("version srcaddr srcaddr"), Err(FormatError::Duplicate(Field::Srcaddr)));
        assert_eq!(Format::parse("version bogus"), Err(FormatError::UnknownField("bogus".into())));
    }

    #[test]
    fn recognises_headers_only_by_a_leading_field_name() {
        assert!(Format::from_header("version account-id").unwrap().is_ok());
        assert!(Format::from_header("version nonsense").unwrap().is_err());
        assert!(Format::from_header("2 123456789010 eni-1").is_none());
        assert!(Format::from_header("- eni-1").is_none());
        assert!(Format::from_header("").is_none());
    }
}
