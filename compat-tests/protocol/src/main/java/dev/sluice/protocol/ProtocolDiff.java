package dev.sluice.protocol;

import com.fasterxml.jackson.databind.JsonNode;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Errors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * protocol-diff KAFKA_HOST:PORT SLUICE_HOST:PORT [--allow FILE] [--api NAME[,NAME]] [--max-diff-lines N] [--dump]
 *
 * Sends the same raw requests to a real Apache Kafka and to sluice and compares the answers field
 * by field. See README.md.
 */
public final class ProtocolDiff {
    /** Fields not compared at all: they legitimately differ between any two brokers. */
    static final Set<String> IGNORED = Set.of("throttleTimeMs", "clusterId", "controllerId", "supportedFeatures",
        "finalizedFeatures", "finalizedFeaturesEpoch", "zkMigrationReady", "_trailingBytesIgnored");
    /** Fields compared for presence only (set / unset): ids, hosts, free-text messages. */
    static final Set<String> PRESENCE = Set.of("errorMessage", "documentation", "memberId", "leader", "topicId",
        "producerId", "sessionId", "host", "port", "clientHost", "clientId", "groupInstanceId", "assignedTopicPartitions_",
        "logAppendTimeMs");
    /** Element fields that name an array element, in order of preference (path shows [value]). */
    static final String[] KEYS = {"name", "topic", "topicName", "groupId", "key", "apiKey", "partitionIndex", "partition",
        "index", "resourceName", "brokerId", "nodeId", "memberId"};

    record Diff(String field, String kafka, String sluice) { }

    record Rule(int line, String api, int lo, int hi, Pattern kase, Pattern field, String reason) {
        boolean matches(Case c, String f) {
            if (!api.equals("*") && !api.equalsIgnoreCase(c.api.name) && !api.equals(String.valueOf(c.api.id))) return false;
            if (c.version < lo || c.version > hi) return false;
            return kase.matcher(c.name).matches() && field.matcher(f).matches();
        }
    }

    final String rid;
    final Broker kafka, sluice;
    final List<Rule> rules = new ArrayList<>();
    int maxDiffLines = 10;
    static boolean dump;
    int same, diff, allowed, skipped;
    final Map<String, Integer> diffsPerApi = new TreeMap<>();
    final Map<String, Set<String>> diffCasesPerApi = new TreeMap<>();
    final Map<String, Integer> allowedPerCategory = new TreeMap<>();
    /** Rules that accepted at least one field (a full run lists the others as UNUSED: stale rules). */
    final Set<Rule> used = new HashSet<>();

    ProtocolDiff(String rid, Broker kafka, Broker sluice) {
        this.rid = rid; this.kafka = kafka; this.sluice = sluice;
    }

