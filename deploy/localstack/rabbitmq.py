"""RabbitMQ: reuse the broker answering on the AMQP port, or run a node of our own from Debian's package.

Our node is ``tubewatch<port>@localhost``, listening on 127.0.0.1 only, with its config, data and
log under ``<clone data dir>/rabbitmq`` (owned by the ``rabbitmq`` user, which may not reach the
state dir). The package is installed without letting it start its default broker.
"""

from __future__ import annotations

import contextlib
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from deploy.localstack.config import LOOPBACK, SAFE_PATH, Endpoint, StackError
from deploy.localstack.downloads import apt_install
from deploy.localstack.processes import (
    chown_tree,
    free_port_near,
    pid_alive,
    port_open,
    run_logged,
    start_failure,
    start_ticks_of,
    terminate,
    wait_until,
)
from deploy.localstack.records import Record, load_record, save_record
from deploy.localstack.server import Server

RABBIT_READY_TIMEOUT = 90.0
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
EPMD = Endpoint(LOOPBACK, 4369)
HELPER_ENV = {"PATH": SAFE_PATH, "LANG": "C.UTF-8"}


def amqp_answers(endpoint: Endpoint, timeout: float = 2.0) -> bool:
    """A broker answers the AMQP 0-9-1 protocol header with Connection.Start (or its own header)."""
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as sock:
            sock.sendall(AMQP_HEADER)
            reply = sock.recv(8)
    except OSError:
        return False
    return reply.startswith(b"\x01\x00\x00") or reply.startswith(b"AMQP")


def read_pid(pidfile: Path) -> int | None:
    """The pid in ``pidfile`` when that process runs, else None."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text().strip())
        if pid_alive(pid):
            return pid
    return None


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

    # install, start ---------------------------------------------------------------------------

    def install(self) -> pwd.struct_passwd:
        """Debian's rabbitmq-server, installed if missing; returns its system user."""
        if not (shutil.which("rabbitmq-server", path=SAFE_PATH) and shutil.which("rabbitmqctl", path=SAFE_PATH)):
            apt_install(
                ["rabbitmq-server"],
                self.config.logs_dir / "apt.log",
                "rabbitmq-server is missing",
                block_service_start=True,
            )
        try:
            return pwd.getpwnam("rabbitmq")
        except KeyError as exc:
            raise StackError("rabbitmq: the rabbitmq system user is missing; reinstall rabbitmq-server") from exc

    def write_config(self, user: pwd.struct_passwd) -> None:
        """The node's config files in its home, which is handed to the rabbitmq user."""
        home = self.home
        (home / "log").mkdir(parents=True, exist_ok=True)
        (home / "mnesia").mkdir(parents=True, exist_ok=True)
        (home / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = {LOOPBACK}:{self.endpoint.port}\n"
            f"default_user = {self.config.amqp_user}\n"
            f"default_pass = {self.config.amqp_password}\n"
        )
        (home / "enabled_plugins").write_text("[].\n")
        (home / "rabbitmq-env.conf").write_text(f"ERL_EPMD_ADDRESS={LOOPBACK}\n")
        (home / "rabbitmq.conf").chmod(0o600)
        chown_tree(home, user.pw_uid, user.pw_gid)
        home.chmod(0o750)

    def link_log(self, real_log: Path) -> None:
        """The broker runs as the rabbitmq user and may not reach the state dir: link its log there."""
        with contextlib.suppress(FileNotFoundError):
            self.log.unlink()
        self.log.symlink_to(real_log)

    def environment(self, node: str, dist_port: int, real_log: Path, pidfile: Path) -> dict[str, str]:
        home = self.home
        return {
            **HELPER_ENV,
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.endpoint.port),
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

    def start(self) -> Record:
        user = self.install()
        port = self.endpoint.port
        node = f"tubewatch{port}@localhost"
        dist_port = free_port_near(port + 20000 if port + 20000 <= 65535 else 25700, avoid={port})
        self.write_config(user)
        real_log = self.home / "log" / "rabbitmq.log"
        self.link_log(real_log)
        pidfile = self.home / "rabbitmq.pid"
        pidfile.unlink(missing_ok=True)
        extra = {"node": node, "pidfile": str(pidfile), "epmd_was_running": str(port_open(EPMD))}
        # Provisional record first: if this script dies now, ``down`` still knows the node to stop.
        save_record(self.config, Record(self.name, 0, 0, port, str(self.log), extra=extra), self.pid_file)
        print(f"rabbitmq: starting node {node} on {LOOPBACK}:{port} (rabbitmq-server -detached)")
        run_logged(
            ["rabbitmq-server", "-detached"],
            self.config.logs_dir / "rabbitmq-start.log",
            "rabbitmq-server -detached",
            60,
            self.environment(node, dist_port, real_log, pidfile),
        )
        if not wait_until(lambda: read_pid(pidfile) is not None, 30):
            raise start_failure(self.name, real_log, f"no running broker wrote {pidfile} within 30 s")
        pid = int(pidfile.read_text().strip())
        record = Record(self.name, pid, start_ticks_of(pid), port, str(self.log), extra=extra)
        save_record(self.config, record, self.pid_file)
        return record

    def load(self) -> Record | None:
        """A provisional record (script died between launch and pid) gets its pid from the pid file."""
        record = load_record(self.config, self.name)
        if record is not None and record.pid == 0:
            pid = read_pid(Path(record.extra.get("pidfile", "")))
            if pid is not None:
                record.pid, record.start_ticks = pid, start_ticks_of(pid)
                save_record(self.config, record, self.pid_file)
        return record

    # check, stop ------------------------------------------------------------------------------

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
            with contextlib.suppress(StackError):
                run_logged(
                    ["rabbitmqctl", "-n", node, "stop"],
                    self.config.logs_dir / "rabbitmq-stop.log",
                    "rabbitmqctl stop",
                    90,
                    HELPER_ENV,
                )
        terminate(lambda: [record.pid] if record.alive() else [], f"rabbitmq node {node}")
        if record.extra.get("epmd_was_running") == "False":
            stop_epmd()


def stop_epmd() -> None:
    """We caused epmd to start; stop it again unless another Erlang node still uses it."""
    if not shutil.which("epmd", path=SAFE_PATH):
        return
    names = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10, check=False)
    if "name " not in names.stdout:
        subprocess.run(["epmd", "-kill"], capture_output=True, timeout=10, check=False)
