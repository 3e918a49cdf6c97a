"""The emulated hub's knobs (``EMULATOR_WEBSUB_*``, changed at run time through
``POST /admin/websub/config``) and its fault draws.

Every draw is a hash of the seed and what it decides about (subscription, video, how many times
that pair was drawn before), never a shared RNG, so a run's faults do not depend on the order in
which the delivery loop happens to meet events, and two runs with one seed fault alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.youtube_emulator.ids import digest
from services.youtube_emulator.settings import Settings


def _fraction(default: float) -> float:
    return Field(default=default, ge=0.0, le=1.0)


class HubPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # Seconds of emulator clock from an upload to its push: uniform in [min, max].
    delay_min_seconds: float = Field(default=1.0, ge=0.0)
    delay_max_seconds: float = Field(default=20.0, ge=0.0)
    lost_fraction: float = _fraction(0.05)
    duplicate_fraction: float = _fraction(0.0)
    # Per upload: the chance that its push comes with a flood of ``flood_size`` old uploads.
    flood_fraction: float = _fraction(0.0)
    flood_size: int = Field(default=10, ge=1, le=200)
    # Share of subscribe requests answered 503 (1.0: every one, until set back).
    subscribe_503_fraction: float = _fraction(0.0)
    # Channels whose every push is lost, whatever lost_fraction says.
    lose_all_channels: list[str] = Field(default_factory=list)
    # Real seconds (not the emulator clock) from a 202 to the verification GET.
    verify_delay_seconds: float = Field(default=0.2, ge=0.0, le=60.0)
    default_lease_seconds: int = Field(default=432_000, ge=1)
    max_lease_seconds: int = Field(default=864_000, ge=1)

    @model_validator(mode="after")
    def _ranges(self) -> HubPolicy:
        if self.delay_max_seconds < self.delay_min_seconds:
            raise ValueError("delay_max_seconds must be >= delay_min_seconds")
        if self.default_lease_seconds > self.max_lease_seconds:
            raise ValueError("default_lease_seconds must be <= max_lease_seconds")
        return self

    @classmethod
    def from_settings(cls, settings: Settings) -> HubPolicy:
        return cls(
            delay_min_seconds=settings.emulator_websub_delay_min_seconds,
            delay_max_seconds=settings.emulator_websub_delay_max_seconds,
            lost_fraction=settings.emulator_websub_lost_fraction,
            duplicate_fraction=settings.emulator_websub_duplicate_fraction,
            flood_fraction=settings.emulator_websub_flood_fraction,
            flood_size=settings.emulator_websub_flood_size,
            subscribe_503_fraction=settings.emulator_websub_subscribe_503_fraction,
            lose_all_channels=list(settings.emulator_websub_lose_all_channels),
            verify_delay_seconds=settings.emulator_websub_verify_delay_seconds,
            default_lease_seconds=settings.emulator_websub_default_lease_seconds,
            max_lease_seconds=settings.emulator_websub_max_lease_seconds,
        )


def unit(*parts: object) -> float:
    """A uniform draw in [0, 1) that is a pure function of ``parts``."""
    return int.from_bytes(digest("websub", *parts, size=8), "big") / (1 << 64)


@dataclass(frozen=True, slots=True)
class PushFate:
    """What happens to one notification for one subscriber."""

    lost: bool
    delays: tuple[float, ...]  # one per copy delivered: two when duplicated, none when lost


def push_fate(policy: HubPolicy, seed: int, channel_id: str, *key: object) -> PushFate:
    if channel_id in policy.lose_all_channels or unit(seed, "lost", *key) < policy.lost_fraction:
        return PushFate(lost=True, delays=())
    span = policy.delay_max_seconds - policy.delay_min_seconds
    first = policy.delay_min_seconds + span * unit(seed, "delay", *key)
    if unit(seed, "duplicate", *key) < policy.duplicate_fraction:
        return PushFate(lost=False, delays=(first, policy.delay_min_seconds + span * unit(seed, "again", *key)))
    return PushFate(lost=False, delays=(first,))


def refuses_subscription(policy: HubPolicy, seed: int, callback: str, topic: str, attempt: int) -> bool:
    return unit(seed, "503", callback, topic, attempt) < policy.subscribe_503_fraction


def floods(policy: HubPolicy, seed: int, video_id: str) -> bool:
    return unit(seed, "flood", video_id) < policy.flood_fraction
