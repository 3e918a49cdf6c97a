"""Processes and ports: finding processes in /proc, waiting, running helpers, stopping servers.

Also the small tools every server shares around its processes: the log tail shown when a start
fails, the lock that serialises two runs, and handing a folder to a server's own system user.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from deploy.localstack.config import LOOPBACK, Endpoint, StackError

STOP_TIMEOUT = 60.0
KILL_TIMEOUT = 15.0
LOG_TAIL_LINES = 20

_launched: list[subprocess.Popen[bytes]] = []


@atexit.register
def _reap_launched() -> None:
    """At exit, collect the servers launched here that have stopped since (a test that restarted a
    cluster node, then stopped the cluster through ``down``): their handles then close quietly
    rather than report a running subprocess. A server still running is left running."""
    for child in _launched:
        child.poll()


# ------------------------------------------------------------------------------------ /proc


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


def all_pids() -> list[int]:
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
    for pid in all_pids():
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
    return [pid for pid in all_pids() if _socket_links(pid) & inodes]


def with_descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for other in all_pids():
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = Path(f"/proc/{other}/stat").read_text()
            children.setdefault(int(raw[raw.rindex(")") + 2 :].split()[1]), []).append(other)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if pid_alive(current):
            found.append(current)
            todo.extend(children.get(current, []))
    return found


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of ``pids`` together (VmRSS), 0 for those already gone."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


# ---------------------------------------------------------------------------- waiting, stopping


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def terminate(pids: Callable[[], list[int]], what: str) -> None:
    """SIGTERM every pid ``pids()`` returns, wait, then SIGKILL; fail if any process remains."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, KILL_TIMEOUT)):
        remaining = pids()
        if not remaining:
            return
        for pid in remaining:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if wait_until(lambda: not pids(), wait):
            return
        if sig == signal.SIGTERM:
            print(f"  {what} did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM; sending SIGKILL")
    raise StackError(f"{what}: processes {pids()} are still running after SIGKILL")


def terminate_group(pid: int, start_ticks: int, what: str) -> None:
    """Stop the process group a server was started in (only members no older than its leader)."""
    terminate(lambda: group_members(pid, start_ticks) if start_ticks else [], what)


# ---------------------------------------------------------------------------------------- ports


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


# ------------------------------------------------------------------------------ helpers, logs


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


def launch(
    argv: list[str],
    log: Path,
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    user: int | None = None,
    group: int | None = None,
) -> int:
    """Start a server in a session of its own (as ``user``, if given), output appended to ``log``.

    Returns its pid, which is also its process group. A long-lived caller (a test restarting a
    cluster node) keeps the handle, so the server is not reported as a leaked child, and reaps the
    handles of servers that have exited since.
    """
    _launched[:] = [child for child in _launched if child.poll() is None]
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            user=user,
            group=group,
            extra_groups=[] if user is not None else None,
            start_new_session=True,
        )
    _launched.append(process)
    return process.pid


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
