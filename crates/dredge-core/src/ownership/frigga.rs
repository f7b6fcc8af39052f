//! Netflix application naming (Frigga): an auto scaling group is named
//! `app[-stack[-detail]][-vNNN]`; the cluster is the name without the push.

/// The parts of a Frigga name.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Names {
    pub app: String,
    pub stack: Option<String>,
    pub detail: Option<String>,
    pub cluster: String,
    /// The push number, `v042` in `api-prod-v042`.
    pub push: Option<String>,
}

fn is_simple(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
}

fn is_push(part: &str) -> bool {
    part.len() == 4 && part.starts_with('v') && part[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Splits an auto scaling group (or cluster) name. `None` when the name does
/// not follow the convention, so that nothing is guessed from it.
pub fn parse(name: &str) -> Option<Names> {
    let (cluster, push) = match name.rsplit_once('-') {
        Some((rest, last)) if is_push(last) => (rest, Some(last.to_owned())),
        _ => (name, None),
    };
    let mut parts = cluster.splitn(3, '-');
    let app = parts.next().filter(|a| is_simple(a))?;
    let stack = match parts.next() {
        None => None,
        Some("") => None,
        Some(s) if is_simple(s) => Some(s.to_owned()),
        Some(_) => return None,
    };
    let detail = match parts.next() {
        None => None,
        Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) => {
            Some(d.to_owned())
        }
        Some(_) => return None,
    };
    Some(Names { app: app.to_owned(), stack, detail, cluster: cluster.to_owned(), push })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documented_examples() {
        let n = parse("api-prod-v042").unwrap();
        assert_eq!((n.app.as_str(), n.stack.as_deref(), n.detail.as_deref()), ("api", Some("prod"), None));
        assert_eq!(n.cluster, "api-prod");
        assert_eq!(n.push.as_deref(), Some("v042"));

        let n = parse("edge-prod-us-east-1-v007").unwrap();
        assert_eq!(n.app, "edge");
        assert_eq!(n.stack.as_deref(), Some("prod"));
        assert_eq!(n.detail.as_deref(), Some("us-east-1"));
        assert_eq!(n.cluster, "edge-prod-us-east-1");
    }

    #[test]
    fn handles_missing_parts() {
        let n = parse("api").unwrap();
        assert_eq!((n.app.as_str(), n.stack, n.cluster.as_str(), n.push), ("api", None, "api", None));
        let n = parse("api-v001").unwrap();
        assert_eq!((n.cluster.as_str(), n.push.as_deref()), ("api", Some("v001")));
        // An empty stack with a detail: `app--detail`.
        let n = parse("api--canary").unwrap();
        assert_eq!((n.stack, n.detail.as_deref()), (None, Some("canary")));
        // `v12` is not a push (exactly three digits), so it is the stack.
        let n = parse("api-v12").unwrap();
        assert_eq!(n.stack.as_deref(), Some("v12"));
    }

    #[test]
    fn refuses_names_outside_the_convention() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("-prod"), None);
        assert_eq!(parse("my app-prod"), None);
        assert_eq!(parse("api-pr!od"), None);
    }
}
