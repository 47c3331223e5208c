//! `sluice acl create|list|delete`: CreateAcls, DescribeAcls and DeleteAcls with the flags of
//! Kafka's kafka-acls.sh (--allow-principal, --deny-principal, --operation, --topic, --group,
//! --cluster, --transactional-id, --resource-pattern-type, --host).

use super::client::{str, Client};
use super::output::{print_json, Format, Table};
use super::{report, CliError, Common, Result};
use crate::security::authorizer::{CLUSTER_NAME, WILDCARD};
use crate::security::{Operation, PatternType, Permission, ResourceType};
use clap::{Args, Subcommand};
use kafka_protocol::messages::*;
use serde::Serialize;

#[derive(Subcommand, Debug)]
pub enum AclCommand {
    /// Create ACLs: every principal x operation x resource given.
    Create {
        /// Principal to allow, e.g. User:alice (repeatable).
        #[arg(long = "allow-principal")]
        allow: Vec<String>,
        /// Principal to deny (repeatable).
        #[arg(long = "deny-principal")]
        deny: Vec<String>,
        /// Operation: read, write, create, delete, alter, describe, cluster-action,
        /// describe-configs, alter-configs, idempotent-write, all (repeatable).
        #[arg(long = "operation", required = true, value_parser = parse_operation)]
        operations: Vec<Operation>,
        #[command(flatten)]
        resources: Resources,
        /// Host the ACL applies to.
        #[arg(long, default_value = WILDCARD)]
        host: String,
    },
    /// List ACLs that match the filters (all ACLs without any).
    List {
        #[command(flatten)]
        filter: Filter,
    },
    /// Delete the ACLs that match the filters (a resource or a principal is required).
    Delete {
        #[command(flatten)]
        filter: Filter,
    },
}

/// The resources of a command: --topic, --group, --transactional-id (repeatable), --cluster.
#[derive(Args, Debug)]
pub struct Resources {
    /// Topic (repeatable; `*` for every topic).
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// Consumer group (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Transactional id (repeatable).
    #[arg(long = "transactional-id")]
    transactional_ids: Vec<String>,
    /// The cluster resource.
    #[arg(long)]
    cluster: bool,
    /// literal or prefixed for create (default literal); for list and delete also match and
    /// any (default any).
    #[arg(long, value_parser = parse_pattern)]
    resource_pattern_type: Option<PatternType>,
}

impl Resources {
    fn list(&self) -> Vec<(ResourceType, String)> {
        let mut v = Vec::new();
        for (names, kind) in [
            (&self.topics, ResourceType::Topic),
            (&self.groups, ResourceType::Group),
            (&self.transactional_ids, ResourceType::TransactionalId),
        ] {
            v.extend(names.iter().map(|n| (kind, n.clone())));
        }
        if self.cluster {
            v.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
        }
        v
    }
}

/// What list and delete select by.
#[derive(Args, Debug)]
pub struct Filter {
    #[command(flatten)]
    resources: Resources,
    /// Only ACLs of this principal, e.g. User:alice.
    #[arg(long)]
    principal: Option<String>,
    /// Only ACLs of this operation.
    #[arg(long, value_parser = parse_operation)]
    operation: Option<Operation>,
    /// Only allow or only deny ACLs.
    #[arg(long, value_parser = parse_permission)]
    permission: Option<Permission>,
    /// Only ACLs for this host.
    #[arg(long)]
    host: Option<String>,
}

/// An ACL binding as printed.
#[derive(Serialize, Debug)]
struct Acl {
    principal: String,
    host: String,
    operation: &'static str,
    permission: &'static str,
    resource_type: &'static str,
    resource_name: String,
    pattern_type: &'static str,
}

/// `read`, `READ`, `Read`, `describe-configs`, `DescribeConfigs`, `DESCRIBE_CONFIGS` alike.
fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_uppercase)
        .collect()
}

fn by_name<T>(s: &str, from_code: fn(i8) -> Option<T>, name: fn(&T) -> &'static str) -> Option<T> {
    (1..=20)
        .filter_map(from_code)
        .find(|v| normalize(name(v)) == normalize(s))
}

fn parse_operation(s: &str) -> std::result::Result<Operation, String> {
    by_name(s, Operation::from_code, |o| o.name())
        .filter(|o| *o != Operation::Any)
        .ok_or_else(|| format!("unknown operation '{s}'"))
}

fn parse_pattern(s: &str) -> std::result::Result<PatternType, String> {
    by_name(s, PatternType::from_code, |p| p.name())
        .ok_or_else(|| format!("unknown pattern type '{s}' (literal, prefixed, match, any)"))
}

