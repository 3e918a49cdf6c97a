"""Conditional GET: an answer's validators (ETag, Last-Modified) and whether a request already has it.

As RFC 9110 section 13 orders them: If-None-Match decides when present (weak comparison, ``*``
matches anything); only without it does If-Modified-Since count. A 304 carries the same validators
and caching headers as the 200 it stands for, and no body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from aiohttp import web

_ANY = "*"


def etag_of(body: bytes) -> str:
    """A strong ETag: the same bytes, the same tag."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def http_date(moment: datetime) -> str:
    """An aware datetime as an HTTP date (IMF-fixdate, whole seconds, GMT)."""
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def validator_headers(body: bytes, last_modified: datetime, cache_control: str) -> dict[str, str]:
    return {"ETag": etag_of(body), "Last-Modified": http_date(last_modified), "Cache-Control": cache_control}


def is_fresh(request: web.Request, validators: Mapping[str, str]) -> bool:
    """Whether the client's copy (named by its validators) is the answer with these ``validators``
    (as ``validator_headers`` made them), so a 304 will do."""
    tags = request.if_none_match
    if tags is not None:
        opaque = validators["ETag"].removeprefix("W/")
        return any(tag.value == _ANY or f'"{tag.value}"' == opaque for tag in tags)
    since = request.if_modified_since
    return since is not None and parsedate_to_datetime(validators["Last-Modified"]) <= since


def not_modified(headers: Mapping[str, str]) -> web.Response:
    return web.Response(status=304, headers=dict(headers))
