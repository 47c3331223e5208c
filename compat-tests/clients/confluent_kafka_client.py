#!/usr/bin/env python3
"""confluent-kafka (librdkafka) scenarios: Producer, group Consumer, AdminClient."""
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compat_common import Program, check, check_offsets, payload, wait_until  # noqa: E402

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402
import confluent_kafka  # noqa: E402

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
P = Program("confluent")
BASE = {"bootstrap.servers": P.bootstrap, "socket.timeout.ms": 10000, "socket.connection.setup.timeout.ms": 5000,
        "broker.address.family": "v4"}


_ADMIN = []


def admin():
    # One long-lived AdminClient: a handle dropped while its futures are pending destroys them.
    if not _ADMIN:
        _ADMIN.append(AdminClient(dict(BASE)))
    return _ADMIN[0]


def producer(**extra):
    conf = dict(BASE, **{"message.timeout.ms": 15000, "linger.ms": 5})
    conf.update(extra)
    return Producer(conf)


def consumer(group=None, **extra):
    conf = dict(BASE, **{"auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
    if group:
        conf["group.id"] = group
    else:
        conf["group.id"] = P.name("group", "reader")  # assign() only: never joins
    conf.update(extra)
    return Consumer(conf)


def ensure_topic(name, partitions=1, config=None):
    fs = admin().create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
                               operation_timeout=10, request_timeout=15)
    try:
        fs[name].result(timeout=20)
    except Exception as e:  # noqa: BLE001
        err = e.args[0] if e.args else None
        if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
            raise
    check(wait_until(lambda: name in admin().list_topics(timeout=5).topics, 10), f"topic {name} not in metadata")


def produce_all(p, topic, records):
    """records: list of dicts for Producer.produce; returns list of (err, msg) in delivery order."""
    out = []
    for r in records:
        p.produce(topic, on_delivery=lambda err, msg: out.append((err, msg)), **r)
    left = p.flush(20)
    check(left == 0, f"{left} records not delivered after flush(20)")
    return out


def read_partition(topic, partition, count, offset=0, timeout=15):
    c = consumer()
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        got = []
        end = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < end:
            m = c.poll(0.5)
            if m is None:
                continue
            check(m.error() is None or m.error().code() == KafkaError._PARTITION_EOF, f"consume error: {m.error()}")
            if m.error() is None:
                got.append(m)
        return got
    finally:
        c.close()


def records_for(codec, n=10):
    return [{"key": f"key-{i}".encode(), "value": payload(codec, i), "partition": 0,
             "headers": [("h-index", str(i).encode()), ("h-codec", codec.encode()),
                         ("h-dup", b"a"), ("h-dup", b"b")]} for i in range(n)]


def s_create_topic(s):
    t = P.name("topic", "create")
    a = admin()
    fs = a.create_topics([NewTopic(t, num_partitions=3, replication_factor=1, config={"retention.ms": "3600000"})],
                         operation_timeout=10, request_timeout=15)
    fs[t].result(timeout=20)
    P.obs(s, "create_error", "NONE")
    check(wait_until(lambda: t in a.list_topics(timeout=5).topics, 10), "created topic not in metadata")
    parts = len(a.list_topics(topic=t, timeout=5).topics[t].partitions)
    P.obs(s, "partitions", parts)
    check(parts == 3, f"expected 3 partitions, metadata says {parts}")
    fs = a.create_topics([NewTopic(t, num_partitions=3, replication_factor=1)], request_timeout=15)
    try:
        fs[t].result(timeout=20)
        raise AssertionError("second create of the same topic succeeded")
    except confluent_kafka.KafkaException as e:
        P.obs(s, "duplicate_error", e.args[0].name())
        check(e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, f"duplicate create: expected TOPIC_ALREADY_EXISTS, got {e}")


def s_produce(codec):
    def run(s):
        t = P.name("topic", s)
        ensure_topic(t)
        p = producer(**{"compression.type": codec})
        recs = records_for(codec)
        res = produce_all(p, t, recs)
        errs = [e for e, _ in res if e is not None]
        check(not errs, f"delivery errors: {errs[:3]}")
        P.obs(s, "offsets", ",".join(str(m.offset()) for _, m in sorted(res, key=lambda x: x[1].offset())))
        check_offsets([m.offset() for _, m in res], 10, "delivery reports (in delivery order) at offsets")
        got = read_partition(t, 0, len(recs))
        check(len(got) == len(recs), f"read back {len(got)} of {len(recs)} records")
        check_offsets([m.offset() for m in got], 10)
        for r, m in zip(recs, got):
            check(m.key() == r["key"], f"key mismatch at offset {m.offset()}: {m.key()!r}")
            check(m.value() == r["value"], f"value mismatch at offset {m.offset()}")
            check(list(m.headers() or []) == r["headers"], f"headers mismatch at offset {m.offset()}: {m.headers()}")
        P.obs(s, "read_offsets", ",".join(str(m.offset()) for m in got))
        P.obs(s, "records_ok", len(got))
    return run


def s_group_consume(s):
    t = P.name("topic", "group")
    g = P.name("group", "group")
    P.state["group"] = g
    P.state["group_topic"] = t
    ensure_topic(t, 2)
    produce_all(producer(), t, [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": i % 2}
                               for i in range(6)])
    c = consumer(g)
    P.state["group_consumer"] = c
    c.subscribe([t])
    got = []
    end = time.monotonic() + 25
    while len(got) < 6 and time.monotonic() < end:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m)
        elif m is not None and m.error().code() != KafkaError._PARTITION_EOF:
            check(not m.error().fatal(), f"fatal consumer error {m.error()}")
    check(len(got) == 6, f"group consumer got {len(got)} of 6 records")
    assignment = sorted(tp.partition for tp in c.assignment())
    P.obs(s, "assignment", ",".join(map(str, assignment)))
    P.obs(s, "records", ",".join(sorted(f"{m.partition()}:{m.offset()}:{m.key().decode()}" for m in got)))


