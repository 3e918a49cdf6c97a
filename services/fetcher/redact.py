"""A last line of defence: no log record leaves the process with an API key in it.

The fetcher never logs a key on purpose (only fingerprints), but a library's exception message
or an error body echoed by a proxy could carry one. This filter rewrites every record, message,
arguments, exception text and ``extra=`` fields alike, replacing each configured key by its
fingerprint before any handler formats it.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable

from services.fetcher.settings import KeyEntry

_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)


class KeyRedactingFilter(logging.Filter):
    def __init__(self, keys: Iterable[KeyEntry]) -> None:
        super().__init__()
        # Longest first, so a key that contains another is replaced whole.
        self._keys = sorted(keys, key=lambda k: len(k.secret), reverse=True)

    def redact(self, text: str) -> str:
        for key in self._keys:
            if key.secret in text:
                text = text.replace(key.secret, key.fingerprint)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
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
            if name not in _STANDARD_ATTRIBUTES and name != "message":
                text = value if isinstance(value, str) else repr(value) if not isinstance(value, (int, float)) else None
                if text is not None and any(key.secret in text for key in self._keys):
                    setattr(record, name, self.redact(text))
        return True


def install_key_redaction(keys: Iterable[KeyEntry]) -> None:
    """Attach the filter to every handler of the root logger (after logging is configured)."""
    redactor = KeyRedactingFilter(keys)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
