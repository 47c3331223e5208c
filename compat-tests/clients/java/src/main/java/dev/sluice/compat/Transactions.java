package dev.sluice.compat;

import static dev.sluice.compat.JavaCompat.admin;
import static dev.sluice.compat.JavaCompat.b;
import static dev.sluice.compat.JavaCompat.check;
import static dev.sluice.compat.JavaCompat.closeQuietly;
import static dev.sluice.compat.JavaCompat.consumer;
import static dev.sluice.compat.JavaCompat.describe;
import static dev.sluice.compat.JavaCompat.ensureTopic;
import static dev.sluice.compat.JavaCompat.errName;
import static dev.sluice.compat.JavaCompat.get;
import static dev.sluice.compat.JavaCompat.name;
import static dev.sluice.compat.JavaCompat.obs;
import static dev.sluice.compat.JavaCompat.producer;
import static dev.sluice.compat.JavaCompat.root;
import static dev.sluice.compat.JavaCompat.str;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidTxnTimeoutException;
import org.apache.kafka.common.protocol.Errors;

/**
 * The transaction scenarios of the Java program (txn_*): a transactional KafkaProducer
 * (initTransactions / beginTransaction / commitTransaction / abortTransaction /
 * sendOffsetsToTransaction) read back by read_committed and read_uncommitted consumers.
 * Every transactional.id carries the run id, so runs against a shared cluster do not fence each other.
 */
final class Transactions {
    private Transactions() {}

    static final String RC = "read_committed", RU = "read_uncommitted";

