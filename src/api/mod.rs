//! Kafka APIs, one file each. `APIS` is the single table of what this broker serves: each
//! entry decodes its request, runs its handler, sizes and encodes its response and says whether
//! it waits for earlier responses. ApiVersions is built from it, the connection dispatches and
//! writes through it and refuses anything outside it.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod chunked;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod errors;
pub mod fetch;
pub mod find_coordinator;
pub mod get_telemetry_subscriptions;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod push_telemetry;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod update_features;
pub mod write_txn_markers;

mod context;

pub use context::{
    Handled, Listener, Principal, RequestContext, SaslState, SecurityProtocol, Session,
};

use bytes::Bytes;
use chunked::ChunkedBuf;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

type Handler = fn(&RequestContext, &mut Bytes) -> anyhow::Result<Handled>;

/// When a request may run relative to the earlier ones on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// Runs as soon as it is read (pipelined produce requests share one fsync).
    Pipelined,
    /// Kafka handles one request per connection at a time. Group requests must see the group
    /// as the earlier ones left it (a JoinGroup waiting for the rebalance), so they wait until
    /// every earlier response on the connection was written.
    AfterEarlierResponses,
}

/// One API: versions, decoding and handler, response size and ordering. The only list of APIs.
pub struct ApiEntry {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
    pub ordering: Ordering,
    /// Decodes the body and runs the handler's synchronous part.
    pub handle: Handler,
    /// The encoded size of this API's response body (the length prefix goes first).
    pub response_size: fn(&ResponseKind, i16) -> anyhow::Result<usize>,
    pub encode_response: fn(&ResponseKind, &mut ChunkedBuf, i16) -> anyhow::Result<()>,
    /// Byte fields of the response worth sending by reference rather than copied (Fetch's
    /// record batches).
    pub shared_bytes: fn(&ResponseKind) -> Vec<Bytes>,
    /// Puts a quota's throttle time into the response's throttle_time_ms (a no-op for the
    /// few responses without one).
    pub set_throttle: fn(&mut ResponseKind, i32),
    /// Served on a SASL listener before the client authenticated (anything else closes the
    /// connection there, as in Kafka).
    pub before_auth: bool,
    /// A default response, for the test that every entry's response survives the writer.
    #[cfg(test)]
    pub sample_response: fn() -> ResponseKind,
}

fn nothing_shared(_: &ResponseKind) -> Vec<Bytes> {
    Vec::new()
}

fn no_throttle_field(_: &mut ResponseKind, _: i32) {}

/// `set_throttle` of an API whose response has throttle_time_ms (every entry's unless marked
/// `no_throttle:`; the compiler says which).
macro_rules! throttle_field {
    ($key:ident) => {
        |response: &mut ResponseKind, ms: i32| {
            if let ResponseKind::$key(r) = response {
                r.throttle_time_ms = ms;
            }
        }
    };
}

macro_rules! api {
    // The few responses without throttle_time_ms (DescribeQuorum, WriteTxnMarkers, SASL).
    (no_throttle: $key:ident, $($rest:tt)*) => {
        api!(@entry no_throttle_field, $key, $($rest)*)
    };
    ($key:ident, $($rest:tt)*) => {
        api!(@entry throttle_field!($key), $key, $($rest)*)
    };
    (@entry $throttle:expr, $key:ident, $min:expr, $max:expr, $module:ident, $request:ty $(, $field:ident = $value:expr)*) => {
        ApiEntry {
            $($field: $value,)*
            ..ApiEntry {
                key: ApiKey::$key,
                min_version: $min,
                max_version: $max,
                ordering: Ordering::Pipelined,
                handle: |ctx, body| {
                    let request = <$request>::decode(body, ctx.api_version)?;
                    Ok($module::handle(ctx, request))
                },
                response_size: |response, version| match response {
                    ResponseKind::$key(r) => r.compute_size(version),
                    _ => anyhow::bail!(concat!(
                        "the ",
                        stringify!($key),
                        " handler answered with another API's response"
                    )),
                },
                encode_response: |response, buf, version| match response {
                    ResponseKind::$key(r) => r.encode(buf, version),
                    _ => anyhow::bail!(concat!(
                        "the ",
                        stringify!($key),
                        " handler answered with another API's response"
                    )),
                },
                shared_bytes: nothing_shared,
                set_throttle: $throttle,
                before_auth: false,
                #[cfg(test)]
                sample_response: || ResponseKind::$key(Default::default()),
            }
        }
    };
}

