//! DescribeClientQuotas: the stored quotas of every entity the filter matches, as Kafka's
//! ClientQuotasImage.describe: each component matches a name exactly (match type 0), the default
//! entity (1, a null name) or any entity of the type (2); strict asks for entities with no other
//! component. A bad filter answers INVALID_REQUEST (UNSUPPORTED_VERSION for an unknown entity
//! type) with no entries. Needs DESCRIBE_CONFIGS on the cluster.

use super::errors::ResponseError;
use super::{str_bytes, Handled, RequestContext};
use crate::metadata::ClientQuota;
use crate::security::authorizer::CLUSTER_NAME;
use crate::security::quotas::{CLIENT_ID, IP, USER};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    DescribeClientQuotasRequest, DescribeClientQuotasResponse, ResponseKind,
};
use std::collections::{BTreeMap, BTreeSet};

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// A parsed filter: exact (name or default) components and "any of the type" ones.
#[derive(Debug, Default)]
struct Filter {
    exact: BTreeMap<String, Option<String>>,
    any: BTreeSet<String>,
    strict: bool,
}

/// Kafka's checks, in its order; Err is (error, message).
fn parse(request: &DescribeClientQuotasRequest) -> Result<Filter, (ResponseError, String)> {
    let invalid = |m: String| (ResponseError::InvalidRequest, m);
    let mut f = Filter {
        strict: request.strict,
        ..Filter::default()
    };
    for c in &request.components {
        let kind = c.entity_type.to_string();
        if kind.is_empty() {
            return Err(invalid("Invalid empty entity type.".into()));
        }
        if f.exact.contains_key(&kind) || f.any.contains(&kind) {
            return Err(invalid(format!(
                "Entity type {kind} cannot appear more than once in the filter."
            )));
        }
        if ![IP, USER, CLIENT_ID].contains(&kind.as_str()) {
            return Err((
                ResponseError::UnsupportedVersion,
                format!("Unsupported entity type {kind}"),
            ));
        }
        let name = c._match.as_ref().map(|m| m.to_string());
        match (c.match_type, name) {
            (MATCH_EXACT, Some(n)) => {
                f.exact.insert(kind, Some(n));
            }
            (MATCH_EXACT, None) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.".into(),
                ))
            }
            (MATCH_DEFAULT, None) => {
                f.exact.insert(kind, None);
            }
            (MATCH_DEFAULT, Some(_)) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                        .into(),
                ))
            }
            (MATCH_SPECIFIED, None) => {
                f.any.insert(kind);
            }
            (MATCH_SPECIFIED, Some(_)) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
                        .into(),
                ))
            }
            (other, _) => return Err(invalid(format!("Unknown match type {other}"))),
        }
    }
    let has = |t: &str| f.exact.contains_key(t) || f.any.contains(t);
    if has(IP) && (has(USER) || has(CLIENT_ID)) {
        return Err(invalid("Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.".into()));
    }
    Ok(f)
}

fn matches(f: &Filter, q: &ClientQuota) -> bool {
    if f.strict && q.entity.len() != f.exact.len() + f.any.len() {
        return false;
    }
    f.exact.iter().all(|(t, n)| q.entity.get(t) == Some(n))
        && f.any.iter().all(|t| q.entity.contains_key(t))
}

fn entry(q: &ClientQuota) -> EntryData {
    EntryData::default()
        .with_entity(
            q.entity
                .iter()
                .map(|(t, n)| {
                    EntityData::default()
                        .with_entity_type(str_bytes(t))
                        .with_entity_name(n.as_deref().map(str_bytes))
                })
                .collect(),
        )
        .with_values(
            q.values
                .iter()
                .map(|(k, v)| ValueData::default().with_key(str_bytes(k)).with_value(*v))
                .collect(),
        )
}

fn error(e: ResponseError, message: Option<String>) -> Handled {
    Handled::ready(ResponseKind::DescribeClientQuotas(
        DescribeClientQuotasResponse::default()
            .with_error_code(e.code())
            .with_error_message(message.as_deref().map(str_bytes))
            .with_entries(None),
    ))
}

pub fn handle(ctx: &RequestContext, request: DescribeClientQuotasRequest) -> Handled {
    if !ctx.authorize(
        Operation::DescribeConfigs,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) {
        return error(ResponseError::ClusterAuthorizationFailed, None);
    }
    let filter = match parse(&request) {
        Ok(f) => f,
        Err((e, message)) => return error(e, Some(message)),
    };
    let entries = ctx
        .broker
        .metadata
        .client_quotas()
        .iter()
        .filter(|q| matches(&filter, q))
        .map(entry)
        .collect();
    Handled::ready(ResponseKind::DescribeClientQuotas(
        DescribeClientQuotasResponse::default()
            .with_error_message(None)
            .with_entries(Some(entries)),
    ))
}
