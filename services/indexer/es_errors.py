"""Which Elasticsearch bulk failures are an outage (retry the batch later) and which are one document's fault.

Any failed request as a whole, item statuses 429 and 5xx, and item errors that describe the
cluster's state are an outage: ``StoreUnavailableError``. Any other item error (a mapping error,
a 400) is that document's rejection reason. A 409 means a newer revision is already indexed: stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.errors import StoreUnavailableError

ELASTICSEARCH = "elasticsearch"

# Elasticsearch item errors that describe the cluster's state, not the document.
ES_OUTAGE_ERROR_TYPES = frozenset(
    {
        "cluster_block_exception",  # e.g. read-only after the disk flood stage
        "index_not_found_exception",  # the alias is gone (require_alias): recreate it, then retry
        "index_closed_exception",
        "unavailable_shards_exception",
        "es_rejected_execution_exception",
        "circuit_breaking_exception",
        "no_shard_available_action_exception",
    }
)
# The item error that says the alias is missing: the writer recreates the index before the retry.
ALIAS_MISSING = "index_not_found_exception"

# Only what classification needs: a 500-item response is parsed in full otherwise.
BULK_RESPONSE_FILTER = (
    "errors,items.*.status,items.*._id,items.*.error.type,items.*.error.reason,items.*.error.caused_by"
)


def unavailable(exc: Exception, limit: int | None = None) -> StoreUnavailableError:
    """The outage a client exception (a transport or API error) means, to be raised ``from`` it."""
    return StoreUnavailableError(ELASTICSEARCH, f"{type(exc).__name__}: {str(exc)[:limit]}")


def sort_bulk_response(response: Mapping[str, Any]) -> dict[str, str]:
    """Rejections by video id of a bulk response (filtered by ``BULK_RESPONSE_FILTER``).

    Raises StoreUnavailableError when any item failed because of the cluster's state or load.
    """
    rejected: dict[str, str] = {}
    if not response.get("errors"):
        return rejected
    outage: list[str] = []
    for item in response["items"]:
        info = item.get("index", {})
        status = int(info.get("status", 0))
        if status < 300 or status == 409:
            continue
        error = info.get("error") or {}
        error_type = error.get("type") if isinstance(error, dict) else str(error)
        reason = describe_item_error(status, error)
        if status == 429 or status >= 500 or error_type in ES_OUTAGE_ERROR_TYPES:
            outage.append(reason)
        else:
            rejected[str(info.get("_id"))] = reason
    if outage:
        raise StoreUnavailableError(ELASTICSEARCH, f"{len(outage)} documents refused, e.g. {outage[0]}")
    return rejected


def describe_item_error(status: int, error: Any) -> str:
    if isinstance(error, dict):
        text = f"elasticsearch {status}: {error.get('type')}: {error.get('reason')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return text[:1000]
    return f"elasticsearch {status}: {error}"[:1000]
