"""deploy/grafana: the dashboard type-checks against Grafana's own types, and is wired to Prometheus.

`@grafana/schema` (npm, the version of the Grafana image in docker-compose.yml) ships the dashboard
model and each panel's options as TypeScript. The test writes the dashboard JSON as a TypeScript
object literal typed with them and runs `tsc --noEmit --strict` (typescript pinned in the Makefile,
both installed by `make grafana-schema` into .local/grafana-schema/): a misspelt key, a missing
required option or a value outside an enum fails. Prometheus queries are checked against the
schema's `DataQuery` plus the Prometheus fields the package does not ship (`expr`, `legendFormat`,
`range`, `instant`). Which metrics the queries name exist is tests/e2e/test_prometheus_alerts.py.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy/grafana"
DASHBOARD = GRAFANA / "dashboards/tubewatch.json"
SCHEMA_DIR = ROOT / ".local/grafana-schema"
DATASOURCE_UID = "tubewatch-prometheus"
PANEL_TYPES = {"timeseries", "stat", "row"}

# The dashboard as TypeScript: enums become their literal values (a JSON file holds strings and
# numbers, not enum members); everything else is Grafana's type, with excess-property checks.
CHECK_TEMPLATE = """\
import type { Dashboard, DataQuery, FieldConfigSource, Panel, RowPanel } from '@grafana/schema';
import type * as stat from '@grafana/schema/dist/types/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen.d.ts';
import type * as timeseries from
  '@grafana/schema/dist/types/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen.d.ts';

type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

interface PrometheusQuery extends DataQuery {
  expr: string;
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
}

type Typed<Kind extends string, Options, Custom> = Omit<Json<Panel>, 'type' | 'options' | 'fieldConfig' | 'targets'> & {
  type: Kind;
  options: Json<Options>;
  fieldConfig: Json<FieldConfigSource<Custom>>;
  targets: Array<Json<PrometheusQuery>>;
};

type TubewatchDashboard = Omit<Json<Dashboard>, 'panels'> & {
  panels: Array<
    | Typed<'timeseries', timeseries.Options, timeseries.FieldConfig>
    | Typed<'stat', stat.Options, Record<string, never>>
    | Json<RowPanel>
  >;
};

export const dashboard: TubewatchDashboard = __DASHBOARD__;
"""


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def pinned(name: str) -> str:
    match = re.search(rf"^{name}\s*:=\s*(\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, f"the Makefile pins no {name}"
    return match[1]


@pytest.fixture(scope="module")
def tsc() -> Path:
    version = pinned("GRAFANA_SCHEMA_VERSION")
    stamp = SCHEMA_DIR / f".installed-{version}-{pinned('TYPESCRIPT_VERSION')}"
    binary = SCHEMA_DIR / "node_modules/.bin/tsc"
    if not stamp.exists() or not binary.exists():
        pytest.fail("@grafana/schema and typescript are not installed: run `make grafana-schema`")
    return binary


@pytest.fixture
def check_dir() -> Iterator[Path]:
    """A folder beside the installed packages (so '@grafana/schema' resolves), removed afterwards."""
    folder = SCHEMA_DIR / f"check-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "target": "es2022",
                    "module": "esnext",
                    "moduleResolution": "bundler",
                    "skipLibCheck": True,
                    "types": [],
                },
                "files": ["dashboard.ts"],
            }
        )
    )
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def type_check(tsc: Path, folder: Path, dashboard: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    (folder / "dashboard.ts").write_text(CHECK_TEMPLATE.replace("__DASHBOARD__", json.dumps(dashboard, indent=2)))
    return subprocess.run(
        [str(tsc), "-p", str(folder / "tsconfig.json")], capture_output=True, text=True, timeout=300, check=False
    )


def test_the_dashboard_passes_grafana_schema_under_tsc(tsc: Path, check_dir: Path) -> None:
    result = type_check(tsc, check_dir, load_dashboard())
    assert result.returncode == 0, result.stdout + result.stderr


def misspelt_key(dashboard: dict[str, Any]) -> None:
    panel = next(p for p in dashboard["panels"] if p["type"] == "timeseries")
    panel["titel"] = panel.pop("title")


def missing_option(dashboard: dict[str, Any]) -> None:
    del next(p for p in dashboard["panels"] if p["type"] == "stat")["options"]["reduceOptions"]


def value_outside_an_enum(dashboard: dict[str, Any]) -> None:
    next(p for p in dashboard["panels"] if p["type"] == "stat")["options"]["colorMode"] = "rainbow"


@pytest.mark.parametrize(
    ("breakage", "reported"),
    [(misspelt_key, "titel"), (missing_option, "reduceOptions"), (value_outside_an_enum, "rainbow")],
)
def test_tsc_rejects_a_broken_dashboard(tsc: Path, check_dir: Path, breakage: Any, reported: str) -> None:
    broken = copy.deepcopy(load_dashboard())
    breakage(broken)
    result = type_check(tsc, check_dir, broken)
    assert result.returncode != 0
    assert reported in result.stdout, result.stdout


def test_the_schema_is_the_version_of_the_grafana_image() -> None:
    compose = YAML(typ="safe", pure=True).load(ROOT / "docker-compose.yml")
    assert compose["services"]["grafana"]["image"] == f"grafana/grafana:{pinned('GRAFANA_SCHEMA_VERSION')}"


def test_every_panel_queries_the_provisioned_prometheus() -> None:
    dashboard = load_dashboard()
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"], variable["current"]["value"]) == (
        "datasource",
        "prometheus",
        DATASOURCE_UID,
    )
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["type"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    provisioning = YAML(typ="safe", pure=True).load(GRAFANA / "provisioning/datasources/prometheus.yml")
    (source,) = provisioning["datasources"]
    assert (source["uid"], source["type"], source["url"]) == (DATASOURCE_UID, "prometheus", "http://prometheus:9090")


def test_the_dashboard_shows_what_the_readme_promises() -> None:
    text = DASHBOARD.read_text()
    for metric in (
        "tubewatch:fetcher_publish_lag_seconds:p99_1h",  # freshness
        "tubewatch_fetcher_search_calls_left",  # quota left
        "tubewatch_fetcher_api_calls_total",  # calls per day
        "tubewatch_fetcher_quota_spent_total",  # units per day
        "tubewatch:indexer_stored:rate5m",  # indexer throughput
        "tubewatch:indexer_queue_depth:max",  # indexer lag, dead letters
        "tubewatch:api_requests:rate5m",  # API rate by route
        "tubewatch:api_request_duration_seconds:p99_5m",  # API latency by route
        "tubewatch_indexer_dead_letters_total",
    ):
        assert metric in text, metric
