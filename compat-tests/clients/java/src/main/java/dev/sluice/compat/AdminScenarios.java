package dev.sluice.compat;

import static dev.sluice.compat.JavaCompat.admin;
import static dev.sluice.compat.JavaCompat.b;
import static dev.sluice.compat.JavaCompat.check;
import static dev.sluice.compat.JavaCompat.closeQuietly;
import static dev.sluice.compat.JavaCompat.describe;
import static dev.sluice.compat.JavaCompat.ensureTopic;
import static dev.sluice.compat.JavaCompat.errName;
import static dev.sluice.compat.JavaCompat.get;
import static dev.sluice.compat.JavaCompat.name;
import static dev.sluice.compat.JavaCompat.obs;
import static dev.sluice.compat.JavaCompat.produceAll;
import static dev.sluice.compat.JavaCompat.producer;
import static dev.sluice.compat.JavaCompat.readPartition;
import static dev.sluice.compat.JavaCompat.root;
import static dev.sluice.compat.JavaCompat.str;
import static dev.sluice.compat.JavaCompat.waitUntil;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreatePartitionsOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.SupportedVersionRange;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionReplica;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.quota.ClientQuotaFilterComponent;

/**
 * Admin API scenarios of the Java column (admin_* and compacted_topic): one Admin call each, with
 * what the broker answered observed for compare mode. Every check is on an outcome that is the same on
 * any correct broker (counts, offsets, error names, config values and sources), never on timing.
 */
final class AdminScenarios {
    private AdminScenarios() {}

    static int partitionCount(String t) throws Exception {
        return get(admin.describeTopics(List.of(t)).allTopicNames()).get(t).partitions().size();
    }

    static int nodeId() throws Exception {
        Collection<Node> nodes = get(admin.describeCluster().nodes());
        check(nodes.size() == 1, "expected one broker, metadata lists " + nodes.size());
        return nodes.iterator().next().id();
    }

    /** The error name of a failed admin future, or NONE. */
    static String outcome(org.apache.kafka.common.KafkaFuture<?> f) throws Exception {
        try {
            get(f);
            return "NONE";
        } catch (ExecutionException e) {
            System.err.println("java admin: " + describe(e));
            return errName(e) + ":" + root(e).getClass().getSimpleName();
        }
    }

