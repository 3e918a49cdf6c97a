"""The notifier's settings: its port, the queue of stored events it consumes, how many it holds at once,
the webhook deliveries' own (``webhook_settings.DeliverySettings``) and the hosts exempt from the
webhook address rules (``WEBHOOK_ALLOW_HOSTS``, the API's setting too)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import (
    AmqpSettings,
    ElasticsearchSettings,
    LoggingSettings,
    MongoSettings,
    NotifierPortSettings,
)
from services.common.webhook_target import WebhookTargetSettings
from services.notifier.webhook_settings import DeliverySettings


class Settings(
    AmqpSettings,
    MongoSettings,
    ElasticsearchSettings,
    NotifierPortSettings,
    LoggingSettings,
    DeliverySettings,
    WebhookTargetSettings,
):
    # The notifier's durable queue of the indexer's "videos stored" events (bound to <AMQP_EXCHANGE>.stored);
    # every notifier process consumes it, competing for the events.
    notifier_queue: str = Field(default="tubewatch.videos.notify", min_length=1)
    # Stored events one notifier process holds unacknowledged (each is one indexed batch of videos).
    notifier_prefetch: int = Field(default=8, ge=1, le=1000)
