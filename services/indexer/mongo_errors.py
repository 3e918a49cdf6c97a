"""Which MongoDB failures are an outage (retry the batch later) and which are one document's fault.

An outage raises ``StoreUnavailableError``: the server cannot write now (unreachable, not primary,
shutting down, a write-concern or write conflict, a time limit). A document MongoDB refuses on its
merits (a validation failure, a document over 16 MB) becomes that event's rejection reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bson.errors import InvalidDocument
from pymongo.errors import BulkWriteError, DocumentTooLarge, OperationFailure

from services.common.errors import StoreUnavailableError

MONGODB = "mongodb"

# MongoDB error codes that mean "the server cannot write now", never "this document is bad":
# the retryable-writes and not-primary codes of the drivers' specs, plus conflicts and lock/time limits.
MONGO_OUTAGE_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        24,  # LockTimeout
        46,  # LockBusy
        50,  # MaxTimeMSExpired
        64,  # WriteConcernFailed
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        112,  # WriteConflict
        133,  # FailedToSatisfyReadPreference
        134,  # ReadConcernMajorityNotAvailableYet
        189,  # PrimarySteppedDown
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10058,  # LegacyNotPrimary
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
        14031,  # OutOfDiskSpace
    }
)
_DUPLICATE_KEY = 11000
# Whole-request failures caused by one document's size: BSONObjectTooLarge, and an update whose result
# would exceed the limit. Any other failure of a whole request is treated as an outage (it could be a
# revoked permission or a server problem: never a reason to dead-letter a batch).
_TOO_LARGE_CODES = frozenset({10334, 17419})

# What fails a whole bulk request because of one document (too large, not encodable).
DOCUMENT_REFUSALS = (DocumentTooLarge, InvalidDocument, OperationFailure)


def unavailable(exc: Exception) -> StoreUnavailableError:
    """The outage a driver exception means, to be raised ``from`` it."""
    return StoreUnavailableError(MONGODB, f"{type(exc).__name__}: {exc}")


def is_document_refusal(exc: Exception) -> bool:
    """Whether a whole-request failure (one of ``DOCUMENT_REFUSALS``) is a document's fault, not an outage."""
    return not isinstance(exc, OperationFailure) or exc.code in _TOO_LARGE_CODES


def describe_refusal(exc: Exception) -> str:
    """The rejection reason of a document that failed a request on its own."""
    if isinstance(exc, OperationFailure):
        details = exc.details or {}
        return f"mongodb {exc.code} {details.get('codeName', '')}: {details.get('errmsg', exc)}"[:500]
    return f"mongodb: {type(exc).__name__}: {exc}"[:500]


def sort_write_errors(exc: BulkWriteError, positions: Sequence[int], rejected: dict[int, str]) -> list[int]:
    """Outage codes raise; E11000 positions are returned for a retry as update; the rest are rejected.

    ``positions[i]`` is the event position of the bulk's ``i``-th operation; ``rejected`` receives
    the refused ones by event position.
    """
    _raise_if_outage(exc.details.get("writeConcernErrors", []))
    errors = exc.details.get("writeErrors", [])
    _raise_if_outage(errors)
    duplicates: list[int] = []
    for error in errors:
        position = positions[error["index"]]
        if error.get("code") == _DUPLICATE_KEY:
            duplicates.append(position)
        else:
            rejected[position] = f"mongodb {error.get('code')}: {error.get('errmsg', '')}"[:500]
    return sorted(duplicates)


def _raise_if_outage(errors: Sequence[Mapping[str, Any]]) -> None:
    for error in errors:
        code = error.get("code")
        if code in MONGO_OUTAGE_CODES or (code is not None and "writeConcern" in str(error.get("errInfo", ""))):
            raise StoreUnavailableError(MONGODB, f"{code}: {error.get('errmsg', '')}")
