#!/usr/bin/env python3
"""Apache Kafka 4.4.0's own command-line tools (the classes behind kafka-topics.sh & co.) as a client.

Every tool runs as its own JVM over the cached Kafka jars (compat-tests/kafka/refkafka.py
java_cmd), sequentially, each bounded by a subprocess timeout. The program follows the compat
program contract (compat_common.Program): the bootstrap address is the only argument.

A JVM start costs 2-4 s on a small machine, so scenarios share lazily created fixture topics
(created by whichever scenario needs them first) and a dynamic CDS archive of the tools' classes is
kept in the cache ($SLUICE_COMPAT_CACHE/kafka-cli-<version>.jsa, KAFKA_CLI_CDS=0 disables it).

When a tool fails, the FAIL reason carries the tool's own error (innermost exception class and
message, e.g. `UnsupportedVersionException: The node does not support CREATE_PARTITIONS`), and an
`OBS <scenario> error=<ExceptionClass>` line records it for compare mode.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "kafka"))
from compat_common import Failed, Program, check  # noqa: E402
import refkafka  # noqa: E402

T = "org.apache.kafka.tools."
TOPIC_CMD = T + "TopicCommand"
PRODUCER = T + "ConsoleProducer"
CONSUMER = T + "consumer.ConsoleConsumer"
GROUP_CMD = T + "consumer.group.ConsumerGroupCommand"
CONFIG_CMD = T + "ConfigCommand"
GET_OFFSETS = T + "GetOffsetShell"
DELETE_RECORDS = T + "DeleteRecordsCommand"
VPRODUCER = T + "VerifiableProducer"
VCONSUMER = T + "VerifiableConsumer"
PERF = T + "ProducerPerformance"
TXN_CMD = T + "TransactionsCommand"
ELECTION_CMD = T + "LeaderElectionCommand"
REASSIGN_CMD = T + "reassign.ReassignPartitionsCommand"
QUORUM_CMD = T + "MetadataQuorumCommand"
FEATURE_CMD = T + "FeatureCommand"
LOG_DIRS = T + "LogDirsCommand"
BROKER_ID = os.environ.get("KAFKA_CLI_BROKER_ID", "1")
TOOL_TIMEOUT = 30


class CliProgram(Program):
    """Program that also ends the tool JVMs still running when it finishes (watchdog included)."""

    def __init__(self):
        super().__init__("kafka-cli")
        self.children = set()

    def _finish(self):
        for p in list(self.children):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        super()._finish()


P = CliProgram()
_local = threading.local()

# ---------------------------------------------------------------- running tools

_CDS = {"args": None}
_CDS_LOCK = threading.Lock()


def cds_path():
    """The archive depends on the jars and the JVM (a stale one is ignored by -Xshare:auto, just slower)."""
    java = os.path.realpath(shutil.which(refkafka.JAVA) or refkafka.JAVA)
    key = [refkafka.classpath(), *sorted(os.listdir(refkafka.libs())), java,
           str(os.stat(java).st_mtime) if os.path.exists(java) else ""]
    h = hashlib.sha1("|".join(key).encode())
    return os.path.join(refkafka.CACHE, f"kafka-cli-{refkafka.version()}-{h.hexdigest()[:10]}.jsa")


def jvm_extra():
    """JVM flags added to refkafka.java_cmd: the CDS archive (if any) and JVM logging to stderr."""
    with _CDS_LOCK:
        if _CDS["args"] is None:
            args = ["-Xlog:disable", "-Xlog:all=warning:stderr"]
            if os.environ.get("KAFKA_CLI_CDS", "1") != "0":
                path = cds_path()
                if os.path.exists(path):
                    args += [f"-XX:SharedArchiveFile={path}", "-Xshare:auto"]
            _CDS["args"] = args
        return list(_CDS["args"])


def warm_cds():
    """Creates the CDS archive once (a TopicCommand --list with -XX:ArchiveClassesAtExit); best effort."""
    if os.environ.get("KAFKA_CLI_CDS", "1") == "0":
        return
    path = cds_path()
    if os.path.exists(path):
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    argv = refkafka.java_cmd(TOPIC_CMD, "--bootstrap-server", P.bootstrap, "--list")
    argv[1:1] = ["-Xlog:disable", "-Xlog:all=error:stderr", f"-XX:ArchiveClassesAtExit={tmp}"]
    try:
        r = subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode == 0 and os.path.exists(tmp):
            os.replace(tmp, path)
    except (OSError, subprocess.TimeoutExpired):
        pass
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    with _CDS_LOCK:
        _CDS["args"] = None


def op_name(cls, args):
    short = cls.rsplit(".", 1)[-1]
    action = next((a for a in args if a in ("--create", "--list", "--describe", "--alter", "--delete",
                                             "--reset-offsets", "--delete-offsets")), "")
    return f"{short} {action}".strip()


# innermost exception of a line like "...ExecutionException: org.apache...UnsupportedVersionException: msg"
EXC = re.compile(r"(?<![\w$.])(?:[a-z_][\w$]*\.)+([A-Z][\w$]*(?:Exception|Error))\b")


def tool_error(out, err):
    """The tool's first useful error: `ExceptionClass: message` (innermost cause), else an error line."""
    lines = [l.strip() for l in (err + "\n" + out).splitlines()]
    lines = [l for l in lines if l and not l.startswith("at ") and not l.startswith("...")]
    warn = re.compile(r"^\[[^\]]*\] WARN ")
    for prefer_non_warn in (True, False):
        for l in lines:
            if prefer_non_warn and warn.match(l):
                continue
            ms = list(EXC.finditer(l))
            if ms:
                m = ms[-1]
                msg = l[m.end():].lstrip(": ").strip()
                msg = re.sub(r"\s*\(org\.apache\.kafka[\w.$]*\)$", "", msg)
                return f"{m.group(1)}: {msg}"[:300] if msg else m.group(1)
    for l in lines:
        if re.search(r"error|exception|fail|not supported|unsupported", l, re.I) and "KIP-848" not in l:
            return l[:300]
    return (lines[-1][:300] if lines else "(no output)")


