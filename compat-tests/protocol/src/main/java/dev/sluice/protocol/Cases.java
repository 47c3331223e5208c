package dev.sluice.protocol;

import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor;
import org.apache.kafka.clients.consumer.internals.ConsumerProtocol;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.*;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.function.Function;

/**
 * The requests. {@link #forVersion} returns the cases of one API at one version; {@link #setup}
 * creates the topics, records, group and offsets they refer to, identically on each broker.
 */
final class Cases {
    final String rid;
    final String ta, tb, tdi, tcfg, group, simpleGroup;
    /**
     * Record timestamps: the start of the previous hour, the same for both brokers in a run. Not a
     * fixed date: records older than retention.ms (7 days) are deleted by Kafka's first retention
     * check (30 s after start, active segment included), which made ListOffsets timing-dependent.
     */
    static final long TS0 = (System.currentTimeMillis() / 3_600_000L - 1) * 3_600_000L;
    static final int HUGE = 10_000;
    static final short P = -1;
    static final Uuid SHARE_TOPIC_ID = new Uuid(0x1234_5678_9abc_def0L, 0x0fed_cba9_8765_4321L);

    Cases(String rid) {
        this.rid = rid;
        ta = "pd-" + rid + "-a";        // 3 partitions; p0 holds 5 records, p1 takes the produce cases
        tb = "pd-" + rid + "-b";        // 1 partition, retention.ms=3600000
        tdi = "pd-" + rid + "-di";      // deleted by topic id (DeleteTopics v6)
        tcfg = "pd-" + rid + "-cfg";    // 1 partition, its configs altered by (Incremental)AlterConfigs
        group = "pd-" + rid + "-g";     // classic group, one stable member subscribed to ta
        simpleGroup = "pd-" + rid + "-s"; // offsets committed with generation -1 (no members)
    }

    String deleteTopic(int v) { return "pd-" + rid + "-d" + v; }
    String missing(String what) { return "pd-" + rid + "-missing-" + what; }

    static Uuid tid(Broker b, String topic) {
        Uuid u = (Uuid) b.state.get("tid:" + topic);
        return u == null ? Uuid.ZERO_UUID : u;
    }

    static byte[] subscription(String topic) {
        ByteBuffer bb = ConsumerProtocol.serializeSubscription(new ConsumerPartitionAssignor.Subscription(List.of(topic)));
        byte[] out = new byte[bb.remaining()];
        bb.get(out);
        return out;
    }

