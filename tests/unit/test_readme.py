"""The README tells the truth about configuration: every variable is documented, with its real default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from services.common.settings import PROJECT_ROOT
from tests.service_settings import SERVICE_PACKAGES, settings_variables

README = (PROJECT_ROOT / "README.md").read_text()
_CODE = re.compile(r"^`([^`]*)`$")


def all_variables() -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for package in SERVICE_PACKAGES.values():
        variables |= settings_variables(package)
    return variables


def documented_defaults() -> dict[str, str]:
    """Rows like ``| `A`, `B` | `1`, `2` | … |`` of the README's tables, as variable -> default."""
    found: dict[str, str] = {}
    for line in README.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 2:
            continue
        names = [_CODE.match(part.strip()) for part in cells[0].split(",")]
        values = [_CODE.match(part.strip()) for part in cells[1].split(",")] if cells[1] else []
        if all(names) and all(values) and len(values) == len(names):
            found |= {n.group(1): v.group(1) for n, v in zip(names, values, strict=True) if n and v}
    return found


def test_every_variable_of_every_service_is_in_the_readme() -> None:
    # Families may be abbreviated in a table row: `EMULATOR_HOSTILE_TRUNCATED`, `…_WRONG_TYPES`.
    missing = [name for name in all_variables() if name not in README and "…_" + name.split("_", 2)[-1] not in README]
    assert missing == []


def test_defaults_in_the_readme_tables_are_the_real_ones() -> None:
    variables = all_variables()
    documented = {name: value for name, value in documented_defaults().items() if name in variables}
    assert len(documented) > 40  # the tables were found
    wrong = []
    for name, value in documented.items():
        default = variables[name]
        if isinstance(default, bool):
            same = value.lower() == str(default).lower()
        elif isinstance(default, int | float):
            same = re.fullmatch(r"[0-9.]+", value) is not None and float(value) == float(default)
        elif isinstance(default, list):
            same = value == ",".join(map(str, default))
        elif isinstance(default, Path):
            same = value == str(default.relative_to(PROJECT_ROOT))  # documented relative to the clone
        else:
            same = value == str(default)
        if not same:
            wrong.append(f"{name}: README {value}, default {default}")
    assert wrong == []
