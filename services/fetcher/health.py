"""What the fetcher adds to ``/healthz`` and ``/readyz``: its role, lease, cycles and quota budget."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.common.timefmt import format_rfc3339
from services.fetcher.leader import Leader
from services.fetcher.scheduler import Scheduler


def _moment(moment: datetime | None) -> str | None:
    return format_rfc3339(moment) if moment else None


def health_body(leader: Leader, scheduler: Scheduler, now: datetime) -> dict[str, Any]:
    """Role and lease, cycles, and (as leader) the budget and the keys' states."""
    health: dict[str, Any] = {
        "role": leader.role,
        "holder": leader.lease.holder,
        "lease_token": leader.lease.token,
        "cycles": scheduler.cycles,
        "last_cycle_at": _moment(scheduler.last_cycle_at),
        "next_cycle_at": _moment(scheduler.next_cycle_at),
    }
    if leader.role != "leader":
        return health  # a standby's view of the quota would be stale: the leader's is in MongoDB
    health["all_keys_parked"] = scheduler.resume_at is not None
    health["resume_at"] = _moment(scheduler.resume_at)
    health.update(scheduler.budget.health(now))
    for other in leader.others:  # the followed channels' reads: the units pool
        health.update(other.budget.health(now))
    return health


def readiness(leader: Leader | None) -> tuple[bool, str]:
    """Ready once the poller knows its role: leading or standing by."""
    if leader is None or leader.role == "starting":
        return False, "starting"
    return True, leader.role
