#!/usr/bin/env python3
"""kcat (Debian's kcat 1.7.1 with its bundled librdkafka 2.0.2) scenarios.

Driven from Python (stdlib only) so the output protocol is shared; every kcat call runs under a
subprocess timeout. kcat has no admin API: topics are auto-created by producing to them (needs
auto.create.topics.enable=true on the main broker), and create/delete/describe/list scenarios are
not applicable (shown as "—").
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compat_common import Program, check, check_offsets, payload  # noqa: E402

KCAT = os.environ.get("KCAT", "kcat")
BROKER_UNKNOWN = "Broker: Unknown topic or partition"  # librdkafka's text for UNKNOWN_TOPIC_OR_PARTITION (3)
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
P = Program("kcat")
BASE_X = ["-X", "broker.address.family=v4", "-X", "socket.timeout.ms=10000", "-m", "8"]


def kcat(args, stdin=None, timeout=25, bootstrap=None):
    cmd = [KCAT, "-b", bootstrap or P.bootstrap] + BASE_X + args
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        last = (e.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["(no stderr)"]
        raise AssertionError(f"kcat {' '.join(args[:4])}... timed out after {timeout}s; last stderr: {last[0][:250]}")
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def produce(topic, lines, extra=(), partition=0):
    """Produce lines 'key:value' (keyed); raises on failure."""
    data = b"".join(k + b"\t" + v + b"\n" for k, v in lines)
    rc, _out, err = kcat(["-P", "-t", topic, "-p", str(partition), "-K", "\t", "-X", "message.timeout.ms=15000",
                          *extra], stdin=data)
    check(rc == 0 and "ERROR" not in err, f"produce to {topic} failed (rc={rc}): {err.strip()[-300:]}")


def consume(topic, partition=0, offset="beginning", count=None, extra=()):
    args = ["-C", "-t", topic, "-p", str(partition), "-o", str(offset), "-e", "-J", "-X",
            "enable.partition.eof=true", *extra]
    if count:
        args += ["-c", str(count)]
    rc, out, err = kcat(args)
    check(rc == 0, f"consume {topic} failed (rc={rc}): {err.strip()[-300:]}")
    return [json.loads(x) for x in out.decode().splitlines() if x.strip()]


def group_consume(group, topic, count=None):
    args = ["-G", group, "-e", "-J", "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=10000",
            "-X", "heartbeat.interval.ms=1000"]
    if count:
        args += ["-c", str(count)]
    rc, out, err = kcat(args + [topic], timeout=20)
    check(rc == 0, f"group consumer failed (rc={rc}): {err.strip()[-300:]}")
    return [json.loads(x) for x in out.decode().splitlines() if x.strip()]


def wait_topic(topic):
    """Producing auto-created it; make sure the partition is readable (leader known)."""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        rc, out, _ = kcat(["-L", "-t", topic, "-J"], timeout=10)
        if rc == 0:
            md = json.loads(out)
            ts = [t for t in md.get("topics", []) if t.get("topic") == topic]
            if ts and not ts[0].get("err") and ts[0].get("partitions"):
                return
        time.sleep(0.3)
    raise AssertionError(f"topic {topic} not in metadata")


def s_produce(codec):
    def run(s):
        t = P.name("topic", s)
        lines = [(f"key-{i}".encode(), payload(codec, i)) for i in range(10)]
        produce(t, lines, ["-z", codec, "-H", f"h-codec={codec}", "-H", "h-dup=a", "-H", "h-dup=b"])
        got = consume(t, count=10)
        check(len(got) == 10, f"read back {len(got)} of 10")
        # kcat -P reports no offsets; the read-back must find the records at 0..9 in order.
        check_offsets([m["offset"] for m in got], 10)
        for (k, v), m in zip(lines, got):
            check(m["key"] == k.decode(), f"key mismatch at {m['offset']}: {m['key']!r}")
            check(m["payload"] == v.decode(), f"value mismatch at {m['offset']}")
            check(m.get("headers") == ["h-codec", codec, "h-dup", "a", "h-dup", "b"],
                  f"headers mismatch at {m['offset']}: {m.get('headers')}")
        P.obs(s, "read_offsets", ",".join(str(m["offset"]) for m in got))
    return run


def s_group_consume(s):
    t = P.name("topic", "group")
    g = P.name("group", "group")
    P.state.update(group=g, group_topic=t)
    produce(t, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(6)])
    got = group_consume(g, t)
    P.obs(s, "records", ",".join(f"{m['partition']}:{m['offset']}:{m['key']}" for m in got))
    check(len(got) == 6, f"group consumer got {len(got)} of 6")


def s_commit(s):
    # kcat commits on close (enable.auto.commit): a second run of the same group finds nothing new.
    g, t = P.state.get("group"), P.state.get("group_topic")
    check(g, "no group from group_consume")
    got = group_consume(g, t)
    P.obs(s, "reread", len(got))
    check(not got, f"same group re-read {len(got)} records: offsets were not committed")
    # kcat cannot query committed offsets: produce 3 more records; the same group must then read exactly
    # those (offsets 6..8), i.e. the committed offset was 6 on partition 0.
    produce(t, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(6, 9)])
    more = group_consume(g, t)
    P.obs(s, "after_commit", ",".join(f"{m['partition']}:{m['offset']}:{m['key']}" for m in more))
    check([(m["partition"], m["offset"], m["key"], m["payload"]) for m in more] ==
          [(0, i, f"k{i}", f"v{i}") for i in range(6, 9)],
          f"after 3 more records the group read {[(m['partition'], m['offset'], m['key']) for m in more]}, "
          "expected exactly 0:6:k6,0:7:k7,0:8:k8 (committed offset 6)")


def s_group_restart(s):
    t = P.name("topic", "restart")
    g = P.name("group", "restart")
    produce(t, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(10)])
    first = group_consume(g, t, count=4)
    check(len(first) == 4, f"first consumer got {len(first)}")
    second = group_consume(g, t)
    offs = [m["offset"] for m in second]
    P.obs(s, "second_offsets", ",".join(map(str, offs)))
    check(offs == list(range(4, 10)), f"restarted consumer read {offs}, expected 4..9")


def s_seek_timestamp(s):
    t = P.name("topic", "ts")
    for i in range(3):  # kcat cannot set timestamps: space the records out in time instead
        produce(t, [(f"k{i}".encode(), b"v")])
        time.sleep(0.05)
    got = consume(t, count=3)
    check(len(got) == 3, f"read {len(got)} of 3")
    ts = [m["ts"] for m in got]
    check(ts[0] < ts[1] < ts[2], f"timestamps not increasing: {ts}")
    res = {}
    for label, q in (("before_first", ts[0] - 5000), ("mid", ts[1] - 1), ("exact", ts[2]),
                     ("after_last", ts[2] + 60000)):
        rc, out, err = kcat(["-Q", "-t", f"{t}:0:{q}"], timeout=15)
        check(rc == 0, f"-Q failed: {err.strip()[-200:]}")
        # "<topic> [0] offset N"
        res[label] = int(out.decode().split("offset")[-1].strip())
        P.obs(s, label, res[label])
    exp = {"before_first": 0, "mid": 1, "exact": 2, "after_last": -1}
    check(res == exp, f"-Q gave {res}, expected {exp}")
    got = consume(t, offset=f"s@{ts[1] - 1}", count=1)
    check(got and got[0]["key"] == "k1", f"-o s@ts read {got[:1]}")
    # Seek to each looked-up offset and read the record there.
    for label in ("before_first", "mid", "exact"):
        at = consume(t, offset=res[label], count=1)
        P.obs(s, f"{label}_read", ",".join(f"{m['offset']}:{m['key']}" for m in at))
        check([(m["offset"], m["key"], m["ts"]) for m in at] == [(res[label], f"k{res[label]}", ts[res[label]])],
              f"-o {res[label]} ({label}) read {[(m['offset'], m['key']) for m in at]}, expected {res[label]}:k{res[label]}")


def s_idempotent(s):
    t = P.name("topic", "idem")
    produce(t, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(5)], ["-X", "enable.idempotence=true"])
    got = consume(t, count=5)
    check([m["offset"] for m in got] == list(range(5)), f"offsets {[m['offset'] for m in got]}")
    P.obs(s, "offsets", ",".join(str(m["offset"]) for m in got))
    P.obs(s, "values", ",".join(m["payload"] for m in got))
    check([(m["key"], m["payload"]) for m in got] == [(f"k{i}", f"v{i}") for i in range(5)],
          f"records {[(m['key'], m['payload']) for m in got]}")


def s_missing_topic(s):
    if not P.missing_bootstrap:
        return "COMPAT_MISSING_BOOTSTRAP not set (needs a broker with auto.create.topics.enable=false)"
    t = P.name("topic", "missing")
    rc, _out, err = kcat(["-P", "-t", t, "-X", "message.timeout.ms=10000", "-X", "topic.metadata.propagation.max.ms=2000"],
                         stdin=b"x\n", bootstrap=P.missing_bootstrap)
    P.obs(s, "rc_nonzero", rc != 0)
    check("Unknown topic" in err or "UNKNOWN_TOPIC" in err, f"no unknown-topic error (rc={rc}): {err.strip()[-300:]}")
    # Only the broker's UNKNOWN_TOPIC_OR_PARTITION passes ("Broker: Unknown topic or partition"), not
    # librdkafka's local "Local: Unknown topic" nor a message timeout.
    check(BROKER_UNKNOWN in err, f"expected '{BROKER_UNKNOWN}' (UNKNOWN_TOPIC_OR_PARTITION) (rc={rc}): {err.strip()[-300:]}")
    P.obs(s, "error", "unknown_topic")
    rc, out, err = kcat(["-L", "-t", t, "-J"], timeout=15, bootstrap=P.missing_bootstrap)
    check(rc == 0, f"kcat -L failed (rc={rc}): {err.strip()[-200:]}")
    ts = [x for x in json.loads(out).get("topics", []) if x.get("topic") == t]
    check(ts, f"topic {t} absent from the metadata")
    P.obs(s, "metadata_error", ts[0].get("error", "NONE"))
    check(ts[0].get("error") == BROKER_UNKNOWN, f"metadata for the missing topic: {ts[0]}")


def s_oversize(s):
    t = P.name("topic", "big")
    produce(t, [(b"k", b"small")])  # auto-create it with the broker default message.max.bytes (1048588)
    big = os.urandom(1_200_000).hex()[:1_200_000].encode()
    rc, _out, err = kcat(["-P", "-t", t, "-p", "0", "-X", "message.max.bytes=5000000", "-X", "message.timeout.ms=15000"],
                         stdin=big + b"\n")
    P.obs(s, "rc_nonzero", rc != 0)
    check("too large" in err.lower(), f"expected 'Message size too large' (rc={rc}): {err.strip()[-300:]}")
    P.obs(s, "error", "MSG_SIZE_TOO_LARGE")


def preflight():
    rc, out, err = kcat(["-L", "-J"], timeout=12)
    check(rc == 0 and json.loads(out).get("brokers"), f"kcat -L failed: {err.strip()[-200:]}")


SCENARIOS = ([(f"produce_{c}", s_produce(c)) for c in CODECS] +
             [("group_consume", s_group_consume), ("commit", s_commit, 55), ("group_restart", s_group_restart, 50),
              ("seek_timestamp", s_seek_timestamp), ("idempotent_producer", s_idempotent),
              ("missing_topic", s_missing_topic), ("oversize_record", s_oversize)])
print("# " + subprocess.run([KCAT, "-V"], capture_output=True, text=True).stdout.splitlines()[3], flush=True)
P.run(SCENARIOS, preflight)
