package dev.sluice.compat;

import static dev.sluice.compat.JavaCompat.admin;
import static dev.sluice.compat.JavaCompat.b;
import static dev.sluice.compat.JavaCompat.base;
import static dev.sluice.compat.JavaCompat.check;
import static dev.sluice.compat.JavaCompat.closeQuietly;
import static dev.sluice.compat.JavaCompat.ensureTopic;
import static dev.sluice.compat.JavaCompat.get;
import static dev.sluice.compat.JavaCompat.name;
import static dev.sluice.compat.JavaCompat.obs;
import static dev.sluice.compat.JavaCompat.root;
import static dev.sluice.compat.JavaCompat.skip;
import static dev.sluice.compat.JavaCompat.str;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialDeletion;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Security scenarios of the Java column (secure_*): the broker's SASL_SSL listener with SCRAM
 * users and its SSL listener requiring client certificates, as compat-tests/run describes them in
 * COMPAT_SECURE ("sasl_ssl=HOST:PORT;ssl=HOST:PORT;ca=PEM;client=PEM;user=U;password=P"). Without
 * it (a cluster given with --bootstrap) they skip.
 */
final class SecurityScenarios {
    private SecurityScenarios() { }

    static Map<String, String> secure() {
        Map<String, String> m = new HashMap<>();
        for (String kv : System.getenv().getOrDefault("COMPAT_SECURE", "").split(";")) {
            int i = kv.indexOf('=');
            if (i > 0) m.put(kv.substring(0, i), kv.substring(i + 1));
        }
        return m;
    }

