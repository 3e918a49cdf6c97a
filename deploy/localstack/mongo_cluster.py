"""Cluster mode's MongoDB: three mongod 6.0.5 (the single stack's binary) as the replica set ``rs-cluster``.

Member ``n`` listens on ``CLUSTER_MONGO_PORT + n - 1`` on 127.0.0.1 with a 0.5 GB WiredTiger cache
and its data under ``<clone data dir>/cluster/mongodb-<n>``. ``form`` initiates the set once (all
three members, ``CLUSTER_ELECTION_TIMEOUT_MS``) and brings an older set's settings up to date; it
is ready when one member is PRIMARY and the others SECONDARY.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deploy.localstack.config import CLUSTER_MONGO_PORT, CLUSTER_REPLICA_SET, LOOPBACK, Config, Endpoint, StackError
from deploy.localstack.mongodb import NOT_YET_INITIALIZED, MongoDB
from deploy.localstack.node_group import NodeGroup
from deploy.localstack.processes import start_failure
from deploy.localstack.records import Record

CLUSTER_MONGO_CACHE_GB = "0.5"
# The default is 10 s: a primary unheard of for 12 s is replaced. Load on two cores (GC of the
# Elasticsearch nodes, a busy disk) stalls a mongod for far less; a killed primary costs about 12 s
# of election (a stepped-down one about 1 s).
CLUSTER_ELECTION_TIMEOUT_MS = 12000
FORM_TIMEOUT = 120.0


class MongoNode(MongoDB):
    """Member ``number`` of the replica set: its own port, data, record and log."""

    cache_size_gb = CLUSTER_MONGO_CACHE_GB

    def __init__(self, config: Config, number: int) -> None:
        super().__init__(config)
        self.number = number
        self.name = f"cluster-mongodb-{number}"
        self.pid_file = f"{self.name}.pid"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(LOOPBACK, CLUSTER_MONGO_PORT + self.number - 1)

    @property
    def host(self) -> str:
        return str(self.endpoint)

    @property
    def log(self) -> Path:
        return self.config.logs_dir / "cluster" / f"mongod-{self.number}.log"

    @property
    def replica_set(self) -> str:
        return CLUSTER_REPLICA_SET

    @property
    def data_dir(self) -> Path:
        return self.config.clone_dir / "cluster" / f"mongodb-{self.number}"

    def start(self) -> Record:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        return super().start()

    def reuse(self) -> None:
        raise StackError(
            f"{self.name}: port {self.endpoint} is taken by a server localstack did not start "
            "(another clone's cluster?); stop it first"
        )

    def hello(self) -> dict[str, Any] | None:
        """The member's ``hello`` answer, None when it does not answer."""
        from pymongo.errors import PyMongoError  # noqa: PLC0415

        try:
            with self.client() as client:
                hello: dict[str, Any] = client.admin.command("hello")
        except PyMongoError:
            return None
        return hello

    def wait_ready(self, record: Record | None, timeout: float) -> str:
        """The member answers (it becomes PRIMARY or SECONDARY once the set is formed: ``form`` waits)."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_process(record, "before answering")
            hello = self.hello()
            if hello is not None:
                if hello.get("setName") not in (None, self.replica_set):
                    raise StackError(f"{self.name} belongs to replica set {hello.get('setName')!r}")
                return "answers"
            if time.monotonic() >= deadline:
                raise start_failure(self.name, self.log, f"no answer on {self.endpoint} within {timeout:.0f} s")
            time.sleep(0.5)


class MongoReplicaSet(NodeGroup):
    """The three members as one replica set: initiated once, its primary, each member's state."""

    name = "cluster-mongodb"

    def __init__(self, config: Config, size: int) -> None:
        self.members = [MongoNode(config, n) for n in range(1, size + 1)]
        super().__init__(config, self.members)

    @property
    def url(self) -> str:
        hosts = ",".join(member.host for member in self.members)
        return f"mongodb://{hosts}/?replicaSet={CLUSTER_REPLICA_SET}"

    def wanted_config(self) -> dict[str, Any]:
        return {
            "_id": CLUSTER_REPLICA_SET,
            "members": [{"_id": n, "host": member.host} for n, member in enumerate(self.members)],
            "settings": {"electionTimeoutMillis": CLUSTER_ELECTION_TIMEOUT_MS},
        }

    def states(self) -> dict[str, str]:
        """Member host -> its state (PRIMARY, SECONDARY, ...) as the first answering member sees it."""
        from pymongo.errors import OperationFailure, PyMongoError  # noqa: PLC0415

        for member in self.members:
            try:
                with member.client() as client:
                    status = client.admin.command("replSetGetStatus")
            except OperationFailure as exc:
                if exc.code == NOT_YET_INITIALIZED:
                    return {}
                continue
            except PyMongoError:
                continue
            return {m["name"]: m["stateStr"] for m in status.get("members", [])}
        return {}

    def roles(self) -> dict[str, str]:
        states = self.states()
        return {member.name: states.get(member.host, "down") for member in self.members}

    def primary(self) -> MongoNode:
        """The member that is writable primary now."""
        for member in self.members:
            hello = member.hello()
            if hello and hello.get("isWritablePrimary") and hello.get("setName") == CLUSTER_REPLICA_SET:
                return member
        raise StackError(f"{self.name}: no member is primary ({self.states() or 'not initiated'})")

    def step_down(self, seconds: int = 60) -> MongoNode:
        """Ask the primary to step down (a planned election) and not to stand again for ``seconds``."""
        primary = self.primary()
        with primary.client(timeout_ms=5000) as client:
            client.admin.command("replSetStepDown", seconds)
        return primary

    def initiate_or_update(self) -> str:
        """Initiate the set when no member belongs to one; give a formed set today's settings."""
        from pymongo.errors import OperationFailure  # noqa: PLC0415

        hellos = [member.hello() or {} for member in self.members]
        if not any(hello.get("setName") for hello in hellos):
            with self.members[0].client(timeout_ms=5000) as client:
                try:
                    client.admin.command("replSetInitiate", self.wanted_config())
                except OperationFailure as exc:
                    if exc.code != 23:  # AlreadyInitialized: a race with another run
                        raise StackError(f"{self.name}: replSetInitiate failed: {exc}") from exc
            return "initiated"
        primary = next((m for m, h in zip(self.members, hellos, strict=True) if h.get("isWritablePrimary")), None)
        if primary is None:
            return "electing"
        with primary.client(timeout_ms=5000) as client:
            config: dict[str, Any] = client.admin.command("replSetGetConfig")["config"]
            settings = config.setdefault("settings", {})
            if settings.get("electionTimeoutMillis") != CLUSTER_ELECTION_TIMEOUT_MS:
                settings["electionTimeoutMillis"] = CLUSTER_ELECTION_TIMEOUT_MS
                config["version"] = int(config.get("version", 1)) + 1
                client.admin.command("replSetReconfig", config)
                return "settings updated"
        return "formed"

    def whole(self) -> tuple[bool, str]:
        states = self.states()
        values = [states.get(member.host, "down") for member in self.members]
        ok = values.count("PRIMARY") == 1 and values.count("SECONDARY") == len(values) - 1
        return ok, ", ".join(f"{m.host} {v}" for m, v in zip(self.members, values, strict=True))

    def form(self) -> str:
        from pymongo.errors import PyMongoError  # noqa: PLC0415

        deadline = time.monotonic() + FORM_TIMEOUT
        step = ""
        while True:
            try:
                step = self.initiate_or_update()
            except PyMongoError as exc:
                step = str(exc).split(",")[0]
            ok, states = self.whole()
            if ok and step in ("formed", "settings updated"):
                return f"replica set {CLUSTER_REPLICA_SET}: {states}"
            if time.monotonic() >= deadline:
                raise StackError(f"{self.name}: not formed within {FORM_TIMEOUT:.0f} s ({step}; {states})")
            time.sleep(1.0)

    def wait_whole(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            ok, states = self.whole()
            if ok:
                return f"replica set {CLUSTER_REPLICA_SET}: {states}"
            if time.monotonic() >= deadline:
                raise StackError(f"{self.name}: not whole within {timeout:.0f} s ({states})")
            time.sleep(1.0)
