#!/usr/bin/env python3
"""The kafka-connect column: a Kafka Connect worker (distributed mode) and MirrorMaker 2 against the broker.

The worker is Apache Kafka Connect 4.3.1 (compat-tests/clients/connect: connect-runtime,
connect-file, connect-mirror; the newest release whose connectors the registry serves), run as
`ConnectDistributed` with its REST API on a free loopback port. It creates its own config, offset
and status topics (cleanup.policy=compact), so the broker must serve compacted topics before
anything else here can work. This driver (confluent-kafka from the matrix's venv, urllib for the
REST API) follows the program contract (compat_common.Program). One worker JVM serves the
scenarios in order; connect_restart_resume kills it and starts the next:

  connect_file_pipeline   FileStreamSource (a file of LINES lines) -> a 1-partition topic ->
                          FileStreamSink: the output file holds exactly the lines, in order; the
                          source's stored offset (REST GET /connectors/NAME/offsets, read back from
                          the offsets topic) is the file's size, the sink's the topic's end offset.
  connect_mirror_maker    MirrorMaker 2's MirrorSourceConnector and MirrorCheckpointConnector in this
                          Connect cluster copy a topic (3 partitions, retention.ms set) and a consumer
                          group's committed offsets from a real Kafka 4.4 (COMPAT_MIRROR_SOURCE, which
                          compat-tests/run starts; shared by both sides of a comparison, so the source
                          names carry a tag of the target's address) into the broker under test; the
                          target topic has the partition count and retention.ms, the group's offsets
                          arrive translated (sync.group.offsets.enabled), and a consumer of that group
                          on the target reads exactly the records after them; then the source topic
                          grows to 4 partitions and the target topic follows (CreatePartitions).
  connect_restart_resume  the pipeline's worker is killed with SIGKILL, more lines are appended to the
                          source file, a new worker (same group and topics) starts: the output file
                          ends up with every line, in order of first appearance, nothing lost. Lines
                          written again (offsets not yet flushed at the kill: at-least-once) are
                          reported on stderr only; their number is not deterministic.
  connect_exactly_once_source  a second Connect cluster with exactly.once.source.support=enabled: a
                          FileStreamSource writes its records and offsets in transactions; killed with
                          SIGKILL mid-file and restarted, the topic read_committed holds every line
                          exactly once, in order.

OBS: line and record counts, stored offsets, translated group offsets, mirrored partition counts and
configs. The worker's WARN/ERROR log lines are copied to stderr; a FAIL names the connector's or
task's trace (REST status) or the worker's first errors.
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
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compat_common import Failed, Program, check  # noqa: E402
from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer,  # noqa: E402
                             TopicPartition, libversion, version)
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic  # noqa: E402

CACHE = os.environ.get("SLUICE_COMPAT_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sluice-compat")
LAUNCHER = os.environ.get("CONNECT_LAUNCHER") or os.path.join(CACHE, "connect", "bin", "kafka-connect")
MIRROR_SOURCE = os.environ.get("COMPAT_MIRROR_SOURCE", "")
LINES = 200           # lines of the pipeline's source file
MORE_LINES = 100      # appended while the worker is down
# Extra settings for both MirrorMaker 2 connectors, for experiments: MM2_EXTRA="NAME=VALUE ..."
# (e.g. sync.topic.configs.enabled=false gets past a target without IncrementalAlterConfigs).
MM2_EXTRA = dict(kv.split("=", 1) for kv in os.environ.get("MM2_EXTRA", "").split())
EOS_LINES = 3000      # the exactly-once file (killed part way through)
WORKER_START = 60     # seconds for a worker's REST API to answer and its herder to join
FILE_SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
FILE_SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
BYTES = "org.apache.kafka.connect.converters.ByteArrayConverter"


class ConnectProgram(Program):
    def __init__(self):
        super().__init__("kafka-connect")
        self.tmp = tempfile.mkdtemp(prefix="sluice-compat-connect-")
        self.workers = []

    def _finish(self):
        for w in list(self.workers):
            w.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)
        super()._finish()


P = ConnectProgram()


def on_signal(signum, _frame):
    for s in P.scenarios:
        P.fail(s[0], f"driver got signal {signum} (runner timeout?)")
    P._finish()


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)


def log(msg):
    print(f"kafka-connect: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean(text):
    return str(text).replace(P.rid, "<id>")


# ---------------------------------------------------------------- the worker

WORKER_NOISE = re.compile(r"(UNKNOWN_TOPIC_OR_PARTITION|LEADER_NOT_AVAILABLE|plugin\.discovery|"
                          r"was supplied but isn't a known config|Skipping plugin|Scanning plugins|"
                          r"consumers currently using this group in the target cluster)")


HERDER_DEAD = "Uncaught exception in herder work thread"


class Worker:
    """One ConnectDistributed JVM in its own session; REST on a free loopback port."""

    def __init__(self, label, cluster, settings=None):
        self.label = label
        self.port = free_port()
        self.rest = f"http://127.0.0.1:{self.port}"
        self.logpath = os.path.join(P.tmp, f"{label}.log")
        props = {
            "bootstrap.servers": P.bootstrap,
            "group.id": f"{cluster}-group",
            "config.storage.topic": f"{cluster}-configs",
            "offset.storage.topic": f"{cluster}-offsets",
            "status.storage.topic": f"{cluster}-status",
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "offset.storage.partitions": "3",
            "status.storage.partitions": "1",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "offset.flush.interval.ms": "500",
            # A killed worker's assignments go to the next one at once, not after 5 minutes.
            "scheduled.rebalance.max.delay.ms": "0",
            "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "1000",
            # The sink tasks' consumer groups too: a killed worker's sink consumer is gone in 6 s.
            "consumer.session.timeout.ms": "6000",
            "consumer.heartbeat.interval.ms": "1000",
            "listeners": self.rest,
            "plugin.discovery": "service_load",
        }
        props.update(settings or {})
        conf = os.path.join(P.tmp, f"{label}.properties")
        with open(conf, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in props.items()))
        self.logf = open(self.logpath, "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([LAUNCHER, "org.apache.kafka.connect.cli.ConnectDistributed", conf],
                                     stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.finished = False
        P.workers.append(self)
        log(f"{label}: started pid {self.proc.pid}, REST {self.rest}")

    def call(self, method, path, body=None, timeout=10):
        """-> (HTTP status, parsed JSON or text); status 0 when the request got no answer."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.rest + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except OSError as e:  # not up yet, or slow (GET .../offsets reads the offsets topic to its end)
            return 0, f"{type(e).__name__}: {e}"
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def problem(self):
        """Why this worker cannot go on: its JVM exited, or its herder thread died (the JVM then
        takes a minute to exit)."""
        rc = self.proc.poll()
        if rc is not None:
            return f"worker exited with {rc}{self.errors()}"
        try:
            with open(self.logpath, errors="replace") as f:
                if HERDER_DEAD in f.read():
                    return f"worker's herder thread died{self.errors()}"
        except OSError:
            pass
        return None

    def errors(self, n=3):
        """The first n distinct ERROR messages of the log (then WARN ones), each with the exception
        logged with it (class without package, and its root cause), for FAIL reasons."""
        found, seen = {"ERROR": [], "WARN": []}, set()
        try:
            with open(self.logpath, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        for i, line in enumerate(lines):
            m = re.match(r"^\[[^\]]*\] (ERROR|WARN) (.*?)(?: \([\w.$]+\))?$", line)
            if not m or WORKER_NOISE.search(line):
                continue
            msg = re.sub(r"\[(Worker|Producer|Consumer|AdminClient) clientId=[^\]]*\] ", "", m.group(2)).strip()
            exc = []
            for nxt in lines[i + 1:i + 200]:
                if nxt.startswith("["):
                    break
                e = re.match(r"^(?:Caused by: )?(?:[a-z_][\w$]*\.)+([A-Z][\w$]*): (.*)", nxt)
                if e:
                    exc.append(f"{e.group(1)}: {e.group(2)}")
            if exc:
                msg += " " + exc[0] + (f" (cause {exc[-1]})" if len(exc) > 1 and exc[-1] != exc[0] else "")
            key = re.sub(r"\d+", "N", msg)[:120]
            if key not in seen:
                seen.add(key)
                found[m.group(1)].append(clean(msg)[:300])
        got = (found["ERROR"] + found["WARN"])[:n]
        return f" (worker log: {' | '.join(got)})" if got else ""

    def wait_ready(self):
        """Until the REST API answers and the herder has joined its group (GET /connectors is served
        by the herder only once it has read the config topic)."""
        end = time.monotonic() + WORKER_START
        while time.monotonic() < end:
            prob = self.problem()
            if prob:
                raise Failed(f"{self.label}: {prob}")
            st, body = self.call("GET", "/connectors", timeout=3)
            if st == 200:
                log(f"{self.label}: ready after {time.monotonic() - self.t0:.1f}s")
                return self
            time.sleep(0.3)
        raise Failed(f"{self.label}: REST API not ready within {WORKER_START}s{self.errors()}")

    def put_connector(self, name, config):
        end = time.monotonic() + 30
        while True:  # 409: the worker is rebalancing; it asks to retry
            st, body = self.call("PUT", f"/connectors/{name}/config", config, timeout=30)
            if st != 409 or time.monotonic() > end:
                break
            time.sleep(0.5)
        check(st in (200, 201), f"PUT /connectors/{clean(name)}/config: HTTP {st}: {clean(body)[:300]}{self.errors()}")

    def status_problem(self, name):
        """A FAILED connector or task of `name`, with its trace's first line, or None."""
        st, body = self.call("GET", f"/connectors/{name}/status")
        if st != 200 or not isinstance(body, dict):
            return None
        for part in [body.get("connector", {})] + body.get("tasks", []):
            if part.get("state") == "FAILED":
                trace = (part.get("trace") or "").strip().splitlines()
                return f"{clean(name)} {'task ' + str(part['id']) if 'id' in part else 'connector'} FAILED: " \
                       f"{clean(' / '.join(x.strip() for x in trace[:1] + [t for t in trace if t.startswith('Caused by')][:2]))[:400]}"
        return None

    def wait(self, what, pred, budget, connectors=()):
        t0 = time.monotonic()
        end = min(t0 + budget, P.deadline - 5)
        while True:
            if pred():
                log(f"{what}: after {time.monotonic() - t0:.1f}s")
                return
            prob = self.problem()
            if prob:
                raise Failed(f"{what}: {prob}")
            for c in connectors:
                prob = self.status_problem(c)
                if prob:
                    raise Failed(f"{what}: {prob}")
            if time.monotonic() >= end:
                raise Failed(f"{what}: not within {budget}s{self.errors()}")
            time.sleep(0.3)

    def kill(self):
        if self.finished:
            return
        self.finished = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.logf.close()
        P.workers.remove(self)
        with open(self.logpath, errors="replace") as f:
            text = f.read()
        tail = text[-15000:]
        print(f"----- {self.label} worker log ({len(text)} chars{', tail' if len(tail) < len(text) else ''}) -----\n"
              f"{tail}----- end of {self.label} log -----", file=sys.stderr, flush=True)
        log(f"{self.label}: killed with SIGKILL after {time.monotonic() - self.t0:.1f}s")


def main_worker():
    """The worker of the main Connect cluster, started once and shared by the scenarios."""
    w = P.state.get("worker")
    check("worker_failed" not in P.state, P.state.get("worker_failed"))
    if w is None or w.finished:
        w = Worker(f"worker{P.state.get('workers', 0) + 1}", P.name("cluster", "connect"))
        P.state["workers"] = P.state.get("workers", 0) + 1
        P.state["worker"] = w
        try:
            w.wait_ready()
        except Failed as e:  # the next scenarios say the same at once instead of trying again
            P.state["worker_failed"] = f"the Connect worker did not start: {e}"
            w.kill()
            raise
        announce(w)
    return w


def announce(w):
    if P.state.get("announced"):
        return
    st, body = w.call("GET", "/")
    ver = body.get("version", "?") if isinstance(body, dict) else "?"
    P.state["announced"] = True
    print(f"# Kafka Connect {ver} (distributed worker, FileStream and MirrorMaker 2 connectors); driver "
          f"confluent-kafka {version()} (librdkafka {libversion()[0]})", flush=True)


# ---------------------------------------------------------------- helpers

def admin(bootstrap=None):
    return AdminClient({"bootstrap.servers": bootstrap or P.bootstrap})


def create_topics(a, topics, what):
    fs = a.create_topics(topics, operation_timeout=15)
    for t, f in fs.items():
        try:
            f.result(20)
        except KafkaException as e:
            raise Failed(f"CreateTopics {clean(t)} on {what}: {e.args[0]}")


def end_offsets(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compat-kafka-connect-marks"})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=5, cached=False)[1] for p in range(partitions)]
    finally:
        c.close()


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def write_lines(path, lines, mode="w"):
    with open(path, mode) as f:
        f.write("".join(line + "\n" for line in lines))


def file_lines(prefix, first, n):
    return [f"{prefix} line {i:05d} " + "x" * (i % 17) for i in range(first, first + n)]


def first_occurrences(seq):
    seen, out = set(), []
    for x in seq:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


# ---------------------------------------------------------------- scenarios

def connect_file_pipeline(s):
    w = main_worker()
    topic = P.name("topic", s)
    create_topics(admin(), [NewTopic(topic, 1, 1)], "the broker")
    src, out = os.path.join(P.tmp, "pipeline-in.txt"), os.path.join(P.tmp, "pipeline-out.txt")
    lines = file_lines("pipeline", 0, LINES)
    write_lines(src, lines)
    names = (topic + "-source", topic + "-sink")
    w.put_connector(names[0], {"connector.class": FILE_SOURCE, "file": src, "topic": topic, "tasks.max": "1"})
    w.put_connector(names[1], {"connector.class": FILE_SINK, "file": out, "topics": topic, "tasks.max": "1"})
    w.wait("the sink's output file has every line", lambda: len(read_lines(out)) >= LINES, 60, names)
    got = read_lines(out)
    check(got == lines, f"output file: {len(got)} lines, expected exactly the {LINES} input lines in order "
                        f"(first difference at #{next((i for i, (a, b) in enumerate(zip(got, lines)) if a != b), min(len(got), len(lines)))})")
    P.obs(s, "output_lines", len(got))
    size = os.path.getsize(src)

    def offsets():
        st1, so = w.call("GET", f"/connectors/{names[0]}/offsets")
        st2, ko = w.call("GET", f"/connectors/{names[1]}/offsets")
        if st1 != 200 or st2 != 200:
            return None
        try:
            pos = so["offsets"][0]["offset"]["position"]
            kafka = ko["offsets"][0]["offset"]["kafka_offset"]
        except (KeyError, IndexError, TypeError):
            return None
        return pos, kafka

    # Both are flushed every offset.flush.interval.ms (500 ms): the source's to the offsets topic,
    # the sink's as the consumer group's committed offset.
    w.wait("stored offsets: the source at the file's end, the sink at the topic's end",
           lambda: offsets() == (size, LINES), 20, names)
    P.obs(s, "source_offset_is_file_size", offsets()[0] == size)
    P.obs(s, "sink_offset", offsets()[1])
    P.obs(s, "topic_end_offset", end_offsets(P.bootstrap, topic, 1)[0])
    P.state["pipeline"] = (src, out, lines, names, topic)


def connect_restart_resume(s):
    pipe = P.state.get("pipeline")
    check(pipe is not None, "needs connect_file_pipeline's connectors (it did not pass)")
    src, out, lines, names, topic = pipe
    w = main_worker()
    w.kill()
    more = file_lines("pipeline", LINES, MORE_LINES)
    write_lines(src, more, mode="a")
    w = main_worker()
    want = lines + more
    w.wait("after the restart, the output file has every line",
           lambda: set(read_lines(out)) >= set(want), 60, names)
    got = read_lines(out)
    firsts = first_occurrences(got)
    check(firsts == want, f"output file: lines in order of first appearance differ from the input "
                          f"({len(firsts)} distinct of {len(want)})")
    extra = set(got) - set(want)
    check(not extra, f"output file has {len(extra)} lines never written to the input")
    log(f"{len(got) - len(want)} line(s) written again after the SIGKILL (at-least-once; not compared)")
    P.obs(s, "distinct_output_lines", len(firsts))
    status, body = w.call("GET", f"/connectors/{names[0]}/status")
    P.obs(s, "source_state", (body or {}).get("connector", {}).get("state") if isinstance(body, dict) else status)


def connect_mirror_maker(s):
    check(MIRROR_SOURCE, "COMPAT_MIRROR_SOURCE (the source Kafka compat-tests/run starts) is not set")
    w = main_worker()
    # The source Kafka is shared by both sides of a comparison: its names carry the target's tag.
    tag = hashlib.sha1(P.bootstrap.encode()).hexdigest()[:6]
    topic, group = P.name("topic", s) + "-" + tag, P.name("group", s) + "-" + tag + "-group"
    alias = "upstream"
    remote = f"{alias}.{topic}"
    sa = admin(MIRROR_SOURCE)
    create_topics(sa, [NewTopic(topic, 3, 1, config={"retention.ms": "7200000"})], "the source Kafka")
    n1, n2 = 10, 6  # records per partition before and after the group's commit

    def produce(first, n, partitions=3):
        p = Producer({"bootstrap.servers": MIRROR_SOURCE, "acks": "all"})
        for part in range(partitions):
            for i in range(first, first + n):
                p.produce(topic, key=f"k{part}-{i}", value=f"v{part}-{i}", partition=part)
        check(p.flush(20) == 0, "producing to the source Kafka did not finish")

    produce(0, n1)
    # The group consumes batch 1 on the source and commits its end. The last record of a batch
    # always gets an offset sync, so that offset translates exactly (10 -> 10).
    c = Consumer({"bootstrap.servers": MIRROR_SOURCE, "group.id": group, "enable.auto.commit": False})
    try:
        for attempt in range(40):  # a fresh Kafka answers NOT_COORDINATOR until __consumer_offsets is loaded
            try:
                c.commit(offsets=[TopicPartition(topic, p, n1) for p in range(3)], asynchronous=False)
                break
            except KafkaException as e:
                if attempt == 39 or e.args[0].code() not in (KafkaError.NOT_COORDINATOR,
                                                             KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                                                             KafkaError.COORDINATOR_NOT_AVAILABLE):
                    raise Failed(f"committing the group's offsets on the source Kafka: {e.args[0]}")
                time.sleep(0.5)
    finally:
        c.close()
    common = {"source.cluster.alias": alias, "target.cluster.alias": "sluice-target",
              "source.cluster.bootstrap.servers": MIRROR_SOURCE, "target.cluster.bootstrap.servers": P.bootstrap,
              "tasks.max": "1", "key.converter": BYTES, "value.converter": BYTES,
              # The offset syncs on the target (the broker under test), not on the shared source.
              "offset-syncs.topic.location": "target", "offset-syncs.topic.replication.factor": "1",
              "topics": re.escape(topic), "groups": re.escape(group), **MM2_EXTRA}
    names = (P.name("mm2", s) + "-source", P.name("mm2", s) + "-checkpoint")
    w.put_connector(names[0], dict(common, **{
        "connector.class": "org.apache.kafka.connect.mirror.MirrorSourceConnector", "replication.factor": "1",
        "sync.topic.acls.enabled": "false", "refresh.topics.interval.seconds": "1", "offset.lag.max": "0"}))
    w.put_connector(names[1], dict(common, **{
        "connector.class": "org.apache.kafka.connect.mirror.MirrorCheckpointConnector",
        "sync.group.offsets.enabled": "true", "sync.group.offsets.interval.seconds": "1",
        "emit.checkpoints.interval.seconds": "1", "refresh.groups.interval.seconds": "1",
        "checkpoints.topic.replication.factor": "1"}))
    ta = admin()

    def mirrored(n):
        try:
            return end_offsets(P.bootstrap, remote, 3) == [n] * 3
        except KafkaException:
            return False

    w.wait(f"batch 1 mirrored to {clean(remote)}", lambda: mirrored(n1), 60, names)

    def group_offsets():
        try:
            r = ta.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
        except KafkaException:
            return {}
        return {tp.partition: tp.offset for tp in r.topic_partitions if tp.topic == remote and tp.offset >= 0}

    # The checkpoints advance as the checkpoint task reads the offset syncs (on the target, 1 then 9
    # then 10 is seen); every partition's ends at 10, from the sync of its last record.
    seen = {}

    def synced():
        seen.update(group_offsets())
        return seen == {p: n1 for p in range(3)}

    try:
        w.wait("the group's offsets synced to the target (10 on every partition)", synced, 60, names)
    except Failed as e:
        raise Failed(f"{e}; last seen {seen}") from None
    translated = dict(seen)
    P.obs(s, "translated_offsets", ",".join(str(translated[p]) for p in range(3)))
    md = ta.list_topics(remote, timeout=10).topics[remote]
    P.obs(s, "target_partitions", len(md.partitions))
    cfg = ta.describe_configs([ConfigResource("topic", remote)])
    entries = list(cfg.values())[0].result(10)
    P.obs(s, "target_retention.ms", entries["retention.ms"].value)

    produce(n1, n2)
    w.wait("batch 2 mirrored", lambda: mirrored(n1 + n2), 60, names)
    # A consumer of the group on the target starts at the translated offsets.
    c = Consumer({"bootstrap.servers": P.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    got = {}
    try:
        c.subscribe([remote])
        end = time.monotonic() + 30
        while time.monotonic() < end and sum(len(v) for v in got.values()) < 3 * n2:
            for m in c.consume(100, 0.5):
                if m.error():
                    raise Failed(f"target consumer: {m.error()}")
                got.setdefault(m.partition(), []).append((m.offset(), m.key().decode(), m.value().decode()))
        time.sleep(1)
        for m in c.consume(100, 0.5):  # anything past batch 2 would be a duplicate
            if not m.error():
                got.setdefault(m.partition(), []).append((m.offset(), m.key().decode(), m.value().decode()))
    finally:
        c.close()
    for p in range(3):
        first = translated[p]
        want = [(i, f"k{p}-{i}", f"v{p}-{i}") for i in range(first, n1 + n2)]
        check(got.get(p, []) == want, f"partition {p}: the target group read {got.get(p, [])[:3]}... "
                                      f"({len(got.get(p, []))} records), expected offsets {first}..{n1 + n2 - 1}")
    P.obs(s, "target_group_read", sum(len(v) for v in got.values()))
    P.obs(s, "target_group_reread", sum(n1 - translated[p] for p in range(3)))

    # The source topic grows; MirrorSourceConnector adds the partition on the target.
    f = sa.create_partitions([NewPartitions(topic, 4)])[topic]
    f.result(20)
    w.wait("the target topic grew to 4 partitions",
           lambda: len(ta.list_topics(remote, timeout=5).topics[remote].partitions) == 4, 30, names)
    P.obs(s, "target_partitions_after_growth", 4)


def connect_exactly_once_source(s):
    cluster = P.name("cluster", s)
    # A worker that cannot read the config topic to its assignment's offset within
    # worker.sync.timeout.ms backs off worker.unsync.backoff.ms (5 min by default) before it
    # rejoins; with exactly-once support it reads that topic read_committed, so the killed
    # leader's open transaction there, if the kill lands in one, holds it until the transaction
    # times out. Rejoin sooner than the default so that case fits the wait below.
    settings = {"exactly.once.source.support": "enabled", "worker.unsync.backoff.ms": "1000"}
    topic = P.name("topic", s)
    create_topics(admin(), [NewTopic(topic, 1, 1)], "the broker")
    src = os.path.join(P.tmp, "eos-in.txt")
    lines = file_lines("eos", 0, EOS_LINES)
    write_lines(src, [])
    # The file grows while the workers run (20 lines every 40 ms), so the kill lands mid-stream.
    writer = {"n": 0, "err": None}

    def write():
        try:
            for i in range(0, EOS_LINES, 20):
                write_lines(src, lines[i:i + 20], mode="a")
                writer["n"] = i + 20
                time.sleep(0.04)
        except BaseException as e:  # noqa: BLE001
            writer["err"] = e

    name = topic + "-source"
    w = Worker("eos-worker1", cluster, settings).wait_ready()
    announce(w)
    # Transactions every 300 ms: the kill lands between a write and its commit.
    w.put_connector(name, {"connector.class": FILE_SOURCE, "file": src, "topic": topic, "tasks.max": "1",
                           "exactly.once.support": "required", "transaction.boundary": "interval",
                           "transaction.boundary.interval.ms": "300"})
    t = threading.Thread(target=write, daemon=True)
    t.start()
    w.wait("records of the exactly-once source on the topic",
           lambda: end_offsets(P.bootstrap, topic, 1)[0] > EOS_LINES // 5, 60, [name])
    w.kill()
    at_kill = writer["n"]
    w = Worker("eos-worker2", cluster, settings).wait_ready()
    t.join(60)
    check(writer["err"] is None and writer["n"] >= EOS_LINES, f"writing the source file: {writer['err']}")
    size = os.path.getsize(src)

    def position():
        st, body = w.call("GET", f"/connectors/{name}/offsets")
        try:
            return body["offsets"][0]["offset"]["position"] if st == 200 else None
        except (KeyError, IndexError, TypeError):
            return None

    w.wait("the source's committed offset at the file's end", lambda: position() == size, 90, [name])
    c = Consumer({"bootstrap.servers": P.bootstrap, "group.id": P.name("group", s) + "-v",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    vals = []
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        hw = end_offsets(P.bootstrap, topic, 1)[0]
        end = time.monotonic() + 20
        while time.monotonic() < end and c.position([TopicPartition(topic, 0)])[0].offset < hw:
            vals += [m.value().decode() for m in c.consume(1000, 0.3) if not m.error()]
    finally:
        c.close()
    log(f"exactly-once source: killed with {at_kill} lines written; the topic's end offset {hw} for "
        f"{len(vals)} committed records (the rest aborted records and markers)")
    dups = len(vals) - len(set(vals))
    check(dups == 0, f"read_committed: {dups} line(s) twice (exactly-once broken across the SIGKILL)")
    check(vals == lines, f"read_committed: {len(vals)} lines, expected the {EOS_LINES} lines in order")
    P.obs(s, "committed_lines", len(vals))
    w.kill()


def preflight():
    md = admin().list_topics(timeout=10)
    check(md.brokers, "no brokers in metadata")
    check(os.access(LAUNCHER, os.X_OK), f"{LAUNCHER} is missing: run compat-tests/install-clients kafka-connect")


def guarded(fn):
    def run(s):
        try:
            fn(s)
        except Failed as e:
            raise Failed(clean(e)) from None
    return run


P.run([("connect_file_pipeline", guarded(connect_file_pipeline), 120),
       ("connect_mirror_maker", guarded(connect_mirror_maker), 150),
       ("connect_restart_resume", guarded(connect_restart_resume), 120),
       ("connect_exactly_once_source", guarded(connect_exactly_once_source), 150)], preflight)
