//! `flows[].rename`: explicit topic renames, and finding the target topics
//! two source topics would be written to.

use std::borrow::Cow;
use std::collections::BTreeMap;

use regex::Regex;

use crate::model::anchored;

/// One `{ from, to }` rule of `flows[].rename`: a source topic whose whole
/// name matches `from` is called `to` (with `$1`, `${name}` group
/// references expanded) before the naming policy applies.
#[derive(Debug, Clone)]
pub struct RenameRule {
    from: String,
    to: String,
    regex: Regex,
}

impl RenameRule {
    /// `from` must already be known to compile and `to` to name only groups
    /// it has (see `validate`).
    pub(crate) fn new(from: String, to: String) -> Result<Self, regex::Error> {
        Ok(Self {
            regex: anchored(&from)?,
            from,
            to,
        })
    }

    /// The pattern as written.
    pub fn from(&self) -> &str {
        &self.from
    }

    /// The replacement as written.
    pub fn to(&self) -> &str {
        &self.to
    }

    /// The new name when this rule matches the whole topic name.
    pub fn apply(&self, topic: &str) -> Option<String> {
        let captures = self.regex.captures(topic)?;
        let mut out = String::new();
        captures.expand(&self.to, &mut out);
        Some(out)
    }
}

impl PartialEq for RenameRule {
    fn eq(&self, other: &Self) -> bool {
        self.from == other.from && self.to == other.to
    }
}

impl Eq for RenameRule {}

/// The name `topic` has after the first rule that matches it; its own name
/// when none does.
pub(crate) fn renamed<'a>(rules: &[RenameRule], topic: &'a str) -> Cow<'a, str> {
    rules
        .iter()
        .find_map(|r| r.apply(topic))
        .map_or(Cow::Borrowed(topic), Cow::Owned)
}

/// The group references in a replacement, as `Captures::expand` reads
/// them: `$1`, `$name`, `${1}`, `${name}` (the longest run of letters,
/// digits and `_` after `$`); `$$` is a literal `$`.
pub(crate) fn group_references(to: &str) -> Vec<&str> {
    let mut refs = Vec::new();
    let mut rest = to;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            rest = after;
        } else if let Some(braced) = rest.strip_prefix('{') {
            if let Some(end) = braced.find('}') {
                refs.push(&braced[..end]);
                rest = &braced[end + 1..];
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end > 0 {
                refs.push(&rest[..end]);
            }
            rest = &rest[end..];
        }
    }
    refs
}

/// One target topic that two source topics would be written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision<S> {
    /// The target topic.
    pub target_topic: String,
    /// The first source (in the caller's order) writing it.
    pub first: S,
    /// Another source writing it.
    pub second: S,
}

/// Every target topic written from more than one source, given each source
/// with its target topic. A source that appears twice with the same target
/// (one topic listed twice) is no collision.
pub fn collisions<S: PartialEq + Clone>(
    mapped: impl IntoIterator<Item = (S, String)>,
) -> Vec<Collision<S>> {
    let mut first: BTreeMap<String, S> = BTreeMap::new();
    let mut out = Vec::new();
    for (source, target_topic) in mapped {
        match first.get(&target_topic) {
            None => {
                first.insert(target_topic, source);
            }
            Some(seen) if *seen == source => {}
            Some(seen) => out.push(Collision {
                first: seen.clone(),
                second: source,
                target_topic,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(from: &str, to: &str) -> RenameRule {
        RenameRule::new(from.into(), to.into()).unwrap()
    }

    #[test]
    fn the_first_matching_rule_renames_the_whole_name() {
        let rules = [
            rule("legacy\\.(.*)", "$1"),
            rule("legacy\\.x", "never"),
            rule("(?P<team>[a-z]+)-events", "events.${team}"),
        ];
        assert_eq!(renamed(&rules, "legacy.orders"), "orders");
        assert_eq!(renamed(&rules, "legacy.x"), "x", "first rule wins");
        assert_eq!(renamed(&rules, "pay-events"), "events.pay");
        assert_eq!(renamed(&rules, "old.legacy.orders"), "old.legacy.orders");
        assert_eq!(renamed(&rules, "pay-events2"), "pay-events2");
    }

    #[test]
    fn references_are_read_as_expand_reads_them() {
        assert_eq!(group_references("$1"), ["1"]);
        assert_eq!(group_references("a.${1}x.$name-$$2"), ["1", "name"]);
        assert_eq!(group_references("$1a"), ["1a"], "expand reads a name");
        assert!(group_references("plain$").is_empty());
    }

    #[test]
    fn collisions_name_both_sources() {
        let found = collisions([
            ("a", "x".to_string()),
            ("b", "y".to_string()),
            ("a", "x".to_string()),
            ("c", "x".to_string()),
        ]);
        assert_eq!(
            found,
            [Collision {
                target_topic: "x".into(),
                first: "a",
                second: "c"
            }]
        );
    }
}