    public static void main(String[] args) throws Exception {
        String allow = null;
        Set<String> only = null;
        List<String> pos = new ArrayList<>();
        int maxLines = 10;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--allow" -> allow = args[++i];
                case "--api" -> only = new HashSet<>(List.of(args[++i].toLowerCase().split(",")));
                case "--max-diff-lines" -> maxLines = Integer.parseInt(args[++i]);
                case "--dump" -> dump = true;
                case "-h", "--help" -> { usage(); return; }
                default -> pos.add(args[i]);
            }
        }
        if (pos.size() != 2) { usage(); System.exit(2); }
        String rid = System.getenv().getOrDefault("COMPAT_RUN_ID", "");
        if (rid.isEmpty()) rid = Long.toHexString(System.nanoTime() ^ System.currentTimeMillis()).substring(0, 8);
        rid = rid.replaceAll("[^A-Za-z0-9_-]", "");
        ProtocolDiff pd = new ProtocolDiff(rid, new Broker("kafka", pos.get(0), 15000), new Broker("sluice", pos.get(1), 15000));
        pd.maxDiffLines = maxLines;
        if (allow != null) pd.loadAllow(Path.of(allow));
        System.exit(pd.run(only));
    }

    static void usage() {
        System.err.println("usage: protocol-diff KAFKA_HOST:PORT SLUICE_HOST:PORT [--allow FILE] [--api NAME,...] [--max-diff-lines N] [--dump]");
    }

    void loadAllow(Path p) throws IOException {
        int n = 0;
        for (String raw : Files.readAllLines(p)) {
            n++;
            String reason = "";
            int h = raw.indexOf('#');
            if (h >= 0) { reason = raw.substring(h + 1).trim(); raw = raw.substring(0, h); }
            String line = raw.trim();
            if (line.isEmpty()) continue;
            String[] f = line.split("\\s+");
            if (f.length != 4) throw new IllegalArgumentException(p + ":" + n + ": want API VERSIONS CASE FIELD  # reason");
            int lo = 0, hi = Short.MAX_VALUE;
            if (!f[1].equals("*")) {
                String[] r = f[1].split("-", -1);
                if (r.length == 1) lo = hi = Integer.parseInt(r[0]);
                else {
                    if (!r[0].isEmpty()) lo = Integer.parseInt(r[0]);
                    if (!r[1].isEmpty() && !r[1].equals("*")) hi = Integer.parseInt(r[1]);
                }
            }
            rules.add(new Rule(n, f[0], lo, hi, glob(f[2]), glob(f[3]), reason.isEmpty() ? "allowed" : reason));
        }
    }

    /** Glob to regex: {@code *} any characters, {@code ?} one, {@code {a,b,c}} one of the alternatives (not nested). */
    static Pattern glob(String g) {
        StringBuilder sb = new StringBuilder();
        boolean inBraces = false;
        for (char ch : g.toCharArray()) {
            if (ch == '*') sb.append(".*");
            else if (ch == '?') sb.append('.');
            else if (ch == '{' && !inBraces) { sb.append("(?:"); inBraces = true; }
            else if (ch == '}' && inBraces) { sb.append(')'); inBraces = false; }
            else if (ch == ',' && inBraces) sb.append('|');
            else sb.append(Pattern.quote(String.valueOf(ch)));
        }
        if (inBraces) throw new IllegalArgumentException("unclosed { in " + g);
        return Pattern.compile(sb.toString());
    }

    /** The category of a rule: its reason up to the first ':' ("on purpose", "gap (issue 15)", "crate", "sluice bug"). */
    static String category(Rule r) {
        int c = r.reason.indexOf(':');
        String cat = c > 0 ? r.reason.substring(0, c).trim() : "";
        return cat.matches("on purpose|gap.*|crate|sluice bug") ? cat : "cosmetic";
    }

    // ------------------------------------------------------------------------------------------

    int run(Set<String> only) {
        long t0 = System.currentTimeMillis();
        System.out.println("RUN id=" + rid + " kafka=" + kafka.host + ":" + kafka.port + " sluice=" + sluice.host + ":" + sluice.port);
        Map<Short, short[]> kRanges = apiVersions(kafka), sRanges = apiVersions(sluice);
        if (sRanges == null || kRanges == null) {
            System.out.println("FATAL ApiVersions failed: kafka=" + (kRanges != null) + " sluice=" + (sRanges != null));
            return 2;
        }
        printRanges(kRanges, sRanges);
        Cases cases = new Cases(rid);
        for (Broker b : List.of(kafka, sluice)) {
            long ts = System.currentTimeMillis();
            List<String> problems = cases.setup(b);
            if (System.getenv("PD_TIMING") != null) System.err.println("protocol-diff: setup " + b.name + " " + (System.currentTimeMillis() - ts) + " ms");
            for (String problem : problems) System.out.println("SETUP broker=" + b.name + " problem=" + q(problem));
        }
        for (Map.Entry<Short, short[]> e : sRanges.entrySet()) {
            if (!ApiKeys.hasId(e.getKey())) { System.out.println("SKIP api=" + e.getKey() + " reason=unknown-to-kafka-clients"); continue; }
            ApiKeys api = ApiKeys.forId(e.getKey());
            if (only != null && !only.contains(api.name.toLowerCase())) continue;
            short lo = e.getValue()[0], hi = e.getValue()[1];
            for (short v = lo; v <= hi; v++) {
                if (v < api.messageType.lowestSupportedVersion() || v > api.latestVersion(true)) {
                    skipped++;
                    System.out.println("SKIP api=" + api.name + " v=" + v + " case=* reason=kafka-clients-4.4-cannot-encode");
                    continue;
                }
                List<Case> cs = cases.forVersion(api, v);
                if (cs.isEmpty()) { System.out.println("SKIP api=" + api.name + " v=" + v + " case=* reason=no-cases-written"); skipped++; }
                for (Case c : cs) runCase(c);
            }
            // Out-of-range versions: the "valid" request under a header version outside sluice's range.
            List<Case> edge = new ArrayList<>();
            short above = (short) (hi + 1);
            short body = (short) Math.min(above, api.latestVersion(true));
            for (Case c : cases.forVersion(api, body)) {
                if (c.name.equals("valid")) { edge.add(new Case(api, above, "above_max", c.build).pre(c.pre).header(above)); break; }
            }
            if (lo > api.messageType.lowestSupportedVersion()) {
                short below = (short) (lo - 1);
                for (Case c : cases.forVersion(api, below)) {
                    if (c.name.equals("valid")) { edge.add(new Case(api, below, "below_min", c.build).pre(c.pre)); break; }
                }
            }
            for (Case c : edge) runCase(c);
        }
        printFeatures();
        long ms = System.currentTimeMillis() - t0;
        int unallowed = diff - allowed;
        System.out.println("SUMMARY cases=" + (same + diff) + " same=" + same + " diff=" + diff + " allowed=" + allowed
            + " unallowed=" + unallowed + " skipped=" + skipped + " ms=" + ms);
        StringBuilder cats = new StringBuilder();
        allowedPerCategory.forEach((k, n) -> cats.append(' ').append(k.replace(' ', '_')).append('=').append(n));
        System.out.println("SUMMARY allowed_cases_by_category" + cats);
        if (only == null) for (Rule r : rules) if (!used.contains(r)) System.out.println("UNUSED allow rule line=" + r.line + " reason=" + q(r.reason));
        for (Map.Entry<String, Set<String>> e : diffCasesPerApi.entrySet()) {
            System.out.println("SUMMARY api=" + e.getKey() + " diff_cases=" + e.getValue().size() + " diff_fields=" + diffsPerApi.get(e.getKey()));
        }
        for (String x : slow) System.err.println("protocol-diff: slow case " + x);
        if (System.getenv("PD_TIMING") != null) apiMs.forEach((a, ms2) -> System.err.println("protocol-diff: time " + a + " " + ms2 + " ms"));
        kafka.close();
        sluice.close();
        return unallowed == 0 ? 0 : 1;
    }

    Map<Short, short[]> apiVersions(Broker b) {
        Broker.Outcome o = b.send(ApiKeys.API_VERSIONS, (short) 3,
            new ApiVersionsRequestData().setClientSoftwareName("protocol-diff").setClientSoftwareVersion("1.0"));
        if (!o.ok()) { System.out.println("APIVERSIONS broker=" + b.name + " outcome=" + o.status + " " + q(o.detail)); return null; }
        ApiVersionsResponseData r = (ApiVersionsResponseData) o.body;
        Map<Short, short[]> m = new TreeMap<>();
        for (ApiVersionsResponseData.ApiVersion av : r.apiKeys()) m.put(av.apiKey(), new short[]{av.minVersion(), av.maxVersion()});
        b.state.put("apiversions", r);
        return m;
    }

    void printRanges(Map<Short, short[]> k, Map<Short, short[]> s) {
        for (Map.Entry<Short, short[]> e : s.entrySet()) {
            short[] kr = k.get(e.getKey());
            String name = ApiKeys.hasId(e.getKey()) ? ApiKeys.forId(e.getKey()).name : String.valueOf(e.getKey());
            String kv = kr == null ? "absent" : kr[0] + "-" + kr[1];
            String sv = e.getValue()[0] + "-" + e.getValue()[1];
            System.out.println("RANGE api=" + name + " key=" + e.getKey() + " kafka=" + kv + " sluice=" + sv + (kv.equals(sv) ? "" : " differs"));
        }
        List<String> missing = new ArrayList<>();
        for (Short key : k.keySet()) if (!s.containsKey(key)) missing.add(ApiKeys.hasId(key) ? ApiKeys.forId(key).name + "(" + key + ")" : String.valueOf(key));
        System.out.println("RANGE kafka_only_apis=" + missing.size() + " " + String.join(",", missing));
    }

    void printFeatures() {
        for (Broker b : List.of(kafka, sluice)) {
            ApiVersionsResponseData r = (ApiVersionsResponseData) b.state.get("apiversions");
            if (r == null) continue;
            StringBuilder sup = new StringBuilder(), fin = new StringBuilder();
            for (var f : r.supportedFeatures()) sup.append(sup.length() > 0 ? "," : "").append(f.name()).append('=').append(f.minVersion()).append('-').append(f.maxVersion());
            for (var f : r.finalizedFeatures()) fin.append(fin.length() > 0 ? "," : "").append(f.name()).append('=').append(f.minVersionLevel()).append('-').append(f.maxVersionLevel());
            System.out.println("FEATURES broker=" + b.name + " supported=[" + sup + "] finalized=[" + fin + "] finalized_epoch="
                + r.finalizedFeaturesEpoch() + " zk_migration_ready=" + r.zkMigrationReady());
        }
    }

    // ------------------------------------------------------------------------------------------

    Broker.Outcome sendCase(Broker b, Case c) {
        try {
            if (c.pre != null) c.pre.accept(b);
            ApiMessage req = c.build.apply(b);
            short bodyVersion = c.version;
            if (c.headerVersion != c.version || c.version > c.api.latestVersion(true)) bodyVersion = (short) Math.min(c.version, c.api.latestVersion(true));
            Broker.Outcome o = b.send(c.api, c.headerVersion, bodyVersion, req);
            if (o.ok() && c.post != null) c.post.accept(b, o);
            return o;
        } catch (RuntimeException e) {
            return new Broker.Outcome("error", "build: " + e, null, null, c.version);
        }
    }

    final List<String> slow = new ArrayList<>();
    final Map<String, Long> apiMs = new TreeMap<>();

    void runCase(Case c) {
        long t0 = System.nanoTime();
        Broker.Outcome k = sendCase(kafka, c);
        long t1 = System.nanoTime();
        Broker.Outcome s = sendCase(sluice, c);
        long t2 = System.nanoTime();
        apiMs.merge(c.api.name + " kafka", (t1 - t0) / 1_000_000, Long::sum);
        apiMs.merge(c.api.name + " sluice", (t2 - t1) / 1_000_000, Long::sum);
        if (t2 - t0 > 500_000_000L) slow.add(c.api.name + " v" + c.version + " " + c.name + " kafka=" + (t1 - t0) / 1_000_000 + "ms sluice=" + (t2 - t1) / 1_000_000 + "ms");
        String head = "api=" + c.api.name + " v=" + c.version + " case=" + c.name;
        if ("error".equals(k.status) && k.detail.startsWith("encode") && "error".equals(s.status)) {
            skipped++;
            System.out.println("SKIP " + head + " reason=" + q(k.detail));
            return;
        }
        long t3 = System.nanoTime();
        List<Diff> diffs = compare(c, k, s);
        apiMs.merge(c.api.name + " compare", (System.nanoTime() - t3) / 1_000_000, Long::sum);
        if (diffs.isEmpty()) {
            same++;
            System.out.println("SAME " + head + (k.ok() ? "" : " outcome=" + k.status));
            return;
        }
        diff++;
        boolean allAllowed = true;
        String reason = null;
        for (Diff d : diffs) {
            Rule r = rules.stream().filter(x -> x.matches(c, d.field)).findFirst().orElse(null);
            if (r == null) allAllowed = false; else { used.add(r); if (reason == null) reason = r.reason; }
        }
        if (allAllowed) {
            allowed++;
            // A case counts once under each category of the rules that accepted its fields.
            Set<String> cats = new TreeSet<>();
            // "cosmetic" (message presence) only when nothing else explains the case.
            for (Diff d : diffs) rules.stream().filter(x -> x.matches(c, d.field)).findFirst().ifPresent(x -> cats.add(category(x)));
            if (cats.size() > 1) cats.remove("cosmetic");
            for (String cat : cats) allowedPerCategory.merge(cat, 1, Integer::sum);
        }
        diffsPerApi.merge(c.api.name, diffs.size(), Integer::sum);
        diffCasesPerApi.computeIfAbsent(c.api.name, x -> new TreeSet<>()).add("v" + c.version + ":" + c.name);
        int shown = 0;
        for (Diff d : diffs) {
            if (shown == maxDiffLines) {
                System.out.println("DIFF " + head + " field=... kafka=... sluice=... (" + (diffs.size() - shown) + " more fields)");
                break;
            }
            Rule r = rules.stream().filter(x -> x.matches(c, d.field)).findFirst().orElse(null);
            System.out.println("DIFF " + head + " field=" + d.field + " kafka=" + q(d.kafka) + " sluice=" + q(d.sluice)
                + (r != null ? " allowed=" + q(r.reason) : ""));
            shown++;
        }
    }

    static String q(String s) {
        if (s == null) return "null";
        if (s.length() > 200) s = s.substring(0, 200) + "...(" + s.length() + " chars)";
        if (s.isEmpty() || s.matches(".*[\\s\"].*")) return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
        return s;
    }

    /** One-line summary of an outcome, for a response-vs-closed diff. */
    static String outcome(Broker.Outcome o) {
        if (!o.ok()) return o.status + (o.detail.isEmpty() ? "" : "(" + o.detail + ")");
        JsonNode ec = o.json.get("errorCode");
        return "response" + (ec != null ? "(errorCode=" + err(ec.asInt()) + ")" : "");
    }

    static String err(int code) {
        Errors e = Errors.forCode((short) code);
        return (e == Errors.UNKNOWN_SERVER_ERROR && code != -1 ? "UNKNOWN" : e.name()) + "(" + code + ")";
    }

    List<Diff> compare(Case c, Broker.Outcome k, Broker.Outcome s) {
        List<Diff> out = new ArrayList<>();
        if (!k.status.equals(s.status) || (!k.ok() && !k.status.equals("closed") && !k.status.equals("noresponse"))) {
            if (k.status.equals(s.status) && k.status.equals("timeout")) return out;
            out.add(new Diff("outcome", outcome(k), outcome(s)));
            return out;
        }
        if (!k.ok()) return out;
        if (k.parsedVersion != s.parsedVersion) out.add(new Diff("responseVersion", "" + k.parsedVersion, "" + s.parsedVersion));
        Map<String, String> kf = new LinkedHashMap<>(), sf = new LinkedHashMap<>();
        flatten(c, k.json, "", kf);
        flatten(c, s.json, "", sf);
        if (dump) {
            System.out.println("JSON broker=kafka api=" + c.api.name + " v=" + c.version + " case=" + c.name + " " + norm(k.json.toString()));
            System.out.println("JSON broker=sluice api=" + c.api.name + " v=" + c.version + " case=" + c.name + " " + norm(s.json.toString()));
        }
        // Self-check: a "valid" request Kafka rejects is a bug in this program's request.
        if (c.name.equals("valid")) {
            for (Map.Entry<String, String> e : kf.entrySet()) {
                if (e.getKey().toLowerCase().endsWith("errorcode") && !e.getValue().startsWith("NONE")
                    && !e.getValue().startsWith("MEMBER_ID_REQUIRED") && !e.getValue().startsWith("SECURITY_DISABLED")) {
                    System.out.println("NOTE api=" + c.api.name + " v=" + c.version + " case=" + c.name
                        + " kafka rejected the valid request: " + e.getKey() + "=" + e.getValue());
                }
            }
        }
        Set<String> keys = new java.util.LinkedHashSet<>(kf.keySet());
        keys.addAll(sf.keySet());
        List<Pattern> ignore = c.ignore.stream().map(ProtocolDiff::glob).toList();
        // An array element only one side has is one diff, not one per field inside it.
        Set<String> lonely = new HashSet<>();
        for (String key : keys) {
            if ("<element>".equals(kf.get(key)) != "<element>".equals(sf.get(key))) lonely.add(key);
        }
        for (String key : keys) {
            if (!ignore.isEmpty() && ignore.stream().anyMatch(p -> p.matcher(key).matches())) continue;
            if (!lonely.isEmpty() && insideLonely(key, lonely)) continue;
            String a = kf.getOrDefault(key, "<absent>"), b = sf.getOrDefault(key, "<absent>");
            if (!a.equals(b)) out.add(new Diff(key, a, b));
        }
        return out;
    }

    /** Whether some proper prefix of key, ending at a ']', names an element only one side has. */
    static boolean insideLonely(String key, Set<String> lonely) {
        for (int i = key.indexOf(']'); i >= 0 && i < key.length() - 1; i = key.indexOf(']', i + 1)) {
            if (lonely.contains(key.substring(0, i + 1))) return true;
        }
        return false;
    }

    String norm(String s) {
        return s.replace(rid, "<id>");
    }

    void flatten(Case c, JsonNode n, String path, Map<String, String> out) {
        if (n.isObject()) {
            Iterator<Map.Entry<String, JsonNode>> it = n.fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> e = it.next();
                String f = e.getKey();
                JsonNode v = e.getValue();
                String p = path.isEmpty() ? f : path + "." + f;
                if (IGNORED.contains(f)) continue;
                if (f.equals("errorMessage") || f.equals("documentation")) {
                    out.put(p, v.isNull() || v.asText().isEmpty() ? "<none>" : "<set>");
                    continue;
                }
                if (PRESENCE.contains(f) || (f.equals("leaderId") && v.isTextual())) {
                    out.put(p, presence(v));
                    continue;
                }
                if (f.toLowerCase().endsWith("errorcode") && v.isNumber()) { out.put(p, err(v.asInt())); continue; }
                if (v.isArray() && c.runOnly.contains(f)) {
                    com.fasterxml.jackson.databind.node.ArrayNode filtered = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.arrayNode();
                    // Objects of this run, minus the ones auto-created on the way (timing-dependent on Kafka).
                    for (JsonNode el : v) if (el.toString().contains(rid) && !el.toString().contains("-missing-")) filtered.add(el);
                    v = filtered;
                }
                flatten(c, v, p, out);
            }
        } else if (n.isArray()) {
            if (n.isEmpty()) { out.put(path, "[]"); return; }
            boolean objects = true;
            for (JsonNode el : n) if (!el.isObject()) { objects = false; break; }
            if (!objects) {
                List<String> vals = new ArrayList<>();
                for (JsonNode el : n) vals.add(el.isTextual() ? el.asText() : el.toString());
                out.put(path, norm(String.join(",", vals)));
                return;
            }
            out.put(path + ".length", String.valueOf(n.size()));
            String keyField = null;
            for (String kf : KEYS) {
                if (PRESENCE.contains(kf)) continue;
                Set<String> seen = new HashSet<>();
                boolean ok = true;
                for (JsonNode el : n) {
                    JsonNode kv = el.get(kf);
                    if (kv == null || kv.isNull() || !seen.add(kv.asText())) { ok = false; break; }
                }
                if (ok) { keyField = kf; break; }
            }
            int i = 0;
            for (JsonNode el : n) {
                String key = keyField == null ? String.valueOf(i) : norm(el.get(keyField).asText());
                if (keyField != null) out.put(path + "[" + key + "]", "<element>");
                flatten(c, el, path + "[" + key + "]", out);
                i++;
            }
        } else {
            out.put(path, n.isNull() ? "null" : norm(n.asText()));
        }
    }

    static String presence(JsonNode v) {
        if (v == null || v.isNull()) return "<null>";
        String t = v.asText();
        if (t.isEmpty()) return "<empty>";
        if (v.isNumber() && v.asLong() < 0) return "<negative>";
        if (v.isNumber() && v.asLong() == 0) return "<zero>";
        if (t.equals("AAAAAAAAAAAAAAAAAAAAAA")) return "<zero-uuid>";
        return "<set>";
    }
}
