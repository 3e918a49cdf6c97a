"""A last line of defence: no log record leaves any tubewatch process with a secret in it.

Secrets are never logged on purpose (a key is named by its fingerprint), but a library's
exception message, an error body echoed by a proxy or a connection URL in a traceback could carry
one. ``configure_logging`` attaches ``SecretRedactingFilter`` to the process's one handler with
every secret the environment configures, whichever service reads it: the YouTube keys, the admin
tokens, the cursor secret and the passwords inside the server URLs. The filter rewrites message,
arguments, exception text and ``extra=`` fields alike before any handler formats them.
"""

from __future__ import annotations

import hashlib
import logging
import re
import traceback
from collections.abc import Mapping
from urllib.parse import urlsplit

_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)

# Variables whose value is a URL that may carry user:password@.
_URL_VARIABLES = ("AMQP_URL", "MONGODB_URL", "ELASTICSEARCH_URL", "YOUTUBE_API_URL")


def key_fingerprint(key: str) -> str:
    """What logs, metrics, MongoDB and answers may show of a key: its last four characters.

    Real keys are 39 characters long; a short test key would be half shown by its last four, so
    it is named by a hash instead.
    """
    if len(key) >= 16:
        return f"…{key[-4:]}"
    return "#" + hashlib.sha256(key.encode()).hexdigest()[:8]


def configured_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """Each secret the environment configures, mapped to what a log may show instead."""
    secrets: dict[str, str] = {}
    for entry in re.split(r"[,\s]+", environ.get("YOUTUBE_API_KEYS", "")):
        key = entry.rpartition(":")[2]
        if key:
            secrets[key] = key_fingerprint(key)
    # ADMIN_TOKENS: label:token, split at the first colon (services/api/admin_tokens.py); the label may show.
    for entry in re.split(r"[,\s]+", environ.get("ADMIN_TOKENS", "")):
        label, _, token = entry.partition(":")
        if token:
            secrets[token] = f"<admin token {label}>"
    cursor_secret = environ.get("CURSOR_SECRET", "")
    if cursor_secret:
        secrets[cursor_secret] = "<CURSOR_SECRET>"
    for variable in _URL_VARIABLES:
        for url in environ.get(variable, "").split(","):
            parts = urlsplit(url.strip())
            if parts.password:
                # The userinfo as written, so a password that is also an ordinary word is only
                # hidden where it is a password.
                userinfo = parts.netloc.rpartition("@")[0]
                secrets[userinfo + "@"] = f"{parts.username or ''}:***@"
    return secrets


class SecretRedactingFilter(logging.Filter):
    def __init__(self, replacements: Mapping[str, str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self._replacements = sorted(replacements.items(), key=lambda item: len(item[0]), reverse=True)

    def redact(self, text: str) -> str:
        for secret, shown in self._replacements:
            if secret in text:
                text = text.replace(secret, shown)
        return text

    def _carries_secret(self, text: str) -> bool:
        return any(secret in text for secret, _ in self._replacements)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._replacements:
            return True
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in list(record.__dict__.items()):
            if name in _STANDARD_ATTRIBUTES or name == "message" or isinstance(value, (int, float)):
                continue
            text = value if isinstance(value, str) else repr(value)
            if self._carries_secret(text):
                setattr(record, name, self.redact(text))
        return True