    static void createPartitions(String s) throws Exception {
        String t = name(s);
        ensureTopic(t, 1, Map.of());
        String v = outcome(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(5)),
                new CreatePartitionsOptions().validateOnly(true)).all());
        obs(s, "validate_only_to_5", v);
        check(v.equals("NONE"), "validateOnly increase to 5: " + v);
        int after = partitionCount(t);
        obs(s, "after_validate_only", after);
        check(after == 1, "validateOnly changed the partition count to " + after);
        String r = outcome(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(3))).all());
        obs(s, "increase_to_3", r);
        check(r.equals("NONE"), "increase to 3: " + r);
        check(waitUntil(() -> {
            try { return partitionCount(t) == 3; } catch (Exception e) { return false; }
        }, 10), "describeTopics does not show 3 partitions");
        obs(s, "partitions", partitionCount(t));
        String same = outcome(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(3))).all());
        obs(s, "increase_to_same", same);
        String down = outcome(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(2))).all());
        obs(s, "decrease_to_2", down);
        check(down.startsWith("INVALID_PARTITIONS:"), "decrease to 2: " + down + ", expected INVALID_PARTITIONS");
        String missing = outcome(admin.createPartitions(Map.of(t + "-missing", NewPartitions.increaseTo(2))).all());
        obs(s, "unknown_topic", missing);
        check(partitionCount(t) == 3, "partition count changed by the refused requests");
    }

    static void deleteRecords(String s) throws Exception {
        String t = name(s);
        ensureTopic(t, 1, Map.of());
        KafkaProducer<byte[], byte[]> p = producer(Map.of());
        try {
            List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
            for (int i = 0; i < 10; i++) recs.add(new ProducerRecord<>(t, 0, b("k" + i), b("v" + i)));
            produceAll(p, recs);
        } finally {
            closeQuietly(p);
        }
        TopicPartition tp = new TopicPartition(t, 0);
        long low = get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp))
                .lowWatermark();
        obs(s, "low_watermark", low);
        check(low == 4, "deleteRecords before 4: low watermark " + low);
        long earliest = get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset();
        long latest = get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp)).offset();
        obs(s, "earliest", earliest);
        obs(s, "latest", latest);
        check(earliest == 4 && latest == 10, "listOffsets earliest/latest " + earliest + "/" + latest + ", expected 4/10");
        var got = readPartition(t, 0, 1, 0, 10);  // offset 0 is gone: the consumer resets to earliest
        String first = got.isEmpty() ? "none" : got.get(0).offset() + ":" + str(got.get(0).value());
        obs(s, "first_read_from_0", first);
        check(first.equals("4:v4"), "reading from offset 0 gave " + first + ", expected 4:v4");
        String lower = outcome(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(2))).all());
        long lowAgain = get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset();
        obs(s, "delete_before_2", lower + ":" + lowAgain);
        String beyond = outcome(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(11))).all());
        obs(s, "beyond_high_watermark", beyond);
        check(beyond.startsWith("OFFSET_OUT_OF_RANGE:"), "deleteRecords before 11 (high watermark 10): " + beyond);
        long all = get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(tp))
                .lowWatermark();
        obs(s, "delete_all", all);
        check(all == 10, "deleteRecords before -1 (the high watermark): low watermark " + all);
        String missing = outcome(admin.deleteRecords(Map.of(new TopicPartition(t, 7), RecordsToDelete.beforeOffset(1)))
                .all());
        obs(s, "unknown_partition", missing);
    }

    static ConfigEntry entry(String t, String key) throws Exception {
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, t);
        Config c = get(admin.describeConfigs(List.of(res)).all()).get(res);
        return c.get(key);
    }

    static String alter(String t, AlterConfigOp.OpType op, String key, String value, boolean validateOnly)
            throws Exception {
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, t);
        Map<ConfigResource, Collection<AlterConfigOp>> ops =
                Map.of(res, List.of(new AlterConfigOp(new ConfigEntry(key, value), op)));
        return outcome(admin.incrementalAlterConfigs(ops, new AlterConfigsOptions().validateOnly(validateOnly)).all());
    }

    /** Applies one op, then observes (and checks) the key's value and source. */
    static void step(String s, String label, String t, AlterConfigOp.OpType op, String key, String value,
                     boolean validateOnly, String wantValue, ConfigEntry.ConfigSource wantSource) throws Exception {
        String r = alter(t, op, key, value, validateOnly);
        obs(s, label + ".error", r);
        check(r.equals("NONE"), label + ": " + r);
        // Kafka applies a change through its metadata log, so a DescribeConfigs right after it may
        // still show the old value: poll (up to 10 s) until the expected one shows.
        String want = wantValue + ":" + wantSource;
        String got = "";
        for (long end = System.currentTimeMillis() + 10_000; ; Thread.sleep(100)) {
            ConfigEntry e = entry(t, key);
            got = e == null ? "(absent)" : e.value() + ":" + e.source();
            if (got.equals(want) || System.currentTimeMillis() > end) break;
        }
        obs(s, label + "." + key, got);
        check(got.equals(want), label + ": " + key + " = " + got + ", expected " + wantValue
                + ":" + wantSource);
    }

    static void incrementalAlterConfigs(String s) throws Exception {
        String t = name(s);
        ensureTopic(t, 1, Map.of());
        var SET = AlterConfigOp.OpType.SET;
        var DYN = ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG;
        var DEF = ConfigEntry.ConfigSource.DEFAULT_CONFIG;
        step(s, "validate_only_set", t, SET, "retention.ms", "1234567", true, "604800000", DEF);
        step(s, "set", t, SET, "retention.ms", "1234567", false, "1234567", DYN);
        step(s, "append", t, AlterConfigOp.OpType.APPEND, "cleanup.policy", "compact", false, "delete,compact", DYN);
        step(s, "subtract", t, AlterConfigOp.OpType.SUBTRACT, "cleanup.policy", "delete", false, "compact", DYN);
        step(s, "validate_only_delete", t, AlterConfigOp.OpType.DELETE, "retention.ms", null, true, "1234567", DYN);
        step(s, "delete", t, AlterConfigOp.OpType.DELETE, "retention.ms", null, false, "604800000", DEF);
        String unknown = alter(t, SET, "no.such.config", "1", false);
        obs(s, "unknown_config", unknown);
        check(unknown.startsWith("INVALID_CONFIG:"), "SET of an unknown config: " + unknown + ", expected INVALID_CONFIG");
        String bad = alter(t, SET, "retention.ms", "not-a-number", false);
        obs(s, "invalid_value", bad);
        check(bad.startsWith("INVALID_CONFIG:"), "SET retention.ms=not-a-number: " + bad);
        String appendNonList = alter(t, AlterConfigOp.OpType.APPEND, "retention.ms", "1", false);
        obs(s, "append_non_list", appendNonList);
        ConfigEntry cp = entry(t, "cleanup.policy");
        obs(s, "final.cleanup.policy", cp.value() + ":" + cp.source());
    }

    static void describeLogDirs(String s) throws Exception {
        String t = name(s);
        ensureTopic(t, 2, Map.of());
        long bytes = 0;
        KafkaProducer<byte[], byte[]> p = producer(Map.of());
        try {
            List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                byte[] v = b("value-" + i + "-" + "x".repeat(200));
                bytes += v.length;
                recs.add(new ProducerRecord<>(t, i % 2, b("k" + i), v));
            }
            produceAll(p, recs);
        } finally {
            closeQuietly(p);
        }
        int node = nodeId();
        Map<String, LogDirDescription> dirs = get(admin.describeLogDirs(List.of(node)).allDescriptions()).get(node);
        obs(s, "log_dirs", dirs.size());
        check(dirs.size() == 1, "expected one log dir, got " + dirs.keySet());
        String dir = dirs.keySet().iterator().next();
        LogDirDescription d = dirs.get(dir);
        obs(s, "error", d.error() == null ? "NONE" : d.error().getClass().getSimpleName());
        obs(s, "total_bytes_present", d.totalBytes().isPresent());
        obs(s, "usable_le_total", d.totalBytes().isPresent() && d.usableBytes().isPresent()
                && d.usableBytes().getAsLong() <= d.totalBytes().getAsLong());
        Map<Integer, ReplicaInfo> mine = new TreeMap<>();
        for (Map.Entry<TopicPartition, ReplicaInfo> e : d.replicaInfos().entrySet()) {
            if (e.getKey().topic().equals(t)) mine.put(e.getKey().partition(), e.getValue());
        }
        obs(s, "partitions", mine.keySet().stream().map(String::valueOf).collect(Collectors.joining(",")));
        check(mine.keySet().equals(Set.of(0, 1)), "the topic's partitions in the log dir: " + mine.keySet());
        long size = mine.values().stream().mapToLong(ReplicaInfo::size).sum();
        obs(s, "size_ge_produced", size >= bytes);
        check(size >= bytes, "replica sizes " + size + " < the " + bytes + " value bytes produced");
        obs(s, "offset_lag", mine.values().stream().map(r -> String.valueOf(r.offsetLag())).collect(Collectors.joining(",")));
        obs(s, "future", mine.values().stream().map(r -> String.valueOf(r.isFuture())).collect(Collectors.joining(",")));
        TopicPartitionReplica rep = new TopicPartitionReplica(t, 0, node);
        var info = get(admin.describeReplicaLogDirs(List.of(rep)).all()).get(rep);
        obs(s, "replica_log_dir_is_the_dir", dir.equals(info.getCurrentReplicaLogDir()));
        obs(s, "replica_future_dir", String.valueOf(info.getFutureReplicaLogDir()));
        check(dir.equals(info.getCurrentReplicaLogDir()), "describeReplicaLogDirs: " + info.getCurrentReplicaLogDir()
                + ", describeLogDirs: " + dir);
        TopicPartitionReplica none = new TopicPartitionReplica(t, 9, node);
        var missing = get(admin.describeReplicaLogDirs(List.of(none)).all()).get(none);
        obs(s, "unknown_partition_dir", String.valueOf(missing.getCurrentReplicaLogDir()));
    }

    static void describeFeatures(String s) throws Exception {
        FeatureMetadata fm = get(admin.describeFeatures().featureMetadata());
        Map<String, FinalizedVersionRange> fin = fm.finalizedFeatures();
        Map<String, SupportedVersionRange> sup = fm.supportedFeatures();
        System.err.println("java describeFeatures: finalized " + fin + " supported " + sup);
        for (String f : List.of("transaction.version", "group.version")) {
            FinalizedVersionRange r = fin.get(f);
            obs(s, f + ".finalized", r == null ? "(absent)" : r.minVersionLevel() + "-" + r.maxVersionLevel());
            SupportedVersionRange sv = sup.get(f);
            obs(s, f + ".supported", sv == null ? "(absent)" : sv.minVersion() + "-" + sv.maxVersion());
        }
        obs(s, "metadata.version.finalized", fin.containsKey("metadata.version"));
        obs(s, "metadata.version.supported", sup.containsKey("metadata.version"));
        obs(s, "epoch_present", fm.finalizedFeaturesEpoch().isPresent());
        FinalizedVersionRange tv = fin.get("transaction.version");
        check(tv != null && tv.maxVersionLevel() == 2, "transaction.version finalized " + tv);
        check(fin.containsKey("metadata.version"), "metadata.version not finalized");
    }

    static void describeCluster(String s) throws Exception {
        DescribeClusterResult r = admin.describeCluster();
        Collection<Node> nodes = get(r.nodes());
        Node controller = get(r.controller());
        String id = get(r.clusterId());
        obs(s, "nodes", nodes.stream().map(n -> String.valueOf(n.id())).collect(Collectors.joining(",")));
        obs(s, "node_port_is_bootstrap", nodes.stream().allMatch(n -> JavaCompat.bootstrap.endsWith(":" + n.port())));
        obs(s, "controller_is_node", controller != null && nodes.stream().anyMatch(n -> n.id() == controller.id()));
        obs(s, "cluster_id_present", id != null && !id.isEmpty());
        obs(s, "rack", nodes.stream().map(n -> String.valueOf(n.rack())).collect(Collectors.joining(",")));
        check(nodes.size() == 1, "nodes " + nodes);
        check(id != null && !id.isEmpty(), "no cluster id");
        var ops = get(admin.describeCluster(new org.apache.kafka.clients.admin.DescribeClusterOptions()
                .includeAuthorizedOperations(true)).authorizedOperations());
        obs(s, "authorized_operations", ops == null ? "null" : ops.stream().map(Enum::name).sorted()
                .collect(Collectors.joining(",")));
    }

    /** A quota entity as a sorted string: "client-id=<default>,user=alice". */
    static String entityStr(ClientQuotaEntity e) {
        return new TreeMap<>(e.entries()).entrySet().stream()
                .map(x -> x.getKey() + "=" + (x.getValue() == null ? "<default>" : x.getValue()))
                .collect(Collectors.joining(","));
    }

    static String quotasStr(Map<ClientQuotaEntity, Map<String, Double>> m) {
        TreeMap<String, String> out = new TreeMap<>();
        m.forEach((e, v) -> out.put(entityStr(e), new TreeMap<>(v).toString()));
        return out.toString();
    }

    /** alterClientQuotas then describeClientQuotas with exact, default and "any" filters. */
    /** DescribeClientQuotas until `done` holds (at most 10 s): the last answer. */
    static Map<ClientQuotaEntity, Map<String, Double>> describeQuotasUntil(ClientQuotaFilter filter,
            java.util.function.Predicate<Map<ClientQuotaEntity, Map<String, Double>>> done) throws Exception {
        long end = System.nanoTime() + 10_000_000_000L;
        Map<ClientQuotaEntity, Map<String, Double>> got = get(admin.describeClientQuotas(filter).entities());
        while (!done.test(got) && System.nanoTime() < end) {
            Thread.sleep(200);
            got = get(admin.describeClientQuotas(filter).entities());
        }
        return got;
    }

    static void clientQuotas(String s) throws Exception {
        String user = name(s) + "-user";
        ClientQuotaEntity u = new ClientQuotaEntity(Map.of(ClientQuotaEntity.USER, user));
        Map<String, String> uc = new HashMap<>();
        uc.put(ClientQuotaEntity.USER, user);
        uc.put(ClientQuotaEntity.CLIENT_ID, null);
        ClientQuotaEntity userDefaultClient = new ClientQuotaEntity(uc);
        get(admin.alterClientQuotas(List.of(
                new ClientQuotaAlteration(u, List.of(
                        new ClientQuotaAlteration.Op("producer_byte_rate", 1048576.0),
                        new ClientQuotaAlteration.Op("request_percentage", 12.5))),
                new ClientQuotaAlteration(userDefaultClient, List.of(
                        new ClientQuotaAlteration.Op("consumer_byte_rate", 2097152.0))))).all());
        ClientQuotaFilter ofUser = ClientQuotaFilter.contains(List.of(ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, user)));
        // Kafka's brokers answer Describe from their metadata image, which follows the controller's commit.
        Map<ClientQuotaEntity, Map<String, Double>> exact = describeQuotasUntil(ofUser, m -> m.size() == 2);
        obs(s, "exact_user", quotasStr(exact));
        Map<ClientQuotaEntity, Map<String, Double>> strict = get(admin.describeClientQuotas(
                ClientQuotaFilter.containsOnly(List.of(ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, user))))
                .entities());
        obs(s, "exact_user_strict", quotasStr(strict));
        Map<ClientQuotaEntity, Map<String, Double>> anyClient = get(admin.describeClientQuotas(
                ClientQuotaFilter.contains(List.of(ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, user),
                        ClientQuotaFilterComponent.ofEntityType(ClientQuotaEntity.CLIENT_ID)))).entities());
        obs(s, "user_any_client", quotasStr(anyClient));
        check(exact.size() == 2, "exact user filter gave " + exact);
        check(strict.size() == 1 && strict.get(u).get("producer_byte_rate") == 1048576.0, "strict gave " + strict);
        // Kafka's validation: an unknown key and a fractional byte rate are INVALID_REQUEST.
        var bad = admin.alterClientQuotas(List.of(
                new ClientQuotaAlteration(new ClientQuotaEntity(Map.of(ClientQuotaEntity.USER, user + "-bad")),
                        List.of(new ClientQuotaAlteration.Op("no_such_quota", 1.0))),
                new ClientQuotaAlteration(new ClientQuotaEntity(Map.of(ClientQuotaEntity.CLIENT_ID, user + "-c")),
                        List.of(new ClientQuotaAlteration.Op("producer_byte_rate", 1.5))))).values();
        TreeMap<String, String> outcomes = new TreeMap<>();
        for (var e : bad.entrySet()) outcomes.put(entityStr(e.getKey()), outcome(e.getValue()));
        obs(s, "invalid_alterations", outcomes.toString());
        // Remove everything again: the user's entities are gone.
        get(admin.alterClientQuotas(List.of(
                new ClientQuotaAlteration(u, List.of(new ClientQuotaAlteration.Op("producer_byte_rate", null),
                        new ClientQuotaAlteration.Op("request_percentage", null))),
                new ClientQuotaAlteration(userDefaultClient, List.of(
                        new ClientQuotaAlteration.Op("consumer_byte_rate", null))))).all());
        Map<ClientQuotaEntity, Map<String, Double>> after = describeQuotasUntil(ofUser, Map::isEmpty);
        obs(s, "after_remove", quotasStr(after));
        check(after.isEmpty(), "after removal " + after);
    }

    static String electOutcome(Optional<Throwable> o) {
        return o.isEmpty() ? "NONE" : errName(o.get());
    }

    static void electLeaders(String s) throws Exception {
        String t = name(s);
        ensureTopic(t, 2, Map.of());
        TopicPartition p0 = new TopicPartition(t, 0), p1 = new TopicPartition(t, 1);
        Map<TopicPartition, Optional<Throwable>> pref = get(admin.electLeaders(ElectionType.PREFERRED, Set.of(p0, p1))
                .partitions());
        String prefOut = electOutcome(pref.get(p0)) + "," + electOutcome(pref.get(p1));
        obs(s, "preferred", prefOut);
        check(prefOut.equals("ELECTION_NOT_NEEDED,ELECTION_NOT_NEEDED"), "PREFERRED election: " + prefOut);
        Map<TopicPartition, Optional<Throwable>> unclean = get(admin.electLeaders(ElectionType.UNCLEAN, Set.of(p0))
                .partitions());
        obs(s, "unclean", electOutcome(unclean.get(p0)));
        check(electOutcome(unclean.get(p0)).equals("ELECTION_NOT_NEEDED"), "UNCLEAN election: " + unclean);
        Map<TopicPartition, Optional<Throwable>> all = get(admin.electLeaders(ElectionType.PREFERRED, null).partitions());
        long mineInAll = all.keySet().stream().filter(tp -> tp.topic().equals(t)).count();
        obs(s, "all_partitions_this_topic", mineInAll);
        obs(s, "all_partitions_errors", all.values().stream().filter(Optional::isPresent).count());
        TopicPartition p99 = new TopicPartition(t, 99);
        String unknown;
        try {
            unknown = electOutcome(get(admin.electLeaders(ElectionType.PREFERRED, Set.of(p99)).partitions()).get(p99));
        } catch (ExecutionException e) {
            unknown = "call:" + errName(e);
        }
        obs(s, "unknown_partition", unknown);
    }

    static void listPartitionReassignments(String s) throws Exception {
        String t = name(s);
        ensureTopic(t, 1, Map.of());
        Map<TopicPartition, PartitionReassignment> all = get(admin.listPartitionReassignments().reassignments());
        obs(s, "all", all.size());
        check(all.isEmpty(), "reassignments in progress: " + all);
        TopicPartition tp = new TopicPartition(t, 0);
        obs(s, "of_partition", get(admin.listPartitionReassignments(Set.of(tp)).reassignments()).size());
        int node = nodeId();
        Map<TopicPartition, Optional<NewPartitionReassignment>> toSame =
                Map.of(tp, Optional.of(new NewPartitionReassignment(List.of(node))));
        String same = outcome(admin.alterPartitionReassignments(toSame).all());
        obs(s, "reassign_to_same_replica", same);
        check(same.equals("NONE"), "reassignment to the current replica: " + same);
        check(waitUntil(() -> {
            try { return get(admin.listPartitionReassignments().reassignments()).isEmpty(); }
            catch (Exception e) { return false; }
        }, 10), "a reassignment to the current replica is still listed after 10 s");
        Map<TopicPartition, Optional<NewPartitionReassignment>> cancel = new HashMap<>();
        cancel.put(tp, Optional.empty());
        String c = outcome(admin.alterPartitionReassignments(cancel).all());
        obs(s, "cancel_none_in_progress", c);
        check(c.startsWith("NO_REASSIGNMENT_IN_PROGRESS:"), "cancelling no reassignment: " + c);
        Map<TopicPartition, Optional<NewPartitionReassignment>> toUnknown =
                Map.of(tp, Optional.of(new NewPartitionReassignment(List.of(node + 100))));
        String bad = outcome(admin.alterPartitionReassignments(toUnknown).all());
        obs(s, "reassign_to_unknown_broker", bad);
    }

    static void describeMetadataQuorum(String s) throws Exception {
        QuorumInfo q = get(admin.describeMetadataQuorum().quorumInfo());
        int node = nodeId();
        System.err.println("java describeMetadataQuorum: " + q);
        obs(s, "leader_is_node", q.leaderId() == node);
        obs(s, "leader_epoch", q.leaderEpoch());
        obs(s, "voters_are_node", q.voters().stream().map(v -> String.valueOf(v.replicaId() == node))
                .collect(Collectors.joining(",")));
        obs(s, "observers", q.observers().size());
        obs(s, "high_watermark_positive", q.highWatermark() > 0);
        obs(s, "voter_caught_up", q.voters().stream().allMatch(v -> v.logEndOffset() >= q.highWatermark()));
        obs(s, "nodes", q.nodes().size());
        check(q.leaderId() == node, "leader " + q.leaderId() + ", broker " + node);
        check(q.voters().size() == 1 && q.voters().get(0).replicaId() == node, "voters " + q.voters());
    }

    static void compactedTopic(String s) throws Exception {
        String t = name(s);
        // Settings that let a cleaner compact it soon. Nothing below depends on whether it did: every
        // record goes out in one burst (one segment, the active one, which no cleaner touches), and
        // only the latest value per key is checked.
        ensureTopic(t, 1, Map.of("cleanup.policy", "compact", "segment.ms", "100", "min.cleanable.dirty.ratio", "0.01"));
        ConfigEntry cp = entry(t, "cleanup.policy");
        obs(s, "cleanup.policy", cp.value() + ":" + cp.source());
        check(cp.value().equals("compact"), "cleanup.policy " + cp.value());
        for (String k : List.of("segment.ms", "min.cleanable.dirty.ratio")) {
            ConfigEntry e = entry(t, k);
            obs(s, k, e.value() + ":" + e.source());
        }
        // A separate producer: the refused batch must not disturb the keyed records' sequence numbers.
        KafkaProducer<byte[], byte[]> kp = producer(Map.of());
        String keyless;
        try {
            kp.send(new ProducerRecord<>(t, 0, null, b("no-key"))).get(25, java.util.concurrent.TimeUnit.SECONDS);
            keyless = "NONE";
        } catch (ExecutionException e) {
            System.err.println("java compacted_topic keyless: " + describe(e));
            keyless = errName(e) + ":" + root(e).getClass().getSimpleName();
        } finally {
            closeQuietly(kp);
        }
        obs(s, "keyless_produce", keyless);
        check(keyless.startsWith("INVALID_RECORD:"), "a keyless record to a compacted topic: " + keyless);
        KafkaProducer<byte[], byte[]> p = producer(Map.of());
        try {
            List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
            for (int i = 0; i < 12; i++) recs.add(new ProducerRecord<>(t, 0, b("key-" + (i % 4)), b("v" + i)));
            var md = produceAll(p, recs);
            obs(s, "offsets", md.get(0).offset() + ".." + md.get(md.size() - 1).offset());
            check(md.get(0).offset() == 0 && md.get(md.size() - 1).offset() == 11, "acked offsets "
                    + md.get(0).offset() + ".." + md.get(md.size() - 1).offset());
        } finally {
            closeQuietly(p);
        }
        Map<String, String> latest = new TreeMap<>();
        var c = JavaCompat.consumer(null, Map.of());
        try {
            TopicPartition tp = new TopicPartition(t, 0);
            c.assign(List.of(tp));
            c.seek(tp, 0);
            long end = System.nanoTime() + 15_000_000_000L;
            while (c.position(tp) < 12 && System.nanoTime() < end) {
                for (var r : c.poll(java.time.Duration.ofMillis(500))) latest.put(str(r.key()), str(r.value()));
            }
        } finally {
            closeQuietly(c);
        }
        String l = latest.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(","));
        obs(s, "latest", l);
        check(l.equals("key-0=v8,key-1=v9,key-2=v10,key-3=v11"), "latest values " + l);
    }
}
