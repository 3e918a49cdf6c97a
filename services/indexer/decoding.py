"""A message body as a ``VideoEvent``, or a short reason why it is not one (for the dead letter)."""

from __future__ import annotations

from pydantic import ValidationError

from services.common.events import VideoEvent


def decode_event(body: bytes) -> VideoEvent:
    """Parse one message body; ValueError (with a short reason) when it is not a valid event."""
    try:
        return VideoEvent.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise ValueError(f"body is not JSON: {first['msg'].removeprefix('Invalid JSON: ')}") from None
        if first["type"] == "model_type" and not first["loc"]:
            raise ValueError("body is not a JSON object") from None
        location = ".".join(str(p) for p in first["loc"]) or "event"
        raise ValueError(f"{exc.error_count()} schema error(s); {location}: {first['msg']}") from None
