#!/usr/bin/env python3
"""The reference Apache Kafka: install it with Maven, start and stop single-node KRaft brokers.

  compat-tests/kafka/refkafka.py install                 fetch the jars (cached, idempotent)
  compat-tests/kafka/refkafka.py classpath               print the class path of the cached jars
  compat-tests/kafka/refkafka.py start DIR [--port P] [--set NAME=VALUE ...] [--listener URI ...]
                                         [--add-scram MECHANISM=[name=..,password=..] ...]
                                                         format DIR as a combined broker+controller
                                                         node and start it; prints HOST:PORT
  compat-tests/kafka/refkafka.py stop DIR                stop the broker started in DIR
  compat-tests/kafka/refkafka.py run CLASS ARG...        run a Kafka tool (java -cp ... CLASS ARG...)

The jars are those of pom.xml (the Kafka broker, tools, clients, Streams, Connect), copied by
`mvn dependency:copy-dependencies` into $SLUICE_COMPAT_CACHE/kafka-<version>/libs (default cache
~/.cache/sluice-compat). compat-tests/run imports this module to start the Kafka side of the
differential. JAVA (default `java`) and KAFKA_HEAP (default -Xmx512m) pick the JVM and its heap.
"""
import argparse
import base64
import fcntl
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
POM = os.path.join(HERE, "pom.xml")
CACHE = os.environ.get("SLUICE_COMPAT_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sluice-compat")
JAVA = os.environ.get("JAVA", "java")
HEAP = os.environ.get("KAFKA_HEAP", "-Xmx512m -Xms128m")
START_TIMEOUT = 120


def version():
    with open(POM) as f:
        return re.search(r"<kafka.version>([^<]+)</kafka.version>", f.read()).group(1)


def home():
    return os.path.join(CACHE, f"kafka-{version()}")


def libs():
    return os.path.join(home(), "libs")


def log(msg):
    print(f"refkafka: {msg}", file=sys.stderr, flush=True)


