"""How a search of the video index is written: q and the filters as an Elasticsearch query, and the sorts.

The API builds its listings with this module; any other service that must find exactly the videos
the API would (a stored query to match new videos against, for instance) builds its query here too.
User text only ever goes into ``simple_query_string`` over fixed fields: it can neither fail nor
reach other fields.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from services.common.catalogue import REMOVED_AT_FIELD
from services.common.events import FoundBySource

SortOrder = Literal["-published_at", "published_at", "relevance"]
# How a video belongs to a configured query: search found it for the query, or (a followed channel's
# video) its text matches the query (services/indexer/attribution.py).
MatchedBy = Literal["search", "text"]

TEXT_FIELDS = ["title^3", "channel_title^2", "description"]
PREFIX_FIELDS = ["title.prefix^2", "description.prefix"]
# simple_query_string features users get: "phrases", -exclusion, a | b, (grouping). No field
# names, wildcards, fuzziness or regexps: user text can neither fail nor reach other fields.
TEXT_FLAGS = "AND|OR|NOT|PHRASE|PRECEDENCE|WHITESPACE|ESCAPE"
SORTS: dict[SortOrder, list[dict[str, str]]] = {
    "-published_at": [{"published_at": "desc"}, {"video_id": "desc"}],
    "published_at": [{"published_at": "asc"}, {"video_id": "asc"}],
    "relevance": [{"_score": "desc"}, {"published_at": "desc"}, {"video_id": "desc"}],
}

# Lucene's English stop words, which the english analyzer drops. A simple_query_string left with no
# term at all matches nothing, so a head made only of these ("the crick") must not be required.
_ENGLISH_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
_PLAIN_WORD = re.compile(r"[^\s\"()|+\-*~\\][^\s\"()|*~\\]*")


@dataclass(frozen=True)
class Filters:
    """What a listing is narrowed to: q, channels, publish-time bounds (epoch ms), a configured query
    (``matched``: only the videos that belong to it that way), how the videos were found (``found_by``:
    at least one find of that source). Videos YouTube deleted (``removed_at``) are left out unless
    ``include_removed``.

    ``published_within_ms`` is a bound relative to a moment ("the last day"): ``at(moment)`` turns it
    into a lower bound before any query is built from the filters.
    """

    q: str | None = None
    channel_ids: tuple[str, ...] = ()
    published_after_ms: int | None = None
    published_before_ms: int | None = None
    query: str | None = None
    published_within_ms: int | None = None
    found_by: FoundBySource | None = None
    matched: MatchedBy | None = None
    include_removed: bool = False

    def canonical(self) -> dict[str, Any]:
        canonical: dict[str, Any] = {
            "q": self.q,
            "channel_id": sorted(set(self.channel_ids)),
            "after": self.published_after_ms,
            "before": self.published_before_ms,
            "query": self.query,
        }
        if self.published_within_ms is not None:  # absent otherwise: earlier fingerprints stay the same
            canonical["within"] = self.published_within_ms
        if self.found_by is not None:  # likewise
            canonical["found_by"] = self.found_by
        if self.matched is not None:  # likewise
            canonical["matched"] = self.matched
        if self.include_removed:  # likewise
            canonical["include_removed"] = True
        return canonical

    def at(self, moment_ms: int) -> Filters:
        """These filters as of ``moment_ms``: published_within becomes a lower bound counted back from it."""
        if self.published_within_ms is None:
            return self
        bound = moment_ms - self.published_within_ms
        after = bound if self.published_after_ms is None else max(self.published_after_ms, bound)
        return replace(self, published_after_ms=after, published_within_ms=None)

    def require_absolute(self) -> None:
        """Stores call this before reading the bounds: a relative bound left unresolved would be ignored."""
        if self.published_within_ms is not None:
            raise ValueError("published_within must be resolved with Filters.at(moment) before a query is built")


@dataclass(frozen=True)
class TextQuery:
    """q split into what both stores understand: the whole text, and the last word typed (for prefixes)."""

    text: str
    head: str  # everything before the prefix word (may be empty)
    prefix_word: str | None  # the last word, when it is a plain word still being typed


def parse_text_query(q: str) -> TextQuery:
    text = q.strip()
    if q[-1:].isspace() or text.count('"') % 2:
        return TextQuery(text, text, None)
    head, _, last = text.rpartition(" ")
    if not _PLAIN_WORD.fullmatch(last) or head.rstrip().endswith("|"):
        return TextQuery(text, text, None)
    return TextQuery(text, head.strip(), last)


def _only_stop_words(text: str) -> bool:
    return all(word.strip('"()|+-~*').lower() in _ENGLISH_STOP_WORDS for word in text.split())


def _words(text: str, fields: Sequence[str]) -> dict[str, Any]:
    return {
        "simple_query_string": {
            "query": text,
            "fields": list(fields),
            "default_operator": "and",
            "flags": TEXT_FLAGS,
            "lenient": True,
        }
    }


def text_query(q: str, *, whole_words: bool = False, fields: Sequence[str] = TEXT_FIELDS) -> dict[str, Any]:
    """Stemmed words (english analyzer) everywhere; the word still being typed also as a prefix.

    ``whole_words``: every word only as a whole word, the last one too (for a query that is not
    being typed, such as one stored to match videos that arrive later). ``fields``: where the words
    are searched (a percolator's one field holding the three, for instance); prefixes always go to
    the prefix sub-fields.
    """
    parsed = parse_text_query(q)
    if whole_words or parsed.prefix_word is None:
        return _words(parsed.text, fields)
    last_word = {
        "bool": {
            "should": [
                _words(parsed.prefix_word, fields),
                # bool_prefix: the prefix sub-field of descriptions holds whole words, so the word must be
                # a prefix query there (on the titles' edge n-grams it is one term lookup either way).
                {
                    "multi_match": {
                        "type": "bool_prefix",
                        "query": parsed.prefix_word,
                        "fields": PREFIX_FIELDS,
                        "operator": "and",
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }
    if not parsed.head or _only_stop_words(parsed.head):
        return last_word
    return {"bool": {"must": [_words(parsed.head, fields), last_word]}}


def filter_clauses(filters: Filters, snapshot_ms: int | None) -> list[dict[str, Any]]:
    """The filters (all but q) as filter clauses; ``snapshot_ms`` keeps videos first seen by then.

    Removed videos are left out by ``excluded_clauses``.
    """
    filters.require_absolute()
    clauses: list[dict[str, Any]] = []
    if filters.channel_ids:
        clauses.append({"terms": {"channel_id": list(filters.channel_ids)}})
    if filters.published_after_ms is not None or filters.published_before_ms is not None:
        bounds: dict[str, Any] = {"format": "epoch_millis"}
        if filters.published_after_ms is not None:
            bounds["gte"] = filters.published_after_ms
        if filters.published_before_ms is not None:
            bounds["lte"] = filters.published_before_ms
        clauses.append({"range": {"published_at": bounds}})
    if filters.query is not None:
        clauses.append({"term": {"queries": filters.query}})
        if filters.matched is not None:
            clauses.append(matched_clause(filters.query, filters.matched))
    if filters.found_by is not None:
        clauses.append(found_by_clause(filters.found_by))
    if snapshot_ms is not None:
        clauses.append({"range": {"first_seen_at": {"lte": snapshot_ms, "format": "epoch_millis"}}})
    return clauses


def excluded_clauses(filters: Filters) -> list[dict[str, Any]]:
    """What a search leaves out: removed videos, unless the filters include them.

    A must_not of the whole query, not a filter clause holding one: a bool of only must_not matches
    by walking every document of the index (Lucene pairs it with match-all), which a relevance
    search, visiting every match, paid on each (measured: 8-26 ms against 6-13 ms at 1,000,000
    videos); a must_not beside the query only skips the rare removed ones.
    """
    return [] if filters.include_removed else [REMOVED_CLAUSE]


# Videos YouTube said it deleted (an index created before removed_at existed holds none).
REMOVED_CLAUSE: dict[str, Any] = {"exists": {"field": REMOVED_AT_FIELD}}
# The others, as a query of its own: for aggregations over the whole catalogue, which visit every
# document anyway.
NOT_REMOVED_CLAUSE: dict[str, Any] = {"bool": {"must_not": [REMOVED_CLAUSE]}}


def found_by_clause(source: FoundBySource) -> dict[str, Any]:
    """Videos with at least one find of ``source``.

    A video stored before found_by existed has only ``queries`` (search found it): it counts as
    found by search, so the filter is right before, during and after the reindex that fills it in.
    """
    found = {"term": {"found_by.source": source}}
    if source != "search":
        return found
    before_found_by = {
        "bool": {"filter": [{"exists": {"field": "queries"}}], "must_not": [{"exists": {"field": "found_by"}}]}
    }
    return {"bool": {"should": [found, before_found_by], "minimum_should_match": 1}}


def matched_clause(query: str, matched: MatchedBy) -> dict[str, Any]:
    """Of the videos holding ``query``, those search found for it, or those matched by text alone.

    A search find of the query is a found_by entry naming it (only search entries have a query); a
    video stored before found_by existed was found by search for each of its queries.
    """
    searched = {"term": {"found_by.query": query}}
    before_found_by = {"bool": {"must_not": [{"exists": {"field": "found_by"}}]}}
    if matched == "search":
        return {"bool": {"should": [searched, before_found_by], "minimum_should_match": 1}}
    return {"bool": {"filter": [{"exists": {"field": "found_by"}}], "must_not": [searched]}}


def build_query(
    filters: Filters,
    snapshot_ms: int | None,
    *,
    scored: bool,
    whole_words: bool = False,
    text_fields: Sequence[str] = TEXT_FIELDS,
) -> dict[str, Any]:
    """The whole query: q scores the hits when ``scored`` (relevance), else it only filters them."""
    clauses = filter_clauses(filters, snapshot_ms)
    excluded = excluded_clauses(filters)
    must: list[dict[str, Any]] = []
    if filters.q is not None:
        (must if scored else clauses).append(text_query(filters.q, whole_words=whole_words, fields=text_fields))
    if not clauses and not must and not excluded:
        return {"match_all": {}}
    return {"bool": {"filter": clauses, "must": must, "must_not": excluded}}


def after_bound(sort: SortOrder, search_after: Sequence[Any] | None) -> dict[str, Any] | None:
    """A range on published_at up to (and including) a page's ``search_after``, for a date sort.

    It selects nothing search_after would not keep, but it lets Elasticsearch jump to that point:
    in the index sorted newest first, the range's bounds are found by binary search of the sort,
    where search_after alone walks every document before the point (a page 100,000 deep then costs
    as much as the whole walk down to it).
    """
    if search_after is None or sort == "relevance":
        return None
    return {
        "range": {
            "published_at": {"lte" if sort == "-published_at" else "gte": search_after[0], "format": "epoch_millis"}
        }
    }


def sort_clauses(sort: SortOrder) -> list[dict[str, str]]:
    """The sort of a listing, ending in video_id so that every hit has a unique position."""
    return SORTS[sort]