def error_class(text):
    """Deterministic short form of a tool error for OBS: the exception class (plus the API it names)."""
    m = re.match(r"([A-Z][\w$]*(?:Exception|Error))\b", text)
    api = re.search(r"\b([A-Z][A-Z_]{4,}[A-Z])\b(?: API)?", text)
    if m:
        return f"{m.group(1)}:{api.group(1)}" if api and "Unsupported" in m.group(1) else m.group(1)
    m = re.search(r"The ([A-Z_]+) API is not supported", text)
    return f"ApiNotSupported:{m.group(1)}" if m else None


def tool(cls, *args, stdin=None, timeout=TOOL_TIMEOUT):
    """Runs one Kafka tool; returns (rc, stdout, stderr). Bounded by the scenario's remaining time."""
    left = getattr(_local, "deadline", time.monotonic() + 1e9) - time.monotonic() - 1
    t = max(1.0, min(timeout, left))
    argv = refkafka.java_cmd(cls, *args)
    argv[1:1] = jvm_extra()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    P.children.add(p)
    t0 = time.monotonic()
    try:
        try:
            out, err = p.communicate(stdin.encode() if stdin is not None else None, timeout=t)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            out, err = p.communicate()
            e = tool_error(out.decode(errors="replace"), err.decode(errors="replace"))
            raise Failed(f"{op_name(cls, args)} timed out after {t:.0f}s; tool said: {e}")
    finally:
        P.children.discard(p)
        print(f"kafka-cli: {op_name(cls, args)} rc={p.returncode} {time.monotonic() - t0:.1f}s", file=sys.stderr,
              flush=True)
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def tool_ok(s, cls, *args, stdin=None, timeout=TOOL_TIMEOUT, bad=None):
    """Runs a tool that must succeed (rc 0 and, if given, no line matching `bad`); returns (stdout, stderr)."""
    rc, out, err = tool(cls, *args, stdin=stdin, timeout=timeout)
    bad_hit = bad and re.search(bad, out + "\n" + err, re.M)
    if rc != 0 or bad_hit:
        e = tool_error(out, err)
        cls_name = error_class(e)
        if cls_name:
            P.obs(s, "error", cls_name)
        raise Failed(f"{op_name(cls, args)} failed (rc={rc}): {e}")
    return out, err


def topic_cmd(s, *args, **kw):
    return tool_ok(s, TOPIC_CMD, "--bootstrap-server", P.bootstrap, *args, **kw)


def group_cmd(s, *args, **kw):
    return tool_ok(s, GROUP_CMD, "--bootstrap-server", P.bootstrap, *args, bad=r"^Error:", **kw)


def config_cmd(s, *args, **kw):
    return tool_ok(s, CONFIG_CMD, "--bootstrap-server", P.bootstrap, *args, **kw)


def get_offsets(s, topic, time_spec):
    out, _ = tool_ok(s, GET_OFFSETS, "--bootstrap-server", P.bootstrap, "--topic", topic, "--time", time_spec)
    offs = {}
    for line in out.splitlines():
        m = re.match(rf"^{re.escape(topic)}:(\d+):(-?\d*)$", line.strip())
        if m:
            offs[int(m.group(1))] = int(m.group(2)) if m.group(2) else None
    check(offs, f"GetOffsetShell --time {time_spec} printed no offsets for {topic}: {out.strip()[:200]!r}")
    return offs


# ---------------------------------------------------------------- parsing helpers

def topic_list(out):
    return {l.strip() for l in out.splitlines() if l.strip()}


def parse_describe(out, topic):
    """TopicCommand --describe: (PartitionCount, Configs string, [(partition, leader)])."""
    count, configs, parts = None, None, []
    for line in out.splitlines():
        f = dict(re.findall(r"(\w+): ([^\t]*)", line))
        if f.get("Topic") != topic:
            continue
        if "PartitionCount" in f:
            count = int(f["PartitionCount"])
            configs = f.get("Configs", "").strip()
        elif "Partition" in f:
            parts.append((int(f["Partition"]), f.get("Leader", "").strip()))
    check(count is not None, f"describe of {topic} has no PartitionCount line: {out.strip()[:200]!r}")
    return count, configs, sorted(parts)


def parse_table(out, first_col="GROUP"):
    """ConsumerGroupCommand tables: list of dicts keyed by the header columns."""
    rows, header = [], None
    for line in out.splitlines():
        cols = line.split()
        if not cols:
            continue
        if cols[0] == first_col:
            header = cols
            continue
        if header and len(cols) >= len(header):
            rows.append(dict(zip(header, cols)))
    return rows


