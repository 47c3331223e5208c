//! AlterClientQuotas: sets and removes quota values per entity, validated as Kafka's
//! ClientQuotaControlManager (entity types user, client-id and ip, a null name being the
//! default entity; ip never combined with the others; only the keys of the entity's kind;
//! values above 0, integral where the key is; each failure INVALID_REQUEST for that entity
//! alone). Unless validate_only, the valid changes are stored durably in the metadata before
//! the answer and take effect at once. Needs ALTER_CONFIGS on the cluster.

use super::errors::ResponseError;
use super::{str_bytes, Handled, RequestContext};
use crate::metadata::ClientQuota;
use crate::security::authorizer::CLUSTER_NAME;
use crate::security::quotas::{key_type, KeyType, CLIENT_ID, IP, USER};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::alter_client_quotas_request::EntryData as RequestEntry;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse, ResponseKind};
use std::collections::BTreeMap;

type Entity = BTreeMap<String, Option<String>>;
type Values = BTreeMap<String, f64>;

fn describe(entity: &Entity) -> String {
    let parts: Vec<String> = entity
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("null")))
        .collect();
    format!("ClientQuotaEntity(entries={{{}}})", parts.join(", "))
}

/// The entity as Kafka reads the request: a map, so a repeated type keeps its last name.
fn entity_of(entry: &RequestEntry) -> Entity {
    entry
        .entity
        .iter()
        .map(|e| {
            (
                e.entity_type.to_string(),
                e.entity_name.as_ref().map(|n| n.to_string()),
            )
        })
        .collect()
}

/// Kafka's validateEntity and configKeysForEntityType: Ok(is an ip entity).
fn validate_entity(entity: &Entity) -> Result<bool, String> {
    if entity.is_empty() {
        return Err("Invalid empty client quota entity".into());
    }
    for (t, n) in entity {
        if ![USER, CLIENT_ID, IP].contains(&t.as_str()) {
            return Err(format!("Unhandled client quota entity type: {t}"));
        }
        if n.as_deref() == Some("") {
            return Err(format!("Empty {t} not supported"));
        }
    }
    match entity.get(IP) {
        None => Ok(false),
        Some(_) if entity.len() > 1 => Err(
            "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"
                .into(),
        ),
        Some(None) => Ok(true),
        Some(Some(ip)) if ip_resolves(ip) => Ok(true),
        Some(Some(ip)) => Err(format!("{ip} is not a valid IP or resolvable host.")),
    }
}

fn ip_resolves(host: &str) -> bool {
    use std::net::ToSocketAddrs;
    host.parse::<std::net::IpAddr>().is_ok()
        || tokio::task::block_in_place(|| (host, 0).to_socket_addrs().is_ok())
}

/// Kafka's validateQuotaKeyValue.
fn validate_value(ip: bool, key: &str, value: f64) -> Result<(), String> {
    let Some(ty) = key_type(ip, key) else {
        return Err(format!("Invalid configuration key {key}"));
    };
    if value <= 0.0 {
        return Err(format!("Quota {key} must be greater than 0"));
    }
    match ty {
        KeyType::Double => return Ok(()),
        KeyType::Int if value > i32::MAX as f64 => {
            return Err(format!("Proposed value for {key} is too large for an INT."))
        }
        KeyType::Long if value > i64::MAX as f64 => {
            return Err(format!("Proposed value for {key} is too large for a LONG."))
        }
        _ => {}
    }
    if (value % 1.0).abs() > 1e-6 {
        return Err(format!("{key} cannot be a fractional value."));
    }
    Ok(())
}

