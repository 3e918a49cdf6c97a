"""Saved searches' pure parts: filters stored as JSON, secrets never shown, rotated with a day's grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.common.saved_searches import (
    SECRET_GRACE,
    SavedSearch,
    Webhook,
    WebhookSecret,
    new_saved_search,
    signing_secrets,
)
from services.common.video_filters import VideoFilters

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def _search(*secrets: WebhookSecret) -> SavedSearch:
    webhook = Webhook(url="https://hooks.example/in", secrets=list(secrets))
    return new_saved_search("s", VideoFilters(q="chess"), webhook, NOW)


def test_a_rotation_puts_the_new_secret_first_and_gives_the_others_a_day() -> None:
    search = _search(WebhookSecret(value="first", created_at=NOW - timedelta(days=9)))
    assert search.webhook is not None
    once, second = search.webhook.rotated(NOW)
    assert [s.value for s in once.secrets] == [second, "first"]
    assert [s.expires_at for s in once.secrets] == [None, NOW + SECRET_GRACE]
    # A second rotation an hour later keeps the first one's earlier end and drops nothing still valid.
    twice, third = once.rotated(NOW + timedelta(hours=1))
    assert [s.value for s in twice.secrets] == [third, second, "first"]
    assert [s.expires_at for s in twice.secrets] == [None, NOW + timedelta(hours=25), NOW + SECRET_GRACE]
    rotated = search.model_copy(update={"webhook": twice})
    assert signing_secrets(rotated, NOW + timedelta(hours=2)) == [third, second, "first"]
    assert signing_secrets(rotated, NOW + timedelta(hours=24, minutes=30)) == [third, second]
    assert signing_secrets(rotated, NOW + timedelta(days=2)) == [third]
    # Rotating again later forgets the expired ones.
    later, fourth = twice.rotated(NOW + timedelta(days=3))
    assert [s.value for s in later.secrets] == [fourth, third]
    assert len({second, third, fourth}) == 3


def test_the_document_keeps_filters_as_json_and_the_audit_view_no_secret() -> None:
    search = _search(WebhookSecret(value="s3cr3t-value", created_at=NOW))
    document = search.document()
    assert document["_id"] == search.id and document["filters"] == {"q": "chess", "channel_id": []}
    assert document["webhook"]["secrets"][0]["value"] == "s3cr3t-value"
    assert SavedSearch.model_validate(document) == search
    view = search.audit_view()
    assert "s3cr3t-value" not in repr(view) and view["webhook"]["secrets"] == 1
    assert "s3cr3t-value" not in repr(search)
    assert signing_secrets(search.model_copy(update={"webhook": None}), NOW) == []
