"""The record of what ``up`` started: ``<state>/run/<server>.json`` plus the server's pid file.

A record is written before the readiness wait, so ``down`` can stop exactly that process even after
a crash of ``up``; its start time guards against killing a recycled pid.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deploy.localstack.config import Config
from deploy.localstack.processes import pid_alive


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
