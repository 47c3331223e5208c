package dev.sluice.compat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ClassicGroupDescription;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.internals.AppInfoParser;

/**
 * Apache Kafka Java client (kafka-clients: Producer, Consumer, Admin) scenarios for compat-tests/run.
 *
 * <pre>java-compat [-group-protocol classic|consumer] BOOTSTRAP</pre>
 *
 * Output protocol and environment: see compat-tests/README.md ("Program contract"). The group protocol
 * flag sets group.protocol of every consumer; the runner runs the program twice (java-classic,
 * java-consumer). Topic and group names: compat-java-PROTOCOL-SCENARIO-RUNID.
 */
public final class JavaCompat {
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};

    static String bootstrap;
    static String missingBootstrap;
    static String protocol = "classic";
    static String rid;
    static long deadlineNanos;
    static double scenarioTimeout;

    static final Object OUT = new Object();
    static final Set<String> done = new HashSet<>();
    static int passed, failed;
    static final List<String> scenarios = new ArrayList<>();
    static final Map<String, Object> state = new ConcurrentHashMap<>();
    static Admin admin;

    /** A failed check: the message becomes the FAIL reason. */
    static final class Failed extends RuntimeException {
        Failed(String m) { super(m); }
    }

    interface Scenario { void run(String s) throws Exception; }

    static void check(boolean cond, String msg) {
        if (!cond) throw new Failed(msg);
    }

    // ------------------------------------------------------------------ output

    static String name(String scenario) {
        return ("compat-java-" + protocol + "-" + scenario + "-" + rid).replace('_', '-');
    }

    static void obs(String scenario, String key, Object value) {
        String v = String.valueOf(value).replace(rid, "<id>").replace(' ', '_').replace('\n', '_');
        synchronized (OUT) {
            System.out.println("OBS " + scenario + " " + key + "=" + v);
            System.out.flush();
        }
    }

    static void result(String line, Boolean ok, String s) {
        synchronized (OUT) {
            if (!done.add(s)) return;
            if (Boolean.TRUE.equals(ok)) passed++;
            else if (Boolean.FALSE.equals(ok)) failed++;
            System.out.println(line);
            System.out.flush();
        }
    }

    static void pass(String s) { result("PASS " + s, true, s); }

    static void fail(String s, String reason) {
        String r = String.join(" ", String.valueOf(reason).trim().split("\\s+"));
        if (r.length() > 400) r = r.substring(0, 400);
        result("FAIL " + s + ": " + r, false, s);
    }

    static void skip(String s, String reason) { result("SKIP " + s + ": " + reason, null, s); }

    static void finish() {
        synchronized (OUT) {
            System.out.println(passed + " passed, " + failed + " failed");
            System.out.flush();
            System.err.flush();
            Runtime.getRuntime().halt(failed > 0 ? 1 : 0);
        }
    }

    /** The exception that matters: unwraps ExecutionException and friends. */
    static Throwable root(Throwable e) {
        while ((e instanceof ExecutionException || e instanceof java.util.concurrent.CompletionException
                || (e instanceof org.apache.kafka.common.KafkaException && e.getCause() != null
                    && e.getClass() == org.apache.kafka.common.KafkaException.class))
               && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    /** Kafka protocol error name for a client exception (UNKNOWN_SERVER_ERROR when it is not one). */
    static String errName(Throwable e) {
        return Errors.forException(root(e)).name();
    }

    static String describe(Throwable e) {
        Throwable r = root(e);
        return r.getClass().getSimpleName() + (r.getMessage() == null ? "" : ": " + r.getMessage());
    }

    // ------------------------------------------------------------------ clients

    static Properties base(String servers) {
        Properties p = new Properties();
        p.put("bootstrap.servers", servers);
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", "15000");
        p.put("socket.connection.setup.timeout.ms", "5000");
        p.put("socket.connection.setup.timeout.max.ms", "10000");
        p.put("reconnect.backoff.max.ms", "1000");
        return p;
    }

    static Admin newAdmin(String servers) {
        Properties p = base(servers);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "compat-java-admin");
        return Admin.create(p);
    }

    /** Producer with the Java client's defaults (acks=all, enable.idempotence=true) plus bounded waits. */
    static KafkaProducer<byte[], byte[]> producer(Map<String, String> extra) {
        Properties p = base(bootstrap);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "20000");
        p.putAll(extra);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static KafkaConsumer<byte[], byte[]> consumer(String group, Map<String, String> extra) {
        Properties p = base(bootstrap);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            if (protocol.equals("classic")) {
                // The consumer protocol (KIP-848) rejects these: the broker owns session/heartbeat timing.
                p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
                p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
            }
        }
        p.putAll(extra);
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    static void closeQuietly(AutoCloseable c) {
        if (c == null) return;
        try {
            if (c instanceof KafkaConsumer) ((KafkaConsumer<?, ?>) c).close(Duration.ofSeconds(10));
            else if (c instanceof KafkaProducer) ((KafkaProducer<?, ?>) c).close(Duration.ofSeconds(10));
            else c.close();
        } catch (Exception e) {
            System.err.println("close: " + e);
        }
    }

    static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
        return f.get(20, TimeUnit.SECONDS);
    }

    static boolean waitUntil(java.util.function.BooleanSupplier pred, double seconds) throws InterruptedException {
        long end = System.nanoTime() + (long) (seconds * 1e9);
        while (System.nanoTime() < end) {
            if (pred.getAsBoolean()) return true;
            Thread.sleep(200);
        }
        return pred.getAsBoolean();
    }

    static Set<String> topicNames() {
        try {
            return get(admin.listTopics(new ListTopicsOptions().timeoutMs(5000)).names());
        } catch (Exception e) {
            return Set.of();
        }
    }

    static void ensureTopic(String t, int partitions, Map<String, String> config) throws Exception {
        try {
            get(admin.createTopics(List.of(new NewTopic(t, partitions, (short) 1).configs(config))).all());
        } catch (ExecutionException e) {
            if (!(root(e) instanceof TopicExistsException)) throw e;
        }
        check(waitUntil(() -> topicNames().contains(t), 10), "topic " + t + " not in metadata");
    }

    static List<RecordMetadata> produceAll(KafkaProducer<byte[], byte[]> p, List<ProducerRecord<byte[], byte[]>> recs)
            throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (ProducerRecord<byte[], byte[]> r : recs) fs.add(p.send(r));
        p.flush();
        List<RecordMetadata> out = new ArrayList<>();
        for (Future<RecordMetadata> f : fs) out.add(f.get(25, TimeUnit.SECONDS));
        return out;
    }

    static List<ConsumerRecord<byte[], byte[]>> readPartition(String t, int partition, int count, long offset,
                                                              double seconds) {
        KafkaConsumer<byte[], byte[]> c = consumer(null, Map.of());
        try {
            TopicPartition tp = new TopicPartition(t, partition);
            c.assign(List.of(tp));
            c.seek(tp, offset);
            List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
            long end = System.nanoTime() + (long) (seconds * 1e9);
            while (got.size() < count && System.nanoTime() < end) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) got.add(r);
            }
            return got;
        } finally {
            closeQuietly(c);
        }
    }

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static String str(byte[] x) { return x == null ? "null" : new String(x, StandardCharsets.UTF_8); }

    static String payload(String codec, int i) {
        return "value-" + i + "-" + codec + "-" + "abcdefgh".repeat(40);
    }

    static List<Header> headersFor(String codec, int i) {
        return List.of(new RecordHeader("h-index", b(String.valueOf(i))), new RecordHeader("h-codec", b(codec)),
                new RecordHeader("h-dup", b("a")), new RecordHeader("h-dup", b("b")));
    }

    static String headerString(Iterable<Header> hs) {
        List<String> l = new ArrayList<>();
        for (Header h : hs) l.add(h.key() + ":" + str(h.value()));
        return String.join(",", l);
    }

    static String joinOffsets(Collection<Long> offs) {
        return offs.stream().map(String::valueOf).collect(Collectors.joining(","));
    }

    static List<Long> range(long from, long to) {
        List<Long> l = new ArrayList<>();
        for (long i = from; i < to; i++) l.add(i);
        return l;
    }

    // ------------------------------------------------------------------ scenarios

    static void createTopic(String s) throws Exception {
        String t = name("create_topic");
        org.apache.kafka.clients.admin.CreateTopicsResult cr =
                admin.createTopics(List.of(new NewTopic(t, 3, (short) 1).configs(Map.of("retention.ms", "3600000"))));
        get(cr.all());
        obs(s, "create_error", "NONE");
        // What the CreateTopics response itself carries (v5+: partitions, replication factor, configs).
        obs(s, "response.num_partitions", get(cr.numPartitions(t)));
        obs(s, "response.replication_factor", get(cr.replicationFactor(t)));
        ConfigEntry rc = get(cr.config(t)).get("retention.ms");
        obs(s, "response.retention.ms", rc == null ? "(absent)" : rc.value() + ":" + rc.source());
        check(waitUntil(() -> topicNames().contains(t), 10), "created topic not in metadata");
        TopicDescription d = get(admin.describeTopics(List.of(t)).allTopicNames()).get(t);
        int parts = d.partitions().size();
        obs(s, "partitions", parts);
        check(parts == 3, "expected 3 partitions, metadata says " + parts);
        obs(s, "partition_ids", d.partitions().stream().map(p -> String.valueOf(p.partition()))
                .collect(Collectors.joining(",")));
        obs(s, "replicas_isr", d.partitions().stream().map(p -> p.replicas().size() + "/" + p.isr().size())
                .collect(Collectors.joining(",")));
        obs(s, "internal", d.isInternal());
        try {
            get(admin.createTopics(List.of(new NewTopic(t, 3, (short) 1))).all());
            throw new Failed("second create of the same topic succeeded");
        } catch (ExecutionException e) {
            obs(s, "duplicate_error", errName(e));
            check(root(e) instanceof TopicExistsException,
                    "duplicate create: expected TOPIC_ALREADY_EXISTS, got " + describe(e));
        }
    }

    static Scenario produce(String codec) {
        return s -> {
            String t = name(s);
            ensureTopic(t, 1, Map.of());
            KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec));
            List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                recs.add(new ProducerRecord<>(t, 0, b("key-" + i), b(payload(codec, i)), headersFor(codec, i)));
            }
            List<RecordMetadata> md;
            try {
                md = produceAll(p, recs);
            } catch (ExecutionException e) {
                obs(s, "produce_error", errName(e));
                throw new Failed("produce failed: " + describe(e));
            } finally {
                closeQuietly(p);
            }
            List<Long> offs = md.stream().map(RecordMetadata::offset).collect(Collectors.toList());
            obs(s, "offsets", joinOffsets(offs));
            check(offs.equals(range(0, 10)), "produce acks gave offsets " + offs + ", expected 0..9");
            List<ConsumerRecord<byte[], byte[]>> got = readPartition(t, 0, 10, 0, 15);
            check(got.size() == 10, "read back " + got.size() + " of 10 records");
            for (int i = 0; i < 10; i++) {
                ConsumerRecord<byte[], byte[]> r = got.get(i);
                check(r.offset() == i, "record " + i + " read at offset " + r.offset());
                check(Arrays.equals(r.key(), recs.get(i).key()), "key mismatch at offset " + r.offset() + ": " + str(r.key()));
                check(Arrays.equals(r.value(), recs.get(i).value()), "value mismatch at offset " + r.offset());
                String want = headerString(recs.get(i).headers()), have = headerString(r.headers());
                check(want.equals(have), "headers mismatch at offset " + r.offset() + ": " + have);
            }
            obs(s, "read_offsets", joinOffsets(got.stream().map(ConsumerRecord::offset).collect(Collectors.toList())));
            obs(s, "headers_0", headerString(got.get(0).headers()));
            obs(s, "timestamp_type", got.get(0).timestampType());
            obs(s, "records_ok", got.size());
            obs(s, "leader_epoch_0", got.get(0).leaderEpoch().map(String::valueOf).orElse("absent"));
            obs(s, "begin_end", offsetsRange(t));
        };
    }

    /** beginningOffsets..endOffsets of partition 0 (ListOffsets earliest/latest). */
    static String offsetsRange(String t) {
        KafkaConsumer<byte[], byte[]> c = consumer(null, Map.of());
        try {
            TopicPartition tp = new TopicPartition(t, 0);
            return c.beginningOffsets(List.of(tp), Duration.ofSeconds(10)).get(tp) + ".."
                    + c.endOffsets(List.of(tp), Duration.ofSeconds(10)).get(tp);
        } finally {
            closeQuietly(c);
        }
    }

    static void groupConsume(String s) throws Exception {
        String t = name("group_consume");
        String g = name("group_consume");
        state.put("group", g);
        state.put("group_topic", t);
        ensureTopic(t, 2, Map.of());
        KafkaProducer<byte[], byte[]> p = producer(Map.of());
        try {
            List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
            for (int i = 0; i < 6; i++) recs.add(new ProducerRecord<>(t, i % 2, b("k" + i), b("v" + i)));
            produceAll(p, recs);
        } finally {
            closeQuietly(p);
        }
        KafkaConsumer<byte[], byte[]> c = consumer(g, Map.of());
        if (scenarios.contains("commit")) {
            state.put("group_consumer", c);  // commit uses it, then closes it (the group becomes Empty)
        }
        try {
            consumeAsGroup(s, c, t, g);
        } finally {
            if (!scenarios.contains("commit")) closeQuietly(c);
        }
    }

    static void consumeAsGroup(String s, KafkaConsumer<byte[], byte[]> c, String t, String g) throws Exception {
        c.subscribe(List.of(t));
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        long end = System.nanoTime() + 25_000_000_000L;
        while (got.size() < 6 && System.nanoTime() < end) {
            for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) got.add(r);
        }
        check(got.size() == 6, "group consumer got " + got.size() + " of 6 records");
        List<Integer> assignment = c.assignment().stream().map(TopicPartition::partition).sorted()
                .collect(Collectors.toList());
        obs(s, "assignment", assignment.stream().map(String::valueOf).collect(Collectors.joining(",")));
        obs(s, "records", got.stream().map(r -> r.partition() + ":" + r.offset() + ":" + str(r.key())).sorted()
                .collect(Collectors.joining(",")));
        check(assignment.equals(List.of(0, 1)), "assignment " + assignment + ", expected 0,1");
        // The group as the Admin API sees it while its member is active (no assertion on timing-dependent
        // details beyond what a settled one-member group must show).
        ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(g)).all()).get(g);
        obs(s, "active.state", d.groupState());
        obs(s, "active.type", d.type());
        obs(s, "active.group_size", d.members().size());
        obs(s, "active.assignor", d.partitionAssignor());
        obs(s, "active.group_epoch", d.groupEpoch().map(String::valueOf).orElse("absent"));
        obs(s, "active.target_assignment_epoch", d.targetAssignmentEpoch().map(String::valueOf).orElse("absent"));
        if (d.members().size() == 1) {
            org.apache.kafka.clients.admin.MemberDescription m = d.members().iterator().next();
            obs(s, "active.assigned", m.assignment().topicPartitions().stream().map(TopicPartition::partition)
                    .sorted().map(String::valueOf).collect(Collectors.joining(",")));
            obs(s, "active.own_epoch", m.memberEpoch().map(String::valueOf).orElse("absent"));
            obs(s, "active.target_assigned", m.targetAssignment().map(x -> x.topicPartitions().stream()
                    .map(TopicPartition::partition).sorted().map(String::valueOf).collect(Collectors.joining(",")))
                    .orElse("absent"));
            obs(s, "active.upgraded", m.upgraded().map(String::valueOf).orElse("absent"));
        }
        check(String.valueOf(d.groupState()).equalsIgnoreCase("Stable"), "active group state " + d.groupState()
                + ", expected Stable");
        check(d.members().size() == 1, "active group has " + d.members().size() + " members, expected 1");
    }

    @SuppressWarnings("unchecked")
    static void commit(String s) throws Exception {
        KafkaConsumer<byte[], byte[]> c = (KafkaConsumer<byte[], byte[]>) state.get("group_consumer");
        check(c != null, "no group consumer (group_consume failed)");
        String t = (String) state.get("group_topic");
        try {
            TopicPartition p0 = new TopicPartition(t, 0), p1 = new TopicPartition(t, 1);
            c.commitSync(Map.of(p0, new OffsetAndMetadata(3, "compat-meta-0"), p1, new OffsetAndMetadata(3, "compat-meta-1")),
                    Duration.ofSeconds(15));
            Map<TopicPartition, OffsetAndMetadata> com = c.committed(Set.of(p0, p1), Duration.ofSeconds(15));
            OffsetAndMetadata c0 = com.get(p0), c1 = com.get(p1);
            String offs = "0:" + (c0 == null ? "null" : c0.offset()) + ",1:" + (c1 == null ? "null" : c1.offset());
            String meta = "0:" + (c0 == null ? "null" : c0.metadata()) + ",1:" + (c1 == null ? "null" : c1.metadata());
            obs(s, "committed", offs);
            obs(s, "metadata", meta);
            obs(s, "leader_epoch", (c0 == null ? "null" : c0.leaderEpoch().map(String::valueOf).orElse("absent")) + ","
                    + (c1 == null ? "null" : c1.leaderEpoch().map(String::valueOf).orElse("absent")));
            check(offs.equals("0:3,1:3"), "committed offsets read back as " + offs + ", expected 0:3,1:3");
            check(meta.equals("0:compat-meta-0,1:compat-meta-1"), "committed metadata read back as " + meta);
            // Also through the Admin API (OffsetFetch from the admin client).
            Map<TopicPartition, OffsetAndMetadata> adm = get(admin.listConsumerGroupOffsets((String) state.get("group"))
                    .partitionsToOffsetAndMetadata());
            String aoffs = new TreeMap<>(adm.entrySet().stream().collect(Collectors.toMap(
                    e -> e.getKey().partition(), e -> e.getValue().offset()))).toString().replace(" ", "");
            obs(s, "admin_committed", aoffs);
            check(aoffs.equals("{0=3,1=3}"), "Admin listConsumerGroupOffsets gave " + aoffs);
        } finally {
            closeQuietly(c);
            state.remove("group_consumer");
        }
    }

    static void groupRestart(String s) throws Exception {
        String t = name("group_restart");
        String g = name("group_restart");
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
        KafkaConsumer<byte[], byte[]> c = consumer(g, Map.of(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "4"));
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        try {
            c.subscribe(List.of(t));
            long end = System.nanoTime() + 20_000_000_000L;
            while (got.size() < 4 && System.nanoTime() < end) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) if (got.size() < 4) got.add(r);
            }
            check(got.size() == 4, "first consumer got " + got.size() + " of 4");
            obs(s, "first_offsets", joinOffsets(got.stream().map(ConsumerRecord::offset).collect(Collectors.toList())));
            c.commitSync(Map.of(tp, new OffsetAndMetadata(got.get(3).offset() + 1)), Duration.ofSeconds(15));
        } finally {
            closeQuietly(c);
        }
        KafkaConsumer<byte[], byte[]> c2 = consumer(g, Map.of());
        try {
            c2.subscribe(List.of(t));
            List<Long> offs = new ArrayList<>();
            long end = System.nanoTime() + 20_000_000_000L;
            while (offs.size() < 6 && System.nanoTime() < end) {
                for (ConsumerRecord<byte[], byte[]> r : c2.poll(Duration.ofMillis(500))) offs.add(r.offset());
            }
            for (ConsumerRecord<byte[], byte[]> r : c2.poll(Duration.ofMillis(1000))) offs.add(r.offset());
            obs(s, "second_offsets", joinOffsets(offs));
            check(offs.equals(range(4, 10)), "restarted consumer read offsets " + offs + ", expected 4..9");
        } finally {
            closeQuietly(c2);
        }
    }

    static void seekTimestamp(String s) throws Exception {
        String t = name("seek_timestamp");
        ensureTopic(t, 1, Map.of());
        long base = (System.currentTimeMillis() / 1000 - 60) * 1000;
        KafkaProducer<byte[], byte[]> p = producer(Map.of());
        try {
            List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
            for (int i = 0; i < 3; i++) recs.add(new ProducerRecord<>(t, 0, base + 1000L * i, b("k" + i), b("v" + i)));
            produceAll(p, recs);
        } finally {
            closeQuietly(p);
        }
        TopicPartition tp = new TopicPartition(t, 0);
        Map<String, Long> probes = new LinkedHashMap<>();
        probes.put("before_first", base - 5000);
        probes.put("mid", base + 500);
        probes.put("exact", base + 2000);
        probes.put("after_last", base + 60000);
        Map<String, Long> expected = Map.of("before_first", 0L, "mid", 1L, "exact", 2L, "after_last", -1L);
        KafkaConsumer<byte[], byte[]> c = consumer(null, Map.of());
        try {
            c.assign(List.of(tp));
            Map<String, Long> res = new LinkedHashMap<>();
            for (Map.Entry<String, Long> e : probes.entrySet()) {
                Map<TopicPartition, OffsetAndTimestamp> r = c.offsetsForTimes(Map.of(tp, e.getValue()), Duration.ofSeconds(10));
                OffsetAndTimestamp ot = r.get(tp);
                // The Java client maps "no record at or after the timestamp" (offset -1) to null.
                long off = ot == null ? -1 : ot.offset();
                res.put(e.getKey(), off);
                obs(s, e.getKey(), off);
                if (ot != null) {
                    obs(s, e.getKey() + ".found_ts_delta", ot.timestamp() - base);
                    obs(s, e.getKey() + ".leader_epoch", ot.leaderEpoch().map(String::valueOf).orElse("absent"));
                }
            }
            check(res.equals(expected), "offsetsForTimes gave " + res + ", expected " + expected);
            // Seek to each looked-up offset and read the record there; after_last (-1): seek to the end.
            for (Map.Entry<String, Long> e : res.entrySet()) {
                if (e.getValue() < 0) {
                    c.seekToEnd(List.of(tp));
                    long pos = c.position(tp, Duration.ofSeconds(10));
                    obs(s, e.getKey() + ".end_position", pos);
                    check(pos == 3, "position after seekToEnd " + pos + ", expected 3");
                    int n = c.poll(Duration.ofMillis(500)).count();
                    check(n == 0, "read " + n + " records past the end");
                    continue;
                }
                c.seek(tp, e.getValue());
                ConsumerRecord<byte[], byte[]> got = null;
                long end = System.nanoTime() + 10_000_000_000L;
                while (got == null && System.nanoTime() < end) {
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                        if (got == null) got = r;
                    }
                }
                check(got != null, "nothing read after seek to " + e.getValue() + " (" + e.getKey() + ")");
                String k = str(got.key());
                obs(s, e.getKey() + ".record", got.offset() + ":" + k + ":" + (got.timestamp() - base) + ":" + got.timestampType());
                check(got.offset() == e.getValue() && k.equals("k" + e.getValue()),
                        "seek to " + e.getValue() + " read offset " + got.offset() + " key " + k);
                check(got.timestamp() == base + 1000 * e.getValue(),
                        "record timestamp " + got.timestamp() + " != produced " + (base + 1000 * e.getValue()));
            }
        } finally {
            closeQuietly(c);
        }
    }

    static void listGroups(String s) throws Exception {
        String g = (String) state.get("group");
        check(g != null, "no group from group_consume");
        Collection<GroupListing> all = get(admin.listGroups().all());
        GroupListing found = null;
        for (GroupListing l : all) if (l.groupId().equals(g)) found = l;
        check(found != null, "group " + g + " not in ListGroups (" + all.size() + " groups listed)");
        obs(s, "found", true);
        obs(s, "type", found.type().map(Object::toString).orElse("absent"));
        obs(s, "protocol_type", found.protocol());
        obs(s, "state", found.groupState().map(Object::toString).orElse("absent"));
        obs(s, "is_simple", found.isSimpleConsumerGroup());
        check(found.protocol().equals("consumer"), "protocol type " + found.protocol() + ", expected consumer");
        // ListGroups with a state filter (v4+) and a type filter (v5+).
        boolean inEmpty = get(admin.listGroups(new org.apache.kafka.clients.admin.ListGroupsOptions()
                .inGroupStates(Set.of(org.apache.kafka.common.GroupState.EMPTY))).all()).stream()
                .anyMatch(l -> l.groupId().equals(g));
        boolean inStable = get(admin.listGroups(new org.apache.kafka.clients.admin.ListGroupsOptions()
                .inGroupStates(Set.of(org.apache.kafka.common.GroupState.STABLE))).all()).stream()
                .anyMatch(l -> l.groupId().equals(g));
        org.apache.kafka.common.GroupType gt = protocol.equals("consumer") ? org.apache.kafka.common.GroupType.CONSUMER
                : org.apache.kafka.common.GroupType.CLASSIC;
        boolean inType = get(admin.listGroups(new org.apache.kafka.clients.admin.ListGroupsOptions()
                .withTypes(Set.of(gt))).all()).stream().anyMatch(l -> l.groupId().equals(g));
        obs(s, "filter.empty", inEmpty);
        obs(s, "filter.stable", inStable);
        obs(s, "filter.type", inType);
        check(inEmpty && !inStable && inType, "ListGroups filters: in Empty=" + inEmpty + " in Stable=" + inStable
                + " in type " + gt + "=" + inType + ", expected true/false/true");
        String wantType = protocol.equals("consumer") ? "Consumer" : "Classic";
        check(found.type().map(Object::toString).orElse("absent").equalsIgnoreCase(wantType),
                "group type " + found.type() + ", expected " + wantType);
    }

    static void describeGroups(String s) throws Exception {
        String g = (String) state.get("group");
        check(g != null, "no group from group_consume");
        // Admin.describeConsumerGroups: DescribeGroups for classic groups; for consumer (KIP-848) groups it
        // sends ConsumerGroupDescribe, which reports the group type CONSUMER.
        describeUnknownGroup(s);  // observed only: what a group that never existed looks like
        ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(g)).all()).get(g);
        obs(s, "state", d.groupState());
        obs(s, "type", d.type());
        obs(s, "group_size", d.members().size());
        obs(s, "is_simple", d.isSimpleConsumerGroup());
        obs(s, "assignor", d.partitionAssignor());
        obs(s, "group_epoch", d.groupEpoch().map(String::valueOf).orElse("absent"));
        obs(s, "target_assignment_epoch", d.targetAssignmentEpoch().map(String::valueOf).orElse("absent"));
        check(d.groupId().equals(g), "described " + d.groupId());
        check(String.valueOf(d.groupState()).equalsIgnoreCase("Empty"),
                "group state " + d.groupState() + ", expected Empty after its only member left");
        check(d.members().isEmpty(), d.members().size() + " members, expected 0");
        // The plain DescribeGroups request (Admin.describeClassicGroups) exposes the protocol type.
        try {
            ClassicGroupDescription cd = get(admin.describeClassicGroups(List.of(g)).all()).get(g);
            obs(s, "classic.protocol_type", cd.protocol());
            obs(s, "classic.state", cd.state());
            obs(s, "classic.group_size", cd.members().size());
            check(protocol.equals("classic"), "DescribeGroups described consumer-protocol group " + g
                    + " (state " + cd.state() + "); Kafka 4.4 answers GROUP_ID_NOT_FOUND");
            check(String.valueOf(cd.state()).equalsIgnoreCase("Empty"), "DescribeGroups state " + cd.state());
            check("consumer".equals(cd.protocol()), "DescribeGroups protocol type " + cd.protocol() + ", expected consumer");
            check(String.valueOf(d.type()).equalsIgnoreCase("Classic"), "group type " + d.type() + ", expected Classic");
        } catch (ExecutionException e) {
            obs(s, "classic.error", errName(e));
            // Kafka 4.4 answers DescribeGroups for a consumer-protocol group with GROUP_ID_NOT_FOUND
            // ("Group ... is not a classic group"); its protocol type is then only in ListGroups.
            check(protocol.equals("consumer") && errName(e).equals("GROUP_ID_NOT_FOUND"),
                    "DescribeGroups failed: " + describe(e));
            check(String.valueOf(d.type()).equalsIgnoreCase("Consumer"), "group type " + d.type() + ", expected Consumer");
            GroupListing found = null;
            for (GroupListing l : get(admin.listGroups().all())) if (l.groupId().equals(g)) found = l;
            check(found != null, "group not in ListGroups");
            obs(s, "listed.protocol_type", found.protocol());
            check("consumer".equals(found.protocol()), "ListGroups protocol type " + found.protocol() + ", expected consumer");
        }
    }

    static void describeUnknownGroup(String s) {
        String g = name("describe_groups") + "-never-joined";
        try {
            ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(g)).all()).get(g);
            obs(s, "unknown_group", "state:" + d.groupState() + ",members:" + d.members().size());
        } catch (Exception e) {
            obs(s, "unknown_group", "error:" + errName(e));
        }
    }

    static void describeConfigs(String s) throws Exception {
        String t = name("create_topic");
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, t);
        Config cfg = get(admin.describeConfigs(List.of(res)).all()).get(res);
        ConfigEntry r = cfg.get("retention.ms");
        check(r != null, "retention.ms missing from " + cfg.entries().size() + " configs");
        obs(s, "retention.ms", r.value());
        obs(s, "retention.ms.source", r.source());
        for (String k : List.of("cleanup.policy", "max.message.bytes", "compression.type", "segment.bytes",
                "min.insync.replicas")) {
            ConfigEntry e = cfg.get(k);
            if (e != null) {
                obs(s, k, e.value());
                obs(s, k + ".source", e.source());
            } else {
                obs(s, k, "(absent)");
            }
        }
        obs(s, "count_gt_10", cfg.entries().size() > 10);
        obs(s, "names", cfg.entries().stream().map(ConfigEntry::name).sorted().collect(Collectors.joining(",")));
        obs(s, "non_default", cfg.entries().stream().filter(e -> e.source() != ConfigEntry.ConfigSource.DEFAULT_CONFIG)
                .map(e -> e.name() + ":" + e.source()).sorted().collect(Collectors.joining(",")));
        obs(s, "read_only", cfg.entries().stream().filter(ConfigEntry::isReadOnly).map(ConfigEntry::name).sorted()
                .collect(Collectors.joining(",")));
        obs(s, "sensitive", cfg.entries().stream().filter(ConfigEntry::isSensitive).map(ConfigEntry::name).sorted()
                .collect(Collectors.joining(",")));
        check("3600000".equals(r.value()), "retention.ms = " + r.value());
        check(r.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                "retention.ms source " + r.source() + ", expected DYNAMIC_TOPIC_CONFIG");
        ConfigEntry cp = cfg.get("cleanup.policy");
        check(cp != null && "delete".equals(cp.value()), "cleanup.policy missing or not delete: " + cp);
        check(cp.source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG,
                "cleanup.policy source " + cp.source() + ", expected DEFAULT_CONFIG");
    }

    static void deleteTopic(String s) throws Exception {
        String t = name("create_topic");
        get(admin.deleteTopics(List.of(t)).all());
        boolean gone = waitUntil(() -> !topicNames().contains(t), 10);
        obs(s, "gone", gone);
        check(gone, "topic still in metadata 10s after delete");
        try {
            get(admin.describeTopics(List.of(t)).allTopicNames());
            obs(s, "describe_after_delete", "found");
        } catch (ExecutionException e) {
            obs(s, "describe_after_delete", errName(e));
        }
        try {
            get(admin.deleteTopics(List.of(t)).all());
            throw new Failed("deleting a deleted topic succeeded");
        } catch (ExecutionException e) {
            obs(s, "second_delete_error", errName(e));
            check(root(e) instanceof UnknownTopicOrPartitionException, "second delete: " + describe(e));
        }
    }

    static void idempotent(String s) throws Exception {
        String t = name("idempotent_producer");
        ensureTopic(t, 1, Map.of());
        KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true",
                ProducerConfig.ACKS_CONFIG, "all"));
        List<RecordMetadata> md;
        try {
            List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
            for (int i = 0; i < 5; i++) recs.add(new ProducerRecord<>(t, 0, b("k" + i), b("v" + i)));
            md = produceAll(p, recs);
        } catch (ExecutionException e) {
            obs(s, "produce_error", errName(e));
            throw new Failed("idempotent produce failed: " + describe(e));
        } finally {
            closeQuietly(p);
        }
        List<Long> acked = md.stream().map(RecordMetadata::offset).collect(Collectors.toList());
        obs(s, "acked_offsets", joinOffsets(acked));
        check(acked.equals(range(0, 5)), "acked offsets " + acked);
        List<ConsumerRecord<byte[], byte[]>> got = readPartition(t, 0, 5, 0, 15);
        List<Long> offs = got.stream().map(ConsumerRecord::offset).collect(Collectors.toList());
        List<String> vals = got.stream().map(r -> str(r.value())).collect(Collectors.toList());
        obs(s, "offsets", joinOffsets(offs));
        obs(s, "values", String.join(",", vals));
        check(offs.equals(range(0, 5)), "offsets " + offs + ", expected 0..4");
        check(vals.equals(List.of("v0", "v1", "v2", "v3", "v4")), "values " + vals);
        String range = offsetsRange(t);  // a duplicate would show as a log end offset past 5
        obs(s, "begin_end", range);
        check(range.equals("0..5"), "log offsets " + range + ", expected 0..5");
    }

    /*
     * missing_topic. The Java producer treats UNKNOWN_TOPIC_OR_PARTITION in a Metadata response as
     * retriable: send() blocks up to max.block.ms and then fails with a TimeoutException "Topic ... not
     * present in metadata after N ms" (UNKNOWN_TOPIC_OR_PARTITION is only logged). So the producer is run
     * (bounded, 5 s) and its outcome observed, but the unknown-topic error itself is asserted through the
     * Admin path: describeTopics of the never-created topic, which surfaces the broker's Metadata error
     * as UnknownTopicOrPartitionException, plus KafkaConsumer.partitionsFor (an empty list in Kafka 4).
     */
    static void missingTopic(String s) throws Exception {
        if (missingBootstrap == null || missingBootstrap.isEmpty()) {
            skip(s, "COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)");
            return;
        }
        String t = name("missing_topic");
        Properties pp = base(missingBootstrap);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "5000");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "10000");
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer());
        try {
            p.send(new ProducerRecord<>(t, b("x"))).get(15, TimeUnit.SECONDS);
            throw new Failed("produce to a missing topic succeeded (is auto-create off?)");
        } catch (ExecutionException | org.apache.kafka.common.KafkaException e) {
            Throwable r = root(e);
            obs(s, "producer_exception", r.getClass().getSimpleName());
            boolean notPresent = String.valueOf(r.getMessage()).contains("not present in metadata");
            obs(s, "producer_not_present_in_metadata", notPresent);
            check(r instanceof UnknownTopicOrPartitionException
                  || (r instanceof org.apache.kafka.common.errors.TimeoutException && notPresent),
                  "producer: expected unknown topic (or the Java client's 'not present in metadata'), got " + describe(e));
        } finally {
            closeQuietly(p);
        }
        Admin a = newAdmin(missingBootstrap);
        try {
            get(a.describeTopics(List.of(t)).allTopicNames());
            throw new Failed("describeTopics of a missing topic succeeded (is auto-create off?)");
        } catch (ExecutionException e) {
            obs(s, "error", errName(e));
            check(root(e) instanceof UnknownTopicOrPartitionException,
                  "describeTopics: expected UNKNOWN_TOPIC_OR_PARTITION, got " + describe(e));
        } finally {
            a.close(Duration.ofSeconds(5));
        }
        Properties cp = base(missingBootstrap);
        cp.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        try {
            List<?> parts = c.partitionsFor(t, Duration.ofSeconds(10));
            obs(s, "consumer_partitions_for", parts == null ? "null" : parts.size());
        } catch (Exception e) {
            obs(s, "consumer_partitions_for_error", errName(e));
        } finally {
            closeQuietly(c);
        }
        check(!topicNamesOf(missingBootstrap).contains(t), "the missing topic was created");
    }

    static Set<String> topicNamesOf(String servers) {
        try (Admin a = newAdmin(servers)) {
            return get(a.listTopics(new ListTopicsOptions().timeoutMs(5000)).names());
        } catch (Exception e) {
            return Set.of();
        }
    }

    static void oversize(String s) throws Exception {
        String t = name("oversize_record");
        ensureTopic(t, 1, Map.of("max.message.bytes", "10000"));
        byte[] big = new byte[20000];
        new Random(42).nextBytes(big);
        KafkaProducer<byte[], byte[]> p = producer(Map.of());
        try {
            p.send(new ProducerRecord<>(t, 0, null, big)).get(25, TimeUnit.SECONDS);
            throw new Failed("20000-byte record accepted by a topic with max.message.bytes=10000");
        } catch (ExecutionException e) {
            obs(s, "error", errName(e));
            check(root(e) instanceof RecordTooLargeException, "expected MESSAGE_TOO_LARGE, got " + describe(e));
        } finally {
            closeQuietly(p);
        }
    }

    // ------------------------------------------------------------------ main

    public static void main(String[] args) throws Exception {
        List<String> pos = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("-group-protocol") || args[i].equals("--group-protocol")) {
                protocol = args[++i];
            } else {
                pos.add(args[i]);
            }
        }
        if (pos.size() != 1 || !(protocol.equals("classic") || protocol.equals("consumer"))) {
            System.err.println("usage: java-compat [-group-protocol classic|consumer] BOOTSTRAP");
            System.exit(2);
        }
        bootstrap = pos.get(0);
        missingBootstrap = System.getenv().getOrDefault("COMPAT_MISSING_BOOTSTRAP", "");
        rid = System.getenv("COMPAT_RUN_ID");
        if (rid == null || rid.isEmpty()) {
            String abc = "abcdefghijklmnopqrstuvwxyz0123456789";
            Random r = new Random();
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < 8; i++) sb.append(abc.charAt(r.nextInt(abc.length())));
            rid = sb.toString();
        }
        double deadline = Double.parseDouble(System.getenv().getOrDefault("COMPAT_DEADLINE", "240"));
        scenarioTimeout = Double.parseDouble(System.getenv().getOrDefault("COMPAT_SCENARIO_TIMEOUT", "40"));
        deadlineNanos = System.nanoTime() + (long) (deadline * 1e9);

        Map<String, Scenario> all = new LinkedHashMap<>();
        all.put("create_topic", JavaCompat::createTopic);
        for (String c : CODECS) all.put("produce_" + c, produce(c));
        all.put("group_consume", JavaCompat::groupConsume);
        all.put("commit", JavaCompat::commit);
        all.put("group_restart", JavaCompat::groupRestart);
        all.put("seek_timestamp", JavaCompat::seekTimestamp);
        all.put("list_groups", JavaCompat::listGroups);
        all.put("describe_groups", JavaCompat::describeGroups);
        all.put("describe_configs", JavaCompat::describeConfigs);
        all.put("delete_topic", JavaCompat::deleteTopic);
        all.put("idempotent_producer", JavaCompat::idempotent);
        all.put("missing_topic", JavaCompat::missingTopic);
        all.put("oversize_record", JavaCompat::oversize);
        all.put("txn_commit_abort", Transactions::commitAbort);
        all.put("txn_consume_transform_produce", Transactions::consumeTransformProduce);
        all.put("txn_zombie_fence", Transactions::zombieFence);
        all.put("txn_timeout", Transactions::timeout);
        all.put("admin_create_partitions", AdminScenarios::createPartitions);
        all.put("admin_delete_records", AdminScenarios::deleteRecords);
        all.put("admin_incremental_alter_configs", AdminScenarios::incrementalAlterConfigs);
        all.put("admin_describe_log_dirs", AdminScenarios::describeLogDirs);
        all.put("admin_describe_features", AdminScenarios::describeFeatures);
        all.put("admin_describe_cluster", AdminScenarios::describeCluster);
        all.put("admin_elect_leaders", AdminScenarios::electLeaders);
        all.put("admin_list_partition_reassignments", AdminScenarios::listPartitionReassignments);
        all.put("admin_describe_metadata_quorum", AdminScenarios::describeMetadataQuorum);
        all.put("compacted_topic", AdminScenarios::compactedTopic);
        all.put("secure_scram_sasl_ssl", SecurityScenarios::scramSaslSsl);
        all.put("secure_scram_admin_user", SecurityScenarios::scramAdminUser);
        all.put("secure_mtls", SecurityScenarios::mtls);
        all.put("admin_client_quotas", AdminScenarios::clientQuotas);

        Set<String> only = new HashSet<>();
        for (String x : System.getenv().getOrDefault("COMPAT_SCENARIOS", "").split(",")) if (!x.isEmpty()) only.add(x);
        for (String n : all.keySet()) if (only.isEmpty() || only.contains(n)) scenarios.add(n);

        System.out.println("# kafka-clients " + AppInfoParser.getVersion() + " (group.protocol=" + protocol + ", Java "
                + System.getProperty("java.version") + ")");
        System.out.println("SCENARIOS " + String.join(" ", scenarios));
        System.out.flush();

        Thread wd = new Thread(() -> {
            while (System.nanoTime() < deadlineNanos) {
                try { Thread.sleep(250); } catch (InterruptedException e) { return; }
            }
            for (String n : scenarios) fail(n, "watchdog: program deadline reached");
            finish();
        }, "watchdog");
        wd.setDaemon(true);
        wd.start();

        // Fail fast when the broker is unreachable: one bounded metadata call, then FAIL everything.
        admin = newAdmin(bootstrap);
        try {
            Collection<?> nodes;
            try {
                nodes = admin.describeCluster().nodes().get(10, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                throw new IllegalStateException("DescribeCluster got no answer within 10 s");
            }
            if (nodes.isEmpty()) throw new IllegalStateException("no brokers in metadata");
        } catch (Exception e) {
            for (String n : scenarios) fail(n, "preflight against " + bootstrap + " failed (broker down?): " + describe(e));
            finish();
        }

        for (String n : scenarios) {
            Scenario fn = all.get(n);
            Map<String, Throwable> box = new HashMap<>();
            Thread t = new Thread(() -> {
                try {
                    fn.run(n);
                } catch (Throwable e) {
                    synchronized (box) { box.put("err", e); }
                }
            }, "scenario-" + n);
            t.setDaemon(true);
            t.start();
            long left = Math.max(100, Math.min((long) (scenarioTimeout * 1000), (deadlineNanos - System.nanoTime()) / 1_000_000));
            t.join(left);
            if (t.isAlive()) {
                if (System.nanoTime() >= deadlineNanos) {
                    Thread.sleep(5000);  // the watchdog reports every unfinished scenario and exits
                }
                fail(n, String.format("timed out after %.0fs", scenarioTimeout));
                t.interrupt();
                continue;
            }
            Throwable e;
            synchronized (box) { e = box.get("err"); }
            if (e == null) {
                pass(n);  // no-op when the scenario already reported SKIP
            } else if (e instanceof Failed) {
                fail(n, e.getMessage());
            } else {
                e.printStackTrace(System.err);
                fail(n, describe(e));
            }
        }
        finish();
    }
}