/// Every API and version served. Versions are all those the kafka-protocol crate (Kafka 4.1
/// schemas) decodes for the API, so old clients (librdkafka 2.0) and new ones both fit.
pub static APIS: &[ApiEntry] = &[
    api!(Produce, 3, 13, produce, ProduceRequest),
    api!(
        Fetch,
        4,
        18,
        fetch,
        FetchRequest,
        shared_bytes = fetch::record_batches
    ),
    api!(ListOffsets, 1, 10, list_offsets, ListOffsetsRequest),
    api!(Metadata, 0, 13, metadata, MetadataRequest),
    api!(
        ApiVersions,
        0,
        4,
        api_versions,
        ApiVersionsRequest,
        before_auth = true
    ),
    api!(
        no_throttle: SaslHandshake,
        0,
        1,
        sasl_handshake,
        SaslHandshakeRequest,
        before_auth = true
    ),
    api!(
        no_throttle: SaslAuthenticate,
        0,
        2,
        sasl_authenticate,
        SaslAuthenticateRequest,
        before_auth = true
    ),
    api!(CreateTopics, 2, 7, create_topics, CreateTopicsRequest),
    api!(DeleteTopics, 1, 6, delete_topics, DeleteTopicsRequest),
    api!(
        InitProducerId,
        0,
        5,
        init_producer_id,
        InitProducerIdRequest
    ),
    api!(
        OffsetForLeaderEpoch,
        2,
        4,
        offset_for_leader_epoch,
        OffsetForLeaderEpochRequest
    ),
    api!(
        DescribeCluster,
        0,
        2,
        describe_cluster,
        DescribeClusterRequest
    ),
    api!(
        DescribeConfigs,
        1,
        4,
        describe_configs,
        DescribeConfigsRequest
    ),
    // Writes of configs wait for earlier requests, so a client's describe after its alter
    // on the same connection sees the change.
    api!(
        AlterConfigs,
        0,
        2,
        alter_configs,
        AlterConfigsRequest,
        ordering = Ordering::AfterEarlierResponses
    ),
    api!(
        IncrementalAlterConfigs,
        0,
        1,
        incremental_alter_configs,
        IncrementalAlterConfigsRequest,
        ordering = Ordering::AfterEarlierResponses
    ),
    api!(
        CreatePartitions,
        0,
        3,
        create_partitions,
        CreatePartitionsRequest
    ),
    api!(DeleteRecords, 0, 2, delete_records, DeleteRecordsRequest),
    api!(
        DescribeLogDirs,
        1,
        4,
        describe_log_dirs,
        DescribeLogDirsRequest
    ),
    // Consumer groups (coordinator/group/).
    api!(
        FindCoordinator,
        0,
        6,
        find_coordinator,
        FindCoordinatorRequest
    ),
    api!(
        JoinGroup,
        0,
        9,
        join_group,
        JoinGroupRequest,
        ordering = Ordering::AfterEarlierResponses
    ),
    api!(
        SyncGroup,
        0,
        5,
        sync_group,
        SyncGroupRequest,
        ordering = Ordering::AfterEarlierResponses
    ),
    api!(
        Heartbeat,
        0,
        4,
        heartbeat,
        HeartbeatRequest,
        ordering = Ordering::AfterEarlierResponses
    ),
    api!(
        LeaveGroup,
        0,
        5,
        leave_group,
        LeaveGroupRequest,
        ordering = Ordering::AfterEarlierResponses
    ),
    api!(
        OffsetCommit,
        2,
        9,
        offset_commit,
        OffsetCommitRequest,
        ordering = Ordering::AfterEarlierResponses
    ),
    api!(
        OffsetFetch,
        1,
        9,
        offset_fetch,
        OffsetFetchRequest,
        ordering = Ordering::AfterEarlierResponses
    ),
    api!(
        TxnOffsetCommit,
        0,
        5,
        txn_offset_commit,
        TxnOffsetCommitRequest,
        ordering = Ordering::AfterEarlierResponses
    ),
    api!(OffsetDelete, 0, 0, offset_delete, OffsetDeleteRequest),
    api!(DescribeGroups, 0, 6, describe_groups, DescribeGroupsRequest),
    api!(ListGroups, 0, 5, list_groups, ListGroupsRequest),
    api!(DeleteGroups, 0, 2, delete_groups, DeleteGroupsRequest),
    api!(
        ConsumerGroupHeartbeat,
        0,
        1,
        consumer_group_heartbeat,
        ConsumerGroupHeartbeatRequest,
        ordering = Ordering::AfterEarlierResponses
    ),
    api!(
        ConsumerGroupDescribe,
        0,
        1,
        consumer_group_describe,
        ConsumerGroupDescribeRequest
    ),
    // Transactions (coordinator/txn/).
    api!(
        AddPartitionsToTxn,
        0,
        5,
        add_partitions_to_txn,
        AddPartitionsToTxnRequest
    ),
    api!(
        AddOffsetsToTxn,
        0,
        4,
        add_offsets_to_txn,
        AddOffsetsToTxnRequest
    ),
    api!(EndTxn, 0, 5, end_txn, EndTxnRequest),
    api!(
        DescribeTransactions,
        0,
        0,
        describe_transactions,
        DescribeTransactionsRequest
    ),
    api!(
        ListTransactions,
        0,
        2,
        list_transactions,
        ListTransactionsRequest
    ),
    api!(
        DescribeProducers,
        0,
        0,
        describe_producers,
        DescribeProducersRequest
    ),
    api!(
        no_throttle: WriteTxnMarkers,
        1,
        1,
        write_txn_markers,
        WriteTxnMarkersRequest
    ),
    // ACLs (security/authorizer.rs); SECURITY_DISABLED without an authorizer, as Kafka.
    api!(DescribeAcls, 1, 3, describe_acls, DescribeAclsRequest),
    api!(CreateAcls, 1, 3, create_acls, CreateAclsRequest),
    api!(DeleteAcls, 1, 3, delete_acls, DeleteAclsRequest),
    // SCRAM credentials (security/sasl_scram.rs), kept in the metadata.
    api!(
        DescribeUserScramCredentials,
        0,
        0,
        describe_user_scram_credentials,
        DescribeUserScramCredentialsRequest
    ),
    api!(
        AlterUserScramCredentials,
        0,
        0,
        alter_user_scram_credentials,
        AlterUserScramCredentialsRequest
    ),
    // Client quotas (security/quotas.rs): stored in the metadata, applied by the connection.
    api!(
        DescribeClientQuotas,
        0,
        1,
        describe_client_quotas,
        DescribeClientQuotasRequest
    ),
    // After earlier responses, so a describe after an alter on one connection sees it.
    api!(
        AlterClientQuotas,
        0,
        1,
        alter_client_quotas,
        AlterClientQuotasRequest,
        ordering = Ordering::AfterEarlierResponses
    ),
    // Cluster administration, as a single-broker KRaft Kafka (combined broker+controller).
    api!(
        DescribeTopicPartitions,
        0,
        0,
        describe_topic_partitions,
        DescribeTopicPartitionsRequest
    ),
    api!(ElectLeaders, 0, 2, elect_leaders, ElectLeadersRequest),
    api!(
        ListPartitionReassignments,
        0,
        0,
        list_partition_reassignments,
        ListPartitionReassignmentsRequest
    ),
    api!(
        AlterPartitionReassignments,
        0,
        1,
        alter_partition_reassignments,
        AlterPartitionReassignmentsRequest
    ),
    api!(no_throttle: DescribeQuorum, 0, 2, describe_quorum, DescribeQuorumRequest),
    api!(UpdateFeatures, 0, 2, update_features, UpdateFeaturesRequest),
    api!(
        ListConfigResources,
        0,
        1,
        list_config_resources,
        ListConfigResourcesRequest
    ),
    // KIP-714 client telemetry: served, not advertised (see get_telemetry_subscriptions.rs).
    api!(
        GetTelemetrySubscriptions,
        0,
        0,
        get_telemetry_subscriptions,
        GetTelemetrySubscriptionsRequest
    ),
    api!(PushTelemetry, 0, 0, push_telemetry, PushTelemetryRequest),
];

pub fn lookup(api_key: i16) -> Option<&'static ApiEntry> {
    APIS.iter().find(|e| e.key as i16 == api_key)
}

/// Authorized-operation bitfields (bit n = Kafka's AclOperation code n): every operation of the
/// resource type, what Kafka reports with no authorizer. Handlers ask
/// `ctx.authorized_operations`, which computes them per principal when an authorizer runs.
pub mod authorized_ops {
    /// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
    pub const TOPIC: i32 = bits(&[3, 4, 5, 6, 7, 8, 10, 11]);
    /// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
    pub const CLUSTER: i32 = bits(&[5, 7, 8, 9, 10, 11, 12]);
    /// READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
    pub const GROUP: i32 = bits(&[3, 6, 8, 10, 11]);

    const fn bits(ops: &[u8]) -> i32 {
        let mut v = 0;
        let mut i = 0;
        while i < ops.len() {
            v |= 1 << ops[i];
            i += 1;
        }
        v
    }
}

/// Converts a `&str` into the protocol's string type.
pub fn str_bytes(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}

#[cfg(test)]
mod tests;
