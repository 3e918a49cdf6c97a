"""The "videos stored" event: the indexer publishes one per batch once both stores hold it.

It names the videos of the batch that were stored (new ones and changed ones, never those a store
refused) and when: a consumer reads the documents themselves from MongoDB, the system of record,
so the event stays one small message a batch whatever the videos hold. The indexer acknowledges the
batch only after RabbitMQ confirmed the event; a crash in between redelivers the batch, which is
stored again (idempotently) and announced again, so consumers see every stored video at least once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.common.events import VIDEO_ID_PATTERN

STORED_EVENT_SCHEMA_VERSION: Literal[1] = 1

VideoId = Annotated[str, Field(pattern=VIDEO_ID_PATTERN)]


class VideosStored(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = STORED_EVENT_SCHEMA_VERSION
    # When both stores held the batch (just before the event was published and the batch acked).
    stored_at: AwareDatetime
    video_ids: list[VideoId] = Field(min_length=1, max_length=100_000)
