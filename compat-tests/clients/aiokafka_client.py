#!/usr/bin/env python3
"""aiokafka (asyncio, pure Python) scenarios."""
import asyncio
import logging
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compat_common import Program, check, check_offsets, payload  # noqa: E402

import aiokafka  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType  # noqa: E402
from aiokafka.protocol.metadata import MetadataRequest  # noqa: E402
from aiokafka.structs import OffsetAndMetadata  # noqa: E402
import aiokafka.errors as Errors  # noqa: E402

logging.basicConfig(level=logging.CRITICAL)
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
P = Program("aiokafka")
LOOP = asyncio.new_event_loop()
threading.Thread(target=LOOP.run_forever, daemon=True).start()
COMMON = dict(request_timeout_ms=10000, retry_backoff_ms=200)


def sync(fn):
    """Run the async scenario on the shared loop (clients may outlive one scenario)."""
    def run(s):
        return asyncio.run_coroutine_threadsafe(fn(s), LOOP).result()
    return run


async def admin():
    if "admin" not in P.state:
        a = AIOKafkaAdminClient(bootstrap_servers=P.bootstrap, **COMMON)
        await asyncio.wait_for(a.start(), 10)
        P.state["admin"] = a
    return P.state["admin"]


async def producer(**kw):
    p = AIOKafkaProducer(bootstrap_servers=P.bootstrap, linger_ms=5, **COMMON, **kw)
    await asyncio.wait_for(p.start(), 10)
    return p


async def consumer(group=None, **kw):
    c = AIOKafkaConsumer(bootstrap_servers=P.bootstrap, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=1000, **COMMON, **kw)
    await asyncio.wait_for(c.start(), 10)
    return c


# DescribeConfigs config_source values (the wire's names).
SOURCES = {0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG", 3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
           4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG",
           7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG"}


def err_of(code):
    return Errors.for_code(code).__name__ if code else "NONE"


async def create(name, partitions=1, configs=None):
    a = await admin()
    r = await a.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})], timeout_ms=10000)
    codes = [t[1] for t in r.topic_errors if t[0] == name]
    return err_of(codes[0]) if codes else "NO_RESULT"


async def wait_topic(name, present=True, timeout=10):
    a = await admin()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if (name in await a.list_topics()) == present:
            return True
        await asyncio.sleep(0.2)
    return False


async def ensure_topic(name, partitions=1, configs=None):
    e = await create(name, partitions, configs)
    check(e in ("NONE", "TopicAlreadyExistsError"), f"create {name}: {e}")
    check(await wait_topic(name), f"topic {name} not in metadata")


async def send_all(p, topic, recs):
    futs = [await p.send(topic, **r) for r in recs]
    return [await asyncio.wait_for(f, 20) for f in futs]


async def poll_n(c, n, timeout, sort=True):
    got = []
    end = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        for _tp, msgs in (await c.getmany(timeout_ms=500)).items():
            got.extend(msgs)
    # sort=False keeps the delivery order (one partition: must already be offset order)
    return sorted(got, key=lambda m: (m.partition, m.offset)) if sort else got


async def read_partition(topic, partition, n, offset=0, timeout=15):
    c = await consumer()
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, offset)
        return await poll_n(c, n, timeout, sort=False)
    finally:
        await c.stop()


def records_for(codec, n=10):
    return [{"key": f"key-{i}".encode(), "value": payload(codec, i), "partition": 0,
             "headers": [("h-index", str(i).encode()), ("h-codec", codec.encode()), ("h-dup", b"a"), ("h-dup", b"b")]}
            for i in range(n)]


@sync
async def s_create_topic(s):
    t = P.name("topic", "create")
    e = await create(t, 3, {"retention.ms": "3600000"})
    P.obs(s, "create_error", e)
    check(e == "NONE", f"create: {e}")
    check(await wait_topic(t), "created topic not in metadata")
    md = (await (await admin()).describe_topics([t]))[0]
    parts = len(md["partitions"])
    P.obs(s, "partitions", parts)
    check(parts == 3, f"expected 3 partitions, got {parts}")
    e = await create(t, 3)
    P.obs(s, "duplicate_error", e)
    check(e == "TopicAlreadyExistsError", f"second create: {e}")