def parse_configs(out):
    """ConfigCommand --describe: {name: (value, sensitive, synonyms)}."""
    res = {}
    for line in out.splitlines():
        m = re.match(r"^\s+([\w.\-]+)=(.*?) sensitive=(\w+) synonyms=\{(.*)\}\s*$", line)
        if m:
            res[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return res


def first_source(synonyms):
    return synonyms.split(":", 1)[0] if synonyms else "none"


# ---------------------------------------------------------------- fixtures

_FIX_LOCK = threading.Lock()


def fixture(key, make):
    """Runs make() once per program (the first scenario that needs it); a failure is retried next time."""
    with _FIX_LOCK:
        if key not in P.state:
            P.state[key] = make()
        return P.state[key]


def create_topic(s, topic, partitions, *configs):
    args = ["--create", "--topic", topic, "--partitions", str(partitions)]
    for c in configs:
        args += ["--config", c]
    out, _ = topic_cmd(s, *args)
    check(f"Created topic {topic}." in out, f"TopicCommand --create printed {out.strip()[:200]!r}")


def console_produce(s, topic, lines, headers=False):
    args = ["--bootstrap-server", P.bootstrap, "--topic", topic, "--reader-property", "parse.key=true",
            "--reader-property", "key.separator=|"]
    if headers:
        args += ["--reader-property", "parse.headers=true"]
    tool_ok(s, PRODUCER, *args, stdin="".join(l + "\n" for l in lines),
            bad=r"Error when sending message|ERROR ")


def console_args(topic, n, timeout_ms, *extra):
    args = ["--bootstrap-server", P.bootstrap, "--topic", topic, "--from-beginning", "--max-messages", str(n),
            "--timeout-ms", str(timeout_ms), *extra]
    for prop in ("print.key", "print.headers", "print.offset", "print.partition"):
        args += ["--formatter-property", f"{prop}=true"]
    return args


def console_records(out):
    """ConsoleConsumer lines (print.partition/offset/headers/key): [(partition, offset, headers, key, value)]."""
    recs = []
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) == 5 and f[0].startswith("Partition:") and f[1].startswith("Offset:"):
            recs.append((int(f[0][10:]), int(f[1][7:]), f[2], f[3], f[4]))
    return recs


def console_consume(s, topic, n, group=None, isolation=None):
    extra = (["--group", group] if group else []) + (["--isolation-level", isolation] if isolation else [])
    out, err = tool_ok(s, CONSUMER, *console_args(topic, n, 15000, *extra), timeout=40)
    recs = console_records(out)
    check(len(recs) == n, f"ConsoleConsumer read {len(recs)} of {n} records; it said: "
                          f"{tool_error(out, err) if not recs else err.strip().splitlines()[-1:]}")
    return recs


def topics_topic(s):
    t = P.name("topic", "cli_topics")

    def make():
        create_topic(s, t, 3, "retention.ms=3600000")
        return t
    return fixture("topics", make)


def console_topic(s):
    """1 partition, 5 keyed records with headers (offsets 0..4)."""
    t = P.name("topic", "cli_console")

    def make():
        create_topic(s, t, 1)
        console_produce(s, t, [f"h-idx:{i},h-dup:a,h-dup:b\tkey-{i}|value-{i}" for i in range(5)], headers=True)
        return t
    return fixture("console", make)


def groups_topic(s):
    """2 partitions, 6 keyed records (key-0..key-5: 3 per partition by the Java client's murmur2)."""
    t = P.name("topic", "cli_groups")

    def make():
        create_topic(s, t, 2)
        console_produce(s, t, [f"key-{i}|value-{i}" for i in range(6)])
        return t
    return fixture("groups_topic", make)


def consumed_group(s):
    """The group that read all of groups_topic with ConsoleConsumer --group (commits on close)."""
    t = groups_topic(s)
    g = P.name("group", "cli_groups")

    def make():
        recs = console_consume(s, t, 6, group=g)
        check(sorted(r[3] for r in recs) == [f"key-{i}" for i in range(6)], f"group read {recs}")
        return g
    return t, fixture("group", make)


def describe_group(s, g, t):
    out, _ = group_cmd(s, "--describe", "--group", g)
    return {int(r["PARTITION"]): r for r in parse_table(out) if r.get("TOPIC") == t}


# ---------------------------------------------------------------- scenarios

def s_topics_create_list_describe(s):
    t = P.name("topic", "cli_topics")
    create_topic(s, t, 3, "retention.ms=3600000")
    P.state["topics"] = t
    out, _ = topic_cmd(s, "--list")
    check(t in topic_list(out), f"--list lacks {t}")
    P.obs(s, "listed", True)
    out, _ = topic_cmd(s, "--describe", "--topic", t)
    count, configs, parts = parse_describe(out, t)
    P.obs(s, "partition_count", count)
    P.obs(s, "partitions", ",".join(f"{p}:leader={l}" for p, l in parts))
    check(count == 3, f"PartitionCount {count}, want 3")
    check([p for p, _ in parts] == [0, 1, 2], f"partition lines {parts}")
    check(all(l == BROKER_ID for _, l in parts), f"leaders {parts}, want {BROKER_ID}")
    cfg = dict(c.split("=", 1) for c in configs.split(",") if "=" in c)
    P.obs(s, "retention.ms", cfg.get("retention.ms"))
    check(cfg.get("retention.ms") == "3600000", f"Configs: {configs!r} lacks retention.ms=3600000")


def s_topics_alter_partitions(s):
    t = topics_topic(s)
    topic_cmd(s, "--alter", "--topic", t, "--partitions", "5")
    out, _ = topic_cmd(s, "--describe", "--topic", t)
    count, _, parts = parse_describe(out, t)
    P.obs(s, "partition_count", count)
    P.obs(s, "partitions", ",".join(f"{p}:leader={l}" for p, l in parts))
    check(count == 5 and [p for p, _ in parts] == [0, 1, 2, 3, 4], f"after --alter: {count} partitions, {parts}")


def s_topics_delete(s):
    t = topics_topic(s)
    topic_cmd(s, "--delete", "--topic", t)
    P.state.pop("topics", None)
    for attempt in range(2):
        out, _ = topic_cmd(s, "--list")
        if t not in topic_list(out):
            break
        time.sleep(1)
    P.obs(s, "listed_after_delete", t in topic_list(out))
    check(t not in topic_list(out), f"{t} still listed after --delete")


