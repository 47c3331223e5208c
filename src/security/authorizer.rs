//! The ACL authorizer, with Kafka's StandardAuthorizer semantics:
//! - super users may do everything;
//! - the ACLs of a resource are those of its type whose pattern matches its name: LITERAL
//!   equal to the name or the wildcard `*`, PREFIXED a prefix of the name;
//! - an ACL applies to a request when its principal is the caller's or `User:*` and its host
//!   the caller's or `*`;
//! - a DENY for the operation (or ALL) wins over every ALLOW;
//! - an ALLOW of the operation, ALL, or an operation implying it (DESCRIBE is implied by READ,
//!   WRITE, DELETE and ALTER; DESCRIBE_CONFIGS by ALTER_CONFIGS) allows;
//! - a resource with no ACLs at all is allowed only when allow.everyone.if.no.acl.found.
//!
//! ACLs live in the metadata store (durable before CreateAcls/DeleteAcls answer) and in a copy
//! here that requests read without taking a lock shared with writers for long.

use crate::config::AuthorizerConfig;
use crate::metadata::{AclEntry, ClusterMetadata};
use anyhow::Result;
use std::sync::{Arc, Mutex, RwLock};

/// The name of the one CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The wildcard resource name, principal name and host.
pub const WILDCARD: &str = "*";
pub const WILDCARD_PRINCIPAL: &str = "User:*";

macro_rules! codes {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:expr, $label:expr;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            pub const fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                }
            }
            /// None: UNKNOWN (0) or a code Kafka does not define.
            pub fn from_code(code: i8) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => None,
                }
            }
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }
        }
    };
}

