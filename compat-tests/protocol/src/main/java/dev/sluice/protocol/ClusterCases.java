package dev.sluice.protocol;

import org.apache.kafka.common.message.*;
import org.apache.kafka.common.protocol.ApiKeys;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.sluice.protocol.Cases.c;

/**
 * Cluster administration APIs a single-broker KRaft Kafka answers: DescribeTopicPartitions,
 * ElectLeaders, partition reassignments, DescribeQuorum, UpdateFeatures, ListConfigResources.
 * Nothing here changes either broker's state (feature changes are sent validate-only).
 */
final class ClusterCases {
    private ClusterCases() { }

    static void add(Cases k, List<Case> cs, ApiKeys api, short v) {
        switch (api) {
            case DESCRIBE_TOPIC_PARTITIONS -> describeTopicPartitions(k, cs, v);
            case ELECT_LEADERS -> electLeaders(k, cs, v);
            case LIST_PARTITION_REASSIGNMENTS -> listReassignments(k, cs, v);
            case ALTER_PARTITION_REASSIGNMENTS -> alterReassignments(k, cs, v);
            case DESCRIBE_QUORUM -> describeQuorum(k, cs, v);
            case UPDATE_FEATURES -> updateFeatures(k, cs, v);
            case LIST_CONFIG_RESOURCES -> listConfigResources(k, cs, v);
            default -> { }
        }
    }

    // DescribeTopicPartitions -----------------------------------------------------------------
    static DescribeTopicPartitionsRequestData dtp(int limit, String cursorTopic, int cursorPartition, String... topics) {
        List<DescribeTopicPartitionsRequestData.TopicRequest> ts = new ArrayList<>();
        for (String t : topics) ts.add(new DescribeTopicPartitionsRequestData.TopicRequest().setName(t));
        DescribeTopicPartitionsRequestData r = new DescribeTopicPartitionsRequestData().setTopics(ts).setResponsePartitionLimit(limit);
        if (cursorTopic != null) r.setCursor(new DescribeTopicPartitionsRequestData.Cursor().setTopicName(cursorTopic).setPartitionIndex(cursorPartition));
        return r;
    }

    static void describeTopicPartitions(Cases k, List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DESCRIBE_TOPIC_PARTITIONS;
        c(cs, A, v, "valid", b -> dtp(2000, null, 0, k.ta, k.tb));
        c(cs, A, v, "all_topics", b -> dtp(2000, null, 0)).runOnly("topics");
        c(cs, A, v, "paged", b -> dtp(2, null, 0, k.ta, k.tb));
        c(cs, A, v, "cursor_mid_topic", b -> dtp(2, k.ta, 2, k.ta, k.tb));
        c(cs, A, v, "cursor_next_topic", b -> dtp(1, k.tb, 0, k.ta, k.tb));
        c(cs, A, v, "limit_at_topic_end", b -> dtp(3, null, 0, k.ta, k.tb, k.missing("dtp")));
        c(cs, A, v, "limit_zero", b -> dtp(0, null, 0, k.ta));
        c(cs, A, v, "cursor_past_end", b -> dtp(10, k.ta, 7, k.ta));
        c(cs, A, v, "cursor_not_requested", b -> dtp(10, k.tb, 0, k.ta));
        c(cs, A, v, "cursor_negative_partition", b -> dtp(10, k.ta, -1, k.ta));
        c(cs, A, v, "unknown_topic", b -> dtp(10, null, 0, k.missing("dtp")));
        c(cs, A, v, "invalid_topic_name", b -> dtp(10, null, 0, "pd-" + k.rid + " bad/name"));
        c(cs, A, v, "duplicates", b -> dtp(10, null, 0, k.tb, k.tb));
        c(cs, A, v, "huge_unknown_topics", b -> dtp(2000, null, 0, Cases.list(Cases.HUGE, i -> k.missing("dtp" + i)).toArray(new String[0])));
    }

    // ElectLeaders ----------------------------------------------------------------------------
    static ElectLeadersRequestData elect(short v, int type, String topic, Integer... partitions) {
        ElectLeadersRequestData r = new ElectLeadersRequestData().setTimeoutMs(10000);
        if (v >= 1) r.setElectionType((byte) type);
        if (topic == null) r.setTopicPartitions(null);
        else {
            ElectLeadersRequestData.TopicPartitionsCollection tc = new ElectLeadersRequestData.TopicPartitionsCollection();
            tc.add(new ElectLeadersRequestData.TopicPartitions().setTopic(topic).setPartitions(Arrays.asList(partitions)));
            r.setTopicPartitions(tc);
        }
        return r;
    }

