#!/usr/bin/env python3
"""confluent-kafka (librdkafka) scenarios: Producer (also transactional), group Consumer, AdminClient."""
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


# ---------------------------------------------------------------- transactions (txn_*)

def txn_producer(txid, errors=None, **extra):
    """A transactional Producer; errors (a list) collects what librdkafka reports through error_cb (without
    one, confluent-kafka raises a fatal error, e.g. fencing, out of whatever callback runs next)."""
    errors = [] if errors is None else errors
    return producer(**{"transactional.id": txid, "error_cb": errors.append, **extra})


def read_iso(topic, partitions, isolation, timeout=15):
    """Everything of topic visible under an isolation level: reads every partition from the start until
    librdkafka reports its end (the last stable offset under read_committed, else the high watermark).
    -> {partition: [message, ...]} in offset order."""
    c = consumer(**{"isolation.level": isolation, "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in range(partitions)])
        got, eof = {p: [] for p in range(partitions)}, set()
        end = time.monotonic() + timeout
        while len(eof) < partitions:
            check(time.monotonic() < end, f"{isolation} read of {topic} did not reach the end of partitions "
                                          f"{sorted(set(range(partitions)) - eof)} within {timeout}s")
            m = c.poll(0.3)
            if m is None:
                continue
            if m.error() is not None:
                check(m.error().code() == KafkaError._PARTITION_EOF, f"consume error: {m.error()}")
                eof.add(m.partition())
                continue
            got[m.partition()].append(m)
            eof.discard(m.partition())
        return got
    finally:
        c.close()


def values(got, skip=None):
    """p0=v,v;p1=v (values per partition in offset order; values matching skip left out)."""
    return ";".join(f"p{p}=" + ",".join(m.value().decode() for m in ms if not (skip and skip(m.value().decode())))
                    for p, ms in sorted(got.items()))


def offsets_of(got):
    return ";".join(f"p{p}=" + ",".join(str(m.offset()) for m in ms) for p, ms in sorted(got.items()))


def high_watermarks(topic, partitions):
    c = consumer()
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        c.close()


def produce_flushed(p, topic, recs):
    """Produces (partition, key, value) records and flushes; -> partition:offset of each, in order."""
    out = [None] * len(recs)

    def dr(i):
        return lambda err, msg: out.__setitem__(i, (err, msg))
    for i, (part, k, v) in enumerate(recs):
        p.produce(topic, key=k.encode(), value=v.encode(), partition=part, on_delivery=dr(i))
    left = p.flush(20)
    check(left == 0 and all(out), f"{left} records not delivered after flush(20)")
    errs = [e for e, _ in out if e is not None]
    check(not errs, f"delivery errors: {errs[:3]}")
    return ",".join(f"{m.partition()}:{m.offset()}" for _, m in out)


def kerr(e):
    """name of the KafkaError of a KafkaException (and whether librdkafka calls it fatal / abortable)."""
    err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
    if err is None:
        return f"{type(e).__name__}:{e}"
    return err.name() + (":fatal" if err.fatal() else "") + (":abortable" if err.txn_requires_abort() else "")


def s_txn_commit_abort(s):
    """commit 6 records over 3 partitions; abort 3 without flushing (librdkafka purges what it has not
    sent); abort 3 after flush() (they are in the log); commit 3. read_committed returns exactly the 9
    committed records in order; read_uncommitted the flushed aborted ones too, and of the unflushed ones
    at most those librdkafka reported delivered."""
    t = P.name("topic", s)
    ensure_topic(t, 3)
    p = txn_producer(P.name("txn", s))
    p.init_transactions(20)
    P.obs(s, "init", "ok")
    p.begin_transaction()
    produce_flushed(p, t, [(i % 3, f"k{i}", f"c1-{i}") for i in range(6)])
    p.commit_transaction(20)
    # Abort without flush: the records may still be queued (purged: ERR__PURGE_QUEUE) or in flight.
    p.begin_transaction()
    dr = []
    for i in range(3):
        p.produce(t, key=f"a{i}".encode(), value=f"a-{i}".encode(), partition=i,
                  on_delivery=lambda err, msg: dr.append((err, msg)))
    p.abort_transaction(20)
    p.flush(10)
    check(len(dr) == 3, f"{len(dr)} delivery reports of 3 records produced before abort_transaction")
    sent = {m.value().decode() for err, m in dr if err is None}
    # Abort after flush: in the log, then aborted.
    p.begin_transaction()
    flushed = produce_flushed(p, t, [(i, f"f{i}", f"f-{i}") for i in range(3)])  # offsets depend on the unflushed abort
    p.abort_transaction(20)
    p.begin_transaction()
    produce_flushed(p, t, [(i, f"k{i}", f"c2-{i}") for i in range(3)])
    p.commit_transaction(20)
    rc, ru = read_iso(t, 3, "read_committed"), read_iso(t, 3, "read_uncommitted")
    unflushed = lambda v: v.startswith("a-")  # noqa: E731
    P.obs(s, "read_committed", values(rc))
    P.obs(s, "read_uncommitted_without_unflushed", values(ru, unflushed))
    want_rc = "p0=c1-0,c1-3,c2-0;p1=c1-1,c1-4,c2-1;p2=c1-2,c1-5,c2-2"
    want_ru = "p0=c1-0,c1-3,f-0,c2-0;p1=c1-1,c1-4,f-1,c2-1;p2=c1-2,c1-5,f-2,c2-2"
    check(values(rc) == want_rc, f"read_committed read {values(rc)}, expected {want_rc}")
    check(values(ru, unflushed) == want_ru, f"read_uncommitted read {values(ru)}, expected {want_ru} "
                                            f"(plus the unflushed aborted records librdkafka sent)")
    seen = {m.value().decode() for ms in ru.values() for m in ms if unflushed(m.value().decode())}
    print(f"confluent {s}: unflushed aborted records: delivery reports {[e.name() if e else 'OK' for e, _ in dr]}, "
          f"delivered {sorted(sent)}, in the log {sorted(seen)}; flushed aborted records at {flushed}", file=sys.stderr)
    check(sent <= seen, f"records reported delivered before the abort {sorted(sent - seen)} are not in the log")
    hw = high_watermarks(t, 3)
    for part, ms in ru.items():
        check(hw[part] > len(ms), f"end offset {hw[part]} of partition {part} holding {len(ms)} records: "
                                  f"the transaction markers take offsets too")


def s_txn_consume_transform_produce(s):
    """A read_committed group consumer reads 10 records of a 2-partition input, at most 3 per batch; per
    batch a transactional producer writes "T:"+value to the same partition of an output topic, then
    send_offsets_to_transaction(offsets, consumer.consumer_group_metadata()) and commit_transaction.
    The output under read_committed is exactly the transformed input; the group's committed offsets
    (AdminClient.list_consumer_group_offsets) equal the input's end offsets."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    src, dst, g = P.name("topic", s) + "-in", P.name("topic", s) + "-out", P.name("group", s)
    ensure_topic(src, 2)
    ensure_topic(dst, 2)
    produce_all(producer(), src, [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": i % 2}
                                  for i in range(10)])
    c = consumer(g, **{"isolation.level": "read_committed"})
    p = txn_producer(P.name("txn", s))
    consumed = txns = 0
    try:
        p.init_transactions(20)
        c.subscribe([src])
        end = time.monotonic() + 30
        while consumed < 10 and time.monotonic() < end:
            msgs = []
            for m in c.consume(num_messages=3, timeout=0.5):
                if m.error() is None:
                    msgs.append(m)
                else:
                    check(not m.error().fatal(), f"fatal consumer error {m.error()}")
            if not msgs:
                continue
            p.begin_transaction()
            nxt = {}
            for m in msgs:
                p.produce(dst, key=m.key(), value=b"T:" + m.value(), partition=m.partition())
                nxt[m.partition()] = m.offset() + 1
            p.send_offsets_to_transaction([TopicPartition(src, q, o) for q, o in sorted(nxt.items())],
                                          c.consumer_group_metadata(), 20)
            p.commit_transaction(20)
            consumed += len(msgs)
            txns += 1
    finally:
        c.close()
    P.obs(s, "consumed", consumed)
    P.obs(s, "several_transactions", txns > 1)
    check(consumed == 10, f"the loop consumed {consumed} of 10 input records")
    out = read_iso(dst, 2, "read_committed")
    want = "p0=T:v0,T:v2,T:v4,T:v6,T:v8;p1=T:v1,T:v3,T:v5,T:v7,T:v9"
    P.obs(s, "output", values(out))
    check(values(out) == want, f"read_committed output {values(out)}, expected {want}")
    res = admin().list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)], request_timeout=15)[g].result(timeout=20)
    committed = ",".join(f"p{tp.partition}={tp.offset}" for tp in sorted(res.topic_partitions, key=lambda x: x.partition)
                         if tp.topic == src)
    in_end = ",".join(f"p{q}={o}" for q, o in sorted(high_watermarks(src, 2).items()))
    P.obs(s, "committed", committed)
    P.obs(s, "input_end_offsets", in_end)
    check(committed == in_end, f"group committed offsets {committed} != input end offsets {in_end}")


def s_txn_zombie_fence(s):
    """Producer A (transactional.id X) begins a transaction and writes 2 records (flushed); producer B
    with the same transactional.id calls init_transactions, which fences A and aborts A's transaction.
    A's next record and its commit fail (errors observed; the commit's must be a fencing error);
    read_committed sees none of A's records; B's transaction commits."""
    t, txid = P.name("topic", s), P.name("txn", s)
    ensure_topic(t, 1)
    a_errors = []
    a = txn_producer(txid, a_errors)
    a.init_transactions(20)
    a.begin_transaction()
    P.obs(s, "acked_a", produce_flushed(a, t, [(0, "a0", "a-0"), (0, "a1", "a-1")]))
    b = txn_producer(txid)
    b.init_transactions(20)
    P.obs(s, "b_init", "ok")
    dr = []
    try:
        a.produce(t, key=b"a2", value=b"a-2", partition=0, on_delivery=lambda err, msg: dr.append(err))
        a.flush(10)
        send_err = (dr[0].name() if dr[0] else "NONE") if dr else "no_delivery_report"
    except (confluent_kafka.KafkaException, SystemError) as e:
        # confluent-kafka raises a fatal error (here: fenced) out of flush(); when a delivery report runs
        # in the same poll it surfaces as a SystemError caused by that KafkaException.
        ke = e if isinstance(e, confluent_kafka.KafkaException) else e.__cause__
        check(isinstance(ke, confluent_kafka.KafkaException), f"flush of the fenced producer raised {e!r}")
        send_err = "flush_raised:" + kerr(ke)
    P.obs(s, "a_send_error", send_err)
    print(f"confluent {s}: A's error_cb got {a_errors}", file=sys.stderr)
    try:
        a.commit_transaction(10)
        commit_err = "NONE"
    except confluent_kafka.KafkaException as e:
        commit_err = kerr(e)
    P.obs(s, "a_commit_error", commit_err)
    check(commit_err != "NONE", f"the fenced producer committed (its record: {send_err})")
    check(any(x in commit_err for x in ("FENCED", "INVALID_PRODUCER_EPOCH")),
          f"the fenced producer's commit failed with {commit_err}, expected a fencing error")
    del a
    b.begin_transaction()
    P.obs(s, "acked_b", produce_flushed(b, t, [(0, "b0", "b-0"), (0, "b1", "b-1")]))
    b.commit_transaction(20)
    rc, ru = read_iso(t, 1, "read_committed"), read_iso(t, 1, "read_uncommitted")
    P.obs(s, "read_committed", values(rc))
    P.obs(s, "read_committed_offsets", offsets_of(rc))
    P.obs(s, "read_uncommitted", values(ru))
    P.obs(s, "end_offsets", ",".join(f"p{q}={o}" for q, o in sorted(high_watermarks(t, 1).items())))
    check(values(rc) == "p0=b-0,b-1", f"read_committed read {values(rc)}, expected only B's b-0,b-1")
    check(values(ru) == "p0=a-0,a-1,b-0,b-1", f"read_uncommitted read {values(ru)}, expected a-0,a-1,b-0,b-1")


# ---------------------------------------------------------------- admin APIs and compaction
# confluent-kafka 2.16 has no DescribeLogDirs, DescribeFeatures, DescribeQuorum or
# ListPartitionReassignments: those admin_* scenarios are the Java column's only.

def outcome(f, timeout=20):
    """NONE, or the error name of a failed admin future."""
    try:
        f.result(timeout=timeout)
        return "NONE"
    except confluent_kafka.KafkaException as e:
        print(f"confluent admin: {e}", file=sys.stderr)
        return kerr(e)


def partition_count(t):
    return len(admin().list_topics(topic=t, timeout=5).topics[t].partitions)


def s_admin_create_partitions(s):
    from confluent_kafka.admin import NewPartitions
    t = P.name("topic", s)
    ensure_topic(t)
    a = admin()
    grow = lambda n, **kw: outcome(a.create_partitions([NewPartitions(t, n)], request_timeout=15, **kw)[t])  # noqa: E731
    v = grow(5, validate_only=True)
    P.obs(s, "validate_only_to_5", v)
    check(v == "NONE", f"validate_only increase to 5: {v}")
    P.obs(s, "after_validate_only", partition_count(t))
    check(partition_count(t) == 1, f"validate_only changed the partition count to {partition_count(t)}")
    r = grow(3)
    P.obs(s, "increase_to_3", r)
    check(r == "NONE", f"increase to 3: {r}")
    check(wait_until(lambda: partition_count(t) == 3, 10), "metadata does not show 3 partitions")
    P.obs(s, "partitions", partition_count(t))
    P.obs(s, "increase_to_same", grow(3))
    down = grow(2)
    P.obs(s, "decrease_to_2", down)
    check(down == "INVALID_PARTITIONS", f"decrease to 2: {down}, expected INVALID_PARTITIONS")
    m = t + "-missing"
    P.obs(s, "unknown_topic", outcome(a.create_partitions([NewPartitions(m, 2)], request_timeout=15)[m]))
    check(partition_count(t) == 3, "partition count changed by the refused requests")


def s_admin_delete_records(s):
    from confluent_kafka.admin import OffsetSpec
    t = P.name("topic", s)
    ensure_topic(t)
    produce_all(producer(), t, [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": 0} for i in range(10)])
    a = admin()
    tp = TopicPartition(t, 0)

    def delete(before):
        return list(a.delete_records([TopicPartition(t, 0, before)], request_timeout=15).values())[0]

    def offset(spec):
        return list(a.list_offsets({tp: spec}, request_timeout=15).values())[0].result(timeout=20).offset

    low = delete(4).result(timeout=20).low_watermark
    P.obs(s, "low_watermark", low)
    check(low == 4, f"delete_records before 4: low watermark {low}")
    earliest, latest = offset(OffsetSpec.earliest()), offset(OffsetSpec.latest())
    P.obs(s, "earliest", earliest)
    P.obs(s, "latest", latest)
    check((earliest, latest) == (4, 10), f"list_offsets earliest/latest {earliest}/{latest}, expected 4/10")
    got = read_partition(t, 0, 1, offset=0, timeout=10)  # offset 0 is gone: reset to earliest
    first = f"{got[0].offset()}:{got[0].value().decode()}" if got else "none"
    P.obs(s, "first_read_from_0", first)
    check(first == "4:v4", f"reading from offset 0 gave {first}, expected 4:v4")
    lower = outcome(delete(2))
    P.obs(s, "delete_before_2", f"{lower}:{offset(OffsetSpec.earliest())}")
    beyond = outcome(delete(11))
    P.obs(s, "beyond_high_watermark", beyond)
    check(beyond == "OFFSET_OUT_OF_RANGE", f"delete_records before 11 (high watermark 10): {beyond}")
    everything = delete(confluent_kafka.OFFSET_END).result(timeout=20).low_watermark
    P.obs(s, "delete_all", everything)
    check(everything == 10, f"delete_records before OFFSET_END: low watermark {everything}")
    P.obs(s, "unknown_partition", outcome(list(a.delete_records([TopicPartition(t, 7, 1)], request_timeout=15).values())[0]))


def topic_config(t, key):
    res = ConfigResource("TOPIC", t)
    e = admin().describe_configs([res], request_timeout=15)[res].result(timeout=20).get(key)
    return "(absent)" if e is None else f"{e.value}:{confluent_kafka.admin.ConfigSource(e.source).name}"


def alter_topic(t, op, key, value, validate_only=False):
    from confluent_kafka.admin import ConfigEntry
    res = ConfigResource("TOPIC", t, incremental_configs=[ConfigEntry(key, value, incremental_operation=op)])
    return outcome(admin().incremental_alter_configs([res], request_timeout=15, validate_only=validate_only)[res])


def s_admin_incremental_alter_configs(s):
    from confluent_kafka.admin import AlterConfigOpType as Op
    t = P.name("topic", s)
    ensure_topic(t)
    steps = [("validate_only_set", Op.SET, "retention.ms", "1234567", True, "604800000:DEFAULT_CONFIG"),
             ("set", Op.SET, "retention.ms", "1234567", False, "1234567:DYNAMIC_TOPIC_CONFIG"),
             ("append", Op.APPEND, "cleanup.policy", "compact", False, "delete,compact:DYNAMIC_TOPIC_CONFIG"),
             ("subtract", Op.SUBTRACT, "cleanup.policy", "delete", False, "compact:DYNAMIC_TOPIC_CONFIG"),
             ("validate_only_delete", Op.DELETE, "retention.ms", None, True, "1234567:DYNAMIC_TOPIC_CONFIG"),
             ("delete", Op.DELETE, "retention.ms", None, False, "604800000:DEFAULT_CONFIG")]
    for label, op, key, value, vo, want in steps:
        r = alter_topic(t, op, key, value, vo)
        P.obs(s, f"{label}.error", r)
        check(r == "NONE", f"{label}: {r}")
        # Kafka applies a change through its metadata log, so a describe right after it may still
        # show the old value: poll (up to 10 s) until the expected one shows.
        deadline = time.time() + 10
        got = topic_config(t, key)
        while got != want and time.time() < deadline:
            time.sleep(0.1)
            got = topic_config(t, key)
        P.obs(s, f"{label}.{key}", got)
        check(got == want, f"{label}: {key} = {got}, expected {want}")
    unknown = alter_topic(t, Op.SET, "no.such.config", "1")
    P.obs(s, "unknown_config", unknown)
    check(unknown == "INVALID_CONFIG", f"SET of an unknown config: {unknown}, expected INVALID_CONFIG")
    bad = alter_topic(t, Op.SET, "retention.ms", "not-a-number")
    P.obs(s, "invalid_value", bad)
    check(bad == "INVALID_CONFIG", f"SET retention.ms=not-a-number: {bad}")
    P.obs(s, "append_non_list", alter_topic(t, Op.APPEND, "retention.ms", "1"))
    P.obs(s, "final.cleanup.policy", topic_config(t, "cleanup.policy"))


def s_admin_describe_cluster(s):
    d = admin().describe_cluster(request_timeout=15).result(timeout=20)
    P.obs(s, "nodes", ",".join(str(n.id) for n in d.nodes))
    P.obs(s, "node_port_is_bootstrap", all(P.bootstrap.endswith(f":{n.port}") for n in d.nodes))
    P.obs(s, "controller_is_node", d.controller is not None and any(n.id == d.controller.id for n in d.nodes))
    P.obs(s, "cluster_id_present", bool(d.cluster_id))
    P.obs(s, "rack", ",".join(str(n.rack) for n in d.nodes))
    check(len(d.nodes) == 1, f"nodes {d.nodes}")
    check(d.cluster_id, "no cluster id")
    d = admin().describe_cluster(request_timeout=15, include_authorized_operations=True).result(timeout=20)
    ops = d.authorized_operations
    P.obs(s, "authorized_operations", "null" if ops is None else ",".join(sorted(o.name for o in ops)))


def s_admin_elect_leaders(s):
    from confluent_kafka import ElectionType

    def elect(kind, parts):
        try:
            # No request_timeout/operation_timeout: confluent-kafka 2.16.1's elect_leaders raises
            # SystemError ("more argument specifiers than keyword list entries") when given either.
            res = admin().elect_leaders(kind, parts).result(timeout=20)
        except confluent_kafka.KafkaException as e:
            return {"call": kerr(e)}
        # Each partition's result is a KafkaError itself (not an exception wrapping one).
        return {(tp.topic, tp.partition): ("NONE" if err is None else err.name()) for tp, err in res.items()}

    t = P.name("topic", s)
    ensure_topic(t, 2)
    pref = elect(ElectionType.PREFERRED, [TopicPartition(t, 0), TopicPartition(t, 1)])
    out = f"{pref.get((t, 0))},{pref.get((t, 1))}"
    P.obs(s, "preferred", out)
    check(out == "ELECTION_NOT_NEEDED,ELECTION_NOT_NEEDED", f"PREFERRED election: {pref}")
    unclean = elect(ElectionType.UNCLEAN, [TopicPartition(t, 0)])
    P.obs(s, "unclean", unclean.get((t, 0)))
    check(unclean.get((t, 0)) == "ELECTION_NOT_NEEDED", f"UNCLEAN election: {unclean}")
    every = elect(ElectionType.PREFERRED, None)
    P.obs(s, "all_partitions_this_topic", sum(1 for k in every if k != "call" and k[0] == t))
    P.obs(s, "all_partitions_errors", sum(1 for v in every.values() if v != "NONE"))
    unknown = elect(ElectionType.PREFERRED, [TopicPartition(t, 99)])
    P.obs(s, "unknown_partition", unknown.get((t, 99), unknown.get("call")))


def s_compacted_topic(s):
    """A compacted topic: a keyless record is refused (INVALID_RECORD); the keyed ones read back with the
    latest value per key. All go out in one burst (one active segment, which no cleaner touches), and
    only the latest value per key is checked, so nothing depends on whether a cleaner ran."""
    t = P.name("topic", s)
    ensure_topic(t, config={"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01"})
    for k in ("cleanup.policy", "segment.ms", "min.cleanable.dirty.ratio"):
        P.obs(s, k, topic_config(t, k))
    check(topic_config(t, "cleanup.policy") == "compact:DYNAMIC_TOPIC_CONFIG", "cleanup.policy not compact")
    out = []
    p = producer()
    p.produce(t, value=b"no-key", partition=0, on_delivery=lambda err, msg: out.append(err))
    p.flush(20)
    keyless = (out[0].name() if out[0] else "NONE") if out else "no_delivery_report"
    P.obs(s, "keyless_produce", keyless)
    check(keyless == "INVALID_RECORD", f"a keyless record to a compacted topic: {keyless}")
    res = produce_all(producer(), t, [{"key": f"key-{i % 4}".encode(), "value": f"v{i}".encode(), "partition": 0}
                                      for i in range(12)])
    errs = [e for e, _ in res if e is not None]
    check(not errs, f"delivery errors {errs[:3]}")
    offs = sorted(m.offset() for _, m in res)
    P.obs(s, "offsets", f"{offs[0]}..{offs[-1]}")
    check(offs == list(range(12)), f"acked offsets {offs}")
    c = consumer()
    latest = {}
    try:
        c.assign([TopicPartition(t, 0, 0)])
        end = time.monotonic() + 15
        while time.monotonic() < end:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                latest[m.key().decode()] = m.value().decode()
                if m.offset() == 11:
                    break
    finally:
        c.close()
    got = ",".join(f"{k}={v}" for k, v in sorted(latest.items()))
    P.obs(s, "latest", got)
    check(got == "key-0=v8,key-1=v9,key-2=v10,key-3=v11", f"latest values {got}")


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
            ("missing_topic", s_missing_topic), ("oversize_record", s_oversize),
            ("txn_commit_abort", s_txn_commit_abort), ("txn_consume_transform_produce", s_txn_consume_transform_produce),
            ("txn_zombie_fence", s_txn_zombie_fence),
            ("admin_create_partitions", s_admin_create_partitions), ("admin_delete_records", s_admin_delete_records),
            ("admin_incremental_alter_configs", s_admin_incremental_alter_configs),
            ("admin_describe_cluster", s_admin_describe_cluster), ("admin_elect_leaders", s_admin_elect_leaders),
            ("compacted_topic", s_compacted_topic)])
print(f"# confluent-kafka {getattr(confluent_kafka, '__version__', confluent_kafka.version()[0])} librdkafka {confluent_kafka.libversion()[0]}", flush=True)
P.run(SCENARIOS, preflight)
