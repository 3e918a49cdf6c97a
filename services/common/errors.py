"""Exceptions whose meaning every service shares."""

from __future__ import annotations


class StoreUnavailableError(Exception):
    """A store (MongoDB, Elasticsearch) could not serve the request right now: down, overloaded, or
    its index missing. The caller retries later or asks another store; the data is not at fault."""

    def __init__(self, store: str, detail: str) -> None:
        super().__init__(f"{store}: {detail}")
        self.store = store
        self.detail = detail
