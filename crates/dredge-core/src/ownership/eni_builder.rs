//! One way to turn a description of an ENI into an [`Eni`], whatever it
//! came in: a CloudTrail response, `aws ec2 describe-network-interfaces`
//! JSON, or the EC2 SDK's `NetworkInterface`. Each reader only maps its
//! field names onto an [`EniBuilder`]; the rules are here, once:
//!
//! - empty strings are absent;
//! - each address is kept once, in the order described;
//! - the primary private address counts only when no list named one (it is
//!   one of them);
//! - IPv6 addresses are private (ULA) or public (global) by [`is_private`];
//! - a `detached` attachment is no attachment;
//! - tags given later never replace tags given earlier: the ENI's own win.
//!
//! The builder lives in the model, beside [`Eni`], and not with the readers
//! (`dredge-ownership`): these rules say what an `Eni`'s fields mean, and
//! the applier, which changes ENIs too, shares its pieces
//! ([`push_unique`], [`merge_tags`], [`Eni::add_address`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use thiserror::Error;

use super::eni::{merge_tags, push_unique, Eni};

/// An address that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{value}` is not an IP address")]
pub struct BadAddress {
    /// The text as given.
    pub value: String,
}

/// Parses an address as EC2 writes it (surrounding white space allowed).
pub fn parse_address(text: &str) -> Result<IpAddr, BadAddress> {
    text.trim().parse().map_err(|_| BadAddress { value: text.to_owned() })
}

/// Tags as EC2 lists them, as (key, value): without a key (or with an empty
/// one) no tag, without a value an empty one. A key listed twice keeps its
/// last value.
pub fn tag_map<'t>(tags: impl IntoIterator<Item = (Option<&'t str>, Option<&'t str>)>) -> BTreeMap<String, String> {
    tags.into_iter().filter_map(|(key, value)| Some((present(key)?, value.unwrap_or_default().to_owned()))).collect()
}

/// Builds one [`Eni`] from what a description says of it. Setters take what
/// the description holds (`None` and `""` alike mean absent); address
/// setters parse.
#[derive(Debug, Clone)]
pub struct EniBuilder {
    eni: Eni,
}

/// The ids describe gives an Elastic IP's association.
#[derive(Debug, Clone, Copy, Default)]
pub struct Association<'a> {
    pub association_id: Option<&'a str>,
    pub allocation_id: Option<&'a str>,
}

impl EniBuilder {
    pub fn new(eni_id: impl Into<String>) -> EniBuilder {
        EniBuilder { eni: Eni::new(eni_id) }
    }

    pub fn account(&mut self, account_id: Option<&str>) -> &mut Self {
        self.eni.account_id = present(account_id);
        self
    }

    pub fn region(&mut self, region: Option<&str>) -> &mut Self {
        self.eni.region = present(region);
        self
    }

    pub fn az(&mut self, az: Option<&str>) -> &mut Self {
        self.eni.az = present(az);
        self
    }

    /// The zone, and the region its name gives ([`region_of_az`]): describe
    /// output names no region.
    pub fn az_and_region(&mut self, az: Option<&str>) -> &mut Self {
        self.eni.region = az.and_then(region_of_az);
        self.az(az)
    }

    pub fn vpc(&mut self, vpc_id: Option<&str>) -> &mut Self {
        self.eni.vpc_id = present(vpc_id);
        self
    }

    pub fn subnet(&mut self, subnet_id: Option<&str>) -> &mut Self {
        self.eni.subnet_id = present(subnet_id);
        self
    }

    pub fn interface_type(&mut self, interface_type: Option<&str>) -> &mut Self {
        self.eni.interface_type = present(interface_type);
        self
    }

    pub fn requester(&mut self, requester_id: Option<&str>) -> &mut Self {
        self.eni.requester_id = present(requester_id);
        self
    }

    pub fn description(&mut self, description: Option<&str>) -> &mut Self {
        self.eni.description = present(description);
        self
    }