def s_console_produce_consume(s):
    t = console_topic(s)
    recs = console_consume(s, t, 5)
    for p, off, h, k, v in recs:
        P.obs(s, f"record{off}", f"p{p}|{h}|{k}|{v}")
    want = [(0, i, f"h-idx:{i},h-dup:a,h-dup:b", f"key-{i}", f"value-{i}") for i in range(5)]
    check(recs == want, f"read back {recs}, want {want}")


def s_groups_list_describe(s):
    t, g = consumed_group(s)
    out, _ = group_cmd(s, "--list")
    check(g in topic_list(out), f"--list lacks {g}: {out.strip()[:200]!r}")
    P.obs(s, "listed", True)
    rows = describe_group(s, g, t)
    for p in sorted(rows):
        r = rows[p]
        P.obs(s, f"p{p}", f"current={r['CURRENT-OFFSET']},log_end={r['LOG-END-OFFSET']},lag={r['LAG']}")
    check(sorted(rows) == [0, 1], f"--describe partitions {sorted(rows)}, want [0, 1]")
    check(all(r["CURRENT-OFFSET"] == r["LOG-END-OFFSET"] and r["LAG"] == "0" for r in rows.values()),
          f"committed != log end: {rows}")
    check(sum(int(r["LOG-END-OFFSET"]) for r in rows.values()) == 6, f"log end offsets do not sum to 6: {rows}")
    P.state["groups_ends"] = {p: int(r["LOG-END-OFFSET"]) for p, r in rows.items()}


def s_groups_reset_offsets(s):
    t, g = consumed_group(s)
    ends = {p: int(o) for p, o in get_offsets_cached(s, t).items()}

    def reset(*spec):
        out, _ = group_cmd(s, "--reset-offsets", "--group", g, "--topic", t, *spec, "--execute")
        rows = {int(r["PARTITION"]): int(r["NEW-OFFSET"]) for r in parse_table(out) if r.get("TOPIC") == t}
        P.obs(s, spec[0].lstrip("-"), ",".join(f"p{p}={o}" for p, o in sorted(rows.items())))
        return rows

    r = reset("--to-earliest")
    check(r == {0: 0, 1: 0}, f"--to-earliest gave {r}")
    r = reset("--to-datetime", "2100-01-01T00:00:00.000")
    check(r == ends, f"--to-datetime 2100 (no record that late: latest) gave {r}, want {ends}")
    r = reset("--shift-by", "-2")
    want = {p: max(0, e - 2) for p, e in ends.items()}
    check(r == want, f"--shift-by -2 gave {r}, want {want}")
    rows = describe_group(s, g, t)
    cur = {p: int(rows[p]["CURRENT-OFFSET"]) for p in rows}
    P.obs(s, "described", ",".join(f"p{p}={o}" for p, o in sorted(cur.items())))
    check(cur == want, f"--describe after reset shows {cur}, want {want}")


def get_offsets_cached(s, t):
    """Log end offsets of the groups topic (from --describe of the consumed group)."""
    key = "groups_ends"
    if key not in P.state:
        rows = describe_group(s, P.state["group"], t)
        P.state[key] = {p: int(r["LOG-END-OFFSET"]) for p, r in rows.items()}
    return P.state[key]


def s_groups_delete_offsets(s):
    t, g = consumed_group(s)
    out, _ = group_cmd(s, "--delete-offsets", "--group", g, "--topic", t)
    rows = {int(r["PARTITION"]): r["STATUS"] for r in parse_table(out, "TOPIC") if r.get("TOPIC") == t}
    P.obs(s, "status", ",".join(f"p{p}={st}" for p, st in sorted(rows.items())))
    check(rows == {0: "Successful", 1: "Successful"}, f"--delete-offsets: {out.strip()[:300]!r}")
    rows = describe_group(s, g, t)
    P.obs(s, "described_partitions", len(rows))
    check(not rows, f"--describe still shows offsets for {t}: {rows}")


def s_groups_delete(s):
    t, g = consumed_group(s)
    out, _ = group_cmd(s, "--delete", "--group", g)
    check("was successful" in out, f"--delete printed {out.strip()[:200]!r}")
    out, _ = group_cmd(s, "--list")
    P.obs(s, "listed_after_delete", g in topic_list(out))
    check(g not in topic_list(out), f"{g} still listed after --delete")


def config_topic(s):
    t = P.name("topic", "cli_configs")

    def make():
        create_topic(s, t, 1, "retention.ms=3600000")
        return t
    return fixture("config_topic", make)


def s_configs_topic_describe(s):
    t = config_topic(s)
    out, _ = config_cmd(s, "--describe", "--entity-type", "topics", "--entity-name", t, "--all")
    cfg = parse_configs(out)
    for k in ("retention.ms", "cleanup.policy", "max.message.bytes", "segment.bytes"):
        v = cfg.get(k)
        P.obs(s, k, f"{v[0]}/{first_source(v[2])}" if v else "absent")
    check(cfg.get("retention.ms", ("",))[0] == "3600000", f"retention.ms = {cfg.get('retention.ms')}")
    check(first_source(cfg["retention.ms"][2]) == "DYNAMIC_TOPIC_CONFIG",
          f"retention.ms synonyms {cfg['retention.ms'][2]!r}, want DYNAMIC_TOPIC_CONFIG first")
    check(cfg.get("cleanup.policy", ("",))[0] == "delete" and first_source(cfg["cleanup.policy"][2]) == "DEFAULT_CONFIG",
          f"cleanup.policy = {cfg.get('cleanup.policy')}, want delete from DEFAULT_CONFIG")


