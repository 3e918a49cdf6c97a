"""The fetcher's WebSub subscriptions in MongoDB: the document contract, written by the fetcher, read by the API.

One document a followed channel in ``fetcher_websub``; ``_id`` is the subscription id (its callback
path ``/websub/youtube/<id>``). The fetcher writes them (services/fetcher/websub_store.py); the
API's status reads them, never the ``secret`` field (``PUBLIC_PROJECTION`` leaves it out), which
only the fetcher reads, to check a push's signature and to send it to the hub.

Fields: ``channel_id`` (unique), ``topic``, ``secret``, ``created_at``, ``pending`` (``{"mode":
"subscribe"|"unsubscribe", "requested_at"}`` while a request awaits the hub's verification, else
null), ``verified_at`` and ``lease_expires_at`` (of the last verified subscribe), ``failures``
(requests refused, failed or never verified since the last success), ``next_attempt_at``,
``last_error``, ``last_push_at`` (the last accepted push) and ``pushes`` (outcome -> pushes, every
fetcher process's: ``accepted`` or why one was ignored).

The state, as status and metrics say it: ``subscribed`` while the lease runs (a renewal may be
pending meanwhile), ``pending`` while a request awaits its verification (or none was made yet),
``failing`` after a refused, failed or never verified request, until one succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from services.common.fetcher_state import as_utc

WEBSUB_COLLECTION = "fetcher_websub"
# What a reader other than the push check may read of a document: everything but the secret.
PUBLIC_PROJECTION = {"secret": 0}
ACCEPTED = "accepted"
Mode = Literal["subscribe", "unsubscribe"]
SubscriptionState = Literal["subscribed", "pending", "failing"]
SUBSCRIPTION_STATES: tuple[SubscriptionState, ...] = ("subscribed", "pending", "failing")


def topic_url(channel_id: str) -> str:
    """The hub topic of a channel's uploads, as YouTube's push guide gives it."""
    return f"https://www.youtube.com/xml/feeds/videos.xml?channel_id={channel_id}"


def _utc(value: Any) -> datetime | None:
    return as_utc(value) if isinstance(value, datetime) else None


@dataclass
class Subscription:
    """One document as its readers see it (the secret stays in the document)."""

    id: str
    channel_id: str
    topic: str
    pending_mode: Mode | None = None
    requested_at: datetime | None = None
    verified_at: datetime | None = None
    lease_expires_at: datetime | None = None
    failures: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    last_push_at: datetime | None = None
    pushes: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Subscription:
        """Raises KeyError, TypeError or ValueError for a document that is not one."""
        pending = doc.get("pending") if isinstance(doc.get("pending"), dict) else None
        pushes = doc.get("pushes") or {}
        return cls(
            id=str(doc["_id"]),
            channel_id=str(doc["channel_id"]),
            topic=str(doc["topic"]),
            pending_mode=pending.get("mode") if pending else None,
            requested_at=_utc(pending.get("requested_at")) if pending else None,
            verified_at=_utc(doc.get("verified_at")),
            lease_expires_at=_utc(doc.get("lease_expires_at")),
            failures=int(doc.get("failures") or 0),
            next_attempt_at=_utc(doc.get("next_attempt_at")),
            last_error=doc.get("last_error"),
            last_push_at=_utc(doc.get("last_push_at")),
            pushes={str(k): int(v) for k, v in pushes.items()},
        )

    def leased(self, now: datetime) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > now

    def state(self, now: datetime) -> SubscriptionState:
        if self.leased(now):
            return "subscribed"
        if self.failures > 0 and self.pending_mode is None:
            return "failing"
        return "pending"

    @property
    def pushes_accepted(self) -> int:
        return self.pushes.get(ACCEPTED, 0)

    @property
    def pushes_ignored(self) -> dict[str, int]:
        """Pushes ignored, by reason (every fetcher process's)."""
        return {reason: n for reason, n in sorted(self.pushes.items()) if reason != ACCEPTED}