    /** Client properties for one of the secure listeners. */
    static Properties props(Map<String, String> sec, String listener, String mechanism, String user, String password,
                            boolean clientCert) {
        Properties p = base(sec.get(listener));
        p.put("ssl.truststore.type", "PEM");
        p.put("ssl.truststore.location", sec.get("ca"));
        if (listener.equals("sasl_ssl")) {
            p.put("security.protocol", "SASL_SSL");
            p.put("sasl.mechanism", mechanism);
            p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                    + user + "\" password=\"" + password + "\";");
        } else {
            p.put("security.protocol", "SSL");
            if (clientCert) {
                p.put("ssl.keystore.type", "PEM");
                p.put("ssl.keystore.location", sec.get("client"));
            }
        }
        return p;
    }

    static KafkaProducer<byte[], byte[]> producer(Properties p) {
        p.put("linger.ms", "5");
        p.put("max.block.ms", "15000");
        p.put("delivery.timeout.ms", "20000");
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    /** Writes `values` to partition 0 of `t` and reads them back, both over `p`'s listener. */
    static List<String> roundTrip(Properties p, String t, List<String> values) throws Exception {
        KafkaProducer<byte[], byte[]> prod = producer((Properties) p.clone());
        try {
            for (String v : values) prod.send(new ProducerRecord<>(t, 0, b("k"), b(v))).get(25, TimeUnit.SECONDS);
        } finally {
            closeQuietly(prod);
        }
        Properties cp = (Properties) p.clone();
        cp.put("auto.offset.reset", "earliest");
        cp.put("enable.auto.commit", "false");
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<String> got = new ArrayList<>();
        try {
            TopicPartition tp = new TopicPartition(t, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long end = System.nanoTime() + 20_000_000_000L;
            while (got.size() < values.size() && System.nanoTime() < end) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) got.add(str(r.value()));
            }
        } finally {
            closeQuietly(c);
        }
        return got;
    }

    /** How a connection with these properties ends: "ok", or the root exception's class and message. */
    static String[] connect(Properties p) {
        p.put("default.api.timeout.ms", "8000");
        p.put("request.timeout.ms", "5000");
        Admin a = Admin.create(p);
        try {
            a.describeCluster().nodes().get(10, TimeUnit.SECONDS);
            return new String[] {"ok", "none"};
        } catch (Exception e) {
            Throwable r = root(e);
            return new String[] {r.getClass().getSimpleName(), String.valueOf(r.getMessage())};
        } finally {
            a.close(Duration.ofSeconds(2));
        }
    }

    static String login(Properties p) { return connect(p)[0]; }

    static String failureMessage(Properties p) { return connect(p)[1]; }

    static void scramSaslSsl(String s) throws Exception {
        Map<String, String> sec = secure();
        if (!sec.containsKey("sasl_ssl")) { skip(s, "no SASL_SSL listener given (COMPAT_SECURE)"); return; }
        String t = name(s);
        ensureTopic(t, 1, Map.of());
        String user = sec.get("user"), pw = sec.get("password");
        List<String> got = roundTrip(props(sec, "sasl_ssl", "SCRAM-SHA-512", user, pw, false), t, List.of("a", "b", "c"));
        obs(s, "read", String.join(",", got));
        check(got.equals(List.of("a", "b", "c")), "read back over SASL_SSL SCRAM-SHA-512: " + got);
        String sha256 = login(props(sec, "sasl_ssl", "SCRAM-SHA-256", user, pw, false));
        obs(s, "scram_sha_256", sha256);
        check(sha256.equals("ok"), "SCRAM-SHA-256 login: " + sha256);
        String wrong = login(props(sec, "sasl_ssl", "SCRAM-SHA-512", user, pw + "-wrong", false));
        obs(s, "wrong_password", wrong);
        obs(s, "wrong_password_message", failureMessage(props(sec, "sasl_ssl", "SCRAM-SHA-512", user, "nope", false)));
        check(wrong.equals("SaslAuthenticationException"), "a wrong password ended as " + wrong);
        String unknown = login(props(sec, "sasl_ssl", "SCRAM-SHA-512", "nobody-" + JavaCompat.rid, pw, false));
        obs(s, "unknown_user", unknown);
        check(unknown.equals("SaslAuthenticationException"), "an unknown user ended as " + unknown);
    }

    /** A user made with Admin.alterUserScramCredentials logs in; once deleted it no longer does. */
    static void scramAdminUser(String s) throws Exception {
        Map<String, String> sec = secure();
        if (!sec.containsKey("sasl_ssl")) { skip(s, "no SASL_SSL listener given (COMPAT_SECURE)"); return; }
        String user = name(s);
        get(admin.alterUserScramCredentials(List.of(
                new UserScramCredentialUpsertion(user, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), "pw-" + user),
                new UserScramCredentialUpsertion(user + "-2", new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), "pw2")))
                .all());
        // Kafka's brokers describe from their metadata image, which trails the controller's
        // commit: describe until both users show their credentials.
        Map<String, UserScramCredentialsDescription> d = Map.of();
        long described = System.nanoTime() + 15_000_000_000L;
        while (true) {
            try {
                d = get(admin.describeUserScramCredentials(List.of(user, user + "-2")).all());
            } catch (Exception e) {
                d = Map.of();
            }
            boolean shown = d.size() == 2 && d.values().stream().noneMatch(x -> x.credentialInfos().isEmpty());
            if (shown || System.nanoTime() > described) break;
            Thread.sleep(200);
        }
        obs(s, "described", d.values().stream()
                .map(x -> x.name() + ":" + x.credentialInfos().stream()
                        .map(ci -> ci.mechanism() + "/" + ci.iterations()).sorted().collect(Collectors.joining("+")))
                .sorted().collect(Collectors.joining(",")));
        Properties p = props(sec, "sasl_ssl", "SCRAM-SHA-256", user, "pw-" + user, false);
        String first = "";
        long end = System.nanoTime() + 15_000_000_000L;  // Kafka applies credentials from its metadata log
        while (System.nanoTime() < end && !(first = login((Properties) p.clone())).equals("ok")) Thread.sleep(300);
        obs(s, "login", first);
        check(first.equals("ok"), "the new user's SCRAM-SHA-256 login: " + first);
        String missing;
        try {
            get(admin.describeUserScramCredentials(List.of("nobody-" + JavaCompat.rid)).all());
            missing = "none";
        } catch (Exception e) {
            missing = root(e).getClass().getSimpleName();
        }
        obs(s, "describe_unknown", missing);
        get(admin.alterUserScramCredentials(List.of(new UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_256))).all());
        String after = "";
        end = System.nanoTime() + 15_000_000_000L;
        while (System.nanoTime() < end && (after = login((Properties) p.clone())).equals("ok")) Thread.sleep(300);
        obs(s, "after_delete", after);
        check(after.equals("SaslAuthenticationException"), "a deleted credential still logs in: " + after);
        get(admin.alterUserScramCredentials(List.of(new UserScramCredentialDeletion(user + "-2", ScramMechanism.SCRAM_SHA_512))).all());
    }

    /** The SSL listener requires a client certificate: with one the client reads and writes, without it it cannot connect. */
    static void mtls(String s) throws Exception {
        Map<String, String> sec = secure();
        if (!sec.containsKey("ssl")) { skip(s, "no SSL listener given (COMPAT_SECURE)"); return; }
        String t = name(s);
        ensureTopic(t, 1, Map.of());
        List<String> got = roundTrip(props(sec, "ssl", null, null, null, true), t, List.of("x", "y"));
        obs(s, "read", String.join(",", got));
        check(got.equals(List.of("x", "y")), "read back over mTLS: " + got);
        String without = login(props(sec, "ssl", null, null, null, false));
        obs(s, "without_certificate", without);
        check(!without.equals("ok"), "a client without a certificate connected");
    }
}