def s_configs_topic_alter(s):
    t = config_topic(s)
    ent = ["--entity-type", "topics", "--entity-name", t]
    out, _ = config_cmd(s, "--alter", *ent, "--add-config", "retention.ms=7200000")
    check("Completed updating config" in out, f"--alter printed {out.strip()[:200]!r}")
    out, _ = config_cmd(s, "--describe", *ent)
    cfg = parse_configs(out)
    v = cfg.get("retention.ms")
    P.obs(s, "after_add", f"{v[0]}/{first_source(v[2])}" if v else "absent")
    check(v and v[0] == "7200000" and first_source(v[2]) == "DYNAMIC_TOPIC_CONFIG", f"after --add-config: {v}")
    config_cmd(s, "--alter", *ent, "--delete-config", "retention.ms")
    out, _ = config_cmd(s, "--describe", *ent)
    cfg = parse_configs(out)
    P.obs(s, "after_delete", ",".join(sorted(cfg)) or "none")
    check("retention.ms" not in cfg, f"retention.ms still a dynamic config after --delete-config: {cfg}")


BROKER_KEYS = ("num.partitions", "log.cleaner.threads", "message.max.bytes", "auto.create.topics.enable",
               "log.retention.hours", "log.retention.ms", "default.replication.factor")


def s_configs_broker_describe(s):
    out, _ = config_cmd(s, "--describe", "--entity-type", "brokers", "--entity-name", BROKER_ID, "--all")
    check(f"configs for broker {BROKER_ID} are:" in out, f"--describe printed {out.strip()[:200]!r}")
    cfg = parse_configs(out)
    for k in BROKER_KEYS:
        v = cfg.get(k)
        P.obs(s, k, f"{v[0]}/{first_source(v[2])}" if v else "absent")
    check(cfg, "no broker configs described")
    check(cfg.get("num.partitions", ("",))[0].isdigit(), f"num.partitions = {cfg.get('num.partitions')}")


def s_configs_broker_alter(s):
    ent = ["--entity-type", "brokers", "--entity-name", BROKER_ID]
    out, _ = config_cmd(s, "--alter", *ent, "--add-config", "log.cleaner.threads=2")
    check("Completed updating config" in out, f"--alter printed {out.strip()[:200]!r}")
    try:
        out, _ = config_cmd(s, "--describe", *ent)
        v = parse_configs(out).get("log.cleaner.threads")
        P.obs(s, "after_add", f"{v[0]}/{first_source(v[2])}" if v else "absent")
        check(v and v[0] == "2" and first_source(v[2]) == "DYNAMIC_BROKER_CONFIG",
              f"after --add-config log.cleaner.threads=2: {v}")
    finally:
        config_cmd(s, "--alter", *ent, "--delete-config", "log.cleaner.threads")  # restore the shared broker
    out, _ = config_cmd(s, "--describe", *ent)
    v = parse_configs(out).get("log.cleaner.threads")
    P.obs(s, "after_delete", f"{v[0]}/{first_source(v[2])}" if v else "absent")
    check(not v, f"log.cleaner.threads still dynamic after --delete-config: {v}")


def s_get_offsets(s):
    t = groups_topic(s)
    latest = get_offsets(s, t, "-1")
    earliest = get_offsets(s, t, "-2")
    P.obs(s, "latest", ",".join(f"p{p}={o}" for p, o in sorted(latest.items())))
    P.obs(s, "earliest", ",".join(f"p{p}={o}" for p, o in sorted(earliest.items())))
    check(sorted(latest) == [0, 1] and sum(latest.values()) == 6, f"--time -1 gave {latest}, want 6 records on p0,p1")
    check(earliest == {0: 0, 1: 0}, f"--time -2 gave {earliest}")


