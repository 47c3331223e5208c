package dev.sluice.protocol;

import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Function;

/** One request sent identically (modulo per-broker ids) to both brokers, and how to compare the answers. */
final class Case {
    final ApiKeys api;
    final short version;
    final String name;
    /** Builds the request for one broker (it may read topic ids / member ids from broker.state). */
    final Function<Broker, ApiMessage> build;
    /** Runs on each broker before the request (setup the comparison does not look at). */
    Consumer<Broker> pre;
    /** Runs on each broker after a response (stores ids for later cases). */
    BiConsumer<Broker, Broker.Outcome> post;
    /** Header version to send, when it differs from the body's (above-max cases). */
    short headerVersion;
    /** Field-path globs this case does not compare (e.g. "topics" of an all-topics Metadata). */
    final List<String> ignore = new ArrayList<>();
    /** Array field names filtered to the elements naming this run (shared brokers list other runs' objects). */
    final Set<String> runOnly = new HashSet<>();

    Case(ApiKeys api, short version, String name, Function<Broker, ApiMessage> build) {
        this.api = api; this.version = version; this.name = name; this.build = build; this.headerVersion = version;
    }

    Case pre(Consumer<Broker> p) { this.pre = p; return this; }
    Case post(BiConsumer<Broker, Broker.Outcome> p) { this.post = p; return this; }
    Case ignore(String... globs) { ignore.addAll(List.of(globs)); return this; }
    Case runOnly(String... fields) { runOnly.addAll(List.of(fields)); return this; }
    Case header(short v) { this.headerVersion = v; return this; }
}
