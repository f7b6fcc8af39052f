//! Address scopes. Private ranges repeat across VPCs and accounts, so a
//! private address only means something inside its VPC; public addresses
//! (and global IPv6) are unique and live in one global scope.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where an address is unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    /// Unique inside one VPC (RFC 1918, shared 100.64/10, ULA, link-local).
    Vpc(String),
    /// Unique on the internet.
    Global,
}

/// Whether an address can repeat in another VPC.
pub fn is_private(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private() || a.is_link_local() || a.is_loopback() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => {
            let s = a.segments()[0];
            (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80 || a.is_loopback()
        }
    }
}

impl Scope {
    /// The scope `addr` is unique in, seen from `vpc_id`. `None` when the
    /// address is private and the VPC is unknown: then no lookup is safe.
    pub fn of(addr: IpAddr, vpc_id: Option<&str>) -> Option<Scope> {
        if is_private(addr) {
            vpc_id.filter(|v| !v.is_empty()).map(|v| Scope::Vpc(v.to_owned()))
        } else {
            Some(Scope::Global)
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Vpc(v) => f.write_str(v),
            Scope::Global => f.write_str("global"),
        }
    }
}

/// A scope written as `vpc-...` or `global`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope must be `global` or a VPC id (`vpc-...`), not `{0}`")]
pub struct BadScope(String);

impl FromStr for Scope {
    type Err = BadScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "global" => Ok(Scope::Global),
            v if v.starts_with("vpc-") && v.len() > 4 && !v.contains(['#', ' ']) => Ok(Scope::Vpc(v.to_owned())),
            other => Err(BadScope(other.to_owned())),
        }
    }
}

impl TryFrom<String> for Scope {
    type Error = BadScope;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_need_a_vpc() {
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(Scope::of(a, None), None);
        assert_eq!(Scope::of(a, Some("vpc-1")), Some(Scope::Vpc("vpc-1".into())));
        for private in ["172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.0.1", "fd00::1", "fe80::1"] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["54.1.2.3", "100.128.0.1", "2600:1f18::1"] {
            let a: IpAddr = public.parse().unwrap();
            assert!(!is_private(a), "{public}");
            assert_eq!(Scope::of(a, Some("vpc-1")), Some(Scope::Global));
        }
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!("global".parse::<Scope>(), Ok(Scope::Global));
        assert_eq!("vpc-0abc".parse::<Scope>(), Ok(Scope::Vpc("vpc-0abc".into())));
        assert!("subnet-1".parse::<Scope>().is_err());
        assert_eq!(Scope::Vpc("vpc-9".into()).to_string(), "vpc-9");
    }
}
