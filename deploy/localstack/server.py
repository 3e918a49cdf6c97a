"""The lifecycle every server of the stack shares: ``up``, ``down`` and its ``status`` line.

``Server`` decides between reusing what runs, starting anew and leaving alone; a subclass (one per
server module) says how to probe, install, start, wait for and stop its own server.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from deploy.localstack.config import Config, Endpoint, StackError
from deploy.localstack.processes import listener_pids, port_open, start_failure, wait_until
from deploy.localstack.records import Record, drop_record, load_record

EXTERNAL_GRACE = 10.0


class Server:
    """One server of the stack; subclasses say how to probe, fetch, start and stop it."""

    name = ""
    pid_file = ""
    ready_timeout = 60.0
    # Needed by the services and tests: ``status`` exits 3 when it is down (others only if named).
    required = True

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

    # up ---------------------------------------------------------------------------------------

    def up(self) -> None:
        began = time.monotonic()
        record = self.load()
        if record and not record.alive():
            print(f"{self.name}: removing stale record (pid {record.pid} is gone)")
            self.forget()
            record = None
        if record:
            detail = self.wait_ready(record, self.ready_timeout)
            print(
                f"{self.name}: already running (started by localstack, pid {record.pid}) on {self.endpoint}; {detail}"
            )
        elif port_open(self.endpoint):
            self.reuse()
        else:
            self.start_and_wait(began)

    def reuse(self) -> None:
        """Adopt the healthy server someone else runs on the endpoint, or refuse the port."""
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

    def start_and_wait(self, began: float) -> None:
        """Start the server here and wait until it is ready; a server that never gets ready is stopped."""
        if not self.endpoint.local:
            raise StackError(f"{self.name}: nothing answers on {self.endpoint}, which is not this machine")
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        record = self.start()
        try:
            detail = self.wait_ready(record, self.ready_timeout)
        except StackError:
            with contextlib.suppress(StackError):
                self.stop(record)
            self.forget()
            raise
        print(
            f"{self.name}: started (pid {record.pid}) on {self.endpoint} in "
            f"{time.monotonic() - began:.1f} s; {detail}; log {self.log}"
        )

    def check_process(self, record: Record | None, reason: str) -> None:
        """While waiting for readiness: fail at once when the server we started has exited."""
        if record is not None and not record.alive():
            raise start_failure(self.name, self.log, f"the process (pid {record.pid}) exited {reason}")

    # down, status -----------------------------------------------------------------------------

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
        self.forget()
        if was_alive:
            print(f"{self.name}: stopped (pid {record.pid})")
        else:
            print(f"{self.name}: was not running (stale pid {record.pid}); record removed")

    def status(self) -> bool:
        """Print the server's status line; True when it is up."""
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

    # record -----------------------------------------------------------------------------------

    def load(self) -> Record | None:
        return load_record(self.config, self.name)

    def forget(self) -> None:
        drop_record(self.config, self.name, self.pid_file)
