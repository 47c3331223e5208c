#!/usr/bin/env python3
"""The kafka-streams column: a Kafka Streams 4.4.0 WordCount with exactly_once_v2, killed with SIGKILL.

One scenario, streams_eos_wordcount. The application is compat-tests/clients/streams
(StreamsWordCount.java: lines -> words -> groupBy(word), a repartition topic -> count() into a
RocksDB store with a changelog topic -> word:count on the output topic; the counts table re-keyed by
word prefix, a table repartition topic -> reduce() into a second store -> prefix:sum on
OUTPUT-prefixes; record caching off, commit every 200 ms), built by clients/streams/build into $SLUICE_COMPAT_CACHE/streams/bin. This driver
(confluent-kafka from the matrix's venv) follows the program contract (compat_common.Program):

  1. creates the input (3 partitions) and output (2 partitions) topics and produces part 1 of a
     deterministic corpus (3200 lines, 120 words with a skewed distribution, 4 parts of 800 lines);
  2. run 1 (commit.interval.ms=1500, so transactions stay open a while): starts the application;
     once committed output appears it trickles part 2 in and, once output records of an open
     transaction are seen (read_uncommitted but not read_committed), kills its JVM with SIGKILL;
  3. produces the rest of part 2 and part 3; run 2: the same application.id and state dir (a new
     instance fences the killed one's transactional.id, whose open transaction is aborted); waits
     until every word's count has caught up, then closes it cleanly;
  4. wipes the state dir, produces part 4; run 3: a fresh state dir, so the counts must be restored
     from the changelog topic; waits until caught up and closes it;
  5. checks what a read_committed consumer of the output topic saw (it reads from the start, all
     along): for every word exactly the counts 1, 2, ..., N in order, N its count in the corpus: no
     duplicate (a replayed aborted transaction), no gap (a lost one), nothing after N.

A FAIL names the phase and why: the application's fatal exception (its stream thread's exception
chain, e.g. a refused CreateTopics for the changelog, or initTransactions refused a transaction
coordinator) or, when it only hangs, the distinct ERROR/WARN lines of its log. Every run's log is
copied to stderr.
OBS: the corpus (lines, distinct words, total word count) and the committed output record count.

Every JVM runs in its own session, is killed (SIGKILL to its process group) when the program ends
(watchdog, SIGTERM from the runner's timeout included) and halts by itself when its stdin (a pipe
from this driver) closes, so no application outlives the driver. The scenario has its own budget
(STREAMS_BUDGET, default 180 s; 25-40 s on an idle 2-core machine) below the runner's 300 s
per program.
"""
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compat_common import Failed, Program, check  # noqa: E402
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, libversion, version  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

SCENARIO = "streams_eos_wordcount"
CACHE = os.environ.get("SLUICE_COMPAT_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sluice-compat")
APP = os.environ.get("STREAMS_APP") or os.path.join(CACHE, "streams", "bin", "kafka-streams-wordcount")
BUDGET = float(os.environ.get("STREAMS_BUDGET", "180"))  # the driver's own deadline for the scenario
# Extra Streams settings for experiments, e.g. STREAMS_EXTRA="processing.guarantee=at_least_once"
# (which usually FAILs: the input processed again after the SIGKILL shows as counts past N).
EXTRA = os.environ.get("STREAMS_EXTRA", "").split()
PARTS, PART_LINES = 4, 800
IN_PARTITIONS, OUT_PARTITIONS = 3, 2
START_BUDGET = 90     # first committed output of a run (JVM start, group join, internal topics)
CATCH_UP_BUDGET = 90  # a run's output reaching the expected counts


class StreamsProgram(Program):
    """Program that also ends the application JVMs and removes its temp dir when it finishes."""

    def __init__(self):
        super().__init__("kafka-streams")
        self.children = set()
        self.apps = []  # every App started, so their logs reach stderr however the program ends
        self.tmp = tempfile.mkdtemp(prefix="sluice-compat-streams-")

    def kill_children(self):
        for p in list(self.children):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                p.wait(5)
            except (subprocess.TimeoutExpired, OSError):
                pass
            self.children.discard(p)

    def end_apps(self):
        """SIGKILLs every application still running and copies its log to stderr."""
        self.kill_children()
        for a in list(self.apps):
            if not a.finished:
                a.done()

    def _finish(self):
        self.end_apps()
        shutil.rmtree(self.tmp, ignore_errors=True)
        super()._finish()