    static void electLeaders(Cases k, List<Case> cs, short v) {
        ApiKeys A = ApiKeys.ELECT_LEADERS;
        c(cs, A, v, "valid", b -> elect(v, 0, k.ta, 0, 1, 2));
        c(cs, A, v, "unknown_partition", b -> elect(v, 0, k.ta, 0, 99));
        c(cs, A, v, "unknown_topic", b -> elect(v, 0, k.missing("el"), 0));
        c(cs, A, v, "all_partitions", b -> elect(v, 0, null)).runOnly("replicaElectionResults");
        c(cs, A, v, "empty", b -> new ElectLeadersRequestData().setTimeoutMs(10000));
        if (v >= 1) {
            c(cs, A, v, "unclean", b -> elect(v, 1, k.ta, 0));
            c(cs, A, v, "unclean_all", b -> elect(v, 1, null)).runOnly("replicaElectionResults");
            c(cs, A, v, "invalid_election_type", b -> elect(v, 5, k.ta, 0));
        }
    }

    // ListPartitionReassignments --------------------------------------------------------------
    static void listReassignments(Cases k, List<Case> cs, short v) {
        ApiKeys A = ApiKeys.LIST_PARTITION_REASSIGNMENTS;
        c(cs, A, v, "valid", b -> new ListPartitionReassignmentsRequestData().setTimeoutMs(10000).setTopics(null));
        c(cs, A, v, "topics", b -> new ListPartitionReassignmentsRequestData().setTimeoutMs(10000).setTopics(List.of(
            new ListPartitionReassignmentsRequestData.ListPartitionReassignmentsTopics().setName(k.ta).setPartitionIndexes(List.of(0, 1, 99)))));
        c(cs, A, v, "unknown_topic", b -> new ListPartitionReassignmentsRequestData().setTimeoutMs(10000).setTopics(List.of(
            new ListPartitionReassignmentsRequestData.ListPartitionReassignmentsTopics().setName(k.missing("lr")).setPartitionIndexes(List.of(0)))));
        c(cs, A, v, "empty", b -> new ListPartitionReassignmentsRequestData().setTimeoutMs(10000).setTopics(List.of()));
    }

    // AlterPartitionReassignments -------------------------------------------------------------
    static AlterPartitionReassignmentsRequestData.ReassignablePartition rp(int partition, Integer... replicas) {
        return new AlterPartitionReassignmentsRequestData.ReassignablePartition().setPartitionIndex(partition)
            .setReplicas(replicas == null ? null : Arrays.asList(replicas));
    }

    static AlterPartitionReassignmentsRequestData alter(short v, boolean allowRf, String topic, AlterPartitionReassignmentsRequestData.ReassignablePartition... ps) {
        AlterPartitionReassignmentsRequestData r = new AlterPartitionReassignmentsRequestData().setTimeoutMs(10000).setTopics(List.of(
            new AlterPartitionReassignmentsRequestData.ReassignableTopic().setName(topic).setPartitions(Arrays.asList(ps))));
        if (v >= 1) r.setAllowReplicationFactorChange(allowRf);
        return r;
    }

    static void alterReassignments(Cases k, List<Case> cs, short v) {
        ApiKeys A = ApiKeys.ALTER_PARTITION_REASSIGNMENTS;
        c(cs, A, v, "valid", b -> alter(v, true, k.ta, rp(0, 1)));
        c(cs, A, v, "cancel", b -> alter(v, true, k.ta, rp(0, (Integer[]) null)));
        c(cs, A, v, "unknown_broker", b -> alter(v, true, k.ta, rp(0, 1, 2)));
        c(cs, A, v, "only_unknown_broker", b -> alter(v, true, k.ta, rp(0, 7)));
        c(cs, A, v, "duplicate_broker", b -> alter(v, true, k.ta, rp(0, 1, 1)));
        c(cs, A, v, "empty_replicas", b -> alter(v, true, k.ta, rp(0)));
        c(cs, A, v, "unknown_partition", b -> alter(v, true, k.ta, rp(99, 1)));
        c(cs, A, v, "unknown_topic", b -> alter(v, true, k.missing("ar"), rp(0, 1)));
        c(cs, A, v, "mixed", b -> alter(v, true, k.ta, rp(1, 1), rp(2, (Integer[]) null), rp(0, 1, 2)));
        if (v >= 1) {
            c(cs, A, v, "rf_change_refused", b -> alter(v, false, k.ta, rp(0, 1, 2)));
            c(cs, A, v, "rf_same_refused_flag", b -> alter(v, false, k.ta, rp(0, 1)));
        }
        c(cs, A, v, "empty", b -> new AlterPartitionReassignmentsRequestData().setTimeoutMs(10000));
    }

    // DescribeQuorum --------------------------------------------------------------------------
    static DescribeQuorumRequestData quorum(String topic, Integer... partitions) {
        List<DescribeQuorumRequestData.PartitionData> ps = new ArrayList<>();
        for (int p : partitions) ps.add(new DescribeQuorumRequestData.PartitionData().setPartitionIndex(p));
        return new DescribeQuorumRequestData().setTopics(List.of(new DescribeQuorumRequestData.TopicData().setTopicName(topic).setPartitions(ps)));
    }

