//! Metadata: this broker, the topics asked for (auto-creating them when allowed), leaders.

use super::{str_bytes, Handled, RequestContext};
use crate::broker::{validate_topic_name, Topic};
use crate::security::authorizer::CLUSTER_NAME;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, ResponseKind, TopicName,
};
use kafka_protocol::ResponseError;

pub fn topic_response(topic: &Topic) -> MetadataResponseTopic {
    let ids = |nodes: &[i32]| nodes.iter().map(|&n| BrokerId(n)).collect::<Vec<_>>();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&topic.name))))
        .with_topic_id(topic.id)
        .with_partitions(
            topic
                .states
                .iter()
                .enumerate()
                .map(|(index, state)| {
                    MetadataResponsePartition::default()
                        // Kafka reports a partition without a live leader this way.
                        .with_error_code(if state.leader < 0 {
                            ResponseError::LeaderNotAvailable.code()
                        } else {
                            0
                        })
                        .with_partition_index(index as i32)
                        .with_leader_id(BrokerId(state.leader))
                        .with_leader_epoch(state.leader_epoch)
                        .with_replica_nodes(ids(&state.replicas))
                        .with_isr_nodes(ids(&state.isr))
                })
                .collect(),
        )
}

fn error_topic(name: Option<&str>, id: uuid::Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_topic_id(id)
}

pub fn handle(ctx: &RequestContext, request: MetadataRequest) -> Handled {
    let broker = &ctx.broker;
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested = match request.topics {
        None => None,
        Some(t) if t.is_empty() && ctx.api_version == 0 => None,
        Some(t) => Some(t),
    };
    // allow_auto_topic_creation exists from v4; older clients always allowed it.
    let may_create = ctx.api_version < 4 || request.allow_auto_topic_creation;
    // The schema has topic ids from v10, but Kafka looks topics up by id only from v12 and
    // answers INVALID_REQUEST (with no brokers) below that; names are non-nullable until v12.
    let by_id_allowed = ctx.api_version >= 12;
    let mut invalid_request = false;
    let mut topics: Vec<MetadataResponseTopic> = match requested {
        // Kafka leaves the topics the principal may not DESCRIBE out of "all topics".
        None => broker
            .topics()
            .iter()
            .filter(|t| ctx.authorize(Operation::Describe, ResourceType::Topic, &t.name))
            .map(|t| topic_response(t))
            .collect(),
        Some(requested) => requested
            .iter()
            .map(|req| {
                match req
                    .name
                    .as_ref()
                    .map(|n| n.0.as_str())
                    // v10+: a topic id with a null (or empty) name asks by id.
                    .filter(|n| !n.is_empty() || req.topic_id.is_nil())
                {
                    Some(name)
                        if !ctx.authorize(Operation::Describe, ResourceType::Topic, name) =>
                    {
                        error_topic(
                            Some(name),
                            uuid::Uuid::nil(),
                            ResponseError::TopicAuthorizationFailed,
                        )
                    }
                    Some(name) => match broker.topic(name) {
                        Some(t) => topic_response(&t),
                        None => match validate_topic_name(name) {
                            Err(_) => error_topic(
                                Some(name),
                                uuid::Uuid::nil(),
                                ResponseError::InvalidTopicException,
                            ),
                            // Auto-creation needs CREATE on the cluster or the topic.
                            Ok(())
                                if may_create
                                    && broker.config.auto_create_topics
                                    && !ctx.authorize(
                                        Operation::Create,
                                        ResourceType::Cluster,
                                        CLUSTER_NAME,
                                    )
                                    && !ctx.authorize(
                                        Operation::Create,
                                        ResourceType::Topic,
                                        name,
                                    ) =>
                            {
                                error_topic(
                                    Some(name),
                                    uuid::Uuid::nil(),
                                    ResponseError::TopicAuthorizationFailed,
                                )
                            }
                            Ok(()) => {
                                match may_create.then(|| broker.auto_create(name)).flatten() {
                                    Some(t) => topic_response(&t),
                                    None => error_topic(
                                        Some(name),
                                        uuid::Uuid::nil(),
                                        ResponseError::UnknownTopicOrPartition,
                                    ),
                                }
                            }
                        },
                    },
                    None if !by_id_allowed => {
                        invalid_request = true;
                        error_topic(Some(""), req.topic_id, ResponseError::InvalidRequest)
                    }
                    None => match broker.topic_by_id(&req.topic_id) {
                        // Topic ids are not secret: Kafka answers the id, without the name.
                        Some(t)
                            if !ctx.authorize(
                                Operation::Describe,
                                ResourceType::Topic,
                                &t.name,
                            ) =>
                        {
                            error_topic(None, t.id, ResponseError::TopicAuthorizationFailed)
                        }
                        Some(t) => topic_response(&t),
                        None => error_topic(None, req.topic_id, ResponseError::UnknownTopicId),
                    },
                }
            })
            .collect(),
    };
    let brokers = ctx
        .brokers()
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(str_bytes(&b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    if request.include_topic_authorized_operations {
        for t in topics.iter_mut().filter(|t| t.error_code == 0) {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            t.topic_authorized_operations = ctx.authorized_operations(ResourceType::Topic, &name);
        }
    }
    let mut response = MetadataResponse::default()
        .with_brokers(if invalid_request { Vec::new() } else { brokers })
        .with_cluster_id(Some(str_bytes(&broker.cluster_id)))
        .with_controller_id(BrokerId(ctx.controller_id()))
        .with_topics(topics);
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations =
            ctx.authorized_operations(ResourceType::Cluster, CLUSTER_NAME);
    }
    Handled::ready(ResponseKind::Metadata(response))
}
