"""Prometheus: Debian's ``prometheus`` package (2.42), run as a process of our own on 127.0.0.1.

The package is installed without letting it start its own daemon (and, where systemd runs, its unit
is disabled so a reboot does not start one on 0.0.0.0:9090). Our Prometheus listens on
127.0.0.1:PROMETHEUS_PORT with its configuration (generated, see ``prometheus_config``) and its
data under ``<state>/prometheus``, and scrapes every service's ``/metrics`` and its own. ``up`` on a
running Prometheus of ours rewrites the configuration and reloads it (SIGHUP) when it changed.

Nothing the services or the tests need depends on it, so ``status`` reports it without counting it
towards exit code 3 unless it is named with ``--only``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from deploy.localstack.config import SAFE_PATH, Endpoint, StackError
from deploy.localstack.downloads import apt_install
from deploy.localstack.processes import (
    launch,
    start_failure,
    start_ticks_of,
    terminate_group,
    wait_port_closed,
    wait_until,
)
from deploy.localstack.prometheus_config import render
from deploy.localstack.records import Record, save_record
from deploy.localstack.server import Server

PROMETHEUS_READY_TIMEOUT = 60.0
RETENTION = "15d"


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body) of a GET, or (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own loopback URL
            return response.status, response.read(4096)
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (OSError, ValueError):
        return 0, b""


class Prometheus(Server):
    name = "prometheus"
    pid_file = "prometheus.pid"
    ready_timeout = PROMETHEUS_READY_TIMEOUT
    required = False

    @property
    def endpoint(self) -> Endpoint:
        return self.config.prometheus

    @property
    def log(self) -> Path:
        return self.config.logs_dir / "prometheus.log"

    @property
    def home(self) -> Path:
        return self.config.state_dir / "prometheus"

    @property
    def config_file(self) -> Path:
        return self.home / "prometheus.yml"

    def url(self, path: str) -> str:
        return f"http://{self.endpoint}{path}"

    def healthy(self) -> bool:
        status, body = http_get(self.url("/-/healthy"))
        return status == 200 and b"Prometheus" in body

    # install, configure -----------------------------------------------------------------------

    def install(self) -> str:
        """Debian's prometheus, installed if missing; returns the binary's path."""
        if not shutil.which("prometheus", path=SAFE_PATH):
            apt_install(
                ["prometheus"],
                self.config.logs_dir / "apt.log",
                "prometheus is missing",
                block_service_start=True,
            )
            disable_system_unit()
        binary = shutil.which("prometheus", path=SAFE_PATH)
        if binary is None:
            raise StackError("prometheus: the binary is missing after apt-get install prometheus")
        return binary

    def write_config(self) -> bool:
        """Write the generated configuration; True when its text changed."""
        if not any(self.config.rules_dir.glob("*.yml")):
            raise StackError(f"prometheus: no rule files (*.yml) in {self.config.rules_dir} (PROMETHEUS_RULES_DIR)")
        text = render(self.config)
        with contextlib.suppress(FileNotFoundError):
            if self.config_file.read_text() == text:
                return False
        self.home.mkdir(parents=True, exist_ok=True)
        partial = self.config_file.with_name(".prometheus.yml.tmp")
        partial.write_text(text)
        os.replace(partial, self.config_file)
        return True

    # up, start --------------------------------------------------------------------------------

    def up(self) -> None:
        """As every server; a running Prometheus of ours first gets the current configuration."""
        record = self.load()
        if record is not None and record.alive() and self.write_config():
            os.kill(record.pid, signal.SIGHUP)
            print(f"prometheus: configuration changed; reloaded (SIGHUP to pid {record.pid})")
        super().up()

    def start(self) -> Record:
        binary = self.install()
        self.write_config()
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={data}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address={self.endpoint}",
        ]
        pid = launch(argv, self.log, cwd=self.home)
        record = Record(
            self.name,
            pid,
            start_ticks_of(pid),
            self.endpoint.port,
            str(self.log),
            extra={"config": str(self.config_file), "data": str(data)},
        )
        save_record(self.config, record, self.pid_file)
        return record

    # check, stop ------------------------------------------------------------------------------

    def wait_ready(self, record: Record | None, timeout: float) -> str:
        def ready() -> bool:
            self.check_process(record, "before getting ready")
            return http_get(self.url("/-/ready"))[0] == 200

        if not wait_until(ready, timeout):
            raise start_failure(self.name, self.log, f"/-/ready did not answer 200 within {timeout:.0f} s")
        return f"ready, scraping {', '.join(f'{job} :{port}' for job, port in self.config.scrape_ports.items())}"

    def stop(self, record: Record) -> None:
        terminate_group(record.pid, record.start_ticks, f"prometheus (pid {record.pid})")
        if not wait_port_closed(self.endpoint):
            raise StackError(f"prometheus: something still listens on {self.endpoint} after stopping it")


def disable_system_unit() -> None:
    """Where systemd runs, keep the package's own unit (0.0.0.0:9090) from starting at boot."""
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl", path=SAFE_PATH):
        subprocess.run(
            ["systemctl", "disable", "--now", "prometheus.service"],
            capture_output=True,
            timeout=60,
            check=False,
        )