def install():
    """Copies the pinned jars into the cache once; a later call only checks the marker. A file lock
    serialises concurrent callers (both sides of a differential, parallel clients, other processes)."""
    done = os.path.join(home(), ".done")
    if os.path.exists(done):
        return libs()
    os.makedirs(home(), exist_ok=True)
    with open(os.path.join(home(), ".install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(done):
            return libs()
        log(f"installing Apache Kafka {version()} jars into {libs()} (mvn dependency:copy-dependencies)")
        tmp = libs() + ".tmp"
        subprocess.run(["rm", "-rf", tmp], check=True)
        subprocess.run(["mvn", "-q", "-B", "-f", POM, "dependency:copy-dependencies",
                        f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"], check=True, stdout=sys.stderr)
        subprocess.run(["rm", "-rf", libs()], check=True)
        os.rename(tmp, libs())
        with open(done, "w") as f:
            f.write(version() + "\n")
    return libs()


def classpath():
    return os.path.join(install(), "*")


def java_cmd(main_class, *args, heap="-Xmx256m"):
    """argv that runs one of Kafka's main classes over the cached jars, with a quiet log4j2 config."""
    return [JAVA, *heap.split(), "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={os.path.join(HERE, 'log4j2-tools.properties')}",
            "-cp", classpath(), main_class, *args]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port):
    """True once the broker completes an ApiVersions v0 exchange (not just accepts TCP)."""
    req = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big") + (0xFFFF).to_bytes(2, "big")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(len(req).to_bytes(4, "big") + req)
            head = s.recv(4)
            if len(head) < 4:
                return False
            body = s.recv(int.from_bytes(head, "big"))
            return len(body) >= 6 and body[4:6] == b"\x00\x00"
    except OSError:
        return False


class Kafka:
    """One single-node KRaft Kafka (broker and controller in one process) in DIR."""

    def __init__(self, directory, port=0, settings=(), heap=None, listeners=(), format_args=()):
        self.dir = os.path.abspath(directory)
        self.heap = heap or HEAP  # JVM heap flags, e.g. "-Xmx1g -Xms1g" (default $KAFKA_HEAP)
        self.port = port or free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.settings = list(settings)
        # Listeners besides PLAINTEXT, e.g. "SASL_SSL://127.0.0.1:9094" (their ssl.*/sasl.* in settings).
        self.listeners = list(listeners)
        # Extra StorageTool format arguments, e.g. ["--add-scram", "SCRAM-SHA-512=[name=u,password=p]"].
        self.format_args = list(format_args)
        self.proc = None

    def properties(self, controller_port):
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": ",".join([f"PLAINTEXT://127.0.0.1:{self.port}", *self.listeners,
                                   f"CONTROLLER://127.0.0.1:{controller_port}"]),
            "advertised.listeners": ",".join([f"PLAINTEXT://127.0.0.1:{self.port}", *self.listeners]),
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,"
                                              "SASL_PLAINTEXT:SASL_PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": os.path.join(self.dir, "data"),
            # A single node: every internal topic has one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # The same group timing sluice's test brokers get.
            "group.initial.rebalance.delay.ms": "0",
        }
        for s in self.settings:
            k, _, v = s.partition("=")
            props[k] = v
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "server.properties")
        with open(conf, "w") as f:
            f.write(self.properties(free_port()))
        if not os.path.exists(os.path.join(self.dir, "data", "meta.properties")):
            cluster_id = "-"
            while cluster_id.startswith("-"):  # StorageTool would take "-t -abc..." for an option
                cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            subprocess.run(java_cmd("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", conf,
                                    *self.format_args),
                           check=True, stdout=subprocess.DEVNULL)
        self.log = open(os.path.join(self.dir, "kafka.log"), "ab")
        argv = [JAVA, *self.heap.split(), "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={os.path.join(HERE, 'log4j2-broker.properties')}",
                f"-Dkafka.logs.dir={self.dir}", "-cp", classpath(), "kafka.Kafka", conf]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        with open(os.path.join(self.dir, "kafka.pid"), "w") as f:
            f.write(f"{self.proc.pid}\n")
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.proc.returncode}; see {self.log.name}")
            if answers(self.port):
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"Kafka did not answer on {self.addr} within {START_TIMEOUT}s; see {self.log.name}")

    def stop(self):
        stop_dir(self.dir)


def stop_dir(directory):
    """SIGTERM (Kafka's controlled shutdown), then SIGKILL after 30 s."""
    pidfile = os.path.join(directory, "kafka.pid")
    try:
        pid = int(open(pidfile).read())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:  # not our child: poll its existence
                os.kill(pid, 0)
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.unlink(pidfile)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install")
    sub.add_parser("classpath")
    p = sub.add_parser("start")
    p.add_argument("dir")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--listener", action="append", default=[], metavar="PROTOCOL://HOST:PORT",
                   help="a listener besides PLAINTEXT (its ssl.*/sasl.* settings with --set)")
    p.add_argument("--add-scram", action="append", default=[], metavar="MECHANISM=[name=..,password=..]",
                   help="a SCRAM user seeded by StorageTool format")
    p = sub.add_parser("stop")
    p.add_argument("dir")
    p = sub.add_parser("run")
    p.add_argument("main_class")
    p.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.cmd == "install":
        print(install())
    elif a.cmd == "classpath":
        print(classpath())
    elif a.cmd == "start":
        format_args = [x for spec in a.add_scram for x in ("--add-scram", spec)]
        k = Kafka(a.dir, a.port, a.set, listeners=a.listener, format_args=format_args).start()
        print(k.addr)
    elif a.cmd == "stop":
        stop_dir(a.dir)
    elif a.cmd == "run":
        os.execvp(JAVA, java_cmd(a.main_class, *a.args))


if __name__ == "__main__":
    main()
