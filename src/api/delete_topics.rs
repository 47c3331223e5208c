//! DeleteTopics: by name (all versions) or by topic id (v6+); files are removed from disk.

use super::errors::ResponseError;
use super::{str_bytes, Handled, RequestContext};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, ResponseKind, TopicName,
};

fn delete(ctx: &RequestContext, name: Option<&str>, id: uuid::Uuid) -> DeletableTopicResult {
    let topic = match name {
        Some(n) => ctx.broker.topic(n),
        None => ctx.broker.topic_by_id(&id),
    };
    let mut result =
        DeletableTopicResult::default().with_name(name.map(|n| TopicName(str_bytes(n))));
    if ctx.api_version >= 6 {
        result.topic_id = topic.as_ref().map(|t| t.id).unwrap_or(id);
    }
    // Kafka: DELETE on the topic, checked before whether a named topic exists; a topic asked
    // for by id that the principal may not DESCRIBE stays unknown.
    let allowed = |op, name: &str| ctx.authorize(op, ResourceType::Topic, name);
    let denied = match (name, &topic) {
        (Some(n), _) => !allowed(Operation::Delete, n),
        (None, Some(t)) if !allowed(Operation::Describe, &t.name) => {
            result.error_code = ResponseError::UnknownTopicId.code();
            return result;
        }
        (None, Some(t)) => !allowed(Operation::Delete, &t.name),
        (None, None) => false,
    };
    if denied {
        result.error_code = ResponseError::TopicAuthorizationFailed.code();
        return result;
    }
    let Some(topic) = topic else {
        result.error_code = if name.is_some() {
            ResponseError::UnknownTopicOrPartition.code()
        } else {
            ResponseError::UnknownTopicId.code()
        };
        return result;
    };
    if name.is_none() {
        result.name = Some(TopicName(str_bytes(&topic.name)));
    }
    match tokio::task::block_in_place(|| ctx.broker.delete_topic(&topic.name)) {
        Ok(Some(_)) => {}
        Ok(None) => result.error_code = ResponseError::UnknownTopicOrPartition.code(),
        Err(e) => {
            tracing::error!(topic = %topic.name, error = %e, "delete topic failed");
            result.error_code = ResponseError::KafkaStorageError.code();
            if ctx.api_version >= 5 {
                result.error_message = Some(str_bytes(&e.to_string()));
            }
        }
    }
    result
}

pub fn handle(ctx: &RequestContext, request: DeleteTopicsRequest) -> Handled {
    let results = if ctx.api_version >= 6 {
        request
            .topics
            .iter()
            .map(|t| delete(ctx, t.name.as_ref().map(|n| n.0.as_str()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| delete(ctx, Some(n.0.as_str()), uuid::Uuid::nil()))
            .collect()
    };
    Handled::ready(ResponseKind::DeleteTopics(
        DeleteTopicsResponse::default().with_responses(results),
    ))
}