P = StreamsProgram()


def on_signal(signum, _frame):
    P.fail(SCENARIO, f"driver got signal {signum} (runner timeout?)")
    P._finish()


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)


def log(msg):
    print(f"kafka-streams: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the corpus

VOCAB = [a + b for a in ("al", "be", "co", "de", "ep", "fi", "go", "hu", "io", "ju", "ka", "lo")
         for b in ("ra", "mi", "to", "xe", "nu", "pa", "sy", "vo", "qe", "wi")]


def corpus():
    """PARTS * PART_LINES lines of 3..8 words from VOCAB, the low indexes far more frequent (a
    linear congruential generator: the same corpus on every machine and Python)."""
    x, lines = 20240611, []
    for _ in range(PARTS * PART_LINES):
        x = (x * 1103515245 + 12345) % (1 << 31)
        words = []
        for _ in range(3 + (x >> 16) % 6):
            x = (x * 1103515245 + 12345) % (1 << 31)
            r = ((x >> 8) % 10000) / 10000.0
            words.append(VOCAB[int(len(VOCAB) * r * r)])
        lines.append(" ".join(words))
    return lines


def expected_counts(lines):
    exp = {}
    for line in lines:
        for w in line.split():
            exp[w] = exp.get(w, 0) + 1
    return exp


def expected_prefix_sums(counts):
    """The application's second aggregation: per first two letters, the words' total count."""
    exp = {}
    for w, n in counts.items():
        exp[w[:2]] = exp.get(w[:2], 0) + n
    return exp


# ---------------------------------------------------------------- the output topic, read_committed

class OutputReader:
    """A consumer of every output partition from offset 0 (read_committed unless told), polling in
    the background: the counts each word got, in order. Only its own thread touches the consumer
    until stop()."""

    def __init__(self, topic, isolation="read_committed"):
        self.topic = topic
        self.c = Consumer({"bootstrap.servers": P.bootstrap, "group.id": P.name("group", SCENARIO) + "-verify",
                           "enable.auto.commit": False, "isolation.level": isolation,
                           "auto.offset.reset": "earliest", "enable.partition.eof": False})
        self.c.assign([TopicPartition(topic, p, 0) for p in range(OUT_PARTITIONS)])
        self.lock = threading.Lock()
        self.seqs, self.records, self.bad, self.errors = {}, 0, [], []
        self.halt = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _poll(self, timeout):
        msgs = self.c.consume(num_messages=1000, timeout=timeout)
        with self.lock:
            for m in msgs:
                if m.error():
                    self.errors.append(str(m.error()))
                    continue
                k = (m.key() or b"").decode(errors="replace")
                v = m.value()
                self.records += 1
                if v is None or len(v) != 8:
                    self.bad.append(f"{k}@{m.partition()}:{m.offset()} value {v!r}")
                    continue
                self.seqs.setdefault(k, []).append(struct.unpack(">q", v)[0])

    def _run(self):
        while not self.halt.is_set():
            self._poll(0.2)

    def last(self):
        with self.lock:
            return {w: s[-1] for w, s in self.seqs.items()}, self.records

    def stop(self):
        self.halt.set()
        self.t.join(10)
        check(not self.t.is_alive(), "the output consumer's poll did not return")

    def read_to_end(self, timeout):
        """After stop(): consumes until the position of every partition reaches its high watermark
        (everything is committed by then). -> True when it got there."""
        ends = {p: self.c.get_watermark_offsets(TopicPartition(self.topic, p), timeout=5, cached=False)[1]
                for p in range(OUT_PARTITIONS)}
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self._poll(0.2)
            pos = {tp.partition: tp.offset for tp in self.c.position(
                [TopicPartition(self.topic, p) for p in range(OUT_PARTITIONS)])}
            if all(pos[p] >= ends[p] for p in ends):
                return True
        log(f"{self.topic}: positions {pos} short of the high watermarks {ends} after {timeout}s")
        return False

    def close(self):
        self.c.close()


# ---------------------------------------------------------------- the application process

WARN = re.compile(r"\b(WARN|ERROR)\b")
# Log lines that say nothing about the broker: configuration advice, the expected EOS wipe after a
# SIGKILL, RocksDB chatter.
NOISE = re.compile(r"(Processing exception handler is not enabled|Using an OS temp directory"
                   r"|did not find checkpoint offsets|are corrupted and hence need to be re-initialized"
                   r"|Failed to register startup state stores|Encounter corrupted task|TaskCorruptedException|RocksDB)")


class App:
    """One run of the Streams application: its own session, stdin a pipe, stdout parsed, stderr logged."""

    def __init__(self, label, app_id, topics, state_dir, settings=()):
        self.label = label
        self.logpath = os.path.join(P.tmp, f"{label}.log")
        self.logf = open(self.logpath, "wb")
        self.state, self.fatal, self.version, self.closed = None, None, None, None
        self.states, self.finished = [], False
        P.apps.append(self)
        argv = [APP, P.bootstrap, app_id, topics[0], topics[1], state_dir, *settings, *EXTRA]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.logf,
                                     start_new_session=True)
        P.children.add(self.proc)
        self.t0 = time.monotonic()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        log(f"{label}: started pid {self.proc.pid}, state dir {state_dir}")

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("STATE "):
                self.state = line.split()[1]
                self.states.append(self.state)
            elif line.startswith("FATAL "):  # exception classes without packages, messages without thread names
                text = re.sub(r"(?<![\w$.])(?:[a-z_][\w$]*\.)+([A-Z][\w$]*)", r"\1", line[6:])
                self.fatal = self.fatal or re.sub(r" \[stream-thread \[[^\]]*\]\]", "", text)
            elif line.startswith("VERSION "):
                self.version = line.split()[1]
                with P.lock:  # the matrix's client versions, once
                    if not P.state.get("announced"):
                        P.state["announced"] = True
                        print(f"# kafka-streams {self.version} (exactly_once_v2, RocksDB store); driver "
                              f"confluent-kafka {version()} (librdkafka {libversion()[0]})", flush=True)
            elif line.startswith("CLOSED "):
                self.closed = line.split()[1]
            log(f"{self.label} [{time.monotonic() - self.t0:5.1f}s] {line}")

    def problem(self):
        """Why this run cannot make progress any more, or None."""
        if self.fatal:
            return f"stream thread died: {self.fatal}"
        if self.state == "ERROR":
            return "application went to state ERROR"
        rc = self.proc.poll()
        if rc is not None:
            self.reader.join(2)
            if self.fatal:
                return f"stream thread died: {self.fatal}"
            return f"application exited with {rc} (last state {self.state})"
        return None

    def warnings(self, n=3):
        """The first n distinct ERROR messages of the log, then WARN ones (thread and client names
        stripped, numbers ignored when deduplicating)."""
        seen, found = set(), {"ERROR": [], "WARN": []}
        try:
            with open(self.logpath, errors="replace") as f:
                for line in f:
                    m = WARN.search(line)
                    if not m or NOISE.search(line):
                        continue
                    msg = re.sub(r"^\S+ \[[^\]]*\] ", "", line.strip())
                    msg = re.sub(r"^(WARN|ERROR) (?:[\w$]+\.)+([\w$]+) - ", r"\1 \2: ", msg)
                    msg = re.sub(r"(stream-thread|stream-client|stream-task) \[[^\]]*\] ", "", msg)
                    msg = re.sub(r"\[(Producer|Consumer|AdminClient) clientId=[^\]]*\] ", "", msg)
                    msg = msg.replace(P.rid, "<id>")
                    key = re.sub(r"\d+", "N", msg)[:100]
                    if key not in seen:
                        seen.add(key)
                        found[m.group(1)].append(msg[:240])
        except OSError:
            pass
        return (found["ERROR"] + found["WARN"])[:n]

    def why(self):
        w = self.warnings()
        return f" (last state {self.state}; log: {' | '.join(w)})" if w else f" (last state {self.state}; no WARN/ERROR logged)"

    def kill9(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.done()
        log(f"{self.label}: killed with SIGKILL after {time.monotonic() - self.t0:.1f}s (state {self.state})")

    def close(self, timeout=30):
        """Clean shutdown: the application commits, leaves the group and exits 0."""
        try:
            self.proc.stdin.write(b"close\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise Failed(f"{self.label}: did not close within {timeout}s{self.why()}")
        self.done()
        check(rc == 0, f"{self.label}: clean close exited {rc} (CLOSED {self.closed}){self.why()}")
        log(f"{self.label}: closed cleanly after {time.monotonic() - self.t0:.1f}s")

    def done(self):
        if self.finished:
            return
        self.finished = True
        P.children.discard(self.proc)
        self.reader.join(2)
        self.logf.close()
        with open(self.logpath, errors="replace") as f:
            text = f.read()
        tail = text[-20000:]
        print(f"----- {self.label} application log ({len(text)} chars{', tail' if len(tail) < len(text) else ''})"
              f" -----\n{tail}----- end of {self.label} log -----", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the scenario

class Clock:
    def __init__(self, budget):
        self.end = time.monotonic() + budget

    def left(self):
        return self.end - time.monotonic()


def wait_for(clock, what, pred, progress, app, budget):
    """Polls pred() until true; FAILs at once when the application died, or after budget seconds."""
    t0 = time.monotonic()
    end = min(t0 + budget, clock.end)
    while True:
        if pred():
            log(f"{what}: after {time.monotonic() - t0:.1f}s ({progress()})")
            return
        prob = app.problem() if app else None
        if prob:  # a fatal exception says it all; otherwise the log's errors may
            raise Failed(f"{what}: {prob}" + (f" (last state {app.state})" if app.fatal else app.why()))
        if time.monotonic() >= end:
            limit = "the driver's budget" if end == clock.end else f"{budget}s"
            raise Failed(f"{what}: not within {limit} ({progress()}){app.why() if app else ''}")
        time.sleep(0.1)


def produce(topic, lines, first, stop=None, rate=None):
    """Produces lines keyed by their line numbers, from `first`. rate: lines per second (else as fast
    as possible), ended early by stop["fast"]; stop["sent"] counts the lines handed to the client."""
    p = Producer({"bootstrap.servers": P.bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    errors = []

    def cb(err, _msg):
        if err:
            errors.append(str(err))

    t0 = time.monotonic()
    for i, line in enumerate(lines):
        p.produce(topic, key=f"line-{first + i}".encode(), value=line.encode(), on_delivery=cb)
        if rate and not (stop or {}).get("fast"):
            p.poll(0)
            delay = t0 + (i + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if stop is not None:
            stop["sent"] = i + 1
    left = p.flush(30)
    check(left == 0 and not errors, f"producing lines {first}..{first + len(lines) - 1}: "
                                    f"{left} undelivered, errors {errors[:2]}")


def scenario(s):
    try:
        run_scenario(s)
    except Failed as e:  # names without the run id, so both sides of a comparison read alike
        raise Failed(str(e).replace(P.rid, "<id>")) from None


def run_scenario(s):
    check(os.access(APP, os.X_OK), f"{APP} is missing: run compat-tests/install-clients kafka-streams")
    clock = Clock(BUDGET)
    t_start = time.monotonic()
    base = P.name("topic", s)
    t_in, t_out, app_id = base + "-in", base + "-out", base + "-app"
    t_pre = t_out + "-prefixes"  # the application's second output: sums per word prefix
    lines = corpus()
    part = [lines[i * PART_LINES:(i + 1) * PART_LINES] for i in range(PARTS)]
    total_exp = expected_counts(lines)
    P.obs(s, "lines", len(lines))
    P.obs(s, "words", len(total_exp))
    P.obs(s, "total", sum(total_exp.values()))

    admin = AdminClient({"bootstrap.servers": P.bootstrap})
    fs = admin.create_topics([NewTopic(t_in, IN_PARTITIONS, 1), NewTopic(t_out, OUT_PARTITIONS, 1),
                              NewTopic(t_pre, OUT_PARTITIONS, 1)], operation_timeout=15)
    for t, f in fs.items():
        try:
            f.result(20)
        except KafkaException as e:
            raise Failed(f"CreateTopics {t.replace(P.rid, '<id>')}: {e.args[0]}")
    wait_for(clock, "topics in metadata",
             lambda: all(len(admin.list_topics(t, timeout=5).topics[t].partitions) == n and
                         admin.list_topics(t, timeout=5).topics[t].error is None
                         for t, n in ((t_in, IN_PARTITIONS), (t_out, OUT_PARTITIONS), (t_pre, OUT_PARTITIONS))),
             lambda: "", None, 20)
    produce(t_in, part[0], 0)
    out = OutputReader(t_out)
    unc = OutputReader(t_out, isolation="read_uncommitted")  # sees the open transaction's output
    pre = OutputReader(t_pre)
    state1 = os.path.join(P.tmp, "state-1")
    produced = 1

    def caught_up():  # both outputs: every word's count and every prefix's sum
        exp = expected_counts(lines[:produced * PART_LINES])
        last, _ = out.last()
        plast, _ = pre.last()
        return all(last.get(w, 0) >= n for w, n in exp.items()) and \
            all(plast.get(k, 0) >= n for k, n in expected_prefix_sums(exp).items())

    def progress():
        exp = expected_counts(lines[:produced * PART_LINES])
        last, recs = out.last()
        behind = sum(1 for w, n in exp.items() if last.get(w, 0) < n)
        plast, _ = pre.last()
        pexp = expected_prefix_sums(exp)
        pbehind = sum(1 for k, n in pexp.items() if plast.get(k, 0) < n)
        return (f"{recs} committed output records of {sum(exp.values())} expected so far, "
                f"{behind} of {len(exp)} words behind, {pbehind} of {len(pexp)} prefix sums behind")

    try:
        # Run 1: killed with SIGKILL while it processes the trickle of part 2. It commits every 1.5 s
        # (the others every 200 ms), so its transactions stay open long enough to be caught open.
        app = App("run1", app_id, (t_in, t_out), state1, settings=("commit.interval.ms=1500",))
        wait_for(clock, "run 1 (fresh state): first committed output", lambda: out.last()[1] > 0, progress, app,
                 START_BUDGET)
        # Part 2 at 100 lines/s (8 s), so the application is busy with it when it is killed; the
        # rest goes at full speed after the kill.
        trickle = {"sent": 0, "fast": False}
        tr_err = {}

        def trickle_part2():
            try:
                produce(t_in, part[1], PART_LINES, stop=trickle, rate=100)
            except BaseException as e:  # noqa: BLE001
                tr_err["e"] = e

        tr = threading.Thread(target=trickle_part2, daemon=True)
        tr.start()
        wait_for(clock, "run 1: trickle of part 2 under way", lambda: trickle["sent"] >= PART_LINES // 4,
                 lambda: f"{trickle['sent']} lines sent", app, 20)
        # The kill should land while a transaction has written output records not yet committed:
        # output seen read_uncommitted but not read_committed, for 0.3 s with no commit in between
        # (not just the read_committed consumer lagging a moment behind a commit).
        hist = []

        def in_flight():
            return unc.last()[1] - out.last()[1]

        def caught_open():
            now, c = time.monotonic(), out.last()[1]
            f = unc.last()[1] - c
            hist.append((now, c, f))
            return f > 0 and any(now - t >= 0.3 and c0 == c and f0 > 0 for t, c0, f0 in hist)

        try:
            wait_for(clock, "run 1: output records of an open transaction seen", caught_open,
                     lambda: f"{trickle['sent']} lines sent", app, 5)
        except Failed as e:
            if app.problem():
                raise
            log(f"{e}; killing anyway")
        before_kill = (out.last()[1], in_flight())
        app.kill9()
        trickle["fast"] = True
        tr.join(max(1, clock.left()))
        if "e" in tr_err:
            raise tr_err["e"]
        produced = 2
        produce(t_in, part[2], 2 * PART_LINES)
        produced = 3
        log(f"run 1 killed with {before_kill[0]} committed output records and {before_kill[1]} more seen "
            f"read_uncommitted; parts 2 and 3 produced")

        # Run 2: same state dir (the same process id, so the same transactional.id fences run 1).
        app = App("run2", app_id, (t_in, t_out), state1)
        wait_for(clock, "run 2 (same state dir, after SIGKILL): output caught up with parts 1-3", caught_up,
                 progress, app, CATCH_UP_BUDGET)
        app.close()

        # Run 3: the state dir wiped, so the store is restored from the changelog topic.
        shutil.rmtree(state1)
        produce(t_in, part[3], 3 * PART_LINES)
        produced = 4
        app = App("run3", app_id, (t_in, t_out), os.path.join(P.tmp, "state-2"))
        wait_for(clock, "run 3 (state dir wiped: restore from the changelog): output caught up with parts 1-4",
                 caught_up, progress, app, CATCH_UP_BUDGET)
        app.close()

        # Everything is committed now: read to the end of every partition, then check the sequences.
        for r in (out, unc, pre):
            r.stop()
            r.read_to_end(min(10, max(1, clock.left())))
            r.close()
        verify(s, out, total_exp)
        verify_prefixes(s, pre, expected_prefix_sums(total_exp))
        uncommitted = unc.records
        log(f"output: {out.records} records read_committed, {uncommitted} read_uncommitted "
            f"({uncommitted - out.records} from aborted transactions); repartition topic (low, high) "
            f"watermarks after Streams' purges (DeleteRecords): {watermarks(app_id + '-words-repartition')}; "
            f"scenario took {time.monotonic() - t_start:.1f}s")
    finally:
        P.end_apps()


def watermarks(topic):
    """Diagnostics only: (low, high) watermarks of the partitions of a topic."""
    try:
        c = Consumer({"bootstrap.servers": P.bootstrap, "group.id": P.name("group", SCENARIO) + "-marks"})
        try:
            return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=5, cached=False)
                    for p in range(IN_PARTITIONS)]
        finally:
            c.close()
    except Exception as e:  # noqa: BLE001
        return f"unknown ({e})"


def verify(s, out, exp):
    """Every word's counts on the output, read_committed: exactly 1, 2, ..., N."""
    check(not out.errors, f"consumer errors: {out.errors[:3]}")
    check(not out.bad, f"output records that are not 8-byte counts: {out.bad[:3]}")
    wrong = []
    for w in sorted(exp, key=lambda w: (-exp[w], w)):
        seq = out.seqs.get(w, [])
        want = list(range(1, exp[w] + 1))
        if seq == want:
            continue
        dups = len(seq) - len(set(seq))
        first = next((i for i, (a, b) in enumerate(zip(seq, want)) if a != b), min(len(seq), len(want)))
        wrong.append(f"{w}: {len(seq)} counts ending at {seq[-1] if seq else None}, expected 1..{exp[w]}"
                     + (f", {dups} repeated" if dups else "")
                     + f", first off at #{first + 1}: {seq[max(0, first - 1):first + 3]}")
    extra = sorted(set(out.seqs) - set(exp))
    P.obs(s, "committed_output_records", out.records)
    check(not extra, f"output has words never produced: {extra[:5]}")
    check(not wrong, f"{len(wrong)} of {len(exp)} words with wrong counts under read_committed "
                     f"(exactly-once broken): " + "; ".join(wrong[:3]))
    check(out.records == sum(exp.values()), f"{out.records} output records, expected {sum(exp.values())}")


def verify_prefixes(s, pre, exp):
    """The table aggregation, read_committed: every prefix's last sum is its words' total count and
    no sum on the way went past it (each update is the old count subtracted, then the new added)."""
    check(not pre.errors, f"prefix consumer errors: {pre.errors[:3]}")
    check(not pre.bad, f"prefix records that are not 8-byte sums: {pre.bad[:3]}")
    wrong = [f"{k}: last {pre.seqs.get(k, [None])[-1]}, max {max(pre.seqs.get(k, [0]))}, expected {n}"
             for k, n in sorted(exp.items()) if not pre.seqs.get(k) or pre.seqs[k][-1] != n or max(pre.seqs[k]) > n]
    extra = sorted(set(pre.seqs) - set(exp))
    P.obs(s, "prefix_sums", ",".join(f"{k}:{pre.seqs[k][-1]}" for k in sorted(pre.seqs)))
    check(not extra, f"prefix output has prefixes never produced: {extra[:5]}")
    check(not wrong, f"{len(wrong)} of {len(exp)} prefix sums wrong under read_committed (table repartition "
                     f"and reduce, exactly-once broken): " + "; ".join(wrong[:3]))


def preflight():
    md = AdminClient({"bootstrap.servers": P.bootstrap}).list_topics(timeout=10)
    check(md.brokers, "no brokers in metadata")


P.run([(SCENARIO, scenario, BUDGET + 15)], preflight)
