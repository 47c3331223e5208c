package dev.sluice.compat.streams;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.common.utils.internals.AppInfoParser;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The kafka-streams column's application: WordCount with exactly_once_v2.
 *
 * <pre>
 *   kafka-streams-wordcount BOOTSTRAP APPLICATION_ID INPUT OUTPUT STATE_DIR [NAME=VALUE ...]
 * </pre>
 *
 * Lines of INPUT (String values) are split into words, re-keyed by word (the repartition topic
 * APPLICATION_ID-words-repartition), counted into the persistent store "counts" (RocksDB, changelog
 * APPLICATION_ID-counts-changelog) and every new count is written to OUTPUT as word -> count (String,
 * Long). Record caching is off, so each input word yields exactly one output record and the counts
 * of a word on OUTPUT are 1, 2, 3, ... The counts table is also re-keyed by each word's first two
 * letters (the table repartition topic APPLICATION_ID-prefixes-repartition) and summed into the
 * store "prefix-sums" (changelog APPLICATION_ID-prefix-sums-changelog), written to OUTPUT-prefixes
 * as prefix -> sum: its last value per prefix is the total occurrences of that prefix's words.
 * Trailing NAME=VALUE arguments override Streams settings.
 *
 * It talks to its driver (compat-tests/clients/kafka_streams_client.py) over stdio. On stdout, one
 * line each: {@code VERSION v}, {@code STATE NEW OLD} on every state change, {@code FATAL chain} when a
 * stream thread dies (the exception and its causes), {@code CLOSED ok}. On stdin: {@code close} closes
 * it cleanly (commits, leaves the group) and exits; end of input (the driver died) halts the JVM at
 * once, so the application never outlives its driver. Logs (slf4j-simple, WARN and up) go to stderr.
 */
public final class StreamsWordCount {
    private static final Object OUT = new Object();

    static void say(String line) {
        synchronized (OUT) {
            System.out.println(line);
            System.out.flush();
        }
    }

    /** "Class: message <- CauseClass: message <- ..." on one line. */
    static String chain(Throwable t) {
        List<String> parts = new ArrayList<>();
        for (Throwable c = t; c != null && parts.size() < 8; c = c.getCause() == c ? null : c.getCause()) {
            String m = c.getMessage();
            parts.add(c.getClass().getName() + (m == null ? "" : ": " + m));
        }
        return String.join(" <- ", parts).replace('\n', ' ');
    }

    static Topology topology(String input, String output) {
        StreamsBuilder b = new StreamsBuilder();
        KTable<String, Long> counts = b.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .flatMapValues(line -> Arrays.stream(line.split(" +")).filter(w -> !w.isEmpty()).toList())
            .groupBy((key, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
            .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts")
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()).withCachingDisabled());
        counts.toStream().to(output, Produced.with(Serdes.String(), Serdes.Long()));
        // The table re-keyed by the word's first two letters (a table repartition topic carrying
        // each count change as a subtraction of the old and an addition of the new) and summed
        // into a second store: per prefix, the words' total occurrences.
        counts.groupBy((word, n) -> KeyValue.pair(word.substring(0, Math.min(2, word.length())), n),
                Grouped.with("prefixes", Serdes.String(), Serdes.Long()))
            .reduce(Long::sum, (sum, old) -> sum - old,
                Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("prefix-sums")
                    .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()).withCachingDisabled())
            .toStream()
            .to(output + "-prefixes", Produced.with(Serdes.String(), Serdes.Long()));
        return b.build();
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 5) {
            System.err.println("usage: kafka-streams-wordcount BOOTSTRAP APPLICATION_ID INPUT OUTPUT STATE_DIR [NAME=VALUE ...]");
            System.exit(2);
        }
        Properties p = new Properties();
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
        p.put(StreamsConfig.STATE_DIR_CONFIG, args[4]);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200");
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
        // Purge the consumed part of the repartition topic (Admin deleteRecords) every second rather
        // than every 30 s, so a run exercises it. Streams treats a failed purge as harmless.
        p.put(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, "1000");
        // A killed instance's member leaves the group after the session timeout: the broker minimum
        // (group.min.session.timeout.ms, 6 s by default) keeps a restart's rebalance short.
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), "6000");
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), "1000");
        for (int i = 5; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                System.err.println("not NAME=VALUE: " + args[i]);
                System.exit(2);
            }
            p.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        say("VERSION " + AppInfoParser.getVersion());

        KafkaStreams streams = new KafkaStreams(topology(args[2], args[3]), p);
        CountDownLatch stop = new CountDownLatch(1);
        AtomicInteger exitCode = new AtomicInteger(0);
        streams.setStateListener((now, before) -> {
            say("STATE " + now + " " + before);
            if (now == KafkaStreams.State.ERROR) {
                exitCode.set(1);
                stop.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            say("FATAL " + chain(e));
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });

        Thread stdin = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    if (line.trim().equals("close")) {
                        stop.countDown();
                    }
                }
            } catch (Exception e) {
                // treated as end of input
            }
            say("STDIN closed: halting");
            Runtime.getRuntime().halt(3);
        }, "stdin-watch");
        stdin.setDaemon(true);
        stdin.start();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> streams.close(Duration.ofSeconds(10)), "close-on-signal"));

        streams.start();
        stop.await();
        boolean ok = streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
            .withTimeout(Duration.ofSeconds(20)));
        say("CLOSED " + ok);
        System.exit(ok ? exitCode.get() : 1);
    }
}