def s_produce(codec):
    @sync
    async def run(s):
        t = P.name("topic", s)
        await ensure_topic(t)
        p = await producer(compression_type=None if codec == "none" else codec)
        try:
            recs = records_for(codec)
            md = await send_all(p, t, recs)
        finally:
            await p.stop()
        P.obs(s, "offsets", ",".join(str(m.offset) for m in md))
        check([m.offset for m in md] == list(range(10)), f"produce offsets {[m.offset for m in md]}, expected 0..9")
        got = await read_partition(t, 0, len(recs))
        check(len(got) == len(recs), f"read back {len(got)} of {len(recs)}")
        check_offsets([m.offset for m in got], 10)
        for r, m in zip(recs, got):
            check(m.key == r["key"], f"key mismatch at {m.offset}")
            check(m.value == r["value"], f"value mismatch at {m.offset}")
            check(list(m.headers) == r["headers"], f"headers mismatch at {m.offset}: {m.headers}")
        P.obs(s, "read_offsets", ",".join(str(m.offset) for m in got))
    return run


@sync
async def s_group_consume(s):
    t = P.name("topic", "group")
    g = P.name("group", "group")
    P.state.update(group=g, group_topic=t)
    await ensure_topic(t, 2)
    p = await producer()
    try:
        await send_all(p, t, [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": i % 2}
                              for i in range(6)])
    finally:
        await p.stop()
    c = await consumer(g)
    P.state["group_consumer"] = c
    c.subscribe([t])
    got = await poll_n(c, 6, 25)
    check(len(got) == 6, f"group consumer got {len(got)} of 6")
    P.obs(s, "assignment", ",".join(str(tp.partition) for tp in sorted(c.assignment())))
    P.obs(s, "records", ",".join(f"{m.partition}:{m.offset}:{m.key.decode()}" for m in got))


@sync
async def s_commit(s):
    c = P.state.get("group_consumer")
    check(c is not None, "no group consumer (group_consume failed)")
    t = P.state["group_topic"]
    try:
        tps = [TopicPartition(t, 0), TopicPartition(t, 1)]
        await c.commit({tp: OffsetAndMetadata(3, f"meta-{tp.partition}") for tp in tps})
        offs = {tp.partition: await c.committed(tp) for tp in tps}
        P.obs(s, "committed", ",".join(f"{k}:{v}" for k, v in sorted(offs.items())))
        check(offs == {0: 3, 1: 3}, f"committed offsets read back as {offs}")
    finally:
        await c.stop()
        P.state.pop("group_consumer", None)


