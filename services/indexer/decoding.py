"""A message body as a ``VideoEvent`` or ``VideoRemoved``, or a short reason why it is neither (the dead letter)."""

from __future__ import annotations

from pydantic import ValidationError

from services.common.events import VideoEvent, VideoRemoved


def decode_event(body: bytes) -> VideoEvent:
    """Parse one message body; ValueError (with a short reason) when it is not a valid event."""
    try:
        return VideoEvent.model_validate_json(body)
    except ValidationError as exc:
        raise _refusal(exc) from None


def decode_message(body: bytes) -> VideoEvent | VideoRemoved:
    """A video event, or a removal when the body says ``"kind": "removed"``; ValueError otherwise.

    Events come first: they are nearly every message, and decode in one pass. A body that is
    neither gets the reason of the kind it claims to be (a removal when its ``kind`` is right).
    """
    try:
        return VideoEvent.model_validate_json(body)
    except ValidationError as event_error:
        try:
            return VideoRemoved.model_validate_json(body)
        except ValidationError as removal_error:
            claims_removal = not any(error["loc"][:1] == ("kind",) for error in removal_error.errors())
            raise _refusal(removal_error if claims_removal else event_error) from None


def _refusal(exc: ValidationError) -> ValueError:
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return ValueError(f"body is not JSON: {first['msg'].removeprefix('Invalid JSON: ')}")
    if first["type"] == "model_type" and not first["loc"]:
        return ValueError("body is not a JSON object")
    location = ".".join(str(p) for p in first["loc"]) or "event"
    return ValueError(f"{exc.error_count()} schema error(s); {location}: {first['msg']}")
