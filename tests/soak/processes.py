"""The soak's service processes: started, killed, paused and restarted like an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from services.common.settings import PROJECT_ROOT


@dataclass
class ServiceProcess:
    """One `python -m services.<module>` process with its own log file (appended across restarts)."""

    name: str
    module: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    paused: bool = False
    _log_handles: list[object] = field(default_factory=list)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self._log_handles.append(log)
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.module}"],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush — what a crash or an OOM kill does."""
        if self.process and self.alive():
            self.process.kill()
            self.process.wait(timeout=30)

    def restart(self) -> None:
        self.kill()
        self.restarts += 1
        self.start()

    def pause(self) -> None:
        if self.process and self.alive():
            os.kill(self.process.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.process and self.alive():
            os.kill(self.process.pid, signal.SIGCONT)
        self.paused = False

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait: the graceful stop the services promise."""
        if self.process is None:
            return None
        if self.paused:
            self.resume()
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for handle in self._log_handles:
            handle.close()  # type: ignore[attr-defined]
        self._log_handles.clear()
        return self.process.returncode

    def rss_mib(self) -> float | None:
        if not self.alive() or self.pid is None:
            return None
        try:
            return float(psutil.Process(self.pid).memory_info().rss) / (1024 * 1024)
        except psutil.Error:
            return None
