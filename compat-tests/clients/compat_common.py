"""Shared plumbing for the Python scenario programs (confluent-kafka, kafka-python, aiokafka).

Output protocol (read by compat-tests/run, identical for every client program):
  SCENARIOS a b c        the scenarios this program will report, in order (missing ones -> FAIL)
  PASS name
  FAIL name: reason
  SKIP name: reason      scenario not applicable here (shown as "skip" in the matrix)
  OBS name key=value     an observation for compare mode (value has no spaces; run id replaced by <id>)
  N passed, M failed     last line
Environment:
  COMPAT_RUN_ID            suffix for topic/group names (random if unset)
  COMPAT_MISSING_BOOTSTRAP a broker with auto.create.topics.enable=false (for missing_topic)
  COMPAT_SCENARIOS         comma list: run only these
  COMPAT_DEADLINE          overall seconds before the watchdog gives up (default 240)
"""
import os
import random
import string
import sys
import threading
import time
import traceback

SCENARIO_TIMEOUT = float(os.environ.get("COMPAT_SCENARIO_TIMEOUT", "40"))


def run_id():
    rid = os.environ.get("COMPAT_RUN_ID")
    if not rid:
        rid = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    return rid


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def check_offsets(offs, n, what="read back offsets"):
    """The records of one partition came back at offsets 0..n-1, in order, each once."""
    offs = [int(o) for o in offs]
    if offs != list(range(n)):
        raise Failed(f"{what} {offs}, expected 0..{n - 1} in order")


class Program:
    def __init__(self, client):
        if len(sys.argv) < 2:
            print(f"usage: {sys.argv[0]} BOOTSTRAP", file=sys.stderr)
            sys.exit(2)
        self.client = client
        self.bootstrap = sys.argv[1]
        self.missing_bootstrap = os.environ.get("COMPAT_MISSING_BOOTSTRAP", "")
        self.rid = run_id()
        self.scenarios = []
        self.passed = 0
        self.failed = 0
        self.lock = threading.Lock()
        self.done = set()
        self.deadline = time.monotonic() + float(os.environ.get("COMPAT_DEADLINE", "240"))
        self.state = {}

    def name(self, kind, scenario):
        """Unique topic/group name: compat-<client>-<scenario>-<runid>."""
        return f"compat-{self.client}-{scenario}-{self.rid}".replace("_", "-")

    def obs(self, scenario, key, value):
        v = str(value).replace(self.rid, "<id>").replace(" ", "_").replace("\n", "_")
        with self.lock:
            print(f"OBS {scenario} {key}={v}", flush=True)

    def _result(self, line, ok, scenario):
        with self.lock:
            if scenario in self.done:
                return
            self.done.add(scenario)
            if ok is True:
                self.passed += 1
            elif ok is False:
                self.failed += 1
            print(line, flush=True)

    def passed_(self, s):
        self._result(f"PASS {s}", True, s)

    def fail(self, s, reason):
        reason = " ".join(str(reason).split())[:400]
        self._result(f"FAIL {s}: {reason}", False, s)

    def skip(self, s, reason):
        self._result(f"SKIP {s}: {reason}", None, s)

    def _finish(self):
        with self.lock:
            print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1 if self.failed else 0)

    def _watchdog(self):
        while time.monotonic() < self.deadline:
            time.sleep(0.5)
        for s in self.scenarios:
            self.fail(s[0], "watchdog: program deadline reached")
        self._finish()

    def run(self, scenarios, preflight):
        only = [s for s in os.environ.get("COMPAT_SCENARIOS", "").split(",") if s]
        self.scenarios = [s for s in scenarios if not only or s[0] in only]
        print("SCENARIOS " + " ".join(s[0] for s in self.scenarios), flush=True)
        threading.Thread(target=self._watchdog, daemon=True).start()
        # Fail fast when the broker is unreachable: one bounded metadata call, then FAIL everything.
        try:
            preflight()
        except BaseException as e:  # noqa: BLE001
            for s in self.scenarios:
                self.fail(s[0], f"preflight against {self.bootstrap} failed (broker down?): {e!r}")
            self._finish()
        for s in self.scenarios:
            name, fn = s[0], s[1]
            timeout = s[2] if len(s) > 2 else SCENARIO_TIMEOUT
            box = {}

            def target():
                try:
                    r = fn(name)
                    box["skip"] = r if isinstance(r, str) else None
                except Failed as e:
                    box["err"] = str(e)
                except BaseException as e:  # noqa: BLE001
                    box["err"] = f"{type(e).__name__}: {e}"
                    traceback.print_exc(file=sys.stderr)

            t = threading.Thread(target=target, daemon=True)
            t.start()
            t.join(min(timeout, max(0.1, self.deadline - time.monotonic())))
            if t.is_alive():
                self.fail(name, f"timed out after {timeout:.0f}s")
            elif "err" in box:
                self.fail(name, box["err"])
            elif box.get("skip"):
                self.skip(name, box["skip"])
            else:
                self.passed_(name)
        self._finish()


def payload(codec, i):
    """Deterministic, compressible record value."""
    return (f"value-{i}-{codec}-" + "abcdefgh" * 40).encode()


def wait_until(pred, timeout, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