/// One entry's new values, or Kafka's message.
fn apply(entry: &RequestEntry, entity: &Entity, current: &Values) -> Result<Values, String> {
    let ip = validate_entity(entity)?;
    let mut ops: BTreeMap<String, Option<f64>> = BTreeMap::new();
    for op in &entry.ops {
        let key = op.key.to_string();
        if ops.contains_key(&key) {
            return Err(format!(
                "Duplicate quota key {key} not updating quota for this entity {}",
                describe(entity)
            ));
        }
        ops.insert(key, (!op.remove).then_some(op.value));
    }
    let mut next = current.clone();
    for (key, value) in ops {
        match value {
            None => {
                next.remove(&key);
            }
            Some(v) => {
                validate_value(ip, &key, v)?;
                next.insert(key, v);
            }
        }
    }
    Ok(next)
}

fn echo(entry: &RequestEntry) -> Vec<EntityData> {
    entry
        .entity
        .iter()
        .map(|e| {
            EntityData::default()
                .with_entity_type(e.entity_type.clone())
                .with_entity_name(e.entity_name.clone())
        })
        .collect()
}

fn result(entry: &RequestEntry, error: ResponseError, message: Option<String>) -> EntryData {
    EntryData::default()
        .with_error_code(error.code())
        .with_error_message(message.as_deref().map(str_bytes))
        .with_entity(echo(entry))
}

fn ok(entry: &RequestEntry) -> EntryData {
    EntryData::default()
        .with_error_message(None)
        .with_entity(echo(entry))
}

fn respond(entries: Vec<EntryData>) -> Handled {
    Handled::ready(ResponseKind::AlterClientQuotas(
        AlterClientQuotasResponse::default().with_entries(entries),
    ))
}

pub fn handle(ctx: &RequestContext, request: AlterClientQuotasRequest) -> Handled {
    if !ctx.authorize(Operation::AlterConfigs, ResourceType::Cluster, CLUSTER_NAME) {
        return respond(
            request
                .entries
                .iter()
                .map(|e| result(e, ResponseError::ClusterAuthorizationFailed, None))
                .collect(),
        );
    }
    let _serial = ctx
        .broker
        .quotas
        .alter_lock
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let stored = ctx.broker.metadata.client_quotas();
    let mut quotas: BTreeMap<Entity, Values> = stored
        .iter()
        .map(|q| (q.entity.clone(), q.values.clone()))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut outcomes: Vec<Result<(), String>> = Vec::with_capacity(request.entries.len());
    for entry in &request.entries {
        let entity = entity_of(entry);
        if !seen.insert(entity.clone()) {
            outcomes.push(Err(format!(
                "Ignoring duplicate entity {}",
                describe(&entity)
            )));
            continue;
        }
        let current = quotas.get(&entity).cloned().unwrap_or_default();
        match apply(entry, &entity, &current) {
            Ok(next) => {
                if next.is_empty() {
                    quotas.remove(&entity);
                } else {
                    quotas.insert(entity, next);
                }
                outcomes.push(Ok(()));
            }
            Err(m) => outcomes.push(Err(m)),
        }
    }
    let next: Vec<ClientQuota> = quotas
        .into_iter()
        .map(|(entity, values)| ClientQuota { entity, values })
        .collect();
    let mut storage_error = None;
    if !request.validate_only && next != stored {
        // A metadata fsync: off the async workers.
        match tokio::task::block_in_place(|| ctx.broker.metadata.set_client_quotas(next.clone())) {
            Ok(()) => {
                ctx.broker.quotas.load(&next);
                tracing::info!(entities = next.len(), "client quotas updated");
            }
            Err(e) => {
                tracing::error!(error = %e, "persisting client quotas failed");
                storage_error = Some(format!("{e:#}"));
            }
        }
    }
    respond(
        request
            .entries
            .iter()
            .zip(outcomes)
            .map(|(entry, outcome)| match (outcome, &storage_error) {
                (Err(m), _) => result(entry, ResponseError::InvalidRequest, Some(m)),
                (Ok(()), Some(e)) => {
                    result(entry, ResponseError::KafkaStorageError, Some(e.clone()))
                }
                (Ok(()), None) => ok(entry),
            })
            .collect(),
    )
}
