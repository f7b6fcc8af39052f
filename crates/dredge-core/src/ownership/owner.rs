//! Who holds an address: the ENI and what it belongs to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::frigga;

/// What sort of thing an ENI belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKind {
    Instance,
    Lambda,
    LoadBalancer,
    NatGateway,
    VpcEndpoint,
    EcsTask,
    /// An ENI whose purpose is not known (not attached, or a service ENI
    /// without a recognised type).
    Interface,
}

impl OwnerKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Instance => "instance",
            OwnerKind::Lambda => "lambda",
            OwnerKind::LoadBalancer => "load_balancer",
            OwnerKind::NatGateway => "nat_gateway",
            OwnerKind::VpcEndpoint => "vpc_endpoint",
            OwnerKind::EcsTask => "ecs_task",
            OwnerKind::Interface => "interface",
        }
    }
}

/// The tag an auto scaling group puts on its instances.
pub const ASG_TAG: &str = "aws:autoscaling:groupName";

/// The owner of an address during one interval. Every field but the ENI may
/// be unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub eni_id: String,
    pub kind: OwnerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub az: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// The configured tags (see [`TagPolicy`]) the ENI or its instance carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// Which tags are kept on owners, and which tag names the app when there is
/// no auto scaling group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPolicy {
    pub keep: Vec<String>,
    pub app_tag: Option<String>,
}

impl TagPolicy {
    /// The tags kept when `DREDGE_TAGS` is not set.
    pub const DEFAULT_TAGS: &'static str = "app,team";
    /// The app tag when `DREDGE_APP_TAG` is not set.
    pub const DEFAULT_APP_TAG: &'static str = "app";

    /// Parses `DREDGE_TAGS`-style configuration: comma-separated tag keys,
    /// and the tag naming the app. Every key and the app tag are trimmed;
    /// empty ones are dropped (an empty app tag means none). Every reader
    /// of the policy (functions, CLI) parses it here.
    pub fn from_keys(keys: &str, app_tag: Option<&str>) -> TagPolicy {
        TagPolicy {
            keep: keys.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect(),
            app_tag: app_tag.map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned),
        }
    }
}

impl Default for TagPolicy {
    fn default() -> Self {
        TagPolicy::from_keys(Self::DEFAULT_TAGS, Some(Self::DEFAULT_APP_TAG))
    }
}

impl Owner {
    /// How much the owner tells: its known fields and tags. Of two versions
    /// of one fact, the one that tells more wins (one learned before the
    /// instance's other interfaces were known lacks their tags).
    pub fn detail(&self) -> usize {
        let fields = [
            &self.interface_type,
            &self.requester_id,
            &self.instance_id,
            &self.asg,
            &self.app,
            &self.stack,
            &self.detail,
            &self.cluster,
            &self.account_id,
            &self.region,
            &self.az,
            &self.vpc_id,
            &self.subnet_id,
        ];
        fields.iter().filter(|f| f.is_some()).count() + self.tags.len()
    }

    /// Whether this version of a fact should replace `stored`: it tells
    /// more, or as much and sorts after it (a total order, so any arrival
    /// order keeps the same version).
    pub fn supersedes(&self, stored: &Owner) -> bool {
        match self.detail().cmp(&stored.detail()) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                let text = |o: &Owner| serde_json::to_string(o).unwrap_or_default();
                self != stored && text(self) > text(stored)
            }
        }
    }

    /// An owner with nothing known but its ENI.
    pub fn new(eni_id: impl Into<String>, kind: OwnerKind) -> Owner {
        Owner {
            eni_id: eni_id.into(),
            kind,
            interface_type: None,
            requester_id: None,
            instance_id: None,
            asg: None,
            app: None,
            stack: None,
            detail: None,
            cluster: None,
            account_id: None,
            region: None,
            az: None,
            vpc_id: None,
            subnet_id: None,
            tags: BTreeMap::new(),
        }
    }

    /// Sets the ASG and the app/stack/detail/cluster derived from it, or,
    /// without an ASG, the app from the policy's app tag. A name outside the
    /// naming convention leaves the parts unknown rather than guessed.
    pub fn name_from(&mut self, asg: Option<&str>, all_tags: &BTreeMap<String, String>, policy: &TagPolicy) {
        self.asg = asg.map(str::to_owned);
        match asg.and_then(frigga::parse) {
            Some(n) => {
                self.app = Some(n.app);
                self.stack = n.stack;
                self.detail = n.detail;
                self.cluster = Some(n.cluster);
            }
            None => {
                self.app = policy.app_tag.as_ref().and_then(|t| all_tags.get(t)).cloned();
                self.stack = None;
                self.detail = None;
                self.cluster = None;
            }
        }
        self.tags = policy.keep.iter().filter_map(|k| all_tags.get(k).map(|v| (k.clone(), v.clone()))).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tag_policy_is_trimmed_and_defaults_parse_like_configuration() {
        let p = TagPolicy::from_keys(" team , cost-center ,, ", Some(" service "));
        assert_eq!(p.keep, ["team", "cost-center"]);
        assert_eq!(p.app_tag.as_deref(), Some("service"));
        assert_eq!(TagPolicy::from_keys("app", Some("  ")).app_tag, None);
        assert_eq!(TagPolicy::from_keys("app", None).app_tag, None);
        let d = TagPolicy::default();
        assert_eq!(
            (d.keep.as_slice(), d.app_tag.as_deref()),
            (&["app".to_owned(), "team".to_owned()][..], Some("app"))
        );
    }

    #[test]
    fn asg_names_the_app() {
        let mut o = Owner::new("eni-1", OwnerKind::Instance);
        let t = tags(&[(ASG_TAG, "api-prod-v042"), ("app", "other"), ("team", "edge"), ("cost", "x")]);
        o.name_from(Some("api-prod-v042"), &t, &TagPolicy::default());
        assert_eq!(o.app.as_deref(), Some("api"));
        assert_eq!(o.cluster.as_deref(), Some("api-prod"));
        assert_eq!(o.tags, tags(&[("app", "other"), ("team", "edge")]));
    }

    #[test]
    fn app_tag_names_the_app_without_an_asg() {
        let mut o = Owner::new("eni-1", OwnerKind::Lambda);
        o.name_from(None, &tags(&[("app", "billing")]), &TagPolicy::default());
        assert_eq!(o.app.as_deref(), Some("billing"));
        assert_eq!(o.cluster, None);
    }

    #[test]
    fn serialises_compactly() {
        let o = Owner::new("eni-1", OwnerKind::NatGateway);
        assert_eq!(serde_json::to_string(&o).unwrap(), r#"{"eni_id":"eni-1","kind":"nat_gateway"}"#);
    }
}