@sync
async def s_group_restart(s):
    t = P.name("topic", "restart")
    g = P.name("group", "restart")
    await ensure_topic(t)
    p = await producer()
    try:
        await send_all(p, t, [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": 0} for i in range(10)])
    finally:
        await p.stop()
    c = await consumer(g, max_poll_records=1)
    try:
        c.subscribe([t])
        got = await poll_n(c, 4, 20)
        check(len(got) >= 4, f"first consumer got {len(got)}")
        await c.commit({TopicPartition(t, 0): OffsetAndMetadata(4, "")})
    finally:
        await c.stop()
    c2 = await consumer(g)
    try:
        c2.subscribe([t])
        got2 = await poll_n(c2, 6, 20)
        got2 += await poll_n(c2, 1, 1)
        offs = [m.offset for m in got2]
        P.obs(s, "second_offsets", ",".join(map(str, offs)))
        check(offs == list(range(4, 10)), f"restarted consumer read {offs}, expected 4..9")
    finally:
        await c2.stop()


@sync
async def s_seek_timestamp(s):
    t = P.name("topic", "ts")
    await ensure_topic(t)
    base = (int(time.time()) - 60) * 1000
    p = await producer()
    try:
        await send_all(p, t, [{"key": f"k{i}".encode(), "value": b"v", "partition": 0, "timestamp_ms": base + 1000 * i}
                              for i in range(3)])
    finally:
        await p.stop()
    c = await consumer()
    tp = TopicPartition(t, 0)
    try:
        res = {}
        for label, ts in (("before_first", base - 5000), ("mid", base + 500), ("exact", base + 2000),
                          ("after_last", base + 60000)):
            r = (await c.offsets_for_times({tp: ts}))[tp]
            res[label] = None if r is None else r.offset
            P.obs(s, label, res[label])
        exp = {"before_first": 0, "mid": 1, "exact": 2, "after_last": None}
        check(res == exp, f"offsets_for_times gave {res}, expected {exp}")
    finally:
        await c.stop()
    got = await read_partition(t, 0, 1, offset=res["mid"])
    check(got and got[0].key == b"k1", "seek to offset for timestamp did not read k1")
    check(got[0].timestamp == base + 1000, f"record timestamp {got[0].timestamp} != {base + 1000}")
    P.obs(s, "timestamp_type", got[0].timestamp_type)


@sync
async def s_list_groups(s):
    g = P.state.get("group")
    check(g, "no group from group_consume")
    groups = await (await admin()).list_consumer_groups()
    ids = {x[0]: x for x in groups}
    check(g in ids, f"group {g} not in ListGroups ({len(ids)} groups)")
    P.obs(s, "protocol_type", ids[g][1])


@sync
async def s_describe_groups(s):
    g = P.state.get("group")
    check(g, "no group from group_consume")
    resp = (await (await admin()).describe_consumer_groups([g]))[0]
    d = resp.to_object()["groups"][0]
    P.obs(s, "error", err_of(d["error_code"]))
    state = d.get("group_state", d.get("state"))
    P.obs(s, "state", state)
    P.obs(s, "protocol_type", d["protocol_type"])
    P.obs(s, "members", len(d["members"]))
    check(d["error_code"] == 0, f"error {err_of(d['error_code'])}")
    check(state == "Empty", f"state {state}, expected Empty")
    check(d["protocol_type"] == "consumer", f"protocol_type {d['protocol_type']}, expected consumer")


@sync
async def s_describe_configs(s):
    t = P.name("topic", "create")
    resp = (await (await admin()).describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)]))[0]
    res = resp.to_object()["resources"][0]
    check(res["error_code"] == 0, f"error {err_of(res['error_code'])}")
    cfg = {c["config_names"]: c for c in res["config_entries"]}
    P.obs(s, "count_gt_10", len(cfg) > 10)
    check("retention.ms" in cfg, f"retention.ms missing ({len(cfg)} configs)")
    P.obs(s, "retention.ms", cfg["retention.ms"]["config_value"])
    for k in ("cleanup.policy", "max.message.bytes"):
        if k in cfg:
            P.obs(s, k, cfg[k]["config_value"])
    check(cfg["retention.ms"]["config_value"] == "3600000", f"retention.ms = {cfg['retention.ms']['config_value']}")
    # config_source is in DescribeConfigs v1+ (aiokafka negotiates up to v2); v0 has only is_default.
    check("config_source" in cfg["retention.ms"], f"no config_source in the response (DescribeConfigs v0?): {cfg['retention.ms']}")
    src = SOURCES.get(cfg["retention.ms"]["config_source"], cfg["retention.ms"]["config_source"])
    P.obs(s, "retention.ms.source", src)
    check(src == "DYNAMIC_TOPIC_CONFIG", f"retention.ms source {src}, expected DYNAMIC_TOPIC_CONFIG")
    check("cleanup.policy" in cfg, f"cleanup.policy missing ({len(cfg)} configs)")
    cp = cfg["cleanup.policy"]
    src = SOURCES.get(cp["config_source"], cp["config_source"])
    P.obs(s, "cleanup.policy.source", src)
    check(cp["config_value"] == "delete", f"cleanup.policy = {cp['config_value']}")
    check(src == "DEFAULT_CONFIG", f"cleanup.policy source {src}, expected DEFAULT_CONFIG")


@sync
async def s_delete_topic(s):
    t = P.name("topic", "create")
    a = await admin()
    r = await a.delete_topics([t], timeout_ms=10000)
    e = err_of(r.topic_error_codes[0][1])
    P.obs(s, "delete_error", e)
    check(e == "NONE", f"delete: {e}")
    gone = await wait_topic(t, present=False)
    P.obs(s, "gone", gone)
    check(gone, "topic still listed 10s after delete")
    r = await a.delete_topics([t], timeout_ms=10000)
    e = err_of(r.topic_error_codes[0][1])
    P.obs(s, "second_delete_error", e)
    check(e == "UnknownTopicOrPartitionError", f"second delete: {e}")


