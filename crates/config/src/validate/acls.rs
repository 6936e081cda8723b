//! `flows[].sync_acls`, `acls_exclude_principals` and `acl_sync_deletes`.

use super::*;

/// Checks the ACL sync keys of one flow. The exclusions and deletes mean
/// nothing without `sync_acls = true`, so setting them alone is an error
/// rather than a silent no-op.
pub(super) fn check_acl_sync(
    checker: &mut Checker<'_>,
    path: &str,
    (sync, exclude, deletes): (Option<bool>, Option<Vec<String>>, Option<bool>),
) -> AclSync {
    let enabled = sync.unwrap_or(false);
    let exclude_principals = exclude.unwrap_or_default();
    for (i, principal) in exclude_principals.iter().enumerate() {
        if let Err(why) = check_principal(principal) {
            checker.issue(
                format!("{path}.acls_exclude_principals[{i}]"),
                format!("invalid principal \"{principal}\": {why}"),
            );
        }
    }
    if !enabled {
        if !exclude_principals.is_empty() {
            checker.issue(
                format!("{path}.acls_exclude_principals"),
                "only used with sync_acls = true",
            );
        }
        if deletes.is_some() {
            checker.issue(
                format!("{path}.acl_sync_deletes"),
                "only used with sync_acls = true",
            );
        }
    }
    AclSync {
        enabled,
        exclude_principals,
        deletes: deletes.unwrap_or(false),
    }
}

/// A Kafka principal as ACLs name it: `Type:name`, both parts non-empty
/// (`User:alice`, `Group:ops`).
fn check_principal(principal: &str) -> Result<(), &'static str> {
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {
            if kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Ok(())
            } else {
                Err("the type (before ':') may hold only ASCII letters, digits and '_'")
            }
        }
        _ => Err("use \"Type:name\", e.g. \"User:admin\""),
    }
}

#[cfg(test)]
mod tests {
    use super::check_principal;
    use crate::AclSync;

    const FLOW: &str = r#"
[clusters.a]
bootstrap_servers = "127.0.0.1:9092"
[clusters.b]
bootstrap_servers = "127.0.0.1:9093"
[[flows]]
source = "a"
target = "b"
"#;

    fn acls_of(extra: &str) -> Result<AclSync, Vec<(String, String)>> {
        super::super::first_flow(&format!("{FLOW}{extra}"), |f| f.acls.clone())
    }

    #[test]
    fn acl_sync_is_off_by_default_and_typed_when_on() {
        assert_eq!(acls_of("").unwrap(), AclSync::default());
        let on = acls_of(
            "sync_acls = true\nacls_exclude_principals = [\"User:admin\"]\nacl_sync_deletes = true\n",
        )
        .unwrap();
        assert!(on.enabled && on.deletes);
        assert!(!on.includes("User:admin"));
        assert!(on.includes("User:alice"));
    }

    #[test]
    fn a_malformed_principal_is_named_by_its_key() {
        let issues =
            acls_of("sync_acls = true\nacls_exclude_principals = [\"User:a\", \"admin\"]\n")
                .unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].0, "flows[0].acls_exclude_principals[1]");
        assert!(issues[0].1.contains("\"admin\""), "{issues:?}");
    }

    #[test]
    fn exclusions_and_deletes_need_sync_acls() {
        let issues = acls_of("acl_sync_deletes = true\n").unwrap_err();
        assert_eq!(issues[0].0, "flows[0].acl_sync_deletes");
    }

    #[test]
    fn principals_need_a_type_and_a_name() {
        assert!(check_principal("User:admin").is_ok());
        assert!(check_principal("User:CN=a,O=b").is_ok());
        assert!(check_principal("admin").is_err());
        assert!(check_principal(":admin").is_err());
        assert!(check_principal("User:").is_err());
        assert!(check_principal("Us er:admin").is_err());
    }
}