    static byte[] assignment(String topic) {
        ByteBuffer bb = ConsumerProtocol.serializeAssignment(new ConsumerPartitionAssignor.Assignment(
            List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1), new TopicPartition(topic, 2))));
        byte[] out = new byte[bb.remaining()];
        bb.get(out);
        return out;
    }

    static MemoryRecords records(int n, long ts, int valueSize) {
        SimpleRecord[] rs = new SimpleRecord[n];
        for (int i = 0; i < n; i++) {
            byte[] value = valueSize > 0 ? new byte[valueSize] : ("v" + i).getBytes(StandardCharsets.UTF_8);
            rs[i] = new SimpleRecord(ts + i, ("k" + i).getBytes(StandardCharsets.UTF_8), value);
        }
        return MemoryRecords.withRecords(Compression.NONE, rs);
    }

    static <T> List<T> list(int n, Function<Integer, T> f) {
        List<T> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) out.add(f.apply(i));
        return out;
    }

    // ------------------------------------------------------------------------------------------
    // Setup: identical state on both brokers.

    CreateTopicsRequestData.CreatableTopic creatable(String name, int partitions, String... configs) {
        CreateTopicsRequestData.CreatableTopicConfigCollection cc = new CreateTopicsRequestData.CreatableTopicConfigCollection();
        for (int i = 0; i + 1 < configs.length; i += 2) {
            cc.add(new CreateTopicsRequestData.CreatableTopicConfig().setName(configs[i]).setValue(configs[i + 1]));
        }
        return new CreateTopicsRequestData.CreatableTopic().setName(name).setNumPartitions(partitions)
            .setReplicationFactor((short) 1).setConfigs(cc);
    }

    static final java.util.Set<Short> RETRIABLE = java.util.Set.of((short) 14, (short) 15, (short) 16); // LOAD_IN_PROGRESS, NOT_AVAILABLE, NOT_COORDINATOR
    static final int READY_PROBES = 1000;

    static boolean advertises(Broker b, ApiKeys api) {
        ApiVersionsResponseData r = (ApiVersionsResponseData) b.state.get("apiversions");
        return r != null && r.apiKeys().find(api.id) != null;
    }

    /**
     * Waits until the broker's coordinators answer: a freshly started Kafka creates __consumer_offsets
     * and __transaction_state on the first FindCoordinator and loads their 50 partitions
     * asynchronously, and allocates its first producer id block from the controller; until then it
     * answers COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS / NOT_COORDINATOR, which would
     * make the group and producer cases depend on timing. Probes READY_PROBES group ids (so every
     * __consumer_offsets partition is covered) in one batched OffsetFetch, and as many transactional
     * ids in one DescribeTransactions when the broker has that API. A broker that answers a
     * non-retriable error (sluice: transactions not built) ends that wait at once.
     */
    void awaitCoordinators(Broker b, List<String> problems) {
        long deadline = System.currentTimeMillis() + 60_000;
        List<String> probes = list(READY_PROBES, i -> "pd-" + rid + "-ready-" + i);
        String last = waitFor(deadline, () -> {
            Broker.Outcome o = b.send(ApiKeys.FIND_COORDINATOR, (short) 4, new FindCoordinatorRequestData().setKeyType((byte) 0).setCoordinatorKeys(List.of(group)));
            if (!o.ok()) return "FindCoordinator group: " + o.status;
            for (var c : ((FindCoordinatorResponseData) o.body).coordinators()) if (RETRIABLE.contains(c.errorCode())) return "FindCoordinator group: error " + c.errorCode();
            return null;
        });
        if (last == null) last = waitFor(deadline, () -> {
            Broker.Outcome o = b.send(ApiKeys.OFFSET_FETCH, (short) 8, new OffsetFetchRequestData().setGroups(list(probes.size(), i ->
                new OffsetFetchRequestData.OffsetFetchRequestGroup().setGroupId(probes.get(i)).setTopics(null))));
            if (!o.ok()) return "OffsetFetch probes: " + o.status;
            for (var g : ((OffsetFetchResponseData) o.body).groups()) if (RETRIABLE.contains(g.errorCode())) return "OffsetFetch probe " + g.groupId() + ": error " + g.errorCode();
            return null;
        });
        if (last == null) last = waitFor(deadline, () -> {
            Broker.Outcome o = b.send(ApiKeys.FIND_COORDINATOR, (short) 4, new FindCoordinatorRequestData().setKeyType((byte) 1).setCoordinatorKeys(List.of("pd-" + rid + "-tx")));
            if (!o.ok()) return "FindCoordinator transaction: " + o.status;
            for (var c : ((FindCoordinatorResponseData) o.body).coordinators()) if (RETRIABLE.contains(c.errorCode())) return "FindCoordinator transaction: error " + c.errorCode();
            return null;
        });
        // Share groups: the first SHARE lookup creates __share_group_state (COORDINATOR_NOT_AVAILABLE until then).
        if (last == null) last = waitFor(deadline, () -> {
            Broker.Outcome o = b.send(ApiKeys.FIND_COORDINATOR, (short) 6, new FindCoordinatorRequestData().setKeyType((byte) 2)
                .setCoordinatorKeys(List.of(group + ":" + SHARE_TOPIC_ID + ":0")));
            if (!o.ok()) return "FindCoordinator share: " + o.status;
            for (var c : ((FindCoordinatorResponseData) o.body).coordinators()) if (RETRIABLE.contains(c.errorCode())) return "FindCoordinator share: error " + c.errorCode();
            return null;
        });
        if (last == null && advertises(b, ApiKeys.DESCRIBE_TRANSACTIONS)) last = waitFor(deadline, () -> {
            Broker.Outcome o = b.send(ApiKeys.DESCRIBE_TRANSACTIONS, (short) 0, new DescribeTransactionsRequestData().setTransactionalIds(probes));
            if (!o.ok()) return "DescribeTransactions probes: " + o.status;
            for (var t : ((DescribeTransactionsResponseData) o.body).transactionStates()) if (RETRIABLE.contains(t.errorCode())) return "DescribeTransactions probe " + t.transactionalId() + ": error " + t.errorCode();
            return null;
        });
        if (last == null) last = waitFor(deadline, () -> {
            Broker.Outcome o = b.send(ApiKeys.INIT_PRODUCER_ID, (short) 4, new InitProducerIdRequestData().setTransactionalId(null).setTransactionTimeoutMs(60000));
            if (!o.ok()) return "InitProducerId: " + o.status;
            short ec = ((InitProducerIdResponseData) o.body).errorCode();
            return RETRIABLE.contains(ec) ? "InitProducerId: error " + ec : null;
        });
        if (last != null) problems.add("coordinators not ready after 60 s: " + last);
    }

    /** Retries probe (null = ready) every 200 ms until deadline; returns the last problem, or null. */
    static String waitFor(long deadline, java.util.function.Supplier<String> probe) {
        while (true) {
            String p = probe.get();
            if (p == null || System.currentTimeMillis() > deadline) return p;
            sleep(200);
        }
    }

    /** Returns problems seen (empty when the broker is ready). */
    List<String> setup(Broker b) {
        List<String> problems = new ArrayList<>();
        awaitCoordinators(b, problems);
        CreateTopicsRequestData.CreatableTopicCollection topics = new CreateTopicsRequestData.CreatableTopicCollection();
        topics.add(creatable(ta, 3));
        topics.add(creatable(tb, 1, "retention.ms", "3600000"));
        topics.add(creatable(tdi, 1));
        topics.add(creatable(tcfg, 1));
        for (int v = 1; v <= 6; v++) topics.add(creatable(deleteTopic(v), 1));
        Broker.Outcome o = b.send(ApiKeys.CREATE_TOPICS, (short) 7,
            new CreateTopicsRequestData().setTopics(topics).setTimeoutMs(30000));
        if (!o.ok()) { problems.add("CreateTopics: " + o.status + " " + o.detail); return problems; }
        for (CreateTopicsResponseData.CreatableTopicResult r : ((CreateTopicsResponseData) o.body).topics()) {
            if (r.errorCode() != 0) problems.add("CreateTopics " + r.name() + ": error " + r.errorCode());
            b.state.put("tid:" + r.name(), r.topicId());
        }
        // Wait until every partition has a leader.
        long deadline = System.currentTimeMillis() + 15000;
        while (true) {
            MetadataRequestData md = new MetadataRequestData().setAllowAutoTopicCreation(false).setTopics(List.of(
                new MetadataRequestData.MetadataRequestTopic().setName(ta), new MetadataRequestData.MetadataRequestTopic().setName(tb),
                new MetadataRequestData.MetadataRequestTopic().setName(tdi)));
            Broker.Outcome m = b.send(ApiKeys.METADATA, (short) 12, md);
            boolean ready = m.ok();
            if (ready) {
                for (MetadataResponseData.MetadataResponseTopic t : ((MetadataResponseData) m.body).topics()) {
                    if (t.errorCode() != 0) ready = false;
                    for (MetadataResponseData.MetadataResponsePartition p : t.partitions()) if (p.leaderId() < 0 || p.errorCode() != 0) ready = false;
                }
            }
            if (ready) break;
            if (System.currentTimeMillis() > deadline) { problems.add("topics have no leader after 15 s"); break; }
            sleep(100);
        }
        // 5 records at ta p0, timestamps TS0..TS0+4.
        // (A just-created partition may answer NOT_LEADER_OR_FOLLOWER for a moment: retry.)
        String produced = null;
        for (int attempt = 0; attempt < 50; attempt++) {
            Broker.Outcome p = b.send(ApiKeys.PRODUCE, (short) 9, produce(ta, null, 0, records(5, TS0, 0), (short) -1));
            produced = null;
            if (!p.ok()) produced = "Produce: " + p.status + " " + p.detail;
            else for (var t : ((ProduceResponseData) p.body).responses())
                for (var pr : t.partitionResponses()) if (pr.errorCode() != 0 || pr.baseOffset() != 0)
                    produced = "Produce: error " + pr.errorCode() + " base offset " + pr.baseOffset();
            if (produced == null || !produced.contains("error 6 ")) break;
            sleep(100);
        }
        if (produced != null) problems.add(produced);
        // The classic group: one member, joined and synced.
        if (!joinAndSync(b, group, "g")) problems.add("group setup failed: " + b.state.get("g:problem"));
        // Offsets: group (generation) ta p0 = 3, simple group ta p0 = 2.
        Broker.Outcome c1 = b.send(ApiKeys.OFFSET_COMMIT, (short) 9, commit(group, (Integer) b.state.getOrDefault("g:gen", -1),
            (String) b.state.getOrDefault("g:member", ""), ta, 0, 3, "m"));
        Broker.Outcome c2 = b.send(ApiKeys.OFFSET_COMMIT, (short) 9, commit(simpleGroup, -1, "", ta, 0, 2, ""));
        for (Broker.Outcome c : List.of(c1, c2)) {
            if (!c.ok()) problems.add("OffsetCommit: " + c.status);
            else for (var t : ((OffsetCommitResponseData) c.body).topics())
                for (var pp : t.partitions()) if (pp.errorCode() != 0) problems.add("OffsetCommit error " + pp.errorCode());
        }
        return problems;
    }

    static void sleep(long ms) {
        try { Thread.sleep(ms); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
    }

    JoinGroupRequestData join(String g, String member, String protocolType, int sessionTimeout) {
        JoinGroupRequestData.JoinGroupRequestProtocolCollection protos = new JoinGroupRequestData.JoinGroupRequestProtocolCollection();
        protos.add(new JoinGroupRequestData.JoinGroupRequestProtocol().setName("range").setMetadata(subscription(ta)));
        return new JoinGroupRequestData().setGroupId(g).setMemberId(member).setProtocolType(protocolType)
            .setSessionTimeoutMs(sessionTimeout).setRebalanceTimeoutMs(30000).setProtocols(protos);
    }

    /** JoinGroup v9 (twice: MEMBER_ID_REQUIRED first) and SyncGroup v5; stores PREFIX:member / PREFIX:gen. */
    boolean joinAndSync(Broker b, String g, String prefix) {
        Broker.Outcome j1 = b.send(ApiKeys.JOIN_GROUP, (short) 9, join(g, "", "consumer", 45000));
        if (!j1.ok()) { b.state.put(prefix + ":problem", "join1 " + j1.status); return false; }
        String member = ((JoinGroupResponseData) j1.body).memberId();
        Broker.Outcome j2 = b.send(ApiKeys.JOIN_GROUP, (short) 9, join(g, member, "consumer", 45000));
        if (!j2.ok() || ((JoinGroupResponseData) j2.body).errorCode() != 0) {
            b.state.put(prefix + ":problem", "join2 " + j2.status + (j2.ok() ? " error " + ((JoinGroupResponseData) j2.body).errorCode() : ""));
            return false;
        }
        int gen = ((JoinGroupResponseData) j2.body).generationId();
        b.state.put(prefix + ":member", member);
        b.state.put(prefix + ":gen", gen);
        Broker.Outcome s = b.send(ApiKeys.SYNC_GROUP, (short) 5, new SyncGroupRequestData().setGroupId(g).setMemberId(member)
            .setGenerationId(gen).setProtocolType("consumer").setProtocolName("range")
            .setAssignments(List.of(new SyncGroupRequestData.SyncGroupRequestAssignment().setMemberId(member).setAssignment(assignment(ta)))));
        if (!s.ok() || ((SyncGroupResponseData) s.body).errorCode() != 0) {
            b.state.put(prefix + ":problem", "sync " + s.status + (s.ok() ? " error " + ((SyncGroupResponseData) s.body).errorCode() : ""));
            return false;
        }
        return true;
    }

    // ------------------------------------------------------------------------------------------
    // Request builders shared by setup and cases.

    static ProduceRequestData produce(String topic, Uuid topicId, int partition, MemoryRecords recs, short acks) {
        ProduceRequestData.TopicProduceDataCollection tc = new ProduceRequestData.TopicProduceDataCollection();
        ProduceRequestData.TopicProduceData t = new ProduceRequestData.TopicProduceData().setPartitionData(List.of(
            new ProduceRequestData.PartitionProduceData().setIndex(partition).setRecords(recs)));
        if (topicId != null) t.setTopicId(topicId); else t.setName(topic);
        tc.add(t);
        return new ProduceRequestData().setAcks(acks).setTimeoutMs(10000).setTopicData(tc);
    }

    static OffsetCommitRequestData commit(String g, int gen, String member, String topic, int partition, long offset, String metadata) {
        return new OffsetCommitRequestData().setGroupId(g).setGenerationIdOrMemberEpoch(gen).setMemberId(member)
            .setTopics(List.of(new OffsetCommitRequestData.OffsetCommitRequestTopic().setName(topic).setPartitions(List.of(
                new OffsetCommitRequestData.OffsetCommitRequestPartition().setPartitionIndex(partition)
                    .setCommittedOffset(offset).setCommittedMetadata(metadata)))));
    }

    // ------------------------------------------------------------------------------------------
    // The cases. Every API has a "valid" case first: it is also what above_max / below_min send.

    List<Case> forVersion(ApiKeys api, short v) {
        List<Case> cs = new ArrayList<>();
        switch (api) {
            case PRODUCE -> produceCases(cs, v);
            case FETCH -> fetchCases(cs, v);
            case LIST_OFFSETS -> listOffsetsCases(cs, v);
            case METADATA -> metadataCases(cs, v);
            case API_VERSIONS -> apiVersionsCases(cs, v);
            case CREATE_TOPICS -> createTopicsCases(cs, v);
            case DELETE_TOPICS -> deleteTopicsCases(cs, v);
            case INIT_PRODUCER_ID -> initProducerIdCases(cs, v);
            case OFFSET_FOR_LEADER_EPOCH -> offsetForLeaderEpochCases(cs, v);
            case DESCRIBE_CLUSTER -> describeClusterCases(cs, v);
            case DESCRIBE_CONFIGS -> describeConfigsCases(cs, v);
            case ALTER_CONFIGS -> alterConfigsCases(cs, v);
            case INCREMENTAL_ALTER_CONFIGS -> incrementalAlterConfigsCases(cs, v);
            case FIND_COORDINATOR -> findCoordinatorCases(cs, v);
            case JOIN_GROUP -> joinGroupCases(cs, v);
            case SYNC_GROUP -> syncGroupCases(cs, v);
            case HEARTBEAT -> heartbeatCases(cs, v);
            case LEAVE_GROUP -> leaveGroupCases(cs, v);
            case OFFSET_COMMIT -> offsetCommitCases(cs, v);
            case OFFSET_FETCH -> offsetFetchCases(cs, v);
            case OFFSET_DELETE -> offsetDeleteCases(cs, v);
            case DESCRIBE_GROUPS -> describeGroupsCases(cs, v);
            case LIST_GROUPS -> listGroupsCases(cs, v);
            case DELETE_GROUPS -> deleteGroupsCases(cs, v);
            case CONSUMER_GROUP_HEARTBEAT -> cgHeartbeatCases(cs, v);
            case CONSUMER_GROUP_DESCRIBE -> cgDescribeCases(cs, v);
            case DESCRIBE_ACLS -> describeAclsCases(cs, v);
            case CREATE_ACLS -> createAclsCases(cs, v);
            case DELETE_ACLS -> deleteAclsCases(cs, v);
            case DESCRIBE_USER_SCRAM_CREDENTIALS, ALTER_USER_SCRAM_CREDENTIALS -> SecurityCases.add(this, cs, api, v);
            case ADD_PARTITIONS_TO_TXN -> addPartitionsToTxnCases(cs, v);
            case ADD_OFFSETS_TO_TXN -> addOffsetsToTxnCases(cs, v);
            case END_TXN -> endTxnCases(cs, v);
            case TXN_OFFSET_COMMIT -> txnOffsetCommitCases(cs, v);
            case DESCRIBE_TRANSACTIONS -> describeTransactionsCases(cs, v);
            case LIST_TRANSACTIONS -> listTransactionsCases(cs, v);
            case DESCRIBE_PRODUCERS -> describeProducersCases(cs, v);
            case CREATE_PARTITIONS -> createPartitionsCases(cs, v);
            case DELETE_RECORDS -> deleteRecordsCases(cs, v);
            case DESCRIBE_LOG_DIRS -> describeLogDirsCases(cs, v);
            default -> ClusterCases.add(this, cs, api, v);
        }
        return cs;
    }

    static Case c(List<Case> cs, ApiKeys api, short v, String name, Function<Broker, ApiMessage> build) {
        Case k = new Case(api, v, name, build);
        cs.add(k);
        return k;
    }

    // Produce --------------------------------------------------------------------------------
    private void produceCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.PRODUCE;
        boolean ids = v >= 13;
        c(cs, A, v, "valid", b -> produce(ta, ids ? tid(b, ta) : null, 1, records(1, TS0, 0), (short) -1));
        c(cs, A, v, "acks1", b -> produce(ta, ids ? tid(b, ta) : null, 1, records(2, TS0, 0), (short) 1));
        if (ids) c(cs, A, v, "unknown_topic_id", b -> produce(null, Uuid.randomUuid(), 0, records(1, TS0, 0), (short) -1));
        else c(cs, A, v, "unknown_topic", b -> produce(missing("p" + v), null, 0, records(1, TS0, 0), (short) -1));
        c(cs, A, v, "unknown_partition", b -> produce(ta, ids ? tid(b, ta) : null, 99, records(1, TS0, 0), (short) -1));
        c(cs, A, v, "invalid_acks", b -> produce(ta, ids ? tid(b, ta) : null, 1, records(1, TS0, 0), (short) 2));
        c(cs, A, v, "too_large", b -> produce(ta, ids ? tid(b, ta) : null, 1, records(1, TS0, 1_100_000), (short) -1));
        c(cs, A, v, "empty", b -> new ProduceRequestData().setAcks((short) -1).setTimeoutMs(10000));
        c(cs, A, v, "after_errors", b -> produce(ta, ids ? tid(b, ta) : null, 1, records(1, TS0, 0), (short) -1));
    }

    // Fetch ----------------------------------------------------------------------------------
    FetchRequestData fetch(Broker b, short v, String topic, Uuid id, int partition, long offset, int epoch) {
        FetchRequestData.FetchTopic t = new FetchRequestData.FetchTopic().setPartitions(List.of(
            new FetchRequestData.FetchPartition().setPartition(partition).setFetchOffset(offset)
                .setPartitionMaxBytes(1 << 20).setCurrentLeaderEpoch(v >= 9 ? epoch : -1).setLogStartOffset(v >= 5 ? -1 : -1)));
        if (v >= 13) t.setTopicId(id != null ? id : tid(b, topic)); else t.setTopic(topic);
        return new FetchRequestData().setMaxWaitMs(0).setMinBytes(1).setMaxBytes(1 << 20).setIsolationLevel((byte) 0)
            .setSessionId(0).setSessionEpoch(v >= 7 ? -1 : 0).setTopics(List.of(t));
    }

    private void fetchCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.FETCH;
        c(cs, A, v, "valid", b -> fetch(b, v, ta, null, 0, 0, -1));
        c(cs, A, v, "middle_offset", b -> fetch(b, v, ta, null, 0, 3, -1));
        c(cs, A, v, "at_end", b -> fetch(b, v, ta, null, 0, 5, -1));
        if (v >= 13) c(cs, A, v, "unknown_topic_id", b -> fetch(b, v, null, Uuid.randomUuid(), 0, 0, -1));
        else c(cs, A, v, "unknown_topic", b -> fetch(b, v, missing("f"), null, 0, 0, -1));
        c(cs, A, v, "unknown_partition", b -> fetch(b, v, ta, null, 99, 0, -1));
        c(cs, A, v, "offset_out_of_range", b -> fetch(b, v, ta, null, 0, 1000, -1));
        // After DeleteRecords moved the log start to 3, inside the only batch (offsets 0-4).
        String purged = "pd-" + rid + "-fp" + v;
        c(cs, A, v, "below_log_start", b -> fetch(b, v, purged, null, 0, 2, -1)).pre(b -> purgedTopicFor(b, purged, 3));
        c(cs, A, v, "at_log_start", b -> fetch(b, v, purged, null, 0, 3, -1));
        if (v >= 9) {
            c(cs, A, v, "current_epoch_0", b -> fetch(b, v, ta, null, 0, 0, 0));
            c(cs, A, v, "future_epoch", b -> fetch(b, v, ta, null, 0, 0, 7));
        }
        c(cs, A, v, "empty", b -> new FetchRequestData().setMaxWaitMs(0).setMinBytes(1).setMaxBytes(1 << 20)
            .setSessionEpoch(v >= 7 ? -1 : 0));
    }

    // ListOffsets ----------------------------------------------------------------------------
    ListOffsetsRequestData listOffsets(short v, String topic, int partition, long ts, int epoch, byte isolation) {
        return new ListOffsetsRequestData().setReplicaId(-1).setIsolationLevel(v >= 2 ? isolation : 0)
            .setTopics(List.of(new ListOffsetsRequestData.ListOffsetsTopic().setName(topic).setPartitions(List.of(
                new ListOffsetsRequestData.ListOffsetsPartition().setPartitionIndex(partition).setTimestamp(ts)
                    .setCurrentLeaderEpoch(v >= 4 ? epoch : -1)))));
    }

    private void listOffsetsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.LIST_OFFSETS;
        c(cs, A, v, "valid", b -> listOffsets(v, ta, 0, -1, -1, (byte) 0));
        c(cs, A, v, "earliest", b -> listOffsets(v, ta, 0, -2, -1, (byte) 0));
        c(cs, A, v, "by_timestamp", b -> listOffsets(v, ta, 0, TS0 + 2, -1, (byte) 0));
        c(cs, A, v, "timestamp_after_end", b -> listOffsets(v, ta, 0, TS0 + 1000, -1, (byte) 0));
        if (v >= 2) c(cs, A, v, "read_committed", b -> listOffsets(v, ta, 0, -1, -1, (byte) 1));
        if (v >= 7) c(cs, A, v, "max_timestamp", b -> listOffsets(v, ta, 0, -3, -1, (byte) 0));
        if (v >= 8) c(cs, A, v, "local_log_start", b -> listOffsets(v, ta, 0, -4, -1, (byte) 0));
        if (v >= 9) c(cs, A, v, "tiered_offset", b -> listOffsets(v, ta, 0, -5, -1, (byte) 0));
        c(cs, A, v, "unknown_topic", b -> listOffsets(v, missing("lo"), 0, -1, -1, (byte) 0));
        // After DeleteRecords moved the log start to 3, inside the only batch (offsets 0-4).
        String purged = "pd-" + rid + "-lp" + v;
        c(cs, A, v, "earliest_after_delete_records", b -> listOffsets(v, purged, 0, -2, -1, (byte) 0)).pre(b -> purgedTopicFor(b, purged, 3));
        if (v >= 8) c(cs, A, v, "local_log_start_after_delete_records", b -> listOffsets(v, purged, 0, -4, -1, (byte) 0));
        c(cs, A, v, "by_timestamp_below_log_start", b -> listOffsets(v, purged, 0, TS0, -1, (byte) 0));
        c(cs, A, v, "unknown_partition", b -> listOffsets(v, ta, 99, -1, -1, (byte) 0));
        if (v >= 4) c(cs, A, v, "future_epoch", b -> listOffsets(v, ta, 0, -1, 7, (byte) 0));
        c(cs, A, v, "empty", b -> new ListOffsetsRequestData().setReplicaId(-1));
        c(cs, A, v, "huge_unknown_topics", b -> new ListOffsetsRequestData().setReplicaId(-1).setTopics(list(HUGE, i ->
            new ListOffsetsRequestData.ListOffsetsTopic().setName(missing("h" + i)).setPartitions(List.of(
                new ListOffsetsRequestData.ListOffsetsPartition().setPartitionIndex(0).setTimestamp(-1))))));
    }

    // Metadata -------------------------------------------------------------------------------
    MetadataRequestData metadata(short v, List<String> names, boolean autoCreate) {
        MetadataRequestData m = new MetadataRequestData().setTopics(names == null ? null
            : list(names.size(), i -> new MetadataRequestData.MetadataRequestTopic().setName(names.get(i))));
        if (v >= 4) m.setAllowAutoTopicCreation(autoCreate);
        return m;
    }

    private void metadataCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.METADATA;
        c(cs, A, v, "valid", b -> metadata(v, List.of(ta, tb), false));
        if (v >= 1) c(cs, A, v, "all_topics", b -> metadata(v, null, false)).runOnly("topics");
        String grown = "pd-" + rid + "-mg" + v;
        c(cs, A, v, "after_create_partitions", b -> metadata(v, List.of(grown), false)).pre(b -> {
            topicFor(b, grown, 1, 0);
            b.send(ApiKeys.CREATE_PARTITIONS, (short) 3, createPartitions(false, grow(grown, 3)));
            sleep(500); // Kafka's broker learns the new partitions from the controller a moment later
        });
        if (v >= 4) {
            c(cs, A, v, "unknown_topic", b -> metadata(v, List.of(missing("m" + v)), false));
            c(cs, A, v, "auto_create", b -> metadata(v, List.of(missing("auto" + v)), true));
            c(cs, A, v, "huge_unknown_topics", b -> metadata(v, list(HUGE, i -> missing("h" + i)), false));
        } else {
            c(cs, A, v, "auto_create_implicit", b -> metadata(v, List.of(missing("auto" + v)), true));
        }
        c(cs, A, v, "invalid_topic_name", b -> metadata(v, List.of("bad name!"), false));
        if (v >= 1) c(cs, A, v, "empty", b -> metadata(v, List.of(), false));
        if (v >= 8 && v <= 10) c(cs, A, v, "include_cluster_authorized_operations", b ->
            metadata(v, List.of(ta), false).setIncludeClusterAuthorizedOperations(true));
        if (v >= 8) c(cs, A, v, "include_topic_authorized_operations", b ->
            metadata(v, List.of(ta), false).setIncludeTopicAuthorizedOperations(true));
        if (v >= 10) {
            c(cs, A, v, "by_topic_id", b -> new MetadataRequestData().setAllowAutoTopicCreation(false).setTopics(List.of(
                new MetadataRequestData.MetadataRequestTopic().setName(null).setTopicId(tid(b, ta)))));
            c(cs, A, v, "unknown_topic_id", b -> new MetadataRequestData().setAllowAutoTopicCreation(false).setTopics(List.of(
                new MetadataRequestData.MetadataRequestTopic().setName(null).setTopicId(Uuid.randomUuid()))));
        }
    }

    // ApiVersions ----------------------------------------------------------------------------
    private void apiVersionsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.API_VERSIONS;
        c(cs, A, v, "valid", b -> v >= 3 ? new ApiVersionsRequestData().setClientSoftwareName("protocol-diff")
            .setClientSoftwareVersion("1.0") : new ApiVersionsRequestData());
        if (v >= 3) {
            c(cs, A, v, "invalid_software_name", b -> new ApiVersionsRequestData().setClientSoftwareName("bad name!!")
                .setClientSoftwareVersion("1.0"));
            c(cs, A, v, "empty_software_name", b -> new ApiVersionsRequestData().setClientSoftwareName("")
                .setClientSoftwareVersion(""));
        }
    }

    // CreateTopics ---------------------------------------------------------------------------
    CreateTopicsRequestData createTopics(short v, boolean validateOnly, CreateTopicsRequestData.CreatableTopic... ts) {
        CreateTopicsRequestData.CreatableTopicCollection tc = new CreateTopicsRequestData.CreatableTopicCollection();
        for (var t : ts) tc.mustAdd(t);
        return new CreateTopicsRequestData().setTopics(tc).setTimeoutMs(30000).setValidateOnly(validateOnly);
    }

    private void createTopicsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.CREATE_TOPICS;
        String n = "pd-" + rid + "-c" + v;
        c(cs, A, v, "valid", b -> createTopics(v, false, creatable(n, 2, "retention.ms", "3600000", "max.message.bytes", "200000")));
        c(cs, A, v, "compacted", b -> createTopics(v, false, creatable(n + "-cp", 1, "cleanup.policy", "compact")));
        c(cs, A, v, "already_exists", b -> createTopics(v, false, creatable(ta, 3)));
        c(cs, A, v, "validate_only", b -> createTopics(v, true, creatable(n + "-vo", 4)));
        c(cs, A, v, "invalid_config_value", b -> createTopics(v, false, creatable(n + "-bad1", 1, "retention.ms", "abc")));
        c(cs, A, v, "unknown_config", b -> createTopics(v, false, creatable(n + "-bad2", 1, "no.such.config", "1")));
        c(cs, A, v, "zero_partitions", b -> createTopics(v, false, creatable(n + "-bad3", 0)));
        c(cs, A, v, "replication_too_large", b -> createTopics(v, false, creatable(n + "-bad4", 1).setReplicationFactor((short) 3)));
        c(cs, A, v, "invalid_name", b -> createTopics(v, false, creatable("bad/name" + v, 1)));
        c(cs, A, v, "name_too_long", b -> createTopics(v, false, creatable("pd-" + "x".repeat(260), 1)));
        if (v >= 4) c(cs, A, v, "broker_defaults", b -> createTopics(v, false, creatable(n + "-def", -1).setReplicationFactor((short) -1)));
        c(cs, A, v, "empty", b -> createTopics(v, false));
        c(cs, A, v, "mixed", b -> createTopics(v, false, creatable(n + "-m1", 1), creatable(ta, 1), creatable(n + "-m2", 1, "segment.bytes", "1")));
    }

    /**
     * A topic of its own for a case's `pre` (identical on both brokers, not compared): created,
     * led, and `records` records (timestamps TS0..) produced to p0.
     */
    void topicFor(Broker b, String name, int partitions, int records) {
        Broker.Outcome c = b.send(ApiKeys.CREATE_TOPICS, (short) 7, createTopics((short) 7, false, creatable(name, partitions)));
        if (c.ok()) for (var r : ((CreateTopicsResponseData) c.body).topics()) b.state.put("tid:" + r.name(), r.topicId());
        long deadline = System.currentTimeMillis() + 15000;
        while (System.currentTimeMillis() < deadline) {
            Broker.Outcome m = b.send(ApiKeys.METADATA, (short) 12, metadata((short) 12, List.of(name), false));
            boolean ready = m.ok();
            if (ready) for (var t : ((MetadataResponseData) m.body).topics()) {
                if (t.errorCode() != 0 || t.partitions().size() != partitions) ready = false;
                for (var pp : t.partitions()) if (pp.leaderId() < 0 || pp.errorCode() != 0) ready = false;
            }
            if (ready) break;
            sleep(100);
        }
        for (int attempt = 0; records > 0 && attempt < 50; attempt++) {
            Broker.Outcome o = b.send(ApiKeys.PRODUCE, (short) 9, produce(name, null, 0, records(records, TS0, 0), (short) -1));
            boolean done = o.ok();
            if (done) for (var t : ((ProduceResponseData) o.body).responses())
                for (var pr : t.partitionResponses()) if (pr.errorCode() != 0) done = false;
            if (done) break;
            sleep(100);
        }
    }

    /** topicFor, then DeleteRecords below `logStart` on p0 (for the ListOffsets and Fetch cases after it). */
    void purgedTopicFor(Broker b, String name, long logStart) {
        topicFor(b, name, 1, 5);
        b.send(ApiKeys.DELETE_RECORDS, (short) 2, deleteRecords(name, 0, logStart));
    }

    // CreatePartitions -----------------------------------------------------------------------
    static CreatePartitionsRequestData.CreatePartitionsTopic grow(String topic, int count, Integer... assigned) {
        CreatePartitionsRequestData.CreatePartitionsTopic t = new CreatePartitionsRequestData.CreatePartitionsTopic()
            .setName(topic).setCount(count);
        if (assigned.length == 0) t.setAssignments(null); // the generated default is an empty list, which Kafka checks
        else t.setAssignments(list(assigned.length, i -> new CreatePartitionsRequestData.CreatePartitionsAssignment()
            .setBrokerIds(assigned[i] < 0 ? List.of() : assigned[i] == 11 ? List.of(1, 1) : List.of(assigned[i]))));
        return t;
    }

    static CreatePartitionsRequestData createPartitions(boolean validateOnly, CreatePartitionsRequestData.CreatePartitionsTopic... ts) {
        CreatePartitionsRequestData.CreatePartitionsTopicCollection tc = new CreatePartitionsRequestData.CreatePartitionsTopicCollection();
        for (var t : ts) tc.add(t);
        return new CreatePartitionsRequestData().setTopics(tc).setTimeoutMs(30000).setValidateOnly(validateOnly);
    }

    private void createPartitionsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.CREATE_PARTITIONS;
        String t = "pd-" + rid + "-cp" + v;
        // Assignment codes for grow(): a broker id, -1 an empty replica list, 11 broker 1 twice.
        c(cs, A, v, "valid", b -> createPartitions(false, grow(t, 3))).pre(b -> topicFor(b, t, 1, 0));
        c(cs, A, v, "validate_only", b -> createPartitions(true, grow(t, 6)));
        c(cs, A, v, "no_change", b -> createPartitions(false, grow(t, 3)));
        c(cs, A, v, "decrease", b -> createPartitions(false, grow(t, 2)));
        c(cs, A, v, "validate_only_decrease", b -> createPartitions(true, grow(t, 1)));
        c(cs, A, v, "after_validate_only", b -> createPartitions(false, grow(t, 4)));
        c(cs, A, v, "unknown_topic", b -> createPartitions(false, grow(missing("cp" + v), 3)));
        c(cs, A, v, "duplicate_topic", b -> createPartitions(false, grow(t, 5), grow(t, 6), grow(ta, 4)));
        c(cs, A, v, "assignments_empty_list", b -> createPartitions(false, grow(t, 5).setAssignments(List.of())));
        c(cs, A, v, "assignment_unknown_broker", b -> createPartitions(false, grow(t, 5, 2)));
        c(cs, A, v, "assignment_count_mismatch", b -> createPartitions(false, grow(t, 6, 1)));
        c(cs, A, v, "assignment_empty_replicas", b -> createPartitions(false, grow(t, 5, -1)));
        c(cs, A, v, "assignment_broker_twice", b -> createPartitions(false, grow(t, 5, 11)));
        c(cs, A, v, "assignment_valid", b -> createPartitions(false, grow(t, 6, 1, 1)));
        c(cs, A, v, "after_assignment", b -> createPartitions(false, grow(t, 6)));
        c(cs, A, v, "empty", b -> createPartitions(false));
        c(cs, A, v, "huge_unknown_topics", b -> createPartitions(false, list(HUGE, i -> grow(missing("h" + i), 2))
            .toArray(new CreatePartitionsRequestData.CreatePartitionsTopic[0])));
    }

    // DeleteRecords --------------------------------------------------------------------------
    static DeleteRecordsRequestData deleteRecords(String topic, int partition, long offset) {
        return new DeleteRecordsRequestData().setTimeoutMs(30000).setTopics(List.of(new DeleteRecordsRequestData.DeleteRecordsTopic()
            .setName(topic).setPartitions(List.of(new DeleteRecordsRequestData.DeleteRecordsPartition()
                .setPartitionIndex(partition).setOffset(offset)))));
    }

    private void deleteRecordsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DELETE_RECORDS;
        String t = "pd-" + rid + "-dr" + v;
        // The topic's p0 holds 5 records; each case sees what the ones before it left.
        c(cs, A, v, "valid", b -> deleteRecords(t, 0, 2)).pre(b -> topicFor(b, t, 2, 5));
        c(cs, A, v, "lower", b -> deleteRecords(t, 0, 1));
        c(cs, A, v, "above_high_watermark", b -> deleteRecords(t, 0, 6));
        c(cs, A, v, "negative", b -> deleteRecords(t, 0, -7));
        c(cs, A, v, "high_watermark", b -> deleteRecords(t, 0, -1));
        c(cs, A, v, "empty_partition", b -> deleteRecords(t, 1, -1));
        c(cs, A, v, "unknown_topic", b -> deleteRecords(missing("dr" + v), 0, 1));
        c(cs, A, v, "unknown_partition", b -> deleteRecords(t, 99, 1));
        c(cs, A, v, "internal_topic", b -> deleteRecords("__consumer_offsets", 0, 0));
        c(cs, A, v, "empty", b -> new DeleteRecordsRequestData().setTimeoutMs(30000));
        c(cs, A, v, "huge_unknown_topics", b -> new DeleteRecordsRequestData().setTimeoutMs(30000).setTopics(list(HUGE, i ->
            new DeleteRecordsRequestData.DeleteRecordsTopic().setName(missing("h" + i)).setPartitions(List.of(
                new DeleteRecordsRequestData.DeleteRecordsPartition().setPartitionIndex(0).setOffset(0))))));
    }

    // DescribeLogDirs ------------------------------------------------------------------------
    static DescribeLogDirsRequestData logDirs(String topic, Integer... partitions) {
        DescribeLogDirsRequestData.DescribableLogDirTopicCollection tc = new DescribeLogDirsRequestData.DescribableLogDirTopicCollection();
        if (topic != null) tc.add(new DescribeLogDirsRequestData.DescribableLogDirTopic().setTopic(topic).setPartitions(List.of(partitions)));
        return new DescribeLogDirsRequestData().setTopics(tc);
    }

    private void describeLogDirsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DESCRIBE_LOG_DIRS;
        // The directory and the file system's sizes are the machine's, not the broker's.
        String[] machine = {"results[*].logDir", "results[*].totalBytes", "results[*].usableBytes"};
        c(cs, A, v, "valid", b -> logDirs(ta, 0, 1, 2)).ignore(machine);
        c(cs, A, v, "all", b -> new DescribeLogDirsRequestData().setTopics(null)).ignore(machine).runOnly("topics");
        c(cs, A, v, "unknown_topic", b -> logDirs(missing("ld" + v), 0)).ignore(machine);
        c(cs, A, v, "unknown_partition", b -> logDirs(ta, 99)).ignore(machine);
        c(cs, A, v, "empty", b -> logDirs(null)).ignore(machine);
    }

    // DeleteTopics ---------------------------------------------------------------------------
    private void deleteTopicsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DELETE_TOPICS;
        Function<List<String>, DeleteTopicsRequestData> byName = names -> v >= 6
            ? new DeleteTopicsRequestData().setTimeoutMs(30000).setTopics(list(names.size(), i -> new DeleteTopicsRequestData.DeleteTopicState().setName(names.get(i))))
            : new DeleteTopicsRequestData().setTimeoutMs(30000).setTopicNames(names);
        c(cs, A, v, "valid", b -> byName.apply(List.of(deleteTopic(Math.min(v, 6)))));
        c(cs, A, v, "unknown_topic", b -> byName.apply(List.of(missing("d" + v))));
        c(cs, A, v, "empty", b -> byName.apply(List.of()));
        c(cs, A, v, "huge_unknown_topics", b -> byName.apply(list(HUGE, i -> missing("h" + i))));
        if (v >= 6) {
            c(cs, A, v, "by_topic_id", b -> new DeleteTopicsRequestData().setTimeoutMs(30000).setTopics(List.of(
                new DeleteTopicsRequestData.DeleteTopicState().setName(null).setTopicId(tid(b, tdi)))));
            c(cs, A, v, "unknown_topic_id", b -> new DeleteTopicsRequestData().setTimeoutMs(30000).setTopics(List.of(
                new DeleteTopicsRequestData.DeleteTopicState().setName(null).setTopicId(Uuid.randomUuid()))));
        }
    }

    // InitProducerId -------------------------------------------------------------------------
    private void initProducerIdCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.INIT_PRODUCER_ID;
        c(cs, A, v, "valid", b -> new InitProducerIdRequestData().setTransactionalId(null).setTransactionTimeoutMs(60000));
        c(cs, A, v, "transactional", b -> new InitProducerIdRequestData().setTransactionalId("pd-" + rid + "-tx" + v).setTransactionTimeoutMs(60000));
        c(cs, A, v, "invalid_txn_timeout", b -> new InitProducerIdRequestData().setTransactionalId("pd-" + rid + "-txb" + v).setTransactionTimeoutMs(0));
        if (v >= 3) c(cs, A, v, "unknown_producer_id_epoch", b -> new InitProducerIdRequestData().setTransactionalId(null)
            .setTransactionTimeoutMs(60000).setProducerId(123456789L).setProducerEpoch((short) 3));
    }

    // Transactions ---------------------------------------------------------------------------
    // Each case's transactional id is its own ("pd-<rid>-<tag><version>"); `pre` initializes it
    // (InitProducerId v4, `times` times: a second init fences the first epoch) and remembers the
    // producer id and epoch per broker.
    String txnId(String tag, short v) { return "pd-" + rid + "-" + tag + v; }

    static void initTxn(Broker b, String id, int times) {
        for (int i = 0; i < times; i++) {
            Broker.Outcome o = b.send(ApiKeys.INIT_PRODUCER_ID, (short) 4,
                new InitProducerIdRequestData().setTransactionalId(id).setTransactionTimeoutMs(60000));
            if (o.ok()) {
                InitProducerIdResponseData r = (InitProducerIdResponseData) o.body;
                b.state.put("tx:" + id + ":pid", r.producerId());
                b.state.put("tx:" + id + ":epoch", r.producerEpoch());
            }
        }
    }

    static long txPid(Broker b, String id) { return (Long) b.state.getOrDefault("tx:" + id + ":pid", 987654321L); }
    static short txEpoch(Broker b, String id) { return (Short) b.state.getOrDefault("tx:" + id + ":epoch", (short) 0); }

    static AddPartitionsToTxnRequestData addPartitions(short v, String id, long pid, short epoch, String topic, int partition, boolean verifyOnly) {
        AddPartitionsToTxnRequestData.AddPartitionsToTxnTopicCollection tc = new AddPartitionsToTxnRequestData.AddPartitionsToTxnTopicCollection();
        tc.add(new AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic().setName(topic).setPartitions(List.of(partition)));
        if (v < 4) return new AddPartitionsToTxnRequestData().setV3AndBelowTransactionalId(id)
            .setV3AndBelowProducerId(pid).setV3AndBelowProducerEpoch(epoch).setV3AndBelowTopics(tc);
        AddPartitionsToTxnRequestData.AddPartitionsToTxnTransactionCollection txns = new AddPartitionsToTxnRequestData.AddPartitionsToTxnTransactionCollection();
        txns.add(new AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction().setTransactionalId(id)
            .setProducerId(pid).setProducerEpoch(epoch).setVerifyOnly(verifyOnly).setTopics(tc));
        return new AddPartitionsToTxnRequestData().setTransactions(txns);
    }

    private void addPartitionsToTxnCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.ADD_PARTITIONS_TO_TXN;
        String ok = txnId("apt", v), fenced = txnId("aptf", v), topicless = txnId("aptu", v);
        c(cs, A, v, "valid", b -> addPartitions(v, ok, txPid(b, ok), txEpoch(b, ok), ta, 0, false)).pre(b -> initTxn(b, ok, 1));
        c(cs, A, v, "unknown_transactional_id", b -> addPartitions(v, txnId("aptx", v), 987654321L, (short) 0, ta, 0, false));
        c(cs, A, v, "unknown_topic", b -> addPartitions(v, topicless, txPid(b, topicless), txEpoch(b, topicless), missing("apt"), 0, false))
            .pre(b -> initTxn(b, topicless, 1));
        c(cs, A, v, "fenced_epoch", b -> addPartitions(v, fenced, txPid(b, fenced), (short) (txEpoch(b, fenced) - 1), ta, 0, false))
            .pre(b -> initTxn(b, fenced, 2));
        if (v >= 4) {
            String verify = txnId("aptv", v);
            c(cs, A, v, "verify_only_not_added", b -> addPartitions(v, verify, txPid(b, verify), txEpoch(b, verify), ta, 0, true))
                .pre(b -> initTxn(b, verify, 1));
        }
    }

    private void addOffsetsToTxnCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.ADD_OFFSETS_TO_TXN;
        String ok = txnId("aot", v);
        c(cs, A, v, "valid", b -> new AddOffsetsToTxnRequestData().setTransactionalId(ok).setProducerId(txPid(b, ok))
            .setProducerEpoch(txEpoch(b, ok)).setGroupId(group)).pre(b -> initTxn(b, ok, 1));
        c(cs, A, v, "unknown_transactional_id", b -> new AddOffsetsToTxnRequestData().setTransactionalId(txnId("aotx", v))
            .setProducerId(987654321L).setProducerEpoch((short) 0).setGroupId(group));
    }

    static EndTxnRequestData endTxn(String id, long pid, short epoch, boolean commit) {
        return new EndTxnRequestData().setTransactionalId(id).setProducerId(pid).setProducerEpoch(epoch).setCommitted(commit);
    }

    private void endTxnCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.END_TXN;
        String ok = txnId("et", v), empty = txnId("ete", v), fenced = txnId("etf", v);
        c(cs, A, v, "valid", b -> endTxn(ok, txPid(b, ok), txEpoch(b, ok), true)).pre(b -> {
            initTxn(b, ok, 1);
            b.send(ApiKeys.ADD_PARTITIONS_TO_TXN, (short) 3, addPartitions((short) 3, ok, txPid(b, ok), txEpoch(b, ok), ta, 2, false));
        });
        c(cs, A, v, "commit_without_transaction", b -> endTxn(empty, txPid(b, empty), txEpoch(b, empty), true)).pre(b -> initTxn(b, empty, 1));
        c(cs, A, v, "unknown_transactional_id", b -> endTxn(txnId("etx", v), 987654321L, (short) 0, false));
        c(cs, A, v, "fenced_epoch", b -> endTxn(fenced, txPid(b, fenced), (short) (txEpoch(b, fenced) - 1), false))
            .pre(b -> initTxn(b, fenced, 2));
    }

    private void txnOffsetCommitCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.TXN_OFFSET_COMMIT;
        c(cs, A, v, "unknown_transactional_id", b -> new TxnOffsetCommitRequestData().setTransactionalId(txnId("toc", v))
            .setGroupId(missing("toc" + v)).setProducerId(987654321L).setProducerEpoch((short) 0)
            .setTopics(List.of(new TxnOffsetCommitRequestData.TxnOffsetCommitRequestTopic().setName(ta).setPartitions(List.of(
                new TxnOffsetCommitRequestData.TxnOffsetCommitRequestPartition().setPartitionIndex(0).setCommittedOffset(1))))));
    }

    private void describeTransactionsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DESCRIBE_TRANSACTIONS;
        String ok = txnId("dt", v);
        c(cs, A, v, "valid", b -> new DescribeTransactionsRequestData().setTransactionalIds(List.of(ok)))
            .pre(b -> initTxn(b, ok, 1)).ignore("transactionStates[*].transactionStartTimeMs");
        c(cs, A, v, "unknown_transactional_id", b -> new DescribeTransactionsRequestData().setTransactionalIds(List.of(txnId("dtx", v))));
    }

    private void listTransactionsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.LIST_TRANSACTIONS;
        // Filters that match nothing of other runs on a shared broker.
        c(cs, A, v, "valid", b -> new ListTransactionsRequestData().setStateFilters(List.of("Bogus")).setProducerIdFilters(List.of(-5L)));
    }

    private void describeProducersCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DESCRIBE_PRODUCERS;
        c(cs, A, v, "unknown_topic", b -> {
            DescribeProducersRequestData.TopicRequestCollection tc = new DescribeProducersRequestData.TopicRequestCollection();
            tc.add(new DescribeProducersRequestData.TopicRequest().setName(missing("dp")).setPartitionIndexes(List.of(0)));
            return new DescribeProducersRequestData().setTopics(tc);
        });
    }

    // OffsetForLeaderEpoch -------------------------------------------------------------------
    OffsetForLeaderEpochRequestData ofle(short v, String topic, int partition, int leaderEpoch, int currentEpoch) {
        OffsetForLeaderEpochRequestData.OffsetForLeaderTopicCollection tc = new OffsetForLeaderEpochRequestData.OffsetForLeaderTopicCollection();
        tc.add(new OffsetForLeaderEpochRequestData.OffsetForLeaderTopic().setTopic(topic).setPartitions(List.of(
            new OffsetForLeaderEpochRequestData.OffsetForLeaderPartition().setPartition(partition).setLeaderEpoch(leaderEpoch)
                .setCurrentLeaderEpoch(currentEpoch))));
        OffsetForLeaderEpochRequestData r = new OffsetForLeaderEpochRequestData().setTopics(tc);
        if (v >= 3) r.setReplicaId(-1);
        return r;
    }

    private void offsetForLeaderEpochCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.OFFSET_FOR_LEADER_EPOCH;
        c(cs, A, v, "valid", b -> ofle(v, ta, 0, 0, -1));
        c(cs, A, v, "current_epoch_0", b -> ofle(v, ta, 0, 0, 0));
        c(cs, A, v, "future_leader_epoch", b -> ofle(v, ta, 0, 7, -1));
        c(cs, A, v, "future_current_epoch", b -> ofle(v, ta, 0, 0, 7));
        c(cs, A, v, "empty_partition", b -> ofle(v, ta, 2, 0, -1));
        c(cs, A, v, "unknown_topic", b -> ofle(v, missing("e"), 0, 0, -1));
        c(cs, A, v, "unknown_partition", b -> ofle(v, ta, 99, 0, -1));
        c(cs, A, v, "empty", b -> new OffsetForLeaderEpochRequestData());
    }

    // DescribeCluster ------------------------------------------------------------------------
    private void describeClusterCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DESCRIBE_CLUSTER;
        c(cs, A, v, "valid", b -> new DescribeClusterRequestData());
        c(cs, A, v, "authorized_operations", b -> new DescribeClusterRequestData().setIncludeClusterAuthorizedOperations(true));
        if (v >= 1) {
            c(cs, A, v, "endpoint_controller", b -> new DescribeClusterRequestData().setEndpointType((byte) 2));
            c(cs, A, v, "endpoint_invalid", b -> new DescribeClusterRequestData().setEndpointType((byte) 9));
        }
        if (v >= 2) c(cs, A, v, "include_fenced", b -> new DescribeClusterRequestData().setIncludeFencedBrokers(true));
    }

    // DescribeConfigs ------------------------------------------------------------------------
    DescribeConfigsRequestData describeConfigs(short v, byte type, String name, List<String> keys, boolean synonyms) {
        DescribeConfigsRequestData r = new DescribeConfigsRequestData().setResources(List.of(
            new DescribeConfigsRequestData.DescribeConfigsResource().setResourceType(type).setResourceName(name).setConfigurationKeys(keys)));
        r.setIncludeSynonyms(synonyms);
        if (v >= 3) r.setIncludeDocumentation(true);
        return r;
    }

    private void describeConfigsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DESCRIBE_CONFIGS;
        c(cs, A, v, "valid", b -> describeConfigs(v, (byte) 2, tb, null, false));
        c(cs, A, v, "topic_synonyms", b -> describeConfigs(v, (byte) 2, tb, null, true));
        c(cs, A, v, "topic_keys", b -> describeConfigs(v, (byte) 2, ta, List.of("retention.ms", "cleanup.policy", "no.such.key"), true));
        c(cs, A, v, "broker_synonyms", b -> describeConfigs(v, (byte) 4, "1", List.of("log.retention.ms", "log.retention.hours", "log.segment.bytes", "min.insync.replicas", "log.cleaner.threads", "num.io.threads", "ssl.key.password"), true));
        c(cs, A, v, "broker_default_all", b -> describeConfigs(v, (byte) 4, "", null, true));
        c(cs, A, v, "broker_keys", b -> describeConfigs(v, (byte) 4, "1", List.of("message.max.bytes", "num.partitions", "auto.create.topics.enable", "no.such.key"), false));
        c(cs, A, v, "broker_all", b -> describeConfigs(v, (byte) 4, "1", null, false)).ignore("results[*].configs*");
        c(cs, A, v, "broker_default", b -> describeConfigs(v, (byte) 4, "", List.of("message.max.bytes"), false));
        c(cs, A, v, "broker_wrong_id", b -> describeConfigs(v, (byte) 4, "999", null, false));
        c(cs, A, v, "broker_logger", b -> describeConfigs(v, (byte) 8, "1", List.of("root"), false)).ignore("results[*].configs[*].value");
        c(cs, A, v, "group", b -> describeConfigs(v, (byte) 32, group, null, false));
        c(cs, A, v, "unknown_topic", b -> describeConfigs(v, (byte) 2, missing("dc"), null, false));
        c(cs, A, v, "invalid_resource_type", b -> describeConfigs(v, (byte) 99, "x", null, false));
        c(cs, A, v, "empty", b -> new DescribeConfigsRequestData().setResources(List.of()));
        c(cs, A, v, "huge_unknown_topics", b -> new DescribeConfigsRequestData().setResources(list(HUGE, i ->
            new DescribeConfigsRequestData.DescribeConfigsResource().setResourceType((byte) 2).setResourceName(missing("h" + i)).setConfigurationKeys(null))));
    }

    // IncrementalAlterConfigs / AlterConfigs --------------------------------------------------
    // Topic changes go to tcfg; broker changes are validate_only (the brokers may be shared),
    // except one SET and DELETE of a harmless cluster default.
    static final byte SET = 0, DELETE = 1, APPEND = 2, SUBTRACT = 3;

    /** One resource: type, name, then (name, op, value) triples. */
    static IncrementalAlterConfigsRequestData.AlterConfigsResource iResource(byte type, String name, Object... ops) {
        IncrementalAlterConfigsRequestData.AlterableConfigCollection cc = new IncrementalAlterConfigsRequestData.AlterableConfigCollection();
        for (int i = 0; i < ops.length; i += 3)
            cc.mustAdd(new IncrementalAlterConfigsRequestData.AlterableConfig().setName((String) ops[i])
                .setConfigOperation((Byte) ops[i + 1]).setValue((String) ops[i + 2]));
        return new IncrementalAlterConfigsRequestData.AlterConfigsResource().setResourceType(type).setResourceName(name).setConfigs(cc);
    }

    static IncrementalAlterConfigsRequestData incremental(boolean validateOnly, IncrementalAlterConfigsRequestData.AlterConfigsResource... rs) {
        IncrementalAlterConfigsRequestData.AlterConfigsResourceCollection c = new IncrementalAlterConfigsRequestData.AlterConfigsResourceCollection();
        for (var r : rs) c.mustAdd(r);
        return new IncrementalAlterConfigsRequestData().setValidateOnly(validateOnly).setResources(c);
    }

    private void incrementalAlterConfigsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.INCREMENTAL_ALTER_CONFIGS;
        byte T = 2, B = 4, L = 8;
        c(cs, A, v, "valid", b -> incremental(false, iResource(T, tcfg, "retention.ms", SET, "7200000", "segment.ms", SET, "3600000")));
        c(cs, A, v, "append_subtract", b -> incremental(false, iResource(T, tcfg,
            "leader.replication.throttled.replicas", APPEND, "0:1,1:1", "follower.replication.throttled.replicas", SUBTRACT, "0:1")));
        c(cs, A, v, "append_not_list", b -> incremental(false, iResource(T, tcfg, "retention.ms", APPEND, "1")));
        c(cs, A, v, "delete", b -> incremental(false, iResource(T, tcfg, "segment.ms", DELETE, null)));
        c(cs, A, v, "validate_only", b -> incremental(true, iResource(T, tcfg, "retention.bytes", SET, "1000")));
        c(cs, A, v, "invalid_value", b -> incremental(false, iResource(T, tcfg, "retention.ms", SET, "abc")));
        c(cs, A, v, "below_minimum", b -> incremental(false, iResource(T, tcfg, "retention.ms", SET, "-5")));
        c(cs, A, v, "bad_codec", b -> incremental(false, iResource(T, tcfg, "compression.type", SET, "brotli")));
        c(cs, A, v, "any_codec", b -> incremental(false, iResource(T, tcfg, "compression.type", SET, "zstd")));
        c(cs, A, v, "unknown_config", b -> incremental(false, iResource(T, tcfg, "no.such.config", SET, "1")));
        c(cs, A, v, "unknown_topic", b -> incremental(false, iResource(T, missing("iac"), "retention.ms", SET, "1")));
        c(cs, A, v, "null_value", b -> incremental(false, iResource(T, tcfg, "retention.ms", SET, null)));
        c(cs, A, v, "duplicate_keys", b -> incremental(false, iResource(T, tcfg, "retention.ms", SET, "1", "retention.ms", DELETE, null)));
        c(cs, A, v, "duplicate_resource", b -> incremental(false, iResource(T, tcfg, "retention.ms", SET, "1"), iResource(T, tcfg, "segment.ms", SET, "1")));
        c(cs, A, v, "broker", b -> incremental(true, iResource(B, "1", "log.retention.ms", SET, "1000", "message.max.bytes", SET, "2000000")));
        c(cs, A, v, "broker_default", b -> incremental(true, iResource(B, "", "log.segment.bytes", SET, "1048576")));
        c(cs, A, v, "broker_default_set_delete", b -> incremental(false, iResource(B, "", "log.roll.jitter.ms", SET, "5")));
        c(cs, A, v, "broker_default_delete", b -> incremental(false, iResource(B, "", "log.roll.jitter.ms", DELETE, null)));
        c(cs, A, v, "broker_read_only", b -> incremental(true, iResource(B, "1", "num.partitions", SET, "3")));
        c(cs, A, v, "broker_bad_value", b -> incremental(true, iResource(B, "", "log.retention.ms", SET, "abc")));
        c(cs, A, v, "broker_append_not_list", b -> incremental(true, iResource(B, "1", "log.retention.ms", APPEND, "1")));
        c(cs, A, v, "broker_wrong_id", b -> incremental(true, iResource(B, "999", "log.retention.ms", SET, "1")));
        // LogCleaner.validateReconfiguration: at most double (and at least half) the running thread count.
        c(cs, A, v, "broker_cleaner_threads_too_many", b -> incremental(true, iResource(B, "1", "log.cleaner.threads", SET, "123456789")));
        c(cs, A, v, "broker_cleaner_threads_double", b -> incremental(true, iResource(B, "1", "log.cleaner.threads", SET, "2")));
        c(cs, A, v, "broker_not_a_number", b -> incremental(true, iResource(B, "one", "log.retention.ms", SET, "1")));
        c(cs, A, v, "broker_logger", b -> incremental(true, iResource(L, "1", "root", SET, "INFO")));
        c(cs, A, v, "broker_logger_bad_level", b -> incremental(true, iResource(L, "1", "root", SET, "LOUD")));
        c(cs, A, v, "broker_logger_append", b -> incremental(true, iResource(L, "1", "root", APPEND, "INFO")));
        c(cs, A, v, "broker_logger_delete_root", b -> incremental(true, iResource(L, "1", "root", DELETE, null)));
        c(cs, A, v, "unknown_resource_type", b -> incremental(false, iResource((byte) 99, "x", "a", SET, "1")));
        c(cs, A, v, "empty", b -> incremental(false));
    }

    static AlterConfigsRequestData legacy(boolean validateOnly, byte type, String name, String... kv) {
        AlterConfigsRequestData.AlterableConfigCollection cc = new AlterConfigsRequestData.AlterableConfigCollection();
        for (int i = 0; i < kv.length; i += 2) cc.mustAdd(new AlterConfigsRequestData.AlterableConfig().setName(kv[i]).setValue(kv[i + 1]));
        AlterConfigsRequestData.AlterConfigsResourceCollection rc = new AlterConfigsRequestData.AlterConfigsResourceCollection();
        rc.mustAdd(new AlterConfigsRequestData.AlterConfigsResource().setResourceType(type).setResourceName(name).setConfigs(cc));
        return new AlterConfigsRequestData().setValidateOnly(validateOnly).setResources(rc);
    }

    private void alterConfigsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.ALTER_CONFIGS;
        byte T = 2, B = 4, L = 8;
        c(cs, A, v, "valid", b -> legacy(false, T, tcfg, "retention.ms", "3600000", "max.message.bytes", "2000000"));
        c(cs, A, v, "validate_only", b -> legacy(true, T, tcfg, "segment.bytes", "1048576"));
        c(cs, A, v, "invalid_value", b -> legacy(false, T, tcfg, "segment.ms", "abc"));
        c(cs, A, v, "unknown_config", b -> legacy(false, T, tcfg, "no.such.config", "1"));
        c(cs, A, v, "unknown_topic", b -> legacy(false, T, missing("ac"), "retention.ms", "1"));
        c(cs, A, v, "null_value", b -> legacy(false, T, tcfg, "retention.ms", null));
        c(cs, A, v, "broker", b -> legacy(true, B, "1", "log.retention.ms", "1000"));
        c(cs, A, v, "broker_default", b -> legacy(true, B, "", "log.retention.ms", "1000", "min.insync.replicas", "1"));
        c(cs, A, v, "broker_read_only", b -> legacy(true, B, "1", "auto.create.topics.enable", "false"));
        c(cs, A, v, "broker_wrong_id", b -> legacy(true, B, "999", "log.retention.ms", "1"));
        c(cs, A, v, "broker_logger", b -> legacy(true, L, "1", "root", "INFO"));
        c(cs, A, v, "empty", b -> new AlterConfigsRequestData());
    }

    // FindCoordinator ------------------------------------------------------------------------
    FindCoordinatorRequestData findCoordinator(short v, byte type, List<String> keys) {
        FindCoordinatorRequestData r = new FindCoordinatorRequestData();
        if (v >= 1) r.setKeyType(type);
        if (v >= 4) r.setCoordinatorKeys(keys); else r.setKey(keys.get(0));
        return r;
    }

    private void findCoordinatorCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.FIND_COORDINATOR;
        c(cs, A, v, "valid", b -> findCoordinator(v, (byte) 0, List.of(group)));
        c(cs, A, v, "new_group", b -> findCoordinator(v, (byte) 0, List.of("pd-" + rid + "-fc" + v)));
        c(cs, A, v, "empty_group_id", b -> findCoordinator(v, (byte) 0, List.of("")));
        if (v >= 1) {
            c(cs, A, v, "transaction", b -> findCoordinator(v, (byte) 1, List.of("pd-" + rid + "-tx")));
            c(cs, A, v, "invalid_key_type", b -> findCoordinator(v, (byte) 5, List.of(group)));
        }
        if (v >= 6) c(cs, A, v, "share", b -> findCoordinator(v, (byte) 2, List.of(group + ":" + SHARE_TOPIC_ID + ":0")));
        if (v >= 4) {
            c(cs, A, v, "batched", b -> findCoordinator(v, (byte) 0, List.of(group, simpleGroup)));
            c(cs, A, v, "empty", b -> findCoordinator(v, (byte) 0, List.of()));
            c(cs, A, v, "huge", b -> findCoordinator(v, (byte) 0, list(HUGE, i -> "pd-" + rid + "-hg" + i)));
        }
    }

    // JoinGroup ------------------------------------------------------------------------------
    private void joinGroupCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.JOIN_GROUP;
        String g = "pd-" + rid + "-j" + v;
        String key = "j" + v + ":member";
        c(cs, A, v, "valid", b -> join(g, "", "consumer", 30000)).post((b, o) -> {
            JoinGroupResponseData r = (JoinGroupResponseData) o.body;
            if (!r.memberId().isEmpty()) b.state.put(key, r.memberId());
        });
        if (v >= 4) c(cs, A, v, "join_with_member_id", b -> join(g, (String) b.state.getOrDefault(key, "none"), "consumer", 30000));
        c(cs, A, v, "unknown_member", b -> join(g, "bogus-member", "consumer", 30000));
        c(cs, A, v, "unknown_member_new_group", b -> join(g + "-x", "bogus-member", "consumer", 30000));
        c(cs, A, v, "session_timeout_too_small", b -> join(g + "-t1", "", "consumer", 1));
        c(cs, A, v, "session_timeout_too_large", b -> join(g + "-t2", "", "consumer", 100_000_000));
        c(cs, A, v, "empty_group_id", b -> join("", "", "consumer", 30000));
        c(cs, A, v, "inconsistent_protocol_type", b -> join(group, "", "other", 30000));
        c(cs, A, v, "no_protocols", b -> join(g + "-np", "", "consumer", 30000)
            .setProtocols(new JoinGroupRequestData.JoinGroupRequestProtocolCollection()));
        if (v >= 5) c(cs, A, v, "static_member", b -> join(g + "-st", "", "consumer", 30000).setGroupInstanceId("pd-instance"));
    }

    // SyncGroup ------------------------------------------------------------------------------
    SyncGroupRequestData sync(Broker b, short v, String g, String member, int gen, boolean withAssignment) {
        SyncGroupRequestData r = new SyncGroupRequestData().setGroupId(g).setMemberId(member).setGenerationId(gen);
        if (withAssignment) r.setAssignments(List.of(new SyncGroupRequestData.SyncGroupRequestAssignment().setMemberId(member).setAssignment(assignment(ta))));
        if (v >= 5) r.setProtocolType("consumer").setProtocolName("range");
        return r;
    }

    static String member(Broker b) { return (String) b.state.getOrDefault("g:member", "none"); }
    static int gen(Broker b) { return (Integer) b.state.getOrDefault("g:gen", -1); }

    private void syncGroupCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.SYNC_GROUP;
        c(cs, A, v, "valid", b -> sync(b, v, group, member(b), gen(b), true));
        c(cs, A, v, "follower_no_assignment", b -> sync(b, v, group, member(b), gen(b), false));
        c(cs, A, v, "bad_generation", b -> sync(b, v, group, member(b), gen(b) + 5, true));
        c(cs, A, v, "unknown_member", b -> sync(b, v, group, "bogus-member", gen(b), true));
        c(cs, A, v, "unknown_group", b -> sync(b, v, missing("sg"), "bogus-member", 1, true));
        c(cs, A, v, "empty_group_id", b -> sync(b, v, "", "bogus-member", 1, true));
        if (v >= 5) {
            c(cs, A, v, "inconsistent_protocol_type", b -> sync(b, v, group, member(b), gen(b), true).setProtocolType("other"));
            c(cs, A, v, "inconsistent_protocol_name", b -> sync(b, v, group, member(b), gen(b), true).setProtocolName("roundrobin"));
        }
    }

    // Heartbeat ------------------------------------------------------------------------------
    private void heartbeatCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.HEARTBEAT;
        c(cs, A, v, "valid", b -> new HeartbeatRequestData().setGroupId(group).setMemberId(member(b)).setGenerationId(gen(b)));
        c(cs, A, v, "bad_generation", b -> new HeartbeatRequestData().setGroupId(group).setMemberId(member(b)).setGenerationId(gen(b) + 5));
        c(cs, A, v, "stale_generation", b -> new HeartbeatRequestData().setGroupId(group).setMemberId(member(b)).setGenerationId(gen(b) - 1));
        c(cs, A, v, "unknown_member", b -> new HeartbeatRequestData().setGroupId(group).setMemberId("bogus-member").setGenerationId(gen(b)));
        c(cs, A, v, "unknown_group", b -> new HeartbeatRequestData().setGroupId(missing("hb")).setMemberId("bogus-member").setGenerationId(1));
        c(cs, A, v, "empty_group_id", b -> new HeartbeatRequestData().setGroupId("").setMemberId("bogus-member").setGenerationId(1));
    }

    // LeaveGroup -----------------------------------------------------------------------------
    LeaveGroupRequestData leave(short v, String g, String... members) {
        if (v >= 3) return new LeaveGroupRequestData().setGroupId(g).setMembers(list(members.length, i ->
            new LeaveGroupRequestData.MemberIdentity().setMemberId(members[i])));
        return new LeaveGroupRequestData().setGroupId(g).setMemberId(members[0]);
    }

    private void leaveGroupCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.LEAVE_GROUP;
        String g = "pd-" + rid + "-l" + v;
        String p = "l" + v;
        c(cs, A, v, "valid", b -> leave(v, g, (String) b.state.getOrDefault(p + ":member", "none")))
            .pre(b -> { b.state.remove(p + ":member"); joinAndSync(b, g, p); });
        c(cs, A, v, "unknown_member", b -> leave(v, group, "bogus-member"));
        c(cs, A, v, "unknown_group", b -> leave(v, missing("lg"), "bogus-member"));
        c(cs, A, v, "empty_group_id", b -> leave(v, "", "bogus-member"));
        if (v >= 3) {
            c(cs, A, v, "mixed_members", b -> leave(v, group, "bogus-1", "bogus-2"));
            c(cs, A, v, "empty_members", b -> new LeaveGroupRequestData().setGroupId(group).setMembers(List.of()));
        }
    }

    // OffsetCommit ---------------------------------------------------------------------------
    private void offsetCommitCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.OFFSET_COMMIT;
        c(cs, A, v, "valid", b -> commit(group, gen(b), member(b), ta, 0, 3, "m"));
        c(cs, A, v, "simple_group", b -> commit(simpleGroup, -1, "", ta, 0, 2, ""));
        c(cs, A, v, "new_simple_group", b -> commit("pd-" + rid + "-oc" + v, -1, "", ta, 1, 1, ""));
        c(cs, A, v, "bad_generation", b -> commit(group, gen(b) + 5, member(b), ta, 0, 3, ""));
        c(cs, A, v, "unknown_member", b -> commit(group, gen(b), "bogus-member", ta, 0, 3, ""));
        c(cs, A, v, "no_member_on_stable_group", b -> commit(group, -1, "", ta, 0, 3, ""));
        c(cs, A, v, "unknown_topic", b -> commit(simpleGroup, -1, "", missing("oc"), 0, 3, ""));
        c(cs, A, v, "unknown_partition", b -> commit(simpleGroup, -1, "", ta, 99, 3, ""));
        c(cs, A, v, "metadata_too_large", b -> commit(simpleGroup, -1, "", ta, 0, 2, "x".repeat(5000)));
        c(cs, A, v, "negative_offset", b -> commit(simpleGroup, -1, "", ta, 2, -5, ""));
        c(cs, A, v, "empty_group_id", b -> commit("", -1, "", ta, 0, 3, ""));
        c(cs, A, v, "empty", b -> new OffsetCommitRequestData().setGroupId(simpleGroup).setGenerationIdOrMemberEpoch(-1).setMemberId(""));
    }

    // OffsetFetch ----------------------------------------------------------------------------
    OffsetFetchRequestData offsetFetch(short v, String g, String topic, List<Integer> partitions, boolean all) {
        if (v >= 8) {
            return new OffsetFetchRequestData().setGroups(List.of(new OffsetFetchRequestData.OffsetFetchRequestGroup().setGroupId(g)
                .setTopics(all ? null : List.of(new OffsetFetchRequestData.OffsetFetchRequestTopics().setName(topic).setPartitionIndexes(partitions)))));
        }
        return new OffsetFetchRequestData().setGroupId(g)
            .setTopics(all ? null : List.of(new OffsetFetchRequestData.OffsetFetchRequestTopic().setName(topic).setPartitionIndexes(partitions)));
    }

    private void offsetFetchCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.OFFSET_FETCH;
        c(cs, A, v, "valid", b -> offsetFetch(v, group, ta, List.of(0, 1), false));
        c(cs, A, v, "simple_group", b -> offsetFetch(v, simpleGroup, ta, List.of(0, 1, 2), false));
        if (v >= 2) c(cs, A, v, "all_topics", b -> offsetFetch(v, simpleGroup, null, null, true));
        c(cs, A, v, "unknown_group", b -> offsetFetch(v, missing("of"), ta, List.of(0), false));
        if (v >= 2) c(cs, A, v, "unknown_group_all_topics", b -> offsetFetch(v, missing("of"), null, null, true));
        c(cs, A, v, "unknown_topic", b -> offsetFetch(v, simpleGroup, missing("oft"), List.of(0), false));
        c(cs, A, v, "unknown_partition", b -> offsetFetch(v, simpleGroup, ta, List.of(99), false));
        c(cs, A, v, "empty_group_id", b -> offsetFetch(v, "", ta, List.of(0), false));
        if (v >= 7) c(cs, A, v, "require_stable", b -> offsetFetch(v, group, ta, List.of(0), false).setRequireStable(true));
        if (v >= 8) c(cs, A, v, "batched_groups", b -> new OffsetFetchRequestData().setGroups(List.of(
            new OffsetFetchRequestData.OffsetFetchRequestGroup().setGroupId(group).setTopics(null),
            new OffsetFetchRequestData.OffsetFetchRequestGroup().setGroupId(simpleGroup).setTopics(null),
            new OffsetFetchRequestData.OffsetFetchRequestGroup().setGroupId(missing("ofb")).setTopics(null))));
        c(cs, A, v, "huge_unknown_topics", b -> {
            if (v >= 8) return new OffsetFetchRequestData().setGroups(List.of(new OffsetFetchRequestData.OffsetFetchRequestGroup()
                .setGroupId(simpleGroup).setTopics(list(HUGE, i -> new OffsetFetchRequestData.OffsetFetchRequestTopics()
                    .setName(missing("h" + i)).setPartitionIndexes(List.of(0))))));
            return new OffsetFetchRequestData().setGroupId(simpleGroup).setTopics(list(HUGE, i ->
                new OffsetFetchRequestData.OffsetFetchRequestTopic().setName(missing("h" + i)).setPartitionIndexes(List.of(0))));
        });
    }

    // OffsetDelete ---------------------------------------------------------------------------
    OffsetDeleteRequestData offsetDelete(String g, String topic, int partition) {
        OffsetDeleteRequestData.OffsetDeleteRequestTopicCollection tc = new OffsetDeleteRequestData.OffsetDeleteRequestTopicCollection();
        tc.add(new OffsetDeleteRequestData.OffsetDeleteRequestTopic().setName(topic).setPartitions(List.of(
            new OffsetDeleteRequestData.OffsetDeleteRequestPartition().setPartitionIndex(partition))));
        return new OffsetDeleteRequestData().setGroupId(g).setTopics(tc);
    }

    private void offsetDeleteCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.OFFSET_DELETE;
        String g = "pd-" + rid + "-od";
        c(cs, A, v, "valid", b -> offsetDelete(g, ta, 0)).pre(b -> b.send(ApiKeys.OFFSET_COMMIT, (short) 9, commit(g, -1, "", ta, 0, 1, "")));
        c(cs, A, v, "group_subscribed", b -> offsetDelete(group, ta, 0));
        c(cs, A, v, "unknown_group", b -> offsetDelete(missing("odg"), ta, 0));
        c(cs, A, v, "unknown_topic", b -> offsetDelete(simpleGroup, missing("odt"), 0));
        c(cs, A, v, "unknown_partition", b -> offsetDelete(simpleGroup, ta, 99));
        c(cs, A, v, "empty_group_id", b -> offsetDelete("", ta, 0));
        c(cs, A, v, "empty", b -> new OffsetDeleteRequestData().setGroupId(simpleGroup));
    }

    // DescribeGroups -------------------------------------------------------------------------
    private void describeGroupsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DESCRIBE_GROUPS;
        c(cs, A, v, "valid", b -> new DescribeGroupsRequestData().setGroups(List.of(group)));
        c(cs, A, v, "simple_group", b -> new DescribeGroupsRequestData().setGroups(List.of(simpleGroup)));
        c(cs, A, v, "unknown_group", b -> new DescribeGroupsRequestData().setGroups(List.of(missing("dg"))));
        c(cs, A, v, "empty_group_id", b -> new DescribeGroupsRequestData().setGroups(List.of("")));
        if (v >= 3) c(cs, A, v, "authorized_operations", b -> new DescribeGroupsRequestData().setGroups(List.of(group)).setIncludeAuthorizedOperations(true));
        c(cs, A, v, "empty", b -> new DescribeGroupsRequestData().setGroups(List.of()));
        c(cs, A, v, "huge_unknown_groups", b -> new DescribeGroupsRequestData().setGroups(list(HUGE, i -> missing("h" + i))));
    }

    // ListGroups -----------------------------------------------------------------------------
    private void listGroupsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.LIST_GROUPS;
        c(cs, A, v, "valid", b -> new ListGroupsRequestData()).runOnly("groups");
        if (v >= 4) {
            c(cs, A, v, "state_stable", b -> new ListGroupsRequestData().setStatesFilter(List.of("Stable"))).runOnly("groups");
            c(cs, A, v, "state_empty", b -> new ListGroupsRequestData().setStatesFilter(List.of("Empty"))).runOnly("groups");
            c(cs, A, v, "state_unknown", b -> new ListGroupsRequestData().setStatesFilter(List.of("NoSuchState"))).runOnly("groups");
        }
        if (v >= 5) {
            c(cs, A, v, "type_classic", b -> new ListGroupsRequestData().setTypesFilter(List.of("classic"))).runOnly("groups");
            c(cs, A, v, "type_consumer", b -> new ListGroupsRequestData().setTypesFilter(List.of("consumer"))).runOnly("groups");
            c(cs, A, v, "type_unknown", b -> new ListGroupsRequestData().setTypesFilter(List.of("nosuchtype"))).runOnly("groups");
        }
    }

    // DeleteGroups ---------------------------------------------------------------------------
    private void deleteGroupsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DELETE_GROUPS;
        String g = "pd-" + rid + "-dg" + v;
        c(cs, A, v, "valid", b -> new DeleteGroupsRequestData().setGroupsNames(List.of(g)))
            .pre(b -> b.send(ApiKeys.OFFSET_COMMIT, (short) 9, commit(g, -1, "", ta, 0, 1, "")));
        c(cs, A, v, "non_empty_group", b -> new DeleteGroupsRequestData().setGroupsNames(List.of(group)));
        c(cs, A, v, "unknown_group", b -> new DeleteGroupsRequestData().setGroupsNames(List.of(missing("dlg"))));
        c(cs, A, v, "empty_group_id", b -> new DeleteGroupsRequestData().setGroupsNames(List.of("")));
        c(cs, A, v, "empty", b -> new DeleteGroupsRequestData().setGroupsNames(List.of()));
        c(cs, A, v, "huge_unknown_groups", b -> new DeleteGroupsRequestData().setGroupsNames(list(HUGE, i -> missing("h" + i))));
    }

    // ConsumerGroupHeartbeat -----------------------------------------------------------------
    ConsumerGroupHeartbeatRequestData cgJoin(short v, String g, String memberId) {
        return new ConsumerGroupHeartbeatRequestData().setGroupId(g).setMemberId(memberId).setMemberEpoch(0)
            .setRebalanceTimeoutMs(30000).setSubscribedTopicNames(List.of(ta)).setTopicPartitions(List.of());
    }

    private void cgHeartbeatCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.CONSUMER_GROUP_HEARTBEAT;
        String g = "pd-" + rid + "-cg" + v;
        String key = "cg" + v;
        c(cs, A, v, "valid", b -> {
            String id = v >= 1 ? Uuid.randomUuid().toString() : "";
            b.state.put(key + ":member", id);
            return cgJoin(v, g, id);
        }).post((b, o) -> {
            ConsumerGroupHeartbeatResponseData r = (ConsumerGroupHeartbeatResponseData) o.body;
            if (r.memberId() != null && !r.memberId().isEmpty()) b.state.put(key + ":member", r.memberId());
            b.state.put(key + ":epoch", r.memberEpoch());
        });
        c(cs, A, v, "heartbeat", b -> new ConsumerGroupHeartbeatRequestData().setGroupId(g)
            .setMemberId((String) b.state.getOrDefault(key + ":member", "none")).setMemberEpoch((Integer) b.state.getOrDefault(key + ":epoch", 1)));
        c(cs, A, v, "fenced_epoch", b -> new ConsumerGroupHeartbeatRequestData().setGroupId(g)
            .setMemberId((String) b.state.getOrDefault(key + ":member", "none")).setMemberEpoch((Integer) b.state.getOrDefault(key + ":epoch", 1) + 10));
        c(cs, A, v, "unknown_member", b -> new ConsumerGroupHeartbeatRequestData().setGroupId(g)
            .setMemberId(Uuid.randomUuid().toString()).setMemberEpoch(5));
        c(cs, A, v, "missing_rebalance_timeout", b -> cgJoin(v, g + "-x", Uuid.randomUuid().toString()).setRebalanceTimeoutMs(-1));
        c(cs, A, v, "missing_subscription", b -> cgJoin(v, g + "-y", Uuid.randomUuid().toString()).setSubscribedTopicNames(null));
        c(cs, A, v, "empty_group_id", b -> cgJoin(v, "", Uuid.randomUuid().toString()));
        c(cs, A, v, "unsupported_assignor", b -> cgJoin(v, g + "-z", Uuid.randomUuid().toString()).setServerAssignor("bogus"));
        // A consumer-protocol join to a classic group with members: Kafka upgrades the group
        // (group.consumer.migration.policy); a group of its own, so the shared one stays classic.
        String cgc = "pd-" + rid + "-cgc" + v;
        c(cs, A, v, "classic_group_id", b -> cgJoin(v, cgc, Uuid.randomUuid().toString())).pre(b -> joinAndSync(b, cgc, "cgc" + v));
        c(cs, A, v, "leave", b -> new ConsumerGroupHeartbeatRequestData().setGroupId(g)
            .setMemberId((String) b.state.getOrDefault(key + ":member", "none")).setMemberEpoch(-1));
    }

    // ConsumerGroupDescribe ------------------------------------------------------------------
    private void cgDescribeCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.CONSUMER_GROUP_DESCRIBE;
        String g = "pd-" + rid + "-cgd" + v;
        c(cs, A, v, "valid", b -> new ConsumerGroupDescribeRequestData().setGroupIds(List.of(g)))
            .pre(b -> b.send(ApiKeys.CONSUMER_GROUP_HEARTBEAT, (short) 1, cgJoin((short) 1, g, Uuid.randomUuid().toString())));
        c(cs, A, v, "empty_cg_group", b -> new ConsumerGroupDescribeRequestData().setGroupIds(List.of("pd-" + rid + "-cg" + Math.min(v, 1))));
        c(cs, A, v, "unknown_group", b -> new ConsumerGroupDescribeRequestData().setGroupIds(List.of(missing("cgd"))));
        c(cs, A, v, "classic_group", b -> new ConsumerGroupDescribeRequestData().setGroupIds(List.of(group)));
        c(cs, A, v, "authorized_operations", b -> new ConsumerGroupDescribeRequestData().setGroupIds(List.of(g)).setIncludeAuthorizedOperations(true));
        c(cs, A, v, "empty", b -> new ConsumerGroupDescribeRequestData().setGroupIds(List.of()));
        c(cs, A, v, "huge_unknown_groups", b -> new ConsumerGroupDescribeRequestData().setGroupIds(list(HUGE, i -> missing("h" + i))));
    }

    // ACLs (resource type 2 = TOPIC, pattern 3 = LITERAL, operation 3 = READ, permission 3 = ALLOW;
    // 1 = ANY in filters). A broker without an authorizer answers SECURITY_DISABLED.
    DescribeAclsRequestData describeAcls(short v, byte resourceType, String name, byte pattern) {
        return new DescribeAclsRequestData().setResourceTypeFilter(resourceType).setResourceNameFilter(name)
            .setPatternTypeFilter(pattern).setPrincipalFilter(null).setHostFilter(null).setOperation((byte) 1).setPermissionType((byte) 1);
    }

    private void describeAclsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DESCRIBE_ACLS;
        c(cs, A, v, "valid", b -> describeAcls(v, (byte) 1, null, (byte) 1));
        c(cs, A, v, "topic_literal", b -> describeAcls(v, (byte) 2, ta, (byte) 3));
        c(cs, A, v, "invalid_resource_type", b -> describeAcls(v, (byte) 0, null, (byte) 1));
        c(cs, A, v, "invalid_pattern_type", b -> describeAcls(v, (byte) 2, ta, (byte) 0));
    }

    CreateAclsRequestData.AclCreation acl(String topic, String principal) {
        return new CreateAclsRequestData.AclCreation().setResourceType((byte) 2).setResourceName(topic).setResourcePatternType((byte) 3)
            .setPrincipal(principal).setHost("*").setOperation((byte) 3).setPermissionType((byte) 3);
    }

    private void createAclsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.CREATE_ACLS;
        c(cs, A, v, "valid", b -> new CreateAclsRequestData().setCreations(List.of(acl(ta, "User:pd-" + rid))));
        c(cs, A, v, "invalid_principal", b -> new CreateAclsRequestData().setCreations(List.of(acl(ta, "nocolon"))));
        c(cs, A, v, "invalid_resource_type", b -> new CreateAclsRequestData().setCreations(List.of(acl(ta, "User:x").setResourceType((byte) 1))));
        c(cs, A, v, "empty", b -> new CreateAclsRequestData().setCreations(List.of()));
    }

    private void deleteAclsCases(List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DELETE_ACLS;
        c(cs, A, v, "valid", b -> new DeleteAclsRequestData().setFilters(List.of(new DeleteAclsRequestData.DeleteAclsFilter()
            .setResourceTypeFilter((byte) 2).setResourceNameFilter(ta).setPatternTypeFilter((byte) 3).setPrincipalFilter("User:pd-" + rid)
            .setHostFilter(null).setOperation((byte) 1).setPermissionType((byte) 1))));
        c(cs, A, v, "match_nothing", b -> new DeleteAclsRequestData().setFilters(List.of(new DeleteAclsRequestData.DeleteAclsFilter()
            .setResourceTypeFilter((byte) 2).setResourceNameFilter(missing("acl")).setPatternTypeFilter((byte) 3).setPrincipalFilter(null)
            .setHostFilter(null).setOperation((byte) 1).setPermissionType((byte) 1))));
        c(cs, A, v, "empty", b -> new DeleteAclsRequestData().setFilters(List.of()));
    }
}
