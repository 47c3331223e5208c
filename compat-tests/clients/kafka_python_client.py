#!/usr/bin/env python3
"""kafka-python (pure Python) scenarios."""
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compat_common import Program, check, check_offsets, payload, wait_until  # noqa: E402

import kafka  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import ConfigResource, ConfigResourceType  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402
import kafka.errors as Errors  # noqa: E402

logging.basicConfig(level=logging.CRITICAL)
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
P = Program("kafkapython")
COMMON = dict(request_timeout_ms=10000, bootstrap_timeout_ms=8000, reconnect_backoff_max_ms=1000)
_ADMIN = []


def admin():
    if not _ADMIN:
        _ADMIN.append(KafkaAdminClient(bootstrap_servers=P.bootstrap, **COMMON))
    return _ADMIN[0]


def producer(**kw):
    return KafkaProducer(bootstrap_servers=P.bootstrap, max_block_ms=10000, linger_ms=5, delivery_timeout_ms=20000, **COMMON, **kw)


def consumer(group=None, **kw):
    return KafkaConsumer(bootstrap_servers=P.bootstrap, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=1000,
                         consumer_timeout_ms=1000, **COMMON, **kw)


def topic_names():
    return set(admin().list_topics())


def ensure_topic(name, partitions=1, configs=None):
    try:
        admin().create_topics({name: {"num_partitions": partitions, "replication_factor": 1,
                                      "configs": configs or {}}}, timeout_ms=10000)
    except Errors.TopicAlreadyExistsError:
        pass
    check(wait_until(lambda: name in topic_names(), 10), f"topic {name} not in metadata")


def send_all(p, topic, recs):
    futs = [p.send(topic, **r) for r in recs]
    p.flush(20)
    return [f.get(timeout=20) for f in futs]


def poll_n(c, n, timeout, sort=True):
    got = []
    end = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        for _tp, msgs in c.poll(timeout_ms=500).items():
            got.extend(msgs)
    # sort=False keeps the delivery order (one partition: must already be offset order)
    return sorted(got, key=lambda m: (m.partition, m.offset)) if sort else got


def read_partition(topic, partition, n, offset=0, timeout=15):
    c = consumer()
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, offset)
        return poll_n(c, n, timeout, sort=False)
    finally:
        c.close()


def records_for(codec, n=10):
    return [{"key": f"key-{i}".encode(), "value": payload(codec, i), "partition": 0,
             "headers": [("h-index", str(i).encode()), ("h-codec", codec.encode()), ("h-dup", b"a"), ("h-dup", b"b")]}
            for i in range(n)]


def s_create_topic(s):
    t = P.name("topic", "create")
    admin().create_topics({t: {"num_partitions": 3, "replication_factor": 1, "configs": {"retention.ms": "3600000"}}},
                          timeout_ms=10000)
    check(wait_until(lambda: t in topic_names(), 10), "created topic not in metadata")
    desc = admin().describe_topics([t])[0]
    parts = len(desc["partitions"])
    P.obs(s, "partitions", parts)
    check(parts == 3, f"expected 3 partitions, got {parts}")
    try:
        admin().create_topics({t: {"num_partitions": 3, "replication_factor": 1}}, timeout_ms=10000)
        raise AssertionError("second create succeeded")
    except Errors.TopicAlreadyExistsError as e:
        P.obs(s, "duplicate_error", type(e).__name__)


def s_produce(codec):
    def run(s):
        t = P.name("topic", s)
        ensure_topic(t)
        p = producer(compression_type=None if codec == "none" else codec)
        try:
            recs = records_for(codec)
            md = send_all(p, t, recs)
        finally:
            p.close(timeout=5)
        P.obs(s, "offsets", ",".join(str(m.offset) for m in md))
        check([m.offset for m in md] == list(range(10)), f"produce offsets {[m.offset for m in md]}, expected 0..9")
        got = read_partition(t, 0, len(recs))
        check(len(got) == len(recs), f"read back {len(got)} of {len(recs)}")
        check_offsets([m.offset for m in got], 10)
        for r, m in zip(recs, got):
            check(m.key == r["key"], f"key mismatch at {m.offset}")
            check(m.value == r["value"], f"value mismatch at {m.offset}")
            check(list(m.headers) == r["headers"], f"headers mismatch at {m.offset}: {m.headers}")
        P.obs(s, "read_offsets", ",".join(str(m.offset) for m in got))
    return run


