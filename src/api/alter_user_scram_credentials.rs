//! AlterUserScramCredentials: deletes and upserts SCRAM credentials, durably, before
//! answering. Needs ALTER on the cluster. Validation is Kafka's ScramControlManager: one
//! change per user per request (DUPLICATE_RESOURCE otherwise), a non-empty name
//! (UNACCEPTABLE_CREDENTIAL), a known mechanism (UNSUPPORTED_SASL_MECHANISM), 4096..=16384
//! iterations (UNACCEPTABLE_CREDENTIAL), deleting only what exists (RESOURCE_NOT_FOUND). The
//! client sends the salted password; the broker keeps StoredKey and ServerKey.

use super::errors::ResponseError;
use super::{str_bytes, Handled, RequestContext};
use crate::metadata::ScramCredential;
use crate::security::authorizer::CLUSTER_NAME;
use crate::security::sasl_scram::{ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ResponseKind,
};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Alterations read, change and write the whole credential set: one at a time.
static ALTERING: Mutex<()> = Mutex::new(());

enum Change {
    Delete(ScramMechanism),
    Upsert(ScramMechanism, ScramCredential),
}

type Refusal = (ResponseError, &'static str);

fn mechanism(name: &str, code: i8) -> Result<ScramMechanism, Refusal> {
    if name.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        ));
    }
    ScramMechanism::from_code(code).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism",
    ))
}

pub fn handle(ctx: &RequestContext, request: AlterUserScramCredentialsRequest) -> Handled {
    let result = |user: &str, e: Option<Refusal>| {
        AlterUserScramCredentialsResult::default()
            .with_user(str_bytes(user))
            .with_error_code(e.map_or(0, |(e, _)| e.code()))
            .with_error_message(e.map(|(_, m)| str_bytes(m)))
    };
    if !ctx.authorize(Operation::Alter, ResourceType::Cluster, CLUSTER_NAME) {
        let mut users: Vec<&str> = Vec::new();
        let names = request.deletions.iter().map(|d| &d.name);
        for name in names.chain(request.upsertions.iter().map(|u| &u.name)) {
            if !users.contains(&name.as_str()) {
                users.push(name);
            }
        }
        let denied = ResponseError::ClusterAuthorizationFailed;
        return Handled::ready(ResponseKind::AlterUserScramCredentials(
            AlterUserScramCredentialsResponse::default().with_results(
                users
                    .into_iter()
                    .map(|u| result(u, None).with_error_code(denied.code()))
                    .collect(),
            ),
        ));
    }
    let _one_at_a_time = ALTERING.lock().unwrap_or_else(|p| p.into_inner());
    let mut credentials = ctx.broker.metadata.scram_credentials();
    let exists = |user: &str, m: ScramMechanism| {
        credentials
            .get(user)
            .is_some_and(|by_mechanism| by_mechanism.contains_key(m.name()))
    };
    let duplicate = (
        ResponseError::DuplicateResource,
        "A user credential cannot be altered twice in the same request",
    );
    let mut changes: BTreeMap<String, Change> = BTreeMap::new();
    let mut refused: BTreeMap<String, Refusal> = BTreeMap::new();
    let mut take = |name: &str, change: Result<Change, Refusal>| {
        if refused.contains_key(name) {
            return;
        }
        if changes.remove(name).is_some() {
            refused.insert(name.to_string(), duplicate);
            return;
        }
        match change {
            Ok(c) => {
                changes.insert(name.to_string(), c);
            }
            Err(e) => {
                refused.insert(name.to_string(), e);
            }
        }
    };
    for d in &request.deletions {
        let change = mechanism(&d.name, d.mechanism).and_then(|m| {
            if exists(&d.name, m) {
                Ok(Change::Delete(m))
            } else {
                Err((
                    ResponseError::ResourceNotFound,
                    "Attempt to delete a user credential that does not exist",
                ))
            }
        });
        take(&d.name, change);
    }
    for u in &request.upsertions {
        let change = mechanism(&u.name, u.mechanism).and_then(|m| {
            if u.iterations < MIN_ITERATIONS {
                Err((ResponseError::UnacceptableCredential, "Too few iterations"))
            } else if u.iterations > MAX_ITERATIONS {
                Err((ResponseError::UnacceptableCredential, "Too many iterations"))
            } else {
                Ok(Change::Upsert(
                    m,
                    ScramCredential::from_salted_password(
                        m,
                        &u.salt,
                        &u.salted_password,
                        u.iterations,
                    ),
                ))
            }
        });
        take(&u.name, change);
    }
    let mut results = Vec::new();
    if !changes.is_empty() {
        for (user, change) in &changes {
            match change {
                Change::Delete(m) => {
                    if let Some(by_mechanism) = credentials.get_mut(user) {
                        by_mechanism.remove(m.name());
                        if by_mechanism.is_empty() {
                            credentials.remove(user);
                        }
                    }
                }
                Change::Upsert(m, c) => {
                    credentials
                        .entry(user.clone())
                        .or_default()
                        .insert(m.name().to_string(), c.clone());
                }
            }
        }
        let saved = ctx.broker.metadata.set_scram_credentials(credentials);
        let failure = saved.as_ref().err().map(|e| {
            tracing::error!(error = %e, "persisting SCRAM credentials failed");
            (
                ResponseError::UnknownServerError,
                "persisting the credentials failed",
            )
        });
        results.extend(changes.keys().map(|user| result(user, failure)));
    }
    results.extend(refused.iter().map(|(user, e)| result(user, Some(*e))));
    Handled::ready(ResponseKind::AlterUserScramCredentials(
        AlterUserScramCredentialsResponse::default().with_results(results),
    ))
}