def s_delete_records(s):
    t = console_topic(s)
    fd, path = tempfile.mkstemp(prefix="kafka-cli-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"partitions": [{"topic": t, "partition": 0, "offset": 3}], "version": 1}, f)
    try:
        out, _ = tool_ok(s, DELETE_RECORDS, "--bootstrap-server", P.bootstrap, "--offset-json-file", path,
                         bad=r"error:|Error")
    finally:
        os.unlink(path)
    m = re.search(rf"partition: {re.escape(t)}-0\s+low_watermark: (-?\d+)", out)
    P.obs(s, "low_watermark", m.group(1) if m else "none")
    check(m and m.group(1) == "3", f"DeleteRecordsCommand printed {out.strip()[:300]!r}")
    earliest = get_offsets(s, t, "-2")
    P.obs(s, "earliest", ",".join(f"p{p}={o}" for p, o in sorted(earliest.items())))
    check(earliest == {0: 3}, f"GetOffsetShell --time -2 after delete gave {earliest}, want {{0: 3}}")


def json_lines(out):
    res = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                res.append(json.loads(line))
            except ValueError:
                pass
    return res


def s_verifiable(s):
    t = P.name("topic", s)
    g = P.name("group", s)
    create_topic(s, t, 1)
    out, err = tool_ok(s, VPRODUCER, "--bootstrap-server", P.bootstrap, "--topic", t, "--max-messages", "200",
                       timeout=40)
    ev = json_lines(out)
    ok = [e for e in ev if e.get("name") == "producer_send_success"]
    errs = [e for e in ev if e.get("name") == "producer_send_error"]
    data = next((e for e in ev if e.get("name") == "tool_data"), {})
    P.obs(s, "acked", data.get("acked"))
    P.obs(s, "send_errors", len(errs))
    P.obs(s, "offsets", f"{min((e['offset'] for e in ok), default=None)}..{max((e['offset'] for e in ok), default=None)}")
    check(data.get("acked") == 200 and len(ok) == 200,
          f"VerifiableProducer acked {data.get('acked')} ({len(ok)} successes, errors: "
          f"{errs[0].get('exception') if errs else tool_error(out, err)})")
    check(sorted(e["offset"] for e in ok) == list(range(200)), "acked offsets are not 0..199")
    out, err = tool_ok(s, VCONSUMER, "--bootstrap-server", P.bootstrap, "--topic", t, "--group-id", g,
                       "--max-messages", "200", timeout=45)
    ev = json_lines(out)
    consumed = sum(e.get("count", 0) for e in ev if e.get("name") == "records_consumed")
    commits = [o for e in ev if e.get("name") == "offsets_committed" and e.get("success") for o in e.get("offsets", [])]
    failed_commits = [e for e in ev if e.get("name") == "offsets_committed" and not e.get("success")]
    P.obs(s, "consumed", consumed)
    P.obs(s, "committed", max((o["offset"] for o in commits), default=None))
    check(consumed == 200, f"VerifiableConsumer consumed {consumed} of 200; {tool_error(out, err)}")
    check(not failed_commits, f"commit failed: {failed_commits[0].get('error') if failed_commits else ''}")
    check(max((o["offset"] for o in commits), default=None) == 200, f"committed offsets {commits}")


def s_producer_perf(s):
    t = P.name("topic", s)
    out, err = tool_ok(s, PERF, "--bootstrap-server", P.bootstrap, "--topic", t, "--num-records", "20000",
                       "--record-size", "100", "--throughput", "-1", "--command-property", "acks=all",
                       timeout=60)
    sent = re.findall(r"^(\d+) records sent, .*latency", out, re.M)
    P.obs(s, "records_sent", sent[-1] if sent else "none")
    check(sent and sent[-1] == "20000", f"ProducerPerformance summary {sent[-1:] or 'missing'}; "
                                        f"{tool_error(out, err)}")


def txn_cmd(s, *args, **kw):
    return tool_ok(s, TXN_CMD, "--bootstrap-server", P.bootstrap, *args, **kw)


def parse_tabs(out):
    """TransactionsCommand tables (tab-separated, padded, a trailing tab): list of dicts by header."""
    rows, header = [], None
    for line in out.splitlines():
        cells = [c.strip() for c in line.rstrip("\n").split("\t")]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if header is None:
            header = cells
        else:
            rows.append(dict(zip(header, cells)))
    return rows


def s_transactions(s):
    """kafka-transactions (TransactionsCommand) on a transaction left open by Kafka's own
    kafka-producer-perf-test: list, describe, describe-producers, find-hanging; a plain record after it
    stays invisible to read_committed until `abort --start-offset` (the producer is gone by then) writes
    the partition's abort marker; forceTerminateTransaction ends the transaction at its coordinator."""
    t, txid = P.name("topic", s), P.name("txn", s)
    create_topic(s, t, 1)
    # The perf tool begins a transaction and sends two records at once (its throttle check follows the
    # second), then sleeps 100 s (0.01 records/s) with the transaction open: the transaction lasts up to
    # 10 minutes and its timeout (120 s) outlives the scenario.
    argv = refkafka.java_cmd(PERF, "--bootstrap-server", P.bootstrap, "--topic", t, "--num-records", "1000",
                             "--throughput", "0.01", "--record-size", "10", "--transactional-id", txid,
                             "--transaction-duration-ms", "600000", "--command-property", "transaction.timeout.ms=120000")
    argv[1:1] = jvm_extra()
    logf = tempfile.TemporaryFile()
    perf = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    P.children.add(perf)

    def perf_said():
        logf.seek(0)
        return logf.read().decode(errors="replace")

    def stop_perf():
        if perf.poll() is None:
            try:
                os.killpg(perf.pid, signal.SIGKILL)
            except OSError:
                pass
        perf.wait()
        P.children.discard(perf)

    try:
        end = time.monotonic() + 40
        while True:
            if perf.poll() is not None:
                e = tool_error(perf_said(), "")
                if error_class(e):
                    P.obs(s, "error", error_class(e))
                raise Failed(f"ProducerPerformance exited ({perf.returncode}) before its transaction was listed: {e}")
            out, _ = txn_cmd(s, "list")
            rows = [r for r in parse_tabs(out) if r.get("TransactionalId") == txid]
            if rows and rows[0].get("TransactionState") == "Ongoing":
                break
            check(time.monotonic() < end, f"`list` did not show {txid} Ongoing within 40s: {out.strip()[:300]!r}")
            time.sleep(0.5)
        pid = rows[0].get("ProducerId")
        P.obs(s, "list", f"state={rows[0].get('TransactionState')}")
        out, _ = txn_cmd(s, "describe", "--transactional-id", txid)
        d = parse_tabs(out)
        check(len(d) == 1, f"describe printed {out.strip()[:300]!r}")
        d = d[0]
        P.obs(s, "describe", f"state={d.get('TransactionState')},epoch={d.get('ProducerEpoch')},"
                             f"timeout_ms={d.get('TransactionTimeoutMs')},partitions={d.get('TopicPartitions')}")
        check(d.get("TransactionalId") == txid and d.get("ProducerId") == pid and d.get("TransactionState") == "Ongoing",
              f"describe --transactional-id: {d}, expected {txid}, producer id {pid}, Ongoing")
        check(d.get("TopicPartitions") == f"{t}-0" and d.get("TransactionTimeoutMs") == "120000",
              f"describe --transactional-id: partitions {d.get('TopicPartitions')}, timeout "
              f"{d.get('TransactionTimeoutMs')}; expected {t}-0 and 120000")
        for attempt in range(5):  # both records of the open transaction are in the log
            out, _ = txn_cmd(s, "describe-producers", "--topic", t, "--partition", "0")
            prods = parse_tabs(out)
            if len(prods) == 1 and prods[0].get("LastSequence") == "1":
                break
            time.sleep(0.5)
        P.obs(s, "producers", ",".join(f"epoch={r.get('ProducerEpoch')}:last_sequence={r.get('LastSequence')}:"
                                       f"txn_start={r.get('CurrentTransactionStartOffset')}" for r in prods))
        check(len(prods) == 1 and prods[0].get("ProducerId") == pid, f"describe-producers: {prods}, expected producer {pid}")
        check(prods[0].get("CurrentTransactionStartOffset") == "0" and prods[0].get("LastSequence") == "1",
              f"describe-producers: {prods[0]}, expected an open transaction from offset 0 holding 2 records")
        # The coordinator knows the transaction (Ongoing, with this partition): not hanging, however old.
        out, _ = txn_cmd(s, "find-hanging", "--broker-id", BROKER_ID, "--topic", t, "--partition", "0",
                         "--max-transaction-timeout", "0")
        hanging = parse_tabs(out)
        P.obs(s, "find_hanging", len(hanging))
        check(not hanging, f"find-hanging listed the coordinator's ongoing transaction: {hanging}")
        # A plain record after the open transaction: invisible to read_committed while it is open.
        console_produce(s, t, ["after|after-0"])
        rc, out, err = tool(CONSUMER, *console_args(t, 1, 2000, "--isolation-level", "read_committed"))
        before = console_records(out)
        P.obs(s, "read_committed_while_open", len(before))
        check(not before, f"read_committed read {before} while the transaction at offset 0 is open")
        stop_perf()  # the producer is gone; its transaction stays open
        out, _ = txn_cmd(s, "abort", "--topic", t, "--partition", "0", "--start-offset", "0")
        P.obs(s, "abort_output", out.strip() or "none")
        recs = console_consume(s, t, 1, isolation="read_committed")
        P.obs(s, "read_committed_after_abort", ",".join(f"{o}:{k}:{v}" for _, o, _, k, v in recs))
        check([(o, k, v) for _, o, _, k, v in recs] == [(2, "after", "after-0")],
              f"read_committed after abort read {recs}, expected only after-0 at offset 2")
        # The partition is past it, but its coordinator still holds the transaction Ongoing.
        out, _ = txn_cmd(s, "forceTerminateTransaction", "--transactionalId", txid)
        out, _ = txn_cmd(s, "describe", "--transactional-id", txid)
        d = parse_tabs(out)
        check(len(d) == 1, f"describe after forceTerminateTransaction printed {out.strip()[:300]!r}")
        P.obs(s, "after_force_terminate", f"state={d[0].get('TransactionState')},partitions={d[0].get('TopicPartitions', '')}")
        check(d[0].get("TransactionState") not in ("Ongoing", "PrepareCommit", "CompleteCommit"),
              f"after forceTerminateTransaction the transaction is {d[0].get('TransactionState')}")
    finally:
        stop_perf()
        logf.close()


# ---------------------------------------------------------------- cluster administration

def admin_topic(s):
    """2 partitions, for the election and reassignment tools (never altered or deleted)."""
    t = P.name("topic", "cli_admin")

    def make():
        create_topic(s, t, 2)
        return t
    return fixture("admin", make)


def election_outcome(out):
    if "Valid replica already elected" in out:
        return "already_elected"
    if "Successfully completed leader election" in out:
        return "elected"
    return "other"


def s_leader_election(s):
    t = admin_topic(s)
    for kind in ("PREFERRED", "UNCLEAN"):
        out, _ = tool_ok(s, ELECTION_CMD, "--bootstrap-server", P.bootstrap, "--election-type", kind,
                         "--topic", t, "--partition", "0")
        P.obs(s, kind.lower(), election_outcome(out))
        check(election_outcome(out) == "already_elected", f"{kind} election of {t}-0 printed {out.strip()[:200]!r}")
    # Every partition: only those that needed an election are reported (none on one broker).
    out, _ = tool_ok(s, ELECTION_CMD, "--bootstrap-server", P.bootstrap, "--election-type", "PREFERRED",
                     "--all-topic-partitions")
    P.obs(s, "all_partitions", election_outcome(out) if out.strip() else "nothing_reported")
    rc, out, err = tool(ELECTION_CMD, "--bootstrap-server", P.bootstrap, "--election-type", "PREFERRED",
                        "--topic", t, "--partition", "99")
    P.obs(s, "unknown_partition", error_class(tool_error(out, err)) if rc != 0 or "Exception" in err + out else "ok")


def s_reassign_list(s):
    out, _ = tool_ok(s, REASSIGN_CMD, "--bootstrap-server", P.bootstrap, "--list")
    P.obs(s, "list", out.strip().replace(" ", "_"))
    check("No partition reassignments found." in out, f"--list printed {out.strip()[:200]!r}")


def s_reassign_execute_verify(s):
    """A reassignment to the replica the partition already has: started, then completed at once."""
    t = admin_topic(s)
    plan = os.path.join(tempfile.mkdtemp(prefix="cli-reassign-"), "plan.json")
    with open(plan, "w") as f:
        json.dump({"version": 1, "partitions": [{"topic": t, "partition": 0, "replicas": [int(BROKER_ID)]}]}, f)
    out, _ = tool_ok(s, REASSIGN_CMD, "--bootstrap-server", P.bootstrap, "--execute", "--reassignment-json-file", plan)
    started = f"Successfully started partition reassignment for {t}-0" in out
    P.obs(s, "started", started)
    check(started, f"--execute printed {out.strip()[-200:]!r}")
    out, _ = tool_ok(s, REASSIGN_CMD, "--bootstrap-server", P.bootstrap, "--verify", "--reassignment-json-file", plan)
    done = f"Reassignment of partition {t}-0 is completed." in out
    P.obs(s, "completed", done)
    check(done, f"--verify printed {out.strip()[-200:]!r}")


def s_metadata_quorum(s):
    out, _ = tool_ok(s, QUORUM_CMD, "--bootstrap-server", P.bootstrap, "describe", "--status")
    f = dict(re.findall(r"^(\w+):\s+(.*?)\s*$", out, re.M))
    voters = re.findall(r'"id": (\d+)', f.get("CurrentVoters", ""))
    for key in ("LeaderId", "LeaderEpoch", "MaxFollowerLag", "MaxFollowerLagTimeMs", "CurrentObservers"):
        P.obs(s, key, f.get(key))
    P.obs(s, "voters", ",".join(voters))
    check(f.get("LeaderId") == BROKER_ID and voters == [BROKER_ID], f"--status printed {out.strip()[:300]!r}")
    out, _ = tool_ok(s, QUORUM_CMD, "--bootstrap-server", P.bootstrap, "describe", "--replication")
    rows = [l.split() for l in out.splitlines() if l.strip() and not l.startswith("NodeId")]
    P.obs(s, "replication", ",".join(f"{r[0]}:{r[-1]}" for r in rows if r))
    check([r[0] for r in rows] == [BROKER_ID] and rows[0][-1] == "Leader", f"--replication printed {out.strip()[:300]!r}")


def s_features_describe(s):
    out, _ = tool_ok(s, FEATURE_CMD, "--bootstrap-server", P.bootstrap, "describe")
    feats = {m.group(1): m.group(2) for m in re.finditer(r"Feature: (\S+).*?FinalizedVersionLevel: (\S+)", out)}
    P.obs(s, "features", ",".join(sorted(feats)))
    for name in ("transaction.version", "group.version"):
        P.obs(s, name, feats.get(name))
    P.obs(s, "metadata.version_finalized", "metadata.version" in feats)
    check(feats.get("transaction.version") == "2" and "metadata.version" in feats, f"describe printed {out.strip()[:300]!r}")


def s_log_dirs(s):
    """kafka-log-dirs --describe of one 2-partition topic (DescribeLogDirs): one broker, one log
    dir, both partitions with a size, no lag, not future."""
    t = groups_topic(s)
    out, _ = tool_ok(s, LOG_DIRS, "--bootstrap-server", P.bootstrap, "--describe", "--topic-list", t)
    doc = json_lines(out)
    check(doc and "brokers" in doc[-1], f"LogDirsCommand printed {out.strip()[:300]!r}")
    brokers = doc[-1]["brokers"]
    P.obs(s, "brokers", len(brokers))
    dirs = [d for b in brokers for d in b["logDirs"]]
    P.obs(s, "log_dirs", len(dirs))
    P.obs(s, "errors", ",".join(str(d.get("error")) for d in dirs))
    parts = sorted((p for d in dirs for p in d["partitions"]), key=lambda p: p["partition"])
    P.obs(s, "partitions", ",".join(p["partition"].replace(t, "T") for p in parts))
    P.obs(s, "sizes_positive", all(p["size"] > 0 for p in parts))
    P.obs(s, "offset_lag", ",".join(str(p["offsetLag"]) for p in parts))
    P.obs(s, "future", ",".join(str(p["isFuture"]) for p in parts))
    check(len(brokers) == 1 and len(dirs) == 1 and [p["partition"] for p in parts] == [f"{t}-0", f"{t}-1"]
          and all(p["size"] > 0 for p in parts), f"LogDirsCommand printed {out.strip()[:300]!r}")


def scenario(name, fn, timeout):
    def run(s):
        _local.deadline = time.monotonic() + timeout
        return fn(s)
    return (name, run, timeout)


SCENARIOS = [
    scenario("cli_topics_create_list_describe", s_topics_create_list_describe, 50),
    scenario("cli_topics_alter_partitions", s_topics_alter_partitions, 40),
    scenario("cli_topics_delete", s_topics_delete, 40),
    scenario("cli_console_produce_consume", s_console_produce_consume, 70),
    scenario("cli_groups_list_describe", s_groups_list_describe, 90),
    scenario("cli_groups_reset_offsets", s_groups_reset_offsets, 90),
    scenario("cli_groups_delete_offsets", s_groups_delete_offsets, 60),
    scenario("cli_groups_delete", s_groups_delete, 60),
    scenario("cli_configs_topic_describe", s_configs_topic_describe, 40),
    scenario("cli_configs_topic_alter", s_configs_topic_alter, 60),
    scenario("cli_configs_broker_describe", s_configs_broker_describe, 30),
    scenario("cli_configs_broker_alter", s_configs_broker_alter, 60),
    scenario("cli_get_offsets", s_get_offsets, 60),
    scenario("cli_delete_records", s_delete_records, 70),
    scenario("cli_verifiable", s_verifiable, 100),
    scenario("cli_producer_perf", s_producer_perf, 70),
    scenario("cli_transactions", s_transactions, 150),
    scenario("cli_leader_election", s_leader_election, 70),
    scenario("cli_reassign_list", s_reassign_list, 30),
    scenario("cli_reassign_execute_verify", s_reassign_execute_verify, 50),
    scenario("cli_metadata_quorum", s_metadata_quorum, 40),
    scenario("cli_features_describe", s_features_describe, 30),
    scenario("cli_log_dirs", s_log_dirs, 40),
]


def preflight():
    """One bounded ApiVersions exchange with the bootstrap broker, then the jars (and CDS archive)."""
    host, _, port = P.bootstrap.rpartition(":")
    req = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big") + (0xFFFF).to_bytes(2, "big")
    with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5) as sock:
        sock.settimeout(5)
        sock.sendall(len(req).to_bytes(4, "big") + req)
        head = sock.recv(4)
        if len(head) < 4:
            raise ConnectionError("no ApiVersions response")
    refkafka.classpath()  # installs the jars if missing
    warm_cds()


print(f"# Apache Kafka {refkafka.version()} command-line tools (java -cp {refkafka.libs()})", flush=True)
P.run(SCENARIOS, preflight)