    /// What the ENI is attached to. A `detached` attachment (EC2 describes
    /// it for a while after the detach) is no attachment.
    pub fn attachment(
        &mut self,
        instance_id: Option<&str>,
        attachment_id: Option<&str>,
        status: Option<&str>,
    ) -> &mut Self {
        if status != Some("detached") {
            self.eni.instance_id = present(instance_id);
            self.eni.attachment_id = present(attachment_id);
        }
        self
    }

    /// A listed private address.
    pub fn private(&mut self, ip: Option<&str>) -> Result<&mut Self, BadAddress> {
        if let Some(ip) = ip.filter(|ip| !ip.is_empty()) {
            push_unique(&mut self.eni.private_addresses, parse_address(ip)?);
        }
        Ok(self)
    }

    /// The ENI's primary private address: one of the listed ones, so it
    /// counts (and is parsed) only when the lists named none.
    pub fn primary_private(&mut self, ip: Option<&str>) -> Result<&mut Self, BadAddress> {
        if self.eni.private_addresses.is_empty() {
            self.private(ip)?;
        }
        Ok(self)
    }

    /// A public IPv4 address (an association, per address or the ENI's).
    pub fn public(&mut self, ip: Option<&str>) -> Result<&mut Self, BadAddress> {
        if let Some(ip) = ip.filter(|ip| !ip.is_empty()) {
            push_unique(&mut self.eni.public_addresses, parse_address(ip)?);
        }
        Ok(self)
    }

    /// A public address and who owns it, as describe and CloudTrail say
    /// (`ipOwnerId`): `amazon` for an auto-assigned address, an account id
    /// for an Elastic IP.
    pub fn public_owned_by(&mut self, ip: Option<&str>, owner: Option<&str>) -> Result<&mut Self, BadAddress> {
        if let Some(ip) = ip.filter(|ip| !ip.is_empty()) {
            let ip = parse_address(ip)?;
            push_unique(&mut self.eni.public_addresses, ip);
            if owner.is_some_and(|o| !o.is_empty() && o != "amazon") {
                push_unique(&mut self.eni.elastic_addresses, ip);
            }
        }
        Ok(self)
    }

    /// A public address with the ids of its association and allocation (an
    /// Elastic IP's, as describe names them), as
    /// [`EniBuilder::public_owned_by`] otherwise.
    pub fn associated(
        &mut self,
        ip: Option<&str>,
        owner: Option<&str>,
        ids: Association<'_>,
    ) -> Result<&mut Self, BadAddress> {
        self.public_owned_by(ip, owner)?;
        let Some(ip) = ip.filter(|ip| !ip.is_empty()) else { return Ok(self) };
        let ip = parse_address(ip)?;
        let named = |id: Option<&str>| id.filter(|i| !i.is_empty()).map(str::to_owned);
        if let Some(id) = named(ids.association_id) {
            self.eni.associations.insert(id, ip);
        }
        if let Some(id) = named(ids.allocation_id) {
            self.eni.allocations.insert(id, ip);
        }
        Ok(self)
    }

    /// An IPv6 address: private or public by its scope.
    pub fn ipv6(&mut self, ip: Option<&str>) -> Result<&mut Self, BadAddress> {
        if let Some(ip) = ip.filter(|ip| !ip.is_empty()) {
            self.eni.add_address(parse_address(ip)?);
        }
        Ok(self)
    }

    /// Tags (see [`tag_map`]), under those already given.
    pub fn tags<'t>(&mut self, tags: impl IntoIterator<Item = (Option<&'t str>, Option<&'t str>)>) -> &mut Self {
        merge_tags(&mut self.eni.tags, &tag_map(tags));
        self
    }

    /// The id of the ENI being built, for error messages.
    pub fn eni_id(&self) -> &str {
        &self.eni.eni_id
    }

    pub fn build(self) -> Eni {
        self.eni
    }
}