def s_group_consume(s):
    t = P.name("topic", "group")
    g = P.name("group", "group")
    P.state.update(group=g, group_topic=t)
    ensure_topic(t, 2)
    p = producer()
    send_all(p, t, [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": i % 2} for i in range(6)])
    p.close(timeout=5)
    c = consumer(g)
    P.state["group_consumer"] = c
    c.subscribe([t])
    got = poll_n(c, 6, 25)
    check(len(got) == 6, f"group consumer got {len(got)} of 6")
    P.obs(s, "assignment", ",".join(str(tp.partition) for tp in sorted(c.assignment())))
    P.obs(s, "records", ",".join(f"{m.partition}:{m.offset}:{m.key.decode()}" for m in got))


def s_commit(s):
    c = P.state.get("group_consumer")
    check(c is not None, "no group consumer (group_consume failed)")
    t = P.state["group_topic"]
    try:
        tps = [TopicPartition(t, 0), TopicPartition(t, 1)]
        c.commit({tp: OffsetAndMetadata(3, "meta-" + str(tp.partition), -1) for tp in tps})
        offs = {tp.partition: c.committed(tp, timeout_ms=10000) for tp in tps}
        P.obs(s, "committed", ",".join(f"{k}:{v}" for k, v in sorted(offs.items())))
        check(offs == {0: 3, 1: 3}, f"committed offsets read back as {offs}")
        meta = c.committed(tps[1], metadata=True, timeout_ms=10000)
        P.obs(s, "metadata", getattr(meta, "metadata", meta))
        check(getattr(meta, "metadata", None) == "meta-1", f"commit metadata read back as {meta}")
    finally:
        c.close(autocommit=False, timeout_ms=5000)
        P.state.pop("group_consumer", None)


def s_group_restart(s):
    t = P.name("topic", "restart")
    g = P.name("group", "restart")
    ensure_topic(t)
    p = producer()
    send_all(p, t, [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": 0} for i in range(10)])
    p.close(timeout=5)
    c = consumer(g, max_poll_records=1)
    c.subscribe([t])
    got = poll_n(c, 4, 20)
    check(len(got) >= 4, f"first consumer got {len(got)}")
    c.commit({TopicPartition(t, 0): OffsetAndMetadata(4, "", -1)})
    c.close(autocommit=False, timeout_ms=5000)
    c2 = consumer(g)
    try:
        c2.subscribe([t])
        got2 = poll_n(c2, 6, 20)
        got2 += poll_n(c2, 1, 1)
        offs = [m.offset for m in got2]
        P.obs(s, "second_offsets", ",".join(map(str, offs)))
        check(offs == list(range(4, 10)), f"restarted consumer read {offs}, expected 4..9")
    finally:
        c2.close(autocommit=False, timeout_ms=5000)


def s_seek_timestamp(s):
    t = P.name("topic", "ts")
    ensure_topic(t)
    base = (int(time.time()) - 60) * 1000
    p = producer()
    send_all(p, t, [{"key": f"k{i}".encode(), "value": b"v", "partition": 0, "timestamp_ms": base + 1000 * i}
                    for i in range(3)])
    p.close(timeout=5)
    c = consumer()
    tp = TopicPartition(t, 0)
    try:
        res = {}
        for label, ts in (("before_first", base - 5000), ("mid", base + 500), ("exact", base + 2000),
                          ("after_last", base + 60000)):
            r = c.offsets_for_times({tp: ts}, timeout_ms=10000)[tp]
            res[label] = None if r is None else r.offset
            P.obs(s, label, res[label])
            if r is not None and label == "mid":
                P.obs(s, "mid_timestamp_delta", r.timestamp - base)
        exp = {"before_first": 0, "mid": 1, "exact": 2, "after_last": None}
        check(res == exp, f"offsets_for_times gave {res}, expected {exp}")
    finally:
        c.close()
    got = read_partition(t, 0, 1, offset=res["mid"])
    check(got and got[0].key == b"k1", "seek to offset for timestamp did not read k1")
    check(got[0].timestamp == base + 1000, f"record timestamp {got[0].timestamp} != {base + 1000}")
    P.obs(s, "timestamp_type", got[0].timestamp_type)


def s_list_groups(s):
    g = P.state.get("group")
    check(g, "no group from group_consume")
    groups = admin().list_groups()
    ids = {x["group_id"]: x for x in groups}
    check(g in ids, f"group {g} not in ListGroups ({len(ids)} groups)")
    P.obs(s, "protocol_type", ids[g].get("protocol_type"))
    P.obs(s, "state", ids[g].get("group_state"))


def s_describe_groups(s):
    g = P.state.get("group")
    check(g, "no group from group_consume")
    d = admin().describe_groups([g])
    d = d[g] if isinstance(d, dict) else d[0]
    P.obs(s, "state", d.get("group_state"))
    P.obs(s, "protocol_type", d.get("protocol_type"))
    P.obs(s, "members", len(d.get("members") or []))
    check(d.get("error_code", 0) == 0, f"error_code {d.get('error_code')}")
    check(d.get("group_state") == "Empty", f"state {d.get('group_state')}, expected Empty")
    check(d.get("protocol_type") == "consumer", f"protocol_type {d.get('protocol_type')}")


def s_describe_configs(s):
    t = P.name("topic", "create")
    res = admin().describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)], config_filter="all")
    cfg = res["topic"][t]
    P.obs(s, "count_gt_10", len(cfg) > 10)
    check("retention.ms" in cfg, f"retention.ms missing ({len(cfg)} configs)")
    r = cfg["retention.ms"]
    value = r["value"] if isinstance(r, dict) else r
    P.obs(s, "retention.ms", value)
    for k in ("cleanup.policy", "max.message.bytes"):
        if k in cfg:
            P.obs(s, k, cfg[k]["value"] if isinstance(cfg[k], dict) else cfg[k])
    if isinstance(r, dict):
        P.obs(s, "retention.ms.source", r.get("config_source"))
    check(value == "3600000", f"retention.ms = {value}")
    # kafka-python names the wire config_source (DescribeConfigs v1+) as ConfigSourceType.
    check(isinstance(r, dict) and r.get("config_source") == "DYNAMIC_TOPIC_CONFIG",
          f"retention.ms source {r.get('config_source') if isinstance(r, dict) else r}, expected DYNAMIC_TOPIC_CONFIG")
    check("cleanup.policy" in cfg, f"cleanup.policy missing ({len(cfg)} configs)")
    cp = cfg["cleanup.policy"]
    P.obs(s, "cleanup.policy.source", cp.get("config_source"))
    check(cp.get("value") == "delete", f"cleanup.policy = {cp.get('value')}")
    check(cp.get("config_source") == "DEFAULT_CONFIG", f"cleanup.policy source {cp.get('config_source')}, expected DEFAULT_CONFIG")


def s_delete_topic(s):
    t = P.name("topic", "create")
    admin().delete_topics([t], timeout_ms=10000)
    gone = wait_until(lambda: t not in topic_names(), 10)
    P.obs(s, "gone", gone)
    check(gone, "topic still listed 10s after delete")
    try:
        admin().delete_topics([t], timeout_ms=10000)
        raise AssertionError("deleting a deleted topic succeeded")
    except Errors.UnknownTopicOrPartitionError as e:
        P.obs(s, "second_delete_error", type(e).__name__)


def s_idempotent(s):
    t = P.name("topic", "idem")
    ensure_topic(t)
    p = producer(enable_idempotence=True, acks="all")
    try:
        send_all(p, t, [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": 0} for i in range(5)])
    finally:
        p.close(timeout=5)
    got = read_partition(t, 0, 5)
    check([m.offset for m in got] == list(range(5)), f"offsets {[m.offset for m in got]}")
    check([m.value for m in got] == [f"v{i}".encode() for i in range(5)], "values differ")
    P.obs(s, "offsets", ",".join(str(m.offset) for m in got))
    P.obs(s, "values", ",".join(m.value.decode() for m in got))


def s_missing_topic(s):
    if not P.missing_bootstrap:
        return "COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"
    t = P.name("topic", "missing")
    # kafka-python's producer never reports the broker's metadata error: it logs it and blocks until
    # max_block_ms (KafkaTimeoutError). So the broker's answer is asserted on the admin client's
    # MetadataRequest (allow_auto_topic_creation=False), and the producer must merely not succeed.
    a = KafkaAdminClient(bootstrap_servers=P.missing_bootstrap, **COMMON)
    try:
        def metadata_error():
            ts = [x for x in a.describe_topics([t]) if x.get("name") == t]
            check(ts, f"topic {t} absent from the MetadataResponse")
            return Errors.for_code(ts[0]["error_code"]).__name__
        e = metadata_error()
        P.obs(s, "metadata_error", e)
        check(e == "UnknownTopicOrPartitionError", f"metadata for the missing topic: expected UnknownTopicOrPartitionError, got {e}")
        p = KafkaProducer(bootstrap_servers=P.missing_bootstrap, max_block_ms=5000, **COMMON)
        try:
            p.send(t, value=b"x").get(timeout=15)
            raise AssertionError("produce to a missing topic succeeded (is auto-create off?)")
        except (Errors.KafkaTimeoutError, Errors.UnknownTopicOrPartitionError) as pe:
            P.obs(s, "producer_error", type(pe).__name__)
        finally:
            p.close(timeout=2)
        e = metadata_error()
        P.obs(s, "metadata_error_after_produce", e)
        check(e == "UnknownTopicOrPartitionError", f"after the produce attempt: expected UnknownTopicOrPartitionError, got {e}")
    finally:
        a.close()


def s_oversize(s):
    t = P.name("topic", "big")
    ensure_topic(t, 1, {"max.message.bytes": "10000"})
    p = producer(max_request_size=1000000)
    try:
        p.send(t, value=os.urandom(20000), partition=0).get(timeout=20)
        raise AssertionError("20000-byte record accepted by a topic with max.message.bytes=10000")
    except Errors.MessageSizeTooLargeError as e:
        P.obs(s, "error", type(e).__name__)
    finally:
        p.close(timeout=5)


def preflight():
    admin()
    check(admin().list_topics() is not None, "no metadata")


SCENARIOS = ([("create_topic", s_create_topic)] + [(f"produce_{c}", s_produce(c)) for c in CODECS] +
             [("group_consume", s_group_consume), ("commit", s_commit), ("group_restart", s_group_restart),
              ("seek_timestamp", s_seek_timestamp), ("list_groups", s_list_groups),
              ("describe_groups", s_describe_groups), ("describe_configs", s_describe_configs),
              ("delete_topic", s_delete_topic), ("idempotent_producer", s_idempotent),
              ("missing_topic", s_missing_topic), ("oversize_record", s_oversize)])
print(f"# kafka-python {kafka.__version__}", flush=True)
P.run(SCENARIOS, preflight)
