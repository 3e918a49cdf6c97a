"""The suite's two lanes (tests/conftest.py): which tests may run beside the rest."""

from __future__ import annotations

import re

from services.common.settings import PROJECT_ROOT
from tests.conftest import WAITING_LANE, lane_of


def test_every_module_of_the_waiting_lane_exists() -> None:
    assert {module for module in WAITING_LANE if not (PROJECT_ROOT / module).is_file()} == set()


def test_no_module_of_the_waiting_lane_uses_the_servers_only_the_main_lane_starts() -> None:
    # The clusters have fixed ports (one per machine) and the private servers are the main lane's:
    # a waiting-lane test asking for either would start a second set beside the first.
    for module in WAITING_LANE:
        source = (PROJECT_ROOT / module).read_text()
        assert not re.search(r"\b(private_stack|project_cluster)\b", source), module


def test_a_test_goes_to_its_module_s_lane_whatever_its_parameters() -> None:
    assert lane_of("tests/integration/test_fetcher_quota.py::test_keys[units-exhausted1]") == "waiting"
    assert lane_of("tests/integration/test_notifier_webhooks.py::TestX::test_y") == "waiting"
    assert lane_of("tests/e2e/test_soak_short.py::test_soak") == "main"
    assert lane_of("tests/unit/test_cursors.py::test_garbage_is_refused[a::b]") == "main"
    # A unit module of the same name as a waiting one is the main lane's.
    assert lane_of("tests/unit/test_fetcher_channels.py::test_x") == "main"
