//! Decoded field values. Text borrows from the input: decoding a line
//! allocates nothing.

use std::fmt;
use std::net::IpAddr;

/// The `action` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Accept,
    Reject,
}

/// The `log-status` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStatus {
    /// Data is logging normally.
    Ok,
    /// No traffic to or from the interface during the interval.
    NoData,
    /// Records were skipped during the interval.
    SkipData,
}

/// The `flow-direction` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowDirection {
    Ingress,
    Egress,
}

/// The `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrType {
    Ipv4,
    Ipv6,
    Efa,
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            /// Every value, in documentation order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            /// The text AWS writes.
            pub const fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }

            /// Parses AWS's spelling exactly (case-sensitive, as AWS writes it).
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($ty::$variant),)* _ => None }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(Action { Accept => "ACCEPT", Reject => "REJECT" });
text_enum!(LogStatus { Ok => "OK", NoData => "NODATA", SkipData => "SKIPDATA" });
text_enum!(FlowDirection { Ingress => "ingress", Egress => "egress" });
text_enum!(AddrType { Ipv4 => "IPv4", Ipv6 => "IPv6", Efa => "EFA" });

/// One decoded field. `Null` is AWS's `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    UInt(u64),
    Addr(IpAddr),
    Action(Action),
    LogStatus(LogStatus),
    Direction(FlowDirection),
    AddrType(AddrType),
    Text(&'a str),
}

impl Value<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::UInt(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_addr(&self) -> Option<IpAddr> {
        match *self {
            Value::Addr(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match *self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for Value<'_> {
    /// Renders the value as it appears in a flow-log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("-"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Addr(a) => write!(f, "{a}"),
            Value::Action(v) => v.fmt(f),
            Value::LogStatus(v) => v.fmt(f),
            Value::Direction(v) => v.fmt(f),
            Value::AddrType(v) => v.fmt(f),
            Value::Text(t) => f.write_str(t),
        }
    }
}
