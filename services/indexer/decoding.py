"""A message body as a ``VideoEvent`` or ``VideoRemoved``, or a short reason why it is neither (the dead letter)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from services.common.events import VideoEvent, VideoRemoved


class _Kind(BaseModel):
    """What a body says it is: ``"removed"`` for a removal; a find says nothing (its kind is absent)."""

    model_config = ConfigDict(extra="ignore")

    kind: str | None = None


def decode_message(body: bytes) -> VideoEvent | VideoRemoved:
    """A video event, or a removal when the body says ``"kind": "removed"``; ValueError otherwise.

    Events come first: they are nearly every message, and decode in one pass. A body that is
    neither gets the reason of the kind it claims to be: a removal's when its ``kind`` says
    ``"removed"``, an event's otherwise (events carry no ``kind``).
    """
    try:
        return VideoEvent.model_validate_json(body)
    except ValidationError as event_error:
        try:
            claims_removal = _Kind.model_validate_json(body).kind == "removed"
        except ValidationError:
            raise _refusal(event_error) from None
        if not claims_removal:
            raise _refusal(event_error) from None
        try:
            return VideoRemoved.model_validate_json(body)
        except ValidationError as removal_error:
            raise _refusal(removal_error) from None


def _refusal(exc: ValidationError) -> ValueError:
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return ValueError(f"body is not JSON: {first['msg'].removeprefix('Invalid JSON: ')}")
    if first["type"] == "model_type" and not first["loc"]:
        return ValueError("body is not a JSON object")
    location = ".".join(str(p) for p in first["loc"]) or "event"
    return ValueError(f"{exc.error_count()} schema error(s); {location}: {first['msg']}")