codes!(
    /// Kafka's ResourceType codes.
    ResourceType {
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

codes!(
    /// Kafka's PatternType codes. MATCH and ANY occur only in filters.
    PatternType {
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

codes!(
    /// Kafka's AclOperation codes. ANY occurs only in filters.
    Operation {
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
);

codes!(
    /// Kafka's AclPermissionType codes. ANY occurs only in filters.
    Permission {
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

impl ResourceType {
    /// The operations Kafka reports in authorized-operations fields for this type.
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Delete,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Delete, Describe, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                Alter,
                Describe,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
            ],
            ResourceType::TransactionalId => &[Write, Describe, TwoPhaseCommit],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Any => &[],
        }
    }
}

/// Does an ALLOW of `granted` allow `wanted`?
fn allow_implies(granted: i8, wanted: Operation) -> bool {
    use Operation::*;
    if granted == All.code() || granted == wanted.code() {
        return true;
    }
    match wanted {
        Describe => [Read, Write, Delete, Alter]
            .iter()
            .any(|o| o.code() == granted),
        DescribeConfigs => granted == AlterConfigs.code(),
        _ => false,
    }
}

/// Does a DENY of `denied` deny `wanted`? Denials imply nothing but ALL.
fn deny_implies(denied: i8, wanted: Operation) -> bool {
    denied == Operation::All.code() || denied == wanted.code()
}

/// Does the ACL's resource pattern cover this resource?
fn pattern_covers(acl: &AclEntry, resource: ResourceType, name: &str) -> bool {
    if acl.resource_type != resource.code() {
        return false;
    }
    match PatternType::from_code(acl.pattern_type) {
        Some(PatternType::Literal) => acl.resource_name == name || acl.resource_name == WILDCARD,
        Some(PatternType::Prefixed) => name.starts_with(&acl.resource_name),
        _ => false,
    }
}

fn applies_to(acl: &AclEntry, principal: &str, host: &str) -> bool {
    (acl.principal == principal || acl.principal == WILDCARD_PRINCIPAL)
        && (acl.host == host || acl.host == WILDCARD)
}

/// Who asks, from where.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// "User:NAME".
    pub principal: &'a str,
    /// The client's IP address as text.
    pub host: &'a str,
}

/// The decision, over a set of ACLs (the whole of Kafka's rule; see the module comment).
pub fn decide(
    acls: &[AclEntry],
    super_users: &[String],
    allow_if_no_acl: bool,
    caller: Caller<'_>,
    operation: Operation,
    resource: ResourceType,
    name: &str,
) -> bool {
    if super_users.iter().any(|s| s == caller.principal) {
        return true;
    }
    let mut resource_has_acls = false;
    let mut allowed = false;
    for acl in acls.iter().filter(|a| pattern_covers(a, resource, name)) {
        resource_has_acls = true;
        if !applies_to(acl, caller.principal, caller.host) {
            continue;
        }
        if acl.permission == Permission::Deny.code() {
            if deny_implies(acl.operation, operation) {
                return false;
            }
        } else if acl.permission == Permission::Allow.code()
            && allow_implies(acl.operation, operation)
        {
            allowed = true;
        }
    }
    allowed || (!resource_has_acls && allow_if_no_acl)
}

/// Kafka's authorizeByResourceType: may the caller do `operation` on SOME resource of this
/// type? True when an ALLOW (literal or prefixed) applies that no DENY of the same or a wider
/// pattern dominates; with no ACL of the type at all, allow.everyone.if.no.acl.found decides.
pub fn decide_by_type(
    acls: &[AclEntry],
    super_users: &[String],
    allow_if_no_acl: bool,
    caller: Caller<'_>,
    operation: Operation,
    resource: ResourceType,
) -> bool {
    if super_users.iter().any(|s| s == caller.principal) {
        return true;
    }
    let of_type: Vec<&AclEntry> = acls
        .iter()
        .filter(|a| a.resource_type == resource.code())
        .collect();
    if of_type.is_empty() {
        return allow_if_no_acl;
    }
    let applicable =
        |a: &&&AclEntry, permission: Permission, implies: fn(i8, Operation) -> bool| {
            a.permission == permission.code()
                && applies_to(a, caller.principal, caller.host)
                && implies(a.operation, operation)
        };
    let denies: Vec<&&AclEntry> = of_type
        .iter()
        .filter(|a| applicable(a, Permission::Deny, deny_implies))
        .collect();
    let literal = PatternType::Literal.code();
    if denies
        .iter()
        .any(|d| d.pattern_type == literal && d.resource_name == WILDCARD)
    {
        return false;
    }
    let denied = |name: &str, prefixed: bool| {
        denies.iter().any(|d| {
            if d.pattern_type == PatternType::Prefixed.code() {
                name.starts_with(&d.resource_name)
            } else {
                !prefixed && d.resource_name == name
            }
        })
    };
    of_type
        .iter()
        .filter(|a| applicable(a, Permission::Allow, allow_implies))
        .any(|a| {
            let prefixed = a.pattern_type == PatternType::Prefixed.code();
            !denied(&a.resource_name, prefixed)
        })
}

/// A DescribeAcls/DeleteAcls filter, as Kafka's AclBindingFilter (None: any value).
#[derive(Debug, Clone)]
pub struct AclBindingFilter {
    pub resource_type: ResourceType,
    pub name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBindingFilter {
    pub fn matches(&self, acl: &AclEntry) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type.code() != acl.resource_type
        {
            return false;
        }
        let pattern_any = matches!(self.pattern_type, PatternType::Any | PatternType::Match);
        if !pattern_any && self.pattern_type.code() != acl.pattern_type {
            return false;
        }
        let name_ok = match &self.name {
            None => true,
            Some(name) if self.pattern_type != PatternType::Match => *name == acl.resource_name,
            // MATCH: every pattern that covers this name.
            Some(name) => match PatternType::from_code(acl.pattern_type) {
                Some(PatternType::Literal) => {
                    *name == acl.resource_name || acl.resource_name == WILDCARD
                }
                Some(PatternType::Prefixed) => name.starts_with(&acl.resource_name),
                _ => false,
            },
        };
        name_ok
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == Operation::Any || self.operation.code() == acl.operation)
            && (self.permission == Permission::Any || self.permission.code() == acl.permission)
    }
}

/// The broker's authorizer: configured settings plus the ACLs.
pub struct Authorizer {
    metadata: Arc<dyn ClusterMetadata>,
    super_users: Vec<String>,
    allow_if_no_acl: bool,
    /// What requests read: replaced whole after each durable change.
    acls: RwLock<Arc<Vec<AclEntry>>>,
    /// Serializes changes (read, change, persist, publish).
    writer: Mutex<()>,
}

impl Authorizer {
    pub fn new(config: &AuthorizerConfig, metadata: Arc<dyn ClusterMetadata>) -> Authorizer {
        let acls = RwLock::new(Arc::new(metadata.acls()));
        Authorizer {
            metadata,
            super_users: config.super_users.clone(),
            allow_if_no_acl: config.allow_if_no_acl,
            acls,
            writer: Mutex::new(()),
        }
    }

    pub fn acls(&self) -> Arc<Vec<AclEntry>> {
        self.acls.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn authorize(
        &self,
        caller: Caller<'_>,
        operation: Operation,
        resource: ResourceType,
        name: &str,
    ) -> bool {
        let acls = self.acls();
        decide(
            &acls,
            &self.super_users,
            self.allow_if_no_acl,
            caller,
            operation,
            resource,
            name,
        )
    }

    pub fn authorize_by_type(
        &self,
        caller: Caller<'_>,
        operation: Operation,
        resource: ResourceType,
    ) -> bool {
        let acls = self.acls();
        decide_by_type(
            &acls,
            &self.super_users,
            self.allow_if_no_acl,
            caller,
            operation,
            resource,
        )
    }

    /// The authorized-operations bitfield (bit n = operation code n) for a resource.
    pub fn authorized_operations(
        &self,
        caller: Caller<'_>,
        resource: ResourceType,
        name: &str,
    ) -> i32 {
        let acls = self.acls();
        resource
            .operations()
            .iter()
            .filter(|op| {
                decide(
                    &acls,
                    &self.super_users,
                    self.allow_if_no_acl,
                    caller,
                    **op,
                    resource,
                    name,
                )
            })
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// Adds bindings (an existing one is not duplicated), durably, before returning.
    pub fn create(&self, new: &[AclEntry]) -> Result<()> {
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = (*self.acls()).clone();
        for acl in new {
            if !next.contains(acl) {
                next.push(acl.clone());
            }
        }
        self.metadata.set_acls(next.clone())?;
        *self.acls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(())
    }

    /// Removes the bindings each filter matches, durably, before returning; answers what each
    /// filter removed (a binding matched by two filters is reported by both, as in Kafka).
    pub fn delete(&self, filters: &[AclBindingFilter]) -> Result<Vec<Vec<AclEntry>>> {
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.acls();
        let removed: Vec<Vec<AclEntry>> = filters
            .iter()
            .map(|f| current.iter().filter(|a| f.matches(a)).cloned().collect())
            .collect();
        if removed.iter().all(Vec::is_empty) {
            return Ok(removed);
        }
        let next: Vec<AclEntry> = current
            .iter()
            .filter(|a| !filters.iter().any(|f| f.matches(a)))
            .cloned()
            .collect();
        self.metadata.set_acls(next.clone())?;
        *self.acls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        resource: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        op: Operation,
        permission: Permission,
    ) -> AclEntry {
        AclEntry {
            resource_type: resource.code(),
            resource_name: name.to_string(),
            pattern_type: pattern.code(),
            principal: principal.to_string(),
            host: "*".to_string(),
            operation: op.code(),
            permission: permission.code(),
        }
    }

    const ALICE: Caller = Caller {
        principal: "User:alice",
        host: "10.0.0.1",
    };
    const BOB: Caller = Caller {
        principal: "User:bob",
        host: "10.0.0.2",
    };

    fn check(acls: &[AclEntry], caller: Caller, op: Operation, topic: &str) -> bool {
        decide(acls, &[], false, caller, op, ResourceType::Topic, topic)
    }

    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::Topic;

    #[test]
    fn allow_and_deny_wins() {
        let mut acls = vec![acl(Topic, "t", Literal, "User:alice", Read, Allow)];
        assert!(check(&acls, ALICE, Read, "t"));
        assert!(!check(&acls, ALICE, Write, "t"));
        assert!(!check(&acls, BOB, Read, "t"));
        assert!(!check(&acls, ALICE, Read, "other"));
        // A DENY for everyone beats alice's ALLOW.
        acls.push(acl(Topic, "t", Literal, "User:*", Read, Deny));
        assert!(!check(&acls, ALICE, Read, "t"));
        // DENY ALL denies every operation, even the implied DESCRIBE.
        let acls = vec![
            acl(Topic, "t", Literal, "User:alice", All, Allow),
            acl(Topic, "t", Prefixed, "User:alice", All, Deny),
        ];
        assert!(!check(&acls, ALICE, Describe, "t"));
    }

    #[test]
    fn implied_operations() {
        for granted in [Read, Write, Delete, Alter] {
            let acls = vec![acl(Topic, "t", Literal, "User:alice", granted, Allow)];
            assert!(check(&acls, ALICE, Describe, "t"), "{granted:?}");
            assert!(!check(&acls, ALICE, DescribeConfigs, "t"), "{granted:?}");
        }
        let acls = vec![acl(Topic, "t", Literal, "User:alice", AlterConfigs, Allow)];
        assert!(check(&acls, ALICE, DescribeConfigs, "t"));
        assert!(!check(&acls, ALICE, Describe, "t"));
        let acls = vec![acl(Topic, "t", Literal, "User:alice", All, Allow)];
        for op in Topic.operations() {
            assert!(check(&acls, ALICE, *op, "t"), "{op:?}");
        }
        // A DENY READ does not deny DESCRIBE (denials are not implied downwards).
        let acls = vec![
            acl(Topic, "t", Literal, "User:alice", Read, Deny),
            acl(Topic, "t", Literal, "User:alice", Describe, Allow),
        ];
        assert!(check(&acls, ALICE, Describe, "t"));
        assert!(!check(&acls, ALICE, Read, "t"));
    }

    #[test]
    fn prefixed_wildcard_and_hosts() {
        let acls = vec![
            acl(Topic, "orders-", Prefixed, "User:alice", Write, Allow),
            acl(Topic, "*", Literal, "User:bob", Read, Allow),
        ];
        assert!(check(&acls, ALICE, Write, "orders-eu"));
        assert!(check(&acls, ALICE, Write, "orders-"));
        assert!(!check(&acls, ALICE, Write, "order"));
        assert!(check(&acls, BOB, Read, "anything"));
        // A literal "*" is the wildcard only in a LITERAL pattern; "*" literally prefixed
        // covers names starting with '*'.
        let acls = vec![acl(Topic, "*", Prefixed, "User:bob", Read, Allow)];
        assert!(!check(&acls, BOB, Read, "anything"));
        let mut acls = vec![acl(Topic, "t", Literal, "User:alice", Read, Allow)];
        acls[0].host = "10.0.0.9".to_string();
        assert!(!check(&acls, ALICE, Read, "t"));
        acls[0].host = "10.0.0.1".to_string();
        assert!(check(&acls, ALICE, Read, "t"));
        // Other resource types do not leak: a GROUP ACL says nothing about a topic.
        let acls = vec![acl(
            ResourceType::Group,
            "t",
            Literal,
            "User:alice",
            Read,
            Allow,
        )];
        assert!(!check(&acls, ALICE, Read, "t"));
    }

    #[test]
    fn super_users_and_no_acl_default() {
        let acls = vec![acl(Topic, "t", Literal, "User:*", All, Deny)];
        let supers = vec!["User:alice".to_string()];
        assert!(decide(&acls, &supers, false, ALICE, Write, Topic, "t"));
        assert!(!decide(&acls, &supers, false, BOB, Write, Topic, "t"));
        // No ACL on the resource: allow.everyone.if.no.acl.found decides.
        assert!(!decide(&acls, &[], false, BOB, Write, Topic, "free"));
        assert!(decide(&acls, &[], true, BOB, Write, Topic, "free"));
        // An ACL on the resource for someone else: no longer "no ACL found".
        let acls = vec![acl(Topic, "t", Literal, "User:alice", Read, Allow)];
        assert!(!decide(&acls, &[], true, BOB, Read, Topic, "t"));
        assert!(decide(&acls, &[], true, BOB, Read, Topic, "u"));
    }

    #[test]
    fn by_resource_type() {
        let by_type =
            |acls: &[AclEntry], caller| decide_by_type(acls, &[], false, caller, Write, Topic);
        assert!(!by_type(&[], ALICE));
        assert!(decide_by_type(&[], &[], true, ALICE, Write, Topic));
        let acls = vec![acl(Topic, "a", Literal, "User:alice", Write, Allow)];
        assert!(by_type(&acls, ALICE));
        assert!(!by_type(&acls, BOB));
        let mut denied = acls.clone();
        denied.push(acl(Topic, "a", Prefixed, "User:alice", Write, Deny));
        assert!(!by_type(&denied, ALICE));
        let mut wild = acls.clone();
        wild.push(acl(Topic, "*", Literal, "User:*", All, Deny));
        assert!(!by_type(&wild, ALICE));
    }

    #[test]
    fn settings() {
        use crate::config::{BrokerConfig, ServeArgs};
        let resolve = |set: &[&str]| {
            BrokerConfig::resolve(&ServeArgs {
                set: set.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })
        };
        let c = resolve(&[
            "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
            "super.users=User:a; User:b",
        ])
        .unwrap();
        assert!(c.authorizer.enabled);
        assert_eq!(c.authorizer.super_users, ["User:a", "User:b"]);
        assert!(!c.authorizer.allow_if_no_acl);
        assert!(!resolve(&[]).unwrap().authorizer.enabled);
        assert!(resolve(&["authorizer.class.name=com.example.Mine"]).is_err());
        assert!(resolve(&["super.users=admin"]).is_err());
    }

    #[test]
    fn filters() {
        let lit = acl(Topic, "t", Literal, "User:alice", Read, Allow);
        let wild = acl(Topic, "*", Literal, "User:alice", Read, Allow);
        let pre = acl(Topic, "t-", Prefixed, "User:bob", Write, Deny);
        let filter = |pattern, name: Option<&str>| AclBindingFilter {
            resource_type: ResourceType::Any,
            name: name.map(str::to_string),
            pattern_type: pattern,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        };
        let hits =
            |f: &AclBindingFilter| [&lit, &wild, &pre].iter().filter(|a| f.matches(a)).count();
        assert_eq!(hits(&filter(PatternType::Any, None)), 3);
        assert_eq!(hits(&filter(PatternType::Any, Some("t"))), 1);
        assert_eq!(hits(&filter(Literal, None)), 2);
        assert_eq!(hits(&filter(Prefixed, Some("t-"))), 1);
        assert_eq!(hits(&filter(Match, Some("t-1"))), 2);
        assert_eq!(hits(&filter(Match, Some("t"))), 2);
        let mut f = filter(PatternType::Any, None);
        f.principal = Some("User:bob".into());
        assert_eq!(hits(&f), 1);
        f.permission = Permission::Allow;
        assert_eq!(hits(&f), 0);
    }
}