    static void describeQuorum(Cases k, List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DESCRIBE_QUORUM;
        // The metadata log's offsets and the clock are each broker's own.
        String[] own = {"*.highWatermark", "*.logEndOffset", "*.lastFetchTimestamp", "*.lastCaughtUpTimestamp"};
        c(cs, A, v, "valid", b -> quorum("__cluster_metadata", 0)).ignore(own);
        c(cs, A, v, "wrong_topic", b -> quorum(k.ta, 0));
        c(cs, A, v, "wrong_partition", b -> quorum("__cluster_metadata", 1));
        c(cs, A, v, "two_partitions", b -> quorum("__cluster_metadata", 0, 1));
        c(cs, A, v, "empty", b -> new DescribeQuorumRequestData());
    }

    // UpdateFeatures --------------------------------------------------------------------------
    static UpdateFeaturesRequestData features(short v, boolean validateOnly, Object... nameLevelType) {
        UpdateFeaturesRequestData.FeatureUpdateKeyCollection fc = new UpdateFeaturesRequestData.FeatureUpdateKeyCollection();
        for (int i = 0; i + 2 < nameLevelType.length; i += 3) {
            UpdateFeaturesRequestData.FeatureUpdateKey u = new UpdateFeaturesRequestData.FeatureUpdateKey()
                .setFeature((String) nameLevelType[i]).setMaxVersionLevel(((Integer) nameLevelType[i + 1]).shortValue());
            byte type = ((Integer) nameLevelType[i + 2]).byteValue();
            if (v >= 1) u.setUpgradeType(type); else u.setAllowDowngrade(type != 1);
            fc.add(u);
        }
        UpdateFeaturesRequestData r = new UpdateFeaturesRequestData().setTimeoutMs(10000).setFeatureUpdates(fc);
        if (v >= 1) r.setValidateOnly(validateOnly);
        return r;
    }

    static void updateFeatures(Cases k, List<Case> cs, short v) {
        ApiKeys A = ApiKeys.UPDATE_FEATURES;
        // Only no-op or refused updates without validate_only: the brokers are shared by the run.
        c(cs, A, v, "valid", b -> features(v, false, "group.version", 1, 1));
        c(cs, A, v, "same_levels", b -> features(v, false, "group.version", 1, 1, "transaction.version", 2, 1));
        c(cs, A, v, "unsupported_level", b -> features(v, false, "group.version", 99, 1));
        c(cs, A, v, "unknown_feature", b -> features(v, false, "pd.no.such.feature", 1, 1));
        c(cs, A, v, "unknown_feature_level_0", b -> features(v, false, "pd.no.such.feature", 0, 1));
        c(cs, A, v, "negative_level", b -> features(v, false, "transaction.version", -1, 1));
        c(cs, A, v, "downgrade_as_upgrade", b -> features(v, false, "transaction.version", 1, 1));
        c(cs, A, v, "metadata_version_unknown", b -> features(v, false, "metadata.version", 999, 1));
        c(cs, A, v, "one_bad_of_two", b -> features(v, false, "group.version", 1, 1, "group.version.x", 5, 1));
        if (v >= 1) {
            c(cs, A, v, "upgrade_as_downgrade", b -> features(v, true, "transaction.version", 3, 2));
            c(cs, A, v, "invalid_upgrade_type", b -> features(v, true, "transaction.version", 2, 7));
            c(cs, A, v, "validate_same", b -> features(v, true, "transaction.version", 2, 1));
            c(cs, A, v, "validate_downgrade", b -> features(v, true, "transaction.version", 1, 2));
            c(cs, A, v, "validate_metadata_downgrade", b -> features(v, true, "metadata.version", 7, 2));
            c(cs, A, v, "validate_metadata_unsafe_downgrade", b -> features(v, true, "metadata.version", 7, 3));
        }
        c(cs, A, v, "empty", b -> features(v, false));
    }

    // ListConfigResources ---------------------------------------------------------------------
    static ListConfigResourcesRequestData configResources(Integer... types) {
        List<Byte> ts = new ArrayList<>();
        for (int t : types) ts.add((byte) t);
        return new ListConfigResourcesRequestData().setResourceTypes(ts);
    }

    static void listConfigResources(Cases k, List<Case> cs, short v) {
        ApiKeys A = ApiKeys.LIST_CONFIG_RESOURCES;
        c(cs, A, v, "valid", b -> new ListConfigResourcesRequestData()).runOnly("configResources");
        if (v >= 1) {
            c(cs, A, v, "topics", b -> configResources(2)).runOnly("configResources");
            c(cs, A, v, "brokers", b -> configResources(4));
            c(cs, A, v, "broker_loggers", b -> configResources(8));
            c(cs, A, v, "client_metrics", b -> configResources(16));
            c(cs, A, v, "groups", b -> configResources(32)).runOnly("configResources");
            c(cs, A, v, "topics_and_groups", b -> configResources(2, 32)).runOnly("configResources");
            c(cs, A, v, "unsupported_type", b -> configResources(99));
            c(cs, A, v, "unknown_and_topic", b -> configResources(2, 1));
        }
    }
}
