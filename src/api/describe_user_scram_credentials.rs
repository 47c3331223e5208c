//! DescribeUserScramCredentials: each user's SCRAM mechanisms and iteration counts (never the
//! keys). Needs DESCRIBE on the cluster. As Kafka's ScramImage: no users named means every
//! user; a user named twice gets one DUPLICATE_RESOURCE row; a user without credentials gets
//! RESOURCE_NOT_FOUND.

use super::errors::ResponseError;
use super::{str_bytes, Handled, RequestContext};
use crate::security::authorizer::CLUSTER_NAME;
use crate::security::sasl_scram::ScramMechanism;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, ResponseKind,
};

pub fn handle(ctx: &RequestContext, request: DescribeUserScramCredentialsRequest) -> Handled {
    let requested = request.users.unwrap_or_default();
    if !ctx.authorize(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        // Kafka's getErrorResponse: a row per requested user, with no user name.
        let denied = ResponseError::ClusterAuthorizationFailed.code();
        return Handled::ready(ResponseKind::DescribeUserScramCredentials(
            DescribeUserScramCredentialsResponse::default()
                .with_error_code(denied)
                .with_results(
                    requested
                        .iter()
                        .map(|_| {
                            DescribeUserScramCredentialsResult::default().with_error_code(denied)
                        })
                        .collect(),
                ),
        ));
    }
    let credentials = ctx.broker.metadata.scram_credentials();
    // (user, named more than once), in request order; every user when none is named.
    let mut targets: Vec<(String, bool)> = Vec::new();
    if requested.is_empty() {
        targets.extend(credentials.keys().map(|u| (u.clone(), false)));
    } else {
        // Index of each name in `targets`: a request may name very many users.
        let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for user in &requested {
            match seen.get(user.name.as_str()) {
                Some(&i) => targets[i].1 = true,
                None => {
                    seen.insert(user.name.as_str(), targets.len());
                    targets.push((user.name.to_string(), false));
                }
            }
        }
    }
    let results = targets
        .into_iter()
        .map(|(user, duplicate)| {
            let row = DescribeUserScramCredentialsResult::default().with_user(str_bytes(&user));
            if duplicate {
                return row
                    .with_error_code(ResponseError::DuplicateResource.code())
                    .with_error_message(Some(str_bytes(&format!(
                        "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                    ))));
            }
            let infos: Vec<CredentialInfo> = ScramMechanism::ALL
                .into_iter()
                .filter_map(|m| {
                    let c = credentials.get(&user)?.get(m.name())?;
                    Some(
                        CredentialInfo::default()
                            .with_mechanism(m.code())
                            .with_iterations(c.iterations),
                    )
                })
                .collect();
            if infos.is_empty() {
                return row
                    .with_error_code(ResponseError::ResourceNotFound.code())
                    .with_error_message(Some(str_bytes(&format!(
                        "Attempt to describe a user credential that does not exist: {user}"
                    ))));
            }
            row.with_credential_infos(infos)
        })
        .collect();
    Handled::ready(ResponseKind::DescribeUserScramCredentials(
        DescribeUserScramCredentialsResponse::default().with_results(results),
    ))
}