    static KafkaProducer<byte[], byte[]> txnProducer(String txid, Map<String, String> extra) {
        Map<String, String> m = new HashMap<>(extra);
        m.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid);
        return producer(m);
    }

    /** A group-less consumer of every partition of t under an isolation level. */
    static KafkaConsumer<byte[], byte[]> reader(String t, int partitions, String isolation) {
        KafkaConsumer<byte[], byte[]> c = consumer(null, Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation));
        List<TopicPartition> tps = tps(t, partitions);
        c.assign(tps);
        c.seekToBeginning(tps);
        return c;
    }

    static List<TopicPartition> tps(String t, int partitions) {
        List<TopicPartition> l = new ArrayList<>();
        for (int p = 0; p < partitions; p++) l.add(new TopicPartition(t, p));
        return l;
    }

    /**
     * Everything of t visible under the isolation level: reads until every position reaches the end
     * offset the same consumer lists (the last stable offset under read_committed, the high watermark
     * otherwise), so a duplicate or an extra record shows. Partition -> records in offset order.
     */
    static Map<Integer, List<ConsumerRecord<byte[], byte[]>>> readAll(String t, int partitions, String isolation,
                                                                     double seconds) {
        KafkaConsumer<byte[], byte[]> c = reader(t, partitions, isolation);
        try {
            List<TopicPartition> tps = tps(t, partitions);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(10));
            Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got = new TreeMap<>();
            for (int p = 0; p < partitions; p++) got.put(p, new ArrayList<>());
            long deadline = System.nanoTime() + (long) (seconds * 1e9);
            while (true) {
                boolean atEnd = true;
                for (TopicPartition tp : tps) atEnd &= c.position(tp, Duration.ofSeconds(10)) >= end.get(tp);
                if (atEnd) break;
                check(System.nanoTime() < deadline, isolation + " read of " + t + " did not reach the end offsets "
                        + endString(end) + " within " + seconds + "s (read " + counts(got) + ")");
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(300))) got.get(r.partition()).add(r);
            }
            return got;
        } finally {
            closeQuietly(c);
        }
    }

    static String endString(Map<TopicPartition, Long> end) {
        return new TreeMap<>(end.entrySet().stream().collect(Collectors.toMap(e -> e.getKey().partition(),
                Map.Entry::getValue))).entrySet().stream().map(e -> "p" + e.getKey() + "=" + e.getValue())
                .collect(Collectors.joining(","));
    }

    static String counts(Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got) {
        return got.entrySet().stream().map(e -> "p" + e.getKey() + "=" + e.getValue().size())
                .collect(Collectors.joining(","));
    }

    static int total(Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got) {
        return got.values().stream().mapToInt(List::size).sum();
    }

    /** p0=v,v;p1=v (values per partition, in offset order). */
    static String values(Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got) {
        return got.entrySet().stream().map(e -> "p" + e.getKey() + "=" + e.getValue().stream().map(r -> str(r.value()))
                .collect(Collectors.joining(","))).collect(Collectors.joining(";"));
    }

    static String offsets(Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got) {
        return got.entrySet().stream().map(e -> "p" + e.getKey() + "=" + e.getValue().stream()
                .map(r -> String.valueOf(r.offset())).collect(Collectors.joining(","))).collect(Collectors.joining(";"));
    }

    /** End offsets under an isolation level (the LSO under read_committed). */
    static Map<TopicPartition, Long> endOffsets(String t, int partitions, String isolation) {
        KafkaConsumer<byte[], byte[]> c = consumer(null, Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation));
        try {
            return c.endOffsets(tps(t, partitions), Duration.ofSeconds(10));
        } finally {
            closeQuietly(c);
        }
    }

    static List<RecordMetadata> sendAll(KafkaProducer<byte[], byte[]> p, List<ProducerRecord<byte[], byte[]>> recs)
            throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (ProducerRecord<byte[], byte[]> r : recs) fs.add(p.send(r));
        p.flush();
        List<RecordMetadata> out = new ArrayList<>();
        for (Future<RecordMetadata> f : fs) out.add(f.get(25, TimeUnit.SECONDS));
        return out;
    }

    static String acked(List<RecordMetadata> md) {
        return md.stream().map(m -> m.partition() + ":" + m.offset()).collect(Collectors.joining(","));
    }

    /** The exception class a transactional call failed with (the innermost cause that matters). */
    static String errClass(Throwable e) {
        return root(e).getClass().getSimpleName();
    }

    /**
     * The Kafka error of a transactional failure: the exception's own error, else the error whose
     * message the exception quotes (the producer reports some InitProducerId errors as a plain
     * KafkaException "Unexpected error in InitProducerIdResponse; MESSAGE").
     */
    static String txnErr(Throwable e) {
        Throwable r = root(e);
        String name = errName(r);
        if (!name.equals("UNKNOWN_SERVER_ERROR") || r.getMessage() == null) return name;
        for (Errors x : Errors.values()) {
            if (x != Errors.NONE && x.message() != null && r.getMessage().endsWith(x.message())) return x.name();
        }
        return name;
    }

    // ------------------------------------------------------------------ txn_commit_abort

    /*
     * One transactional producer on a fresh 3-partition topic: commit 6 records (2 per partition),
     * abort 3 (flushed first, so they are in the log), commit 3 more. read_committed must return
     * exactly the 9 committed records in order per partition; read_uncommitted also the 3 aborted
     * ones. Every transaction leaves a control batch (marker) in each partition it touched, so the end
     * offsets exceed the record counts; they are observed (7 per partition on Kafka: 4 records and 3
     * markers).
     */
    static void commitAbort(String s) throws Exception {
        String t = name(s);
        ensureTopic(t, 3, Map.of());
        KafkaProducer<byte[], byte[]> p = txnProducer(name(s), Map.of());
        try {
            p.initTransactions();
            obs(s, "init", "ok");
            List<ProducerRecord<byte[], byte[]>> c1 = new ArrayList<>(), ab = new ArrayList<>(), c2 = new ArrayList<>();
            for (int i = 0; i < 6; i++) c1.add(new ProducerRecord<>(t, i % 3, b("k" + i), b("c1-" + i)));
            for (int i = 0; i < 3; i++) ab.add(new ProducerRecord<>(t, i, b("a" + i), b("a-" + i)));
            for (int i = 0; i < 3; i++) c2.add(new ProducerRecord<>(t, i, b("k" + i), b("c2-" + i)));
            p.beginTransaction();
            obs(s, "acked_commit1", acked(sendAll(p, c1)));
            p.commitTransaction();
            p.beginTransaction();
            obs(s, "acked_abort", acked(sendAll(p, ab)));  // flushed: in the log before the abort
            p.abortTransaction();
            p.beginTransaction();
            obs(s, "acked_commit2", acked(sendAll(p, c2)));
            p.commitTransaction();
        } catch (Exception e) {
            obs(s, "error", errName(e));
            throw new JavaCompat.Failed("transactional produce failed: " + describe(e));
        } finally {
            closeQuietly(p);
        }
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> rc = readAll(t, 3, RC, 20), ru = readAll(t, 3, RU, 20);
        obs(s, "read_committed", values(rc));
        obs(s, "read_committed_offsets", offsets(rc));
        obs(s, "read_uncommitted", values(ru));
        obs(s, "read_uncommitted_offsets", offsets(ru));
        Map<TopicPartition, Long> hw = endOffsets(t, 3, RU), lso = endOffsets(t, 3, RC);
        obs(s, "end_offsets", endString(hw));
        obs(s, "last_stable_offsets", endString(lso));
        String wantRc = "p0=c1-0,c1-3,c2-0;p1=c1-1,c1-4,c2-1;p2=c1-2,c1-5,c2-2";
        String wantRu = "p0=c1-0,c1-3,a-0,c2-0;p1=c1-1,c1-4,a-1,c2-1;p2=c1-2,c1-5,a-2,c2-2";
        check(values(rc).equals(wantRc), "read_committed read " + values(rc) + ", expected " + wantRc);
        check(values(ru).equals(wantRu), "read_uncommitted read " + values(ru) + ", expected " + wantRu);
        for (Map.Entry<TopicPartition, Long> e : hw.entrySet()) {
            check(e.getValue() > 4, "end offset of partition " + e.getKey().partition() + " is " + e.getValue()
                    + ": 4 records and 3 transaction markers need more than 4 offsets");
            check(lso.get(e.getKey()).equals(e.getValue()), "last stable offsets " + endString(lso)
                    + " != end offsets " + endString(hw) + " with no transaction open");
        }
    }

    // ------------------------------------------------------------------ txn_consume_transform_produce

    /*
     * A read_committed group consumer (the column's group.protocol) reads 10 records of a 2-partition
     * input topic, at most 3 per poll; for every poll a transactional producer writes the transformed
     * records ("T:" + value) to the same partition of an output topic, adds the consumer's positions
     * with sendOffsetsToTransaction(offsets, consumer.groupMetadata()) and commits. Afterwards the
     * output under read_committed is exactly the transformed input, and the group's committed offsets
     * (Admin listConsumerGroupOffsets: OffsetFetch) equal the input's end offsets.
     */
    static void consumeTransformProduce(String s) throws Exception {
        String in = name(s) + "-in", out = name(s) + "-out", g = name(s);
        ensureTopic(in, 2, Map.of());
        ensureTopic(out, 2, Map.of());
        KafkaProducer<byte[], byte[]> plain = producer(Map.of());
        try {
            List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
            for (int i = 0; i < 10; i++) recs.add(new ProducerRecord<>(in, i % 2, b("k" + i), b("v" + i)));
            sendAll(plain, recs);
        } finally {
            closeQuietly(plain);
        }
        KafkaConsumer<byte[], byte[]> c = consumer(g, Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, RC,
                ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "3"));
        KafkaProducer<byte[], byte[]> p = txnProducer(name(s), Map.of());
        int consumed = 0, txns = 0;
        try {
            p.initTransactions();
            c.subscribe(List.of(in));
            long end = System.nanoTime() + 30_000_000_000L;
            while (consumed < 10 && System.nanoTime() < end) {
                ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(300));
                if (rs.isEmpty()) continue;
                p.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : rs) {
                    p.send(new ProducerRecord<>(out, r.partition(), r.key(), b("T:" + str(r.value()))));
                    next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                p.sendOffsetsToTransaction(next, c.groupMetadata());
                p.commitTransaction();
                consumed += rs.count();
                txns++;
            }
        } catch (Exception e) {
            obs(s, "error", errName(e));
            throw new JavaCompat.Failed("consume-transform-produce failed after " + txns + " transaction(s): "
                    + describe(e));
        } finally {
            closeQuietly(p);
            closeQuietly(c);
        }
        obs(s, "consumed", consumed);
        obs(s, "several_transactions", txns > 1);
        check(consumed == 10, "the loop consumed " + consumed + " of 10 input records");
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> o = readAll(out, 2, RC, 20);
        obs(s, "output", values(o));
        String want = "p0=T:v0,T:v2,T:v4,T:v6,T:v8;p1=T:v1,T:v3,T:v5,T:v7,T:v9";
        check(values(o).equals(want), "read_committed output " + values(o) + ", expected " + want);
        Map<TopicPartition, OffsetAndMetadata> com = get(admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata());
        String committed = new TreeMap<>(com.entrySet().stream().collect(Collectors.toMap(e -> e.getKey().partition(),
                e -> e.getValue().offset()))).entrySet().stream().map(e -> "p" + e.getKey() + "=" + e.getValue())
                .collect(Collectors.joining(","));
        String inEnd = endString(endOffsets(in, 2, RU));
        obs(s, "committed", committed);
        obs(s, "input_end_offsets", inEnd);
        check(committed.equals(inEnd), "group committed offsets " + committed + " != input end offsets " + inEnd);
    }

    // ------------------------------------------------------------------ txn_zombie_fence

    /*
     * Producer A (transactional.id X) begins a transaction and writes 2 records (flushed); producer B
     * with the same transactional.id calls initTransactions, which fences A and aborts its open
     * transaction. A's next send and its commit must fail with a fencing error (the exception classes are
     * observed); read_committed sees none of A's records; B's own transaction commits.
     */
    static void zombieFence(String s) throws Exception {
        String t = name(s), txid = name(s);
        ensureTopic(t, 1, Map.of());
        KafkaProducer<byte[], byte[]> a = txnProducer(txid, Map.of()), bp = null;
        try {
            a.initTransactions();
            a.beginTransaction();
            obs(s, "acked_a", acked(sendAll(a, List.of(new ProducerRecord<>(t, 0, b("a0"), b("a-0")),
                    new ProducerRecord<>(t, 0, b("a1"), b("a-1"))))));
            bp = txnProducer(txid, Map.of());
            bp.initTransactions();
            obs(s, "b_init", "ok");
            String sendErr = "none";
            try {
                a.send(new ProducerRecord<>(t, 0, b("a2"), b("a-2"))).get(25, TimeUnit.SECONDS);
            } catch (ExecutionException | org.apache.kafka.common.KafkaException e) {
                sendErr = errClass(e) + "/" + txnErr(e);
            }
            obs(s, "a_send_error", sendErr);
            String commitErr = "none";
            try {
                a.commitTransaction();
            } catch (org.apache.kafka.common.KafkaException e) {
                commitErr = errClass(e) + "/" + txnErr(e);
            }
            obs(s, "a_commit_error", commitErr);
            check(!sendErr.equals("none") || !commitErr.equals("none"),
                    "the fenced producer sent and committed after another producer initialized its transactional.id");
            check(commitErr.contains("Fenced") || commitErr.contains("InvalidProducerEpoch"),
                    "the fenced producer's commit failed with " + commitErr
                            + ", expected ProducerFencedException or InvalidProducerEpochException");
            closeQuietly(a);
            a = null;
            bp.beginTransaction();
            obs(s, "acked_b", acked(sendAll(bp, List.of(new ProducerRecord<>(t, 0, b("b0"), b("b-0")),
                    new ProducerRecord<>(t, 0, b("b1"), b("b-1"))))));
            bp.commitTransaction();
        } finally {
            closeQuietly(a);
            closeQuietly(bp);
        }
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> rc = readAll(t, 1, RC, 20), ru = readAll(t, 1, RU, 20);
        obs(s, "read_committed", values(rc));
        obs(s, "read_committed_offsets", offsets(rc));
        obs(s, "read_uncommitted", values(ru));
        obs(s, "end_offsets", endString(endOffsets(t, 1, RU)));
        check(values(rc).equals("p0=b-0,b-1"), "read_committed read " + values(rc) + ", expected only B's b-0,b-1");
        check(values(ru).equals("p0=a-0,a-1,b-0,b-1"), "read_uncommitted read " + values(ru)
                + ", expected A's aborted a-0,a-1 then b-0,b-1");
    }

    // ------------------------------------------------------------------ txn_timeout

    /*
     * A transaction with transaction.timeout.ms=5000 is left open after writing one record; a plain
     * producer then writes one record to the same partition. While the transaction is open the last
     * stable offset stays at its first offset (0), so read_committed sees nothing; once the broker
     * aborts it (Kafka checks every transaction.abort.timed.out.transaction.cleanup.interval.ms, which
     * compat-tests/run lowers to 1000) read_committed gets exactly the plain record, and the producer's
     * late commit fails (its exception class is observed). Then initTransactions with
     * transaction.timeout.ms above the broker's transaction.max.timeout.ms (900000) fails with
     * INVALID_TRANSACTION_TIMEOUT.
     */
    static void timeout(String s) throws Exception {
        String t = name(s), txid = name(s);
        ensureTopic(t, 1, Map.of());
        TopicPartition tp = new TopicPartition(t, 0);
        KafkaProducer<byte[], byte[]> p = txnProducer(txid, Map.of(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "5000"));
        KafkaProducer<byte[], byte[]> plain = producer(Map.of());
        try {
            p.initTransactions();
            p.beginTransaction();
            long t0 = System.nanoTime();
            obs(s, "acked_open", acked(sendAll(p, List.of(new ProducerRecord<>(t, 0, b("o0"), b("open-0"))))));
            obs(s, "acked_plain", acked(sendAll(plain, List.of(new ProducerRecord<>(t, 0, b("p0"), b("after-0"))))));
            long lsoOpen = endOffsets(t, 1, RC).get(tp), hwOpen = endOffsets(t, 1, RU).get(tp);
            obs(s, "lso_while_open", lsoOpen);
            obs(s, "end_while_open", hwOpen);
            check(lsoOpen == 0, "last stable offset " + lsoOpen + " while the transaction at offset 0 is open, expected 0"
                    + String.format(" (listed %.1fs after the transaction began)", (System.nanoTime() - t0) / 1e9));
            KafkaConsumer<byte[], byte[]> c = reader(t, 1, RC);
            List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
            try {
                long end = System.nanoTime() + 25_000_000_000L;
                while (got.isEmpty() && System.nanoTime() < end) {
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(300))) got.add(r);
                }
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(300))) got.add(r);
            } finally {
                closeQuietly(c);
            }
            String read = got.stream().map(r -> r.offset() + ":" + str(r.value())).collect(Collectors.joining(","));
            obs(s, "read_committed", read);
            check(!got.isEmpty(), "read_committed saw nothing within 25s: the timed-out transaction was not aborted");
            check(read.equals("1:after-0"), "read_committed read " + read + ", expected only 1:after-0");
            Map<TopicPartition, Long> lso = endOffsets(t, 1, RC), hw = endOffsets(t, 1, RU);
            obs(s, "last_stable_offset", lso.get(tp));
            obs(s, "end_offset", hw.get(tp));
            check(lso.get(tp).equals(hw.get(tp)) && hw.get(tp) > 2, "after the abort: last stable offset "
                    + lso.get(tp) + ", end offset " + hw.get(tp) + "; expected equal and past the 2 records");
            String commitErr = "none";
            try {
                p.commitTransaction();
            } catch (org.apache.kafka.common.KafkaException e) {
                commitErr = errClass(e) + "/" + txnErr(e);
            }
            obs(s, "late_commit_error", commitErr);
            check(!commitErr.equals("none"), "committing the transaction the broker aborted succeeded");
        } finally {
            closeQuietly(p);
            closeQuietly(plain);
        }
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> rc = readAll(t, 1, RC, 20);
        obs(s, "read_committed_after_commit", values(rc));
        check(values(rc).equals("p0=after-0"), "after the late commit read_committed reads " + values(rc));
        KafkaProducer<byte[], byte[]> q = txnProducer(name(s) + "-too-long",
                Map.of(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "900001"));
        try {
            q.initTransactions();
            throw new JavaCompat.Failed("initTransactions with transaction.timeout.ms=900001 succeeded");
        } catch (org.apache.kafka.common.KafkaException e) {
            obs(s, "too_long_timeout_error", errClass(e) + "/" + txnErr(e));
            // kafka-clients 4.4 reports it as "KafkaException: Unexpected error in InitProducerIdResponse;
            // The transaction timeout is larger than the maximum value allowed by the broker (...)".
            check(root(e) instanceof InvalidTxnTimeoutException || txnErr(e).equals("INVALID_TRANSACTION_TIMEOUT"),
                    "transaction.timeout.ms=900001: expected INVALID_TRANSACTION_TIMEOUT, got " + describe(e));
        } finally {
            closeQuietly(q);
        }
    }
}