/// The region of an availability zone name: the name up to and including
/// the first all-digit part's digits. `us-east-1a` → `us-east-1`, and local
/// and Wavelength zones keep their parent region: `us-west-2-lax-1a` →
/// `us-west-2`, `us-east-1-wl1-bos-wlz-1` → `us-east-1`; `us-gov-west-1a` →
/// `us-gov-west-1`. Zone ids (`use1-az4`) and other shapes give `None`.
pub fn region_of_az(az: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in az.split('-') {
        let digits = part.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            if parts.len() < 2 {
                return None;
            }
            parts.push(&part[..digits]);
            return Some(parts.join("-"));
        }
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_lowercase()) {
            return None;
        }
        parts.push(part);
    }
    None
}

fn present(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn empty_is_absent_and_detached_is_unattached() {
        let mut b = EniBuilder::new("eni-1");
        b.vpc(Some("")).description(None).az_and_region(Some("us-east-1a"));
        b.attachment(Some("i-1"), Some("eni-attach-1"), Some("detached"));
        let eni = b.build();
        assert_eq!((eni.vpc_id, eni.description), (None, None));
        assert_eq!((eni.az.as_deref(), eni.region.as_deref()), (Some("us-east-1a"), Some("us-east-1")));
        assert_eq!((eni.instance_id, eni.attachment_id), (None, None));

        let mut b = EniBuilder::new("eni-1");
        b.attachment(Some("i-1"), Some(""), Some("attaching"));
        let eni = b.build();
        assert_eq!((eni.instance_id.as_deref(), eni.attachment_id), (Some("i-1"), None));
    }

    #[test]
    fn addresses_once_primary_only_as_a_fallback_ipv6_by_scope() {
        let mut b = EniBuilder::new("eni-1");
        b.primary_private(Some("10.0.0.9")).unwrap();
        assert_eq!(b.clone().build().private_addresses, ips(&["10.0.0.9"]));

        let mut b = EniBuilder::new("eni-1");
        b.private(Some("10.0.0.1")).unwrap().private(Some("10.0.0.1")).unwrap().private(Some("")).unwrap();
        // Named already: the primary is not even parsed.
        b.primary_private(Some("not an address")).unwrap();
        b.public(Some("3.0.0.1")).unwrap().public(Some(" 3.0.0.1")).unwrap();
        b.ipv6(Some("fd00::1")).unwrap().ipv6(Some("2600:1f18::1")).unwrap();
        let eni = b.build();
        assert_eq!(eni.private_addresses, ips(&["10.0.0.1", "fd00::1"]));
        assert_eq!(eni.public_addresses, ips(&["3.0.0.1", "2600:1f18::1"]));

        let err = EniBuilder::new("eni-1").public(Some("10.0.0.300")).unwrap_err();
        assert_eq!(err, BadAddress { value: "10.0.0.300".into() });
    }

    #[test]
    fn tags_given_first_win() {
        let mut b = EniBuilder::new("eni-1");
        b.tags([(Some("team"), Some("netops")), (None, Some("no key")), (Some(""), Some("empty key"))]);
        b.tags([(Some("team"), Some("edge")), (Some("app"), None)]);
        let tags = b.build().tags;
        assert_eq!(tags.len(), 2);
        assert_eq!((tags["team"].as_str(), tags["app"].as_str()), ("netops", ""));
        let last = tag_map([(Some("k"), Some("1")), (Some("k"), Some("2"))]);
        assert_eq!(last["k"], "2");
    }

    #[test]
    fn regions_of_zones() {
        for (az, region) in [
            ("us-east-1a", Some("us-east-1")),
            ("eu-central-2b", Some("eu-central-2")),
            ("ap-southeast-4c", Some("ap-southeast-4")),
            ("us-west-2-lax-1a", Some("us-west-2")),
            ("us-west-2-lax-1b", Some("us-west-2")),
            ("us-east-1-wl1-bos-wlz-1", Some("us-east-1")),
            ("us-gov-west-1a", Some("us-gov-west-1")),
            ("cn-north-1a", Some("cn-north-1")),
            ("us-east-1", Some("us-east-1")),
            ("use1-az4", None),
            ("", None),
            ("us-1a", None),
            ("US-EAST-1A", None),
        ] {
            assert_eq!(region_of_az(az).as_deref(), region, "{az}");
        }
    }
}