@sync
async def s_idempotent(s):
    t = P.name("topic", "idem")
    await ensure_topic(t)
    p = await producer(enable_idempotence=True, acks="all")
    try:
        await send_all(p, t, [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": 0} for i in range(5)])
    finally:
        await p.stop()
    got = await read_partition(t, 0, 5)
    check([m.offset for m in got] == list(range(5)), f"offsets {[m.offset for m in got]}")
    P.obs(s, "offsets", ",".join(str(m.offset) for m in got))
    P.obs(s, "values", ",".join(m.value.decode() for m in got))
    check([m.value for m in got] == [f"v{i}".encode() for i in range(5)], "values differ")


@sync
async def s_missing_topic(s):
    if not P.missing_bootstrap:
        return "COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"
    t = P.name("topic", "missing")
    # aiokafka's producer raises UnknownTopicOrPartitionError after request_timeout_ms whatever the
    # broker answered (client.py _wait_on_metadata), so that alone proves nothing: the broker's own error
    # is asserted on a MetadataRequest (allow_auto_topic_creation=False) to the auto-create-off broker.
    a = AIOKafkaAdminClient(bootstrap_servers=P.missing_bootstrap, **COMMON)
    await asyncio.wait_for(a.start(), 10)

    async def metadata_error():
        resp = await asyncio.wait_for(a._send_request(MetadataRequest([t], allow_auto_topic_creation=False)), 15)
        ts = [x for x in resp.to_object()["topics"] if x["topic"] == t]
        check(ts, f"topic {t} absent from the MetadataResponse")
        return err_of(ts[0]["error_code"])
    try:
        e = await metadata_error()
        P.obs(s, "metadata_error", e)
        check(e == "UnknownTopicOrPartitionError", f"metadata for the missing topic: expected UnknownTopicOrPartitionError, got {e}")
        p = AIOKafkaProducer(bootstrap_servers=P.missing_bootstrap, request_timeout_ms=5000)
        await asyncio.wait_for(p.start(), 10)
        try:
            await asyncio.wait_for(p.send_and_wait(t, b"x"), 20)
            raise AssertionError("produce to a missing topic succeeded (is auto-create off?)")
        except (Errors.KafkaTimeoutError, Errors.UnknownTopicOrPartitionError) as pe:
            P.obs(s, "error", type(pe).__name__)
        finally:
            await p.stop()
        e = await metadata_error()
        P.obs(s, "metadata_error_after_produce", e)
        check(e == "UnknownTopicOrPartitionError", f"after the produce attempt: expected UnknownTopicOrPartitionError, got {e}")
    finally:
        await a.close()


@sync
async def s_oversize(s):
    t = P.name("topic", "big")
    await ensure_topic(t, 1, {"max.message.bytes": "10000"})
    p = await producer()
    try:
        await p.send_and_wait(t, os.urandom(20000), partition=0)
        raise AssertionError("20000-byte record accepted by a topic with max.message.bytes=10000")
    except Errors.MessageSizeTooLargeError as e:
        P.obs(s, "error", type(e).__name__)
    finally:
        await p.stop()


@sync
async def preflight_async(_s):
    await (await admin()).list_topics()


SCENARIOS = ([("create_topic", s_create_topic)] + [(f"produce_{c}", s_produce(c)) for c in CODECS] +
             [("group_consume", s_group_consume), ("commit", s_commit), ("group_restart", s_group_restart),
              ("seek_timestamp", s_seek_timestamp), ("list_groups", s_list_groups),
              ("describe_groups", s_describe_groups), ("describe_configs", s_describe_configs),
              ("delete_topic", s_delete_topic), ("idempotent_producer", s_idempotent),
              ("missing_topic", s_missing_topic), ("oversize_record", s_oversize)])
print(f"# aiokafka {aiokafka.__version__}", flush=True)
P.run(SCENARIOS, lambda: preflight_async("preflight"))