def s_commit(s):
    c = P.state.get("group_consumer")
    check(c is not None, "no group consumer (group_consume failed)")
    t = P.state["group_topic"]
    try:
        c.commit(offsets=[TopicPartition(t, 0, 3), TopicPartition(t, 1, 3)], asynchronous=False)
        com = c.committed([TopicPartition(t, 0), TopicPartition(t, 1)], timeout=10)
        offs = {tp.partition: tp.offset for tp in com}
        P.obs(s, "committed", f"0:{offs.get(0)},1:{offs.get(1)}")
        check(offs == {0: 3, 1: 3}, f"committed offsets read back as {offs}, expected 0:3,1:3")
    finally:
        c.close()
        P.state.pop("group_consumer", None)


def s_group_restart(s):
    t = P.name("topic", "restart")
    g = P.name("group", "restart")
    ensure_topic(t)
    produce_all(producer(), t, [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": 0} for i in range(10)])
    c = consumer(g)
    c.subscribe([t])
    got = []
    end = time.monotonic() + 20
    while len(got) < 4 and time.monotonic() < end:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m)
    check(len(got) == 4, f"first consumer got {len(got)} of 4")
    c.commit(offsets=[TopicPartition(t, 0, got[-1].offset() + 1)], asynchronous=False)
    c.close()
    c2 = consumer(g)
    try:
        c2.subscribe([t])
        got2 = []
        end = time.monotonic() + 20
        while time.monotonic() < end and len(got2) < 6:
            m = c2.poll(0.5)
            if m is not None and m.error() is None:
                got2.append(m)
        extra = c2.poll(1.0)
        if extra is not None and extra.error() is None:
            got2.append(extra)
        offs = [m.offset() for m in got2]
        P.obs(s, "second_offsets", ",".join(map(str, offs)))
        check(offs == list(range(4, 10)), f"restarted consumer read offsets {offs}, expected 4..9")
    finally:
        c2.close()


def s_seek_timestamp(s):
    t = P.name("topic", "ts")
    ensure_topic(t)
    base = (int(time.time()) - 60) * 1000
    produce_all(producer(), t, [{"key": f"k{i}".encode(), "value": b"v", "partition": 0, "timestamp": base + 1000 * i}
                               for i in range(3)])
    c = consumer()
    try:
        res = {}
        for label, ts in (("before_first", base - 5000), ("mid", base + 500), ("exact", base + 2000),
                          ("after_last", base + 60000)):
            r = c.offsets_for_times([TopicPartition(t, 0, ts)], timeout=10)[0]
            check(r.error is None, f"offsets_for_times error {r.error}")
            res[label] = r.offset
            P.obs(s, label, r.offset)
        exp = {"before_first": 0, "mid": 1, "exact": 2, "after_last": -1}
        check(res == exp, f"offsets_for_times gave {res}, expected {exp}")
    finally:
        c.close()
    got = read_partition(t, 0, 1, offset=res["mid"])
    check(len(got) == 1 and got[0].key() == b"k1", "seek to offset for timestamp did not read k1")
    tstype, ts = got[0].timestamp()
    check(ts == base + 1000, f"record timestamp {ts} != produced {base + 1000}")
    P.obs(s, "timestamp_type", tstype)


def s_list_groups(s):
    g = P.state.get("group")
    check(g, "no group from group_consume")
    res = admin().list_consumer_groups(request_timeout=15).result(timeout=20)
    ids = {x.group_id: x for x in res.valid}
    check(g in ids, f"group {g} not in ListGroups ({len(ids)} groups listed, errors {res.errors})")
    P.obs(s, "found", True)
    P.obs(s, "state", ids[g].state)
    P.obs(s, "is_simple", ids[g].is_simple_consumer_group)


def s_describe_groups(s):
    g = P.state.get("group")
    check(g, "no group from group_consume")
    d = admin().describe_consumer_groups([g], request_timeout=15)[g].result(timeout=20)
    P.obs(s, "state", d.state)
    P.obs(s, "members", len(d.members))
    P.obs(s, "is_simple", d.is_simple_consumer_group)
    check(d.group_id == g, f"described {d.group_id}")
    check(str(d.state).endswith("EMPTY"), f"group state {d.state}, expected EMPTY after its only member left")
    # describe_consumer_groups exposes no protocol type (is_simple_consumer_group only says it is non-empty);
    # the legacy list_groups(group=...) does a DescribeGroups and returns the raw state and protocol_type.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        lg = [x for x in admin().list_groups(group=g, timeout=15) if x.id == g]
    check(lg, f"list_groups(group={g}) did not describe the group")
    P.obs(s, "raw_state", lg[0].state)
    P.obs(s, "protocol_type", lg[0].protocol_type)
    P.obs(s, "raw_error", lg[0].error.name() if lg[0].error else "NONE")
    check(lg[0].error is None, f"DescribeGroups error {lg[0].error}")
    check(lg[0].state == "Empty", f"DescribeGroups state {lg[0].state}, expected Empty")
    check(lg[0].protocol_type == "consumer", f"protocol_type {lg[0].protocol_type!r}, expected consumer")
    check(not d.is_simple_consumer_group, "described as a simple (protocol-less) consumer group")


def s_describe_configs(s):
    t = P.name("topic", "create")
    res = ConfigResource("TOPIC", t)
    cfg = admin().describe_configs([res], request_timeout=15)[res].result(timeout=20)
    check("retention.ms" in cfg, f"retention.ms missing from {len(cfg)} configs")
    r = cfg["retention.ms"]
    P.obs(s, "retention.ms", r.value)
    P.obs(s, "retention.ms.source", r.source)
    for k in ("cleanup.policy", "max.message.bytes", "compression.type"):
        if k in cfg:
            P.obs(s, k, cfg[k].value)
    P.obs(s, "count_gt_10", len(cfg) > 10)
    check(r.value == "3600000", f"retention.ms = {r.value}")
    check(r.source == confluent_kafka.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
          f"retention.ms source {r.source}, expected DYNAMIC_TOPIC_CONFIG")
    check(cfg.get("cleanup.policy") and cfg["cleanup.policy"].value == "delete", "cleanup.policy missing or not delete")
    cp = cfg["cleanup.policy"]
    P.obs(s, "cleanup.policy.source", cp.source)
    check(cp.source == confluent_kafka.admin.ConfigSource.DEFAULT_CONFIG.value,
          f"cleanup.policy source {cp.source}, expected DEFAULT_CONFIG ({confluent_kafka.admin.ConfigSource.DEFAULT_CONFIG.value})")


def s_delete_topic(s):
    t = P.name("topic", "create")
    a = admin()
    a.delete_topics([t], operation_timeout=10, request_timeout=15)[t].result(timeout=20)
    gone = wait_until(lambda: t not in a.list_topics(timeout=5).topics, 10)
    P.obs(s, "gone", gone)
    check(gone, "topic still in metadata 10s after delete")
    fs = a.delete_topics([t], request_timeout=15)
    try:
        fs[t].result(timeout=20)
        raise AssertionError("deleting a deleted topic succeeded")
    except confluent_kafka.KafkaException as e:
        P.obs(s, "second_delete_error", e.args[0].name())
        check(e.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, f"second delete: {e}")


def s_idempotent(s):
    t = P.name("topic", "idem")
    ensure_topic(t)
    p = producer(**{"enable.idempotence": True, "acks": "all"})
    res = produce_all(p, t, [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": 0} for i in range(5)])
    errs = [e for e, _ in res if e is not None]
    check(not errs, f"delivery errors {errs[:3]}")
    got = read_partition(t, 0, 5)
    check([m.offset() for m in got] == list(range(5)), f"offsets {[m.offset() for m in got]}")
    check([m.value() for m in got] == [f"v{i}".encode() for i in range(5)], "values differ")
    P.obs(s, "offsets", ",".join(str(m.offset()) for m in got))
    P.obs(s, "values", ",".join(m.value().decode() for m in got))
    P.obs(s, "delivery_offsets", ",".join(str(m.offset()) for _, m in res))
    check_offsets([m.offset() for _, m in res], 5, "delivery reports at offsets")


def s_missing_topic(s):
    if not P.missing_bootstrap:
        return "COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"
    t = P.name("topic", "missing")
    p = Producer(dict(BASE, **{"bootstrap.servers": P.missing_bootstrap, "message.timeout.ms": 10000,
                               "topic.metadata.propagation.max.ms": 2000}))
    out = []
    p.produce(t, value=b"x", on_delivery=lambda err, msg: out.append(err))
    p.flush(20)
    check(out, "no delivery report within 20s")
    check(out[0] is not None, "produce to a missing topic succeeded (is auto-create off?)")
    P.obs(s, "error", out[0].name())
    check(out[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC),
          f"expected unknown topic error, got {out[0]}")
    # Only the broker's own code passes (not librdkafka's local _UNKNOWN_TOPIC, nor a timeout).
    check(out[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, f"expected UNKNOWN_TOPIC_OR_PART from the broker, got {out[0]}")
    md = p.list_topics(topic=t, timeout=10)
    te = md.topics.get(t)
    check(te is not None, f"topic {t} absent from the MetadataResponse")
    P.obs(s, "metadata_error", te.error.name() if te.error else "NONE")
    check(te.error is not None and te.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART,
          f"metadata for the missing topic: expected UNKNOWN_TOPIC_OR_PART, got {te.error}")


def s_oversize(s):
    t = P.name("topic", "big")
    ensure_topic(t, 1, {"max.message.bytes": "10000"})
    p = producer()
    out = []
    p.produce(t, value=os.urandom(20000), partition=0, on_delivery=lambda err, msg: out.append(err))
    p.flush(20)
    check(out, "no delivery report")
    check(out[0] is not None, "20000-byte record accepted by a topic with max.message.bytes=10000")
    P.obs(s, "error", out[0].name())
    check(out[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, f"expected MSG_SIZE_TOO_LARGE, got {out[0]}")


def preflight():
    md = admin().list_topics(timeout=8)
    if not md.brokers:
        raise RuntimeError("no brokers in metadata")


SCENARIOS = ([("create_topic", s_create_topic)] +
           [(f"produce_{c}", s_produce(c)) for c in CODECS] +
           [("group_consume", s_group_consume), ("commit", s_commit), ("group_restart", s_group_restart),
            ("seek_timestamp", s_seek_timestamp), ("list_groups", s_list_groups),
            ("describe_groups", s_describe_groups), ("describe_configs", s_describe_configs),
            ("delete_topic", s_delete_topic), ("idempotent_producer", s_idempotent),
            ("missing_topic", s_missing_topic), ("oversize_record", s_oversize)])
print(f"# confluent-kafka {getattr(confluent_kafka, '__version__', confluent_kafka.version()[0])} librdkafka {confluent_kafka.libversion()[0]}", flush=True)
P.run(SCENARIOS, preflight)
