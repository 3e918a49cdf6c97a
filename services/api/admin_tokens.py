"""ADMIN_TOKENS: the admin API's bearer tokens, each with the label the audit log names it by.

Written ``label:token``, comma- or whitespace-separated, split at the first colon (a token may
hold colons, a label may not). A label is required, so every change in the audit log says whose
token made it; a token has at least MIN_TOKEN_LENGTH characters, so guessing one is hopeless even
at the rate the slow-down allows. A token is never shown: not by ``repr``, not in an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MIN_TOKEN_LENGTH = 32
_LABEL = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class AdminToken:
    label: str
    secret: str = field(repr=False)


def parse_admin_tokens(value: str) -> list[AdminToken]:
    """The tokens of an ADMIN_TOKENS value; ValueError naming the entry by position, never by token."""
    tokens: list[AdminToken] = []
    for position, entry in enumerate((e for e in re.split(r"[,\s]+", value) if e), start=1):
        label, sep, secret = entry.partition(":")
        if not sep or not _LABEL.fullmatch(label):
            raise ValueError(f"entry {position}: write label:token with a label of letters, digits, '.', '_' or '-'")
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ValueError(f"entry {position} ({label}): the token needs at least {MIN_TOKEN_LENGTH} characters")
        if any(t.label == label for t in tokens):
            raise ValueError(f"entry {position}: the label {label} is used twice")
        if any(t.secret == secret for t in tokens):
            raise ValueError(f"entry {position} ({label}): the same token is listed twice")
        tokens.append(AdminToken(label, secret))
    return tokens
