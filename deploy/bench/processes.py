"""Where a benchmark's CPU goes: the local stack's server processes, and CPU seconds by process group."""

from __future__ import annotations

import resource
from collections.abc import Mapping, Sequence

import psutil


def server_processes() -> dict[str, list[psutil.Process]]:
    """The local stack's servers on this machine, to show where the CPU goes (stores vs. services)."""
    found: dict[str, list[psutil.Process]] = {"mongodb": [], "elasticsearch": [], "rabbitmq": []}
    for proc in psutil.process_iter(["name", "cmdline"]):
        name, cmdline = proc.info["name"] or "", " ".join(proc.info["cmdline"] or [])
        if name == "mongod":
            found["mongodb"].append(proc)
        elif name == "java" and "elasticsearch" in cmdline:
            found["elasticsearch"].append(proc)
        elif name == "beam.smp":
            found["rabbitmq"].append(proc)
    return found


def cpu_percent_of(proc: psutil.Process) -> float:
    """CPU since the last call (100 = one core); 0 for a process that has gone (e.g. a CLI's VM)."""
    try:
        return float(proc.cpu_percent())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0


def cpu_seconds_of(proc: psutil.Process) -> float:
    """User + system CPU seconds so far; 0 for a process that has gone."""
    try:
        times = proc.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
    return float(times.user + times.system)


def with_children(pid: int) -> list[psutil.Process]:
    """A process and its descendants (a service's worker processes, say)."""
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def reaped_children_cpu_seconds() -> float:
    """CPU seconds of this process's children that have exited and been waited for (a wrk run, say)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds each named group of processes spends between ``start`` and ``stop``.

    ``reaped_children`` names a group for the children this process runs to completion meanwhile
    (their CPU is only known once they have exited).
    """

    def __init__(self, groups: Mapping[str, Sequence[psutil.Process]], reaped_children: str | None = None) -> None:
        self._groups = {name: list(procs) for name, procs in groups.items()}
        self._reaped = reaped_children
        self._start: dict[str, float] = {}
        self._machine_start = psutil.cpu_times()
        self.seconds: dict[str, float] = {}
        self.machine_busy_share = 0.0

    def _now(self) -> dict[str, float]:
        now = {name: sum(cpu_seconds_of(p) for p in procs) for name, procs in self._groups.items()}
        if self._reaped is not None:
            now[self._reaped] = reaped_children_cpu_seconds()
        return now

    def start(self) -> None:
        self._start = self._now()
        self._machine_start = psutil.cpu_times()

    def stop(self) -> dict[str, float]:
        now = self._now()
        self.seconds = {name: now[name] - self._start[name] for name in now}
        end = psutil.cpu_times()
        busy_fields = ("user", "system", "nice", "irq", "softirq")
        busy = sum(getattr(end, f) - getattr(self._machine_start, f) for f in busy_fields)
        total = busy + (end.idle - self._machine_start.idle) + (end.iowait - self._machine_start.iowait)
        self.machine_busy_share = busy / total if total else 0.0
        return self.seconds

    def ms_per(self, count: int) -> dict[str, float]:
        """CPU milliseconds per unit of work (a request, a video) of each group."""
        return {name: round(1000 * seconds / max(count, 1), 3) for name, seconds in self.seconds.items()}
