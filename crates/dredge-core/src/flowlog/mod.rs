//! VPC flow-log decoding: every field of versions 2-8, any custom format,
//! header lines, CloudWatch Logs subscription documents, gzip.

mod field;
mod format;
mod gzip;
mod line;
mod payload;
mod record;
mod value;

pub use field::{is_id, Field, Kind, MAX_ID_SUFFIX, MAX_TEXT_BYTES};
pub use format::{Format, FormatError, DEFAULT_FIELDS};
pub use gzip::{gunzip_bounded, is_gzip, Inflater};
pub use line::LineError;
pub use payload::{
    DecodeOptions, DecodeStats, Decoder, Item, Payload, PayloadError, PayloadKind, TextLines, DEFAULT_MAX_DECOMPRESSED,
};
pub use record::{write_json_str, write_json_value, Record};
pub use value::{Action, AddrType, FlowDirection, LogStatus, Value};