fn parse_permission(s: &str) -> std::result::Result<Permission, String> {
    by_name(s, Permission::from_code, |p| p.name())
        .filter(|p| *p != Permission::Any)
        .ok_or_else(|| format!("unknown permission '{s}' (allow, deny)"))
}

fn label<T>(
    code: i8,
    from_code: fn(i8) -> Option<T>,
    name: fn(&T) -> &'static str,
) -> &'static str {
    from_code(code).as_ref().map_or("UNKNOWN", name)
}

fn acl(
    resource_type: i8,
    resource_name: &str,
    pattern_type: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> Acl {
    Acl {
        principal: principal.to_string(),
        host: host.to_string(),
        operation: label(operation, Operation::from_code, |o| o.name()),
        permission: label(permission, Permission::from_code, |p| p.name()),
        resource_type: label(resource_type, ResourceType::from_code, |r| r.name()),
        resource_name: resource_name.to_string(),
        pattern_type: label(pattern_type, PatternType::from_code, |p| p.name()),
    }
}

fn print(format: Format, acls: &[Acl]) {
    if format == Format::Json {
        print_json(&acls);
        return;
    }
    let mut t = Table::new(&[
        "PRINCIPAL",
        "HOST",
        "OPERATION",
        "PERMISSION",
        "RESOURCE-TYPE",
        "RESOURCE-NAME",
        "PATTERN-TYPE",
    ]);
    for a in acls {
        t.row(vec![
            a.principal.clone(),
            a.host.clone(),
            a.operation.into(),
            a.permission.into(),
            a.resource_type.into(),
            a.resource_name.clone(),
            a.pattern_type.into(),
        ]);
    }
    t.print();
}

pub fn run(common: &Common, format: Format, command: AclCommand) -> Result<()> {
    let mut client = Client::new(common)?;
    match command {
        AclCommand::Create {
            allow,
            deny,
            operations,
            resources,
            host,
        } => create(
            &mut client,
            format,
            &allow,
            &deny,
            &operations,
            &resources,
            &host,
        ),
        AclCommand::List { filter } => list(&mut client, format, &filter),
        AclCommand::Delete { filter } => delete(&mut client, format, &filter),
    }
}

fn create(
    client: &mut Client,
    format: Format,
    allow: &[String],
    deny: &[String],
    operations: &[Operation],
    resources: &Resources,
    host: &str,
) -> Result<()> {
    let pattern = resources
        .resource_pattern_type
        .unwrap_or(PatternType::Literal);
    if !matches!(pattern, PatternType::Literal | PatternType::Prefixed) {
        return Err(CliError::Usage(
            "an ACL's --resource-pattern-type is literal or prefixed".into(),
        ));
    }
    let targets = resources.list();
    if targets.is_empty() {
        return Err(CliError::Usage(
            "give a resource: --topic, --group, --transactional-id or --cluster".into(),
        ));
    }
    if allow.is_empty() && deny.is_empty() {
        return Err(CliError::Usage(
            "give --allow-principal or --deny-principal".into(),
        ));
    }
    let principals = allow
        .iter()
        .map(|p| (p, Permission::Allow))
        .chain(deny.iter().map(|p| (p, Permission::Deny)));
    let mut wanted = Vec::new();
    let mut creations = Vec::new();
    for (principal, permission) in principals {
        for &operation in operations {
            for (kind, name) in &targets {
                wanted.push(acl(
                    kind.code(),
                    name,
                    pattern.code(),
                    principal,
                    host,
                    operation.code(),
                    permission.code(),
                ));
                creations.push(
                    create_acls_request::AclCreation::default()
                        .with_resource_type(kind.code())
                        .with_resource_name(str(name))
                        .with_resource_pattern_type(pattern.code())
                        .with_principal(str(principal))
                        .with_host(str(host))
                        .with_operation(operation.code())
                        .with_permission_type(permission.code()),
                );
            }
        }
    }
    let conn = client.controller()?;
    let (_, response) = conn.send(&CreateAclsRequest::default().with_creations(creations), 3)?;
    let mut created = Vec::new();
    let mut failed = false;
    for (a, r) in wanted.into_iter().zip(response.results) {
        match CliError::check(r.error_code, r.error_message.as_deref(), || {
            format!(
                "creating ACL {} {} {}",
                a.principal, a.operation, a.resource_name
            )
        }) {
            Ok(()) => created.push(a),
            Err(e) => {
                failed = true;
                report("acl create", &e);
            }
        }
    }
    print(format, &created);
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

/// One (resource type, resource name, pattern type) filter per resource given; one matching
/// every resource when none is.
fn resource_filters(filter: &Filter) -> Vec<(i8, Option<String>, i8)> {
    let pattern = filter
        .resources
        .resource_pattern_type
        .unwrap_or(PatternType::Any)
        .code();
    let targets = filter.resources.list();
    if targets.is_empty() {
        return vec![(ResourceType::Any.code(), None, pattern)];
    }
    targets
        .into_iter()
        .map(|(kind, name)| (kind.code(), Some(name), pattern))
        .collect()
}

fn list(client: &mut Client, format: Format, filter: &Filter) -> Result<()> {
    let conn = client.any()?;
    let v = conn.version::<DescribeAclsRequest>(3)?;
    let mut acls = Vec::new();
    for (resource_type, name, pattern) in resource_filters(filter) {
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(resource_type)
            .with_resource_name_filter(name.as_deref().map(str))
            .with_pattern_type_filter(pattern)
            .with_principal_filter(filter.principal.as_deref().map(str))
            .with_host_filter(filter.host.as_deref().map(str))
            .with_operation(filter.operation.unwrap_or(Operation::Any).code())
            .with_permission_type(filter.permission.unwrap_or(Permission::Any).code());
        let response = conn.send_at(&request, v)?;
        CliError::check(
            response.error_code,
            response.error_message.as_deref(),
            || "listing ACLs".into(),
        )?;
        for r in response.resources {
            for a in r.acls {
                acls.push(acl(
                    r.resource_type,
                    &r.resource_name,
                    r.pattern_type,
                    &a.principal,
                    &a.host,
                    a.operation,
                    a.permission_type,
                ));
            }
        }
    }
    acls.sort_by(|a, b| {
        (a.resource_type, &a.resource_name, &a.principal, a.operation).cmp(&(
            b.resource_type,
            &b.resource_name,
            &b.principal,
            b.operation,
        ))
    });
    print(format, &acls);
    Ok(())
}

fn delete(client: &mut Client, format: Format, filter: &Filter) -> Result<()> {
    if filter.resources.list().is_empty() && filter.principal.is_none() {
        return Err(CliError::Usage(
            "give a resource (--topic, --group, --transactional-id, --cluster) or --principal"
                .into(),
        ));
    }
    let filters = resource_filters(filter)
        .into_iter()
        .map(|(resource_type, name, pattern)| {
            delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(resource_type)
                .with_resource_name_filter(name.as_deref().map(str))
                .with_pattern_type_filter(pattern)
                .with_principal_filter(filter.principal.as_deref().map(str))
                .with_host_filter(filter.host.as_deref().map(str))
                .with_operation(filter.operation.unwrap_or(Operation::Any).code())
                .with_permission_type(filter.permission.unwrap_or(Permission::Any).code())
        })
        .collect();
    let conn = client.controller()?;
    let (_, response) = conn.send(&DeleteAclsRequest::default().with_filters(filters), 3)?;
    let mut deleted = Vec::new();
    let mut failed = false;
    for r in response.filter_results {
        if let Err(e) = CliError::check(r.error_code, r.error_message.as_deref(), || {
            "deleting ACLs".into()
        }) {
            failed = true;
            report("acl delete", &e);
            continue;
        }
        for m in r.matching_acls {
            if let Err(e) = CliError::check(m.error_code, m.error_message.as_deref(), || {
                format!(
                    "deleting ACL {} on {}",
                    m.principal.as_str(),
                    m.resource_name.as_str()
                )
            }) {
                failed = true;
                report("acl delete", &e);
                continue;
            }
            deleted.push(acl(
                m.resource_type,
                &m.resource_name,
                m.pattern_type,
                &m.principal,
                &m.host,
                m.operation,
                m.permission_type,
            ));
        }
    }
    print(format, &deleted);
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_spelling() {
        assert_eq!(parse_operation("read"), Ok(Operation::Read));
        assert_eq!(
            parse_operation("describe-configs"),
            Ok(Operation::DescribeConfigs)
        );
        assert_eq!(
            parse_operation("IdempotentWrite"),
            Ok(Operation::IdempotentWrite)
        );
        assert!(parse_operation("any").is_err());
        assert!(parse_operation("fly").is_err());
        assert_eq!(parse_pattern("PREFIXED"), Ok(PatternType::Prefixed));
        assert_eq!(parse_permission("deny"), Ok(Permission::Deny));
    }
}
