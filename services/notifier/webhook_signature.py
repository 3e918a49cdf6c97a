"""The ``X-Tubewatch-Signature`` header: ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.

One ``v1`` per signing secret still valid, newest first: while a rotated secret lives on (24 h), a
receiver that still holds the old one finds its match, and one that holds the new one too.
The timestamp is signed with the body, so a receiver that refuses old timestamps refuses replays.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_HEADER = "X-Tubewatch-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The header's value: the timestamp, then one ``v1`` per secret in the order given."""
    if not secrets:
        raise ValueError("a webhook is signed with at least one secret")
    return ",".join([f"t={timestamp}", *(f"v1={signature(secret, timestamp, body)}" for secret in secrets)])
