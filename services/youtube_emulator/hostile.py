"""Hostile answers: what a broken proxy, a bad deploy or a malicious middlebox can send.

Unlike the faults in faults.py these are *successful-looking* answers (HTTP 200, or a redirect)
whose content is wrong: a client must skip what it cannot use, never crash, never store garbage
and never follow a redirect to another host (the API key is in the query string).
"""

from __future__ import annotations

import copy
import random
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from services.youtube_emulator import errors

HostileKind = Literal["truncated", "wrong_types", "missing_fields", "huge_page", "redirect", "absurd_dates"]
HOSTILE_KINDS: tuple[HostileKind, ...] = (
    "truncated",
    "wrong_types",
    "missing_fields",
    "huge_page",
    "redirect",
    "absurd_dates",
)
HUGE_PAGE_BYTES = 10 * 1024 * 1024
# Loopback, but another host: following it would hand the key to whoever listens there.
REDIRECT_HOST = "127.0.0.2"
ABSURD_DATES = ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-02-30T25:61:00Z", "1970-01-01T00:00:00Z")


class HostilePolicy(BaseModel):
    """Probability per successful call of each kind of hostile answer (at most one per call)."""

    truncated: float = Field(default=0.0, ge=0.0, le=1.0)
    wrong_types: float = Field(default=0.0, ge=0.0, le=1.0)
    missing_fields: float = Field(default=0.0, ge=0.0, le=1.0)
    huge_page: float = Field(default=0.0, ge=0.0, le=1.0)
    redirect: float = Field(default=0.0, ge=0.0, le=1.0)
    absurd_dates: float = Field(default=0.0, ge=0.0, le=1.0)


class HostileInjector:
    def __init__(self, policy: HostilePolicy, seed: int) -> None:
        self.policy = policy
        # A stream of its own, so turning hostility on does not shift the other faults' draws.
        self._rng = random.Random(seed ^ 0x5EED)

    def pick(self) -> HostileKind | None:
        roll = self._rng.random()
        threshold = 0.0
        for kind in HOSTILE_KINDS:
            threshold += getattr(self.policy, kind)
            if roll < threshold:
                return kind
        return None

    def answer(self, kind: HostileKind, request: web.Request, payload: dict[str, Any]) -> web.Response:
        if kind == "redirect":
            port = request.url.port or 80
            location = f"http://{REDIRECT_HOST}:{port}{request.rel_url}"
            return web.Response(status=302, headers={"Location": location})
        if kind == "truncated":
            body = errors.render_json(payload, pretty=False)
            cut = self._rng.randrange(1, max(2, len(body) - 1))
            return _raw(body[:cut])
        if kind == "huge_page":
            bloated = copy.deepcopy(payload)
            items = bloated.get("items") or [{}]
            target = items[0].get("snippet", items[0]) if isinstance(items[0], dict) else {}
            target["description"] = "x" * HUGE_PAGE_BYTES
            bloated["items"] = items
            return _raw(errors.render_json(bloated, pretty=False))
        mangled = copy.deepcopy(payload)
        items = mangled.get("items")
        if not isinstance(items, list) or not items:
            # Nothing to damage item-wise: damage the page itself.
            mangled["items"] = "not a list" if kind == "wrong_types" else None
            return _raw(errors.render_json(mangled, pretty=False))
        victim = items[self._rng.randrange(len(items))]
        if kind == "wrong_types":
            self._wrong_types(mangled, victim)
        elif kind == "missing_fields":
            self._missing_field(victim)
        else:
            absurd = self._rng.choice(ABSURD_DATES)
            snippet = victim.get("snippet", {})
            snippet["publishedAt"] = absurd
            if "publishTime" in snippet or "contentDetails" not in victim:
                snippet["publishTime"] = absurd
            # A playlist item's publish time lives in contentDetails.
            details = victim.get("contentDetails")
            if isinstance(details, dict) and "videoPublishedAt" in details:
                details["videoPublishedAt"] = absurd
        return _raw(errors.render_json(mangled, pretty=False))

    def _wrong_types(self, page: dict[str, Any], victim: dict[str, Any]) -> None:
        snippet = victim.get("snippet", {})
        choice = self._rng.randrange(6)
        if choice == 0:
            snippet["title"] = 12345
        elif choice == 1:
            snippet["publishedAt"] = 1764000000
        elif choice == 2:
            victim["id"] = "aB3dE5fG7hI"
        elif choice == 3:
            snippet["thumbnails"] = ["not", "an", "object"]
        elif choice == 4:
            snippet["channelId"] = {"nested": True}
        else:
            page["nextPageToken"] = 7

    def _missing_field(self, victim: dict[str, Any]) -> None:
        choice = self._rng.randrange(4)
        if choice == 0:
            victim.pop("snippet", None)
        elif choice == 1:
            # search.list items carry {"kind", "videoId"} as id; videos.list items a bare string.
            if isinstance(victim.get("id"), dict):
                victim["id"].pop("videoId", None)
            else:
                victim.pop("id", None)
        elif choice == 2:
            victim.get("snippet", {}).pop("publishedAt", None)
        else:
            victim.get("snippet", {}).pop("channelId", None)


def _raw(body: bytes) -> web.Response:
    return web.Response(body=body, status=200, headers={"Content-Type": errors.JSON_CONTENT_TYPE})
