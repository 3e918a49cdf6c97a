"""Injected faults for the API routes, drawn from a seeded RNG so a run can be replayed."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from services.youtube_emulator import errors


class FaultPolicy(BaseModel):
    rate_limit: float = Field(default=0.0, ge=0.0, le=1.0)
    server_error: float = Field(default=0.0, ge=0.0, le=1.0)
    slow: float = Field(default=0.0, ge=0.0, le=1.0)
    drop: float = Field(default=0.0, ge=0.0, le=1.0)
    slow_seconds: float = Field(default=5.0, ge=0.0)


@dataclass(frozen=True, slots=True)
class FaultDecision:
    drop: bool = False
    slow: bool = False
    server_error: errors.ApiError | None = None
    rate_limit: errors.ApiError | None = None


_RATE_LIMIT_FORMS: tuple[tuple[Literal[403, 429], Literal["rateLimitExceeded", "userRateLimitExceeded"]], ...] = (
    (429, "rateLimitExceeded"),
    (403, "rateLimitExceeded"),
    (403, "userRateLimitExceeded"),
)


class FaultInjector:
    def __init__(self, policy: FaultPolicy, seed: int) -> None:
        self.policy = policy
        self._rng = random.Random(seed)

    def draw(self) -> FaultDecision:
        """One decision per API call; always the same number of draws, so rates don't shift the stream."""
        rolls = [self._rng.random() for _ in range(4)]
        pick = self._rng.randrange(len(_RATE_LIMIT_FORMS))
        server_code: Literal[500, 503] = 503 if self._rng.random() < 0.5 else 500
        policy = self.policy
        return FaultDecision(
            drop=rolls[0] < policy.drop,
            slow=rolls[1] < policy.slow,
            server_error=errors.backend_error(server_code) if rolls[2] < policy.server_error else None,
            rate_limit=errors.rate_limited(*_RATE_LIMIT_FORMS[pick]) if rolls[3] < policy.rate_limit else None,
        )
