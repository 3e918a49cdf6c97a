"""Kibana saved objects (deploy/kibana/tubewatch.ndjson): they parse, use the videos alias with
published_at as time field, name only fields the index mapping has, and every reference resolves."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from services.common.catalogue import SEARCH_INDEX_MAPPINGS, versioned_index_name
from services.common.settings import ElasticsearchSettings

ROOT = Path(__file__).resolve().parents[2]
SAVED_OBJECTS = ROOT / "deploy/kibana/tubewatch.ndjson"
IMPORT_SCRIPT = ROOT / "deploy/kibana/import-saved-objects.sh"
ALIAS = ElasticsearchSettings.model_fields["elasticsearch_index"].default
AGGREGATABLE = {"keyword", "date", "long", "integer", "short", "byte", "double", "float", "boolean"}


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return load_objects(SAVED_OBJECTS.read_text())


def load_objects(text: str) -> list[dict[str, Any]]:
    objects = []
    for number, line in enumerate(text.splitlines(), 1):
        assert line.strip(), f"line {number}: NDJSON has no blank lines"
        obj = json.loads(line)
        assert isinstance(obj, dict) and {"id", "type", "attributes", "references"} <= obj.keys(), number
        objects.append(obj)
    return objects


def mapping_type(field: str) -> str | None:
    """The mapping type of ``field`` (``channel_title.keyword`` included), or None."""
    properties: dict[str, Any] = SEARCH_INDEX_MAPPINGS["properties"]
    head, _, sub = field.partition(".")
    spec = properties.get(head)
    if spec is None:
        return None
    if sub:
        spec = spec.get("fields", {}).get(sub) or spec.get("properties", {}).get(sub)
        if spec is None:
            return None
    return str(spec.get("type", "object"))


def search_source(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["attributes"].get("kibanaSavedObjectMeta", {})
    source = json.loads(meta.get("searchSourceJSON", "{}"))
    assert isinstance(source, dict)
    return source


def check_references(objects: list[dict[str, Any]]) -> list[str]:
    """Every reference points at an object in the file; every ref name the attributes use exists."""
    problems: list[str] = []
    known = {(o["type"], o["id"]) for o in objects}
    if len(known) != len(objects):
        problems.append("two objects share a type and id")
    for obj in objects:
        label = f"{obj['type']} {obj['id']}"
        names = {ref["name"] for ref in obj["references"]}
        for ref in obj["references"]:
            if (ref["type"], ref["id"]) not in known:
                problems.append(f"{label}: references missing {ref['type']} {ref['id']}")
        index_ref = search_source(obj).get("indexRefName")
        if index_ref and index_ref not in names:
            problems.append(f"{label}: indexRefName {index_ref} has no reference")
        if obj["type"] == "dashboard":
            for panel in json.loads(obj["attributes"]["panelsJSON"]):
                wanted = f"{panel['panelIndex']}:{panel['panelRefName']}"
                if panel["panelRefName"] != f"panel_{panel['panelIndex']}" or wanted not in names:
                    problems.append(f"{label}: panel {panel['panelIndex']} has no reference {wanted}")
    return problems


def visualization_fields(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """(aggregation type, field) for every aggregation of a visualization."""
    state = json.loads(obj["attributes"]["visState"])
    return [(agg["type"], agg["params"]["field"]) for agg in state["aggs"] if "field" in agg.get("params", {})]


def test_saved_objects_parse_and_cover_the_issue(objects: list[dict[str, Any]]) -> None:
    kinds = sorted(o["type"] for o in objects)
    assert kinds == ["dashboard", "index-pattern", "search", "visualization", "visualization", "visualization"]
    for obj in objects:
        assert obj["coreMigrationVersion"] == "8.8.0", obj["id"]  # what Kibana 8.12 exports
        assert "typeMigrationVersion" in obj, obj["id"]


def test_data_view_is_the_alias_with_published_at_as_time_field(objects: list[dict[str, Any]]) -> None:
    (view,) = (o for o in objects if o["type"] == "index-pattern")
    assert view["attributes"]["title"] == ALIAS, "the data view must use the alias, not an index"
    assert view["attributes"]["title"] != versioned_index_name(ALIAS)
    assert view["attributes"]["timeFieldName"] == "published_at"
    assert mapping_type("published_at") == "date"
    for obj in objects:
        if obj["type"] != "index-pattern":
            index_refs = [r for r in obj["references"] if r["type"] == "index-pattern"]
            assert all(r["id"] == view["id"] for r in index_refs), obj["id"]


def test_every_reference_resolves(objects: list[dict[str, Any]]) -> None:
    assert check_references(objects) == []


def test_visualizations_use_aggregatable_fields_of_the_mapping(objects: list[dict[str, Any]]) -> None:
    used: dict[str, set[str]] = {}
    for obj in objects:
        if obj["type"] == "visualization":
            for agg, field in visualization_fields(obj):
                assert mapping_type(field) in AGGREGATABLE, f"{obj['id']}: {field} is not aggregatable"
                used.setdefault(agg, set()).add(field)
    # The dashboard of issue 8: upload rate, top channels, videos per search query.
    assert "published_at" in used["date_histogram"]
    assert {"channel_title.keyword", "queries"} <= used["terms"]


def test_discover_search_lists_newest_first(objects: list[dict[str, Any]]) -> None:
    (search,) = (o for o in objects if o["type"] == "search")
    assert search["attributes"]["sort"] == [["published_at", "desc"]]
    for column in search["attributes"]["columns"]:
        assert mapping_type(column) is not None, column


def test_dashboard_shows_every_visualization_and_the_search(objects: list[dict[str, Any]]) -> None:
    (dashboard,) = (o for o in objects if o["type"] == "dashboard")
    shown = {ref["id"] for ref in dashboard["references"]}
    assert shown == {o["id"] for o in objects if o["type"] in ("visualization", "search")}


def test_kibana_setup_imports_this_file() -> None:
    compose = YAML(typ="safe", pure=True).load(ROOT / "docker-compose.yml")
    setup = compose["services"]["kibana-setup"]
    assert any(m.startswith("./deploy/kibana:") for m in setup["volumes"])
    script = IMPORT_SCRIPT.read_text()
    assert f"/{SAVED_OBJECTS.name}" in script
    assert "/api/saved_objects/_import?overwrite=true" in script and "kbn-xsrf" in script
    assert " ".join(setup["entrypoint"]).endswith(f"/kibana/{IMPORT_SCRIPT.name}")


def test_checks_catch_dangling_references(objects: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(objects)
    (dashboard,) = (o for o in broken if o["type"] == "dashboard")
    dashboard["references"][0]["id"] = "no-such-visualization"
    (search,) = (o for o in broken if o["type"] == "search")
    search["references"] = []
    problems = check_references(broken)
    assert any("no-such-visualization" in p for p in problems)
    assert any("indexRefName" in p for p in problems)
    assert mapping_type("channel_title.raw") is None and mapping_type("nope") is None
