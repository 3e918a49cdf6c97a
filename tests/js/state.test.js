// Unit tests of state.js: the URL round trip of the filters, what a URL may not smuggle in, and the
// API parameters a state stands for.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import test from "node:test";

import { DEFAULT_SORT, FEED_PATH, FOUND_BY_SOURCES, MAX_Q_LENGTH } from "../../services/api/static/js/contract.js";
import { parseDuration } from "../../services/api/static/js/format.js";
import {
  RANGES,
  RANGE_DURATIONS,
  activeFilterCount,
  apiFilters,
  emptyState,
  feedUrl,
  hasFilters,
  normalise,
  selectedBucket,
  stateFromUrl,
  urlFromState,
} from "../../services/api/static/js/state.js";

const NOW = Date.parse("2026-03-01T12:00:00Z");

test("an empty state is the bare page URL", () => {
  assert.equal(urlFromState(emptyState()), "");
  assert.deepEqual(stateFromUrl(""), emptyState());
  assert.equal(hasFilters(emptyState()), false);
  assert.equal(activeFilterCount(emptyState()), 0);
});

test("every filter survives the URL round trip", () => {
  const states = [
    { ...emptyState(), q: "cricket -highlights", sort: "relevance" },
    { ...emptyState(), channels: ["UCabc", "UC_x-y"], range: "24h", query: "news" },
    {
      ...emptyState(),
      range: "custom",
      after: "2026-02-01T00:00:00.000Z",
      before: "2026-02-01T00:59:59.999Z",
      sort: "published_at",
    },
    { ...emptyState(), range: "custom", after: "2026-02-01T00:00:00.000Z" },
    { ...emptyState(), foundBy: "channel", query: "news" },
    { ...emptyState(), foundBy: "search" },
  ];
  for (const state of states) {
    const url = urlFromState(state);
    assert.deepEqual(stateFromUrl(url), state, url);
    assert.equal(urlFromState(stateFromUrl(url)), url);
  }
});

test("the URL uses the API's parameter names", () => {
  const url = urlFromState({ ...emptyState(), q: "a b", channels: ["UCa"], range: "7d", query: "x", sort: "published_at" });
  assert.equal(url, "?q=a+b&channel_id=UCa&range=7d&query=x&sort=published_at");
  assert.equal(urlFromState({ ...emptyState(), sort: DEFAULT_SORT }), "");
});

test("a URL cannot carry what the API would refuse", () => {
  const state = stateFromUrl(
    `?q=${"x".repeat(MAX_Q_LENGTH + 50)}&channel_id=bad%20id&channel_id=UCok&channel_id=UCok&sort=views&range=2h`,
  );
  assert.equal(state.q.length, MAX_Q_LENGTH);
  assert.deepEqual(state.channels, ["UCok"]);
  assert.equal(state.sort, DEFAULT_SORT);
  assert.equal(state.range, "");
  assert.equal(stateFromUrl(`?channel_id=${"a".repeat(65)}`).channels.length, 0);
});

test("relevance needs search words", () => {
  assert.equal(stateFromUrl("?sort=relevance").sort, DEFAULT_SORT);
  assert.equal(stateFromUrl("?sort=relevance&q=cats").sort, "relevance");
  assert.equal(normalise({ ...emptyState(), q: "  ", sort: "relevance" }).sort, DEFAULT_SORT);
  const kept = { ...emptyState(), q: "cats", sort: "relevance" };
  assert.equal(normalise(kept), kept);
});

test("published_after and published_before make a custom range; a date alone is midnight UTC", () => {
  const state = stateFromUrl("?published_after=2026-02-01&published_before=not-a-date");
  assert.equal(state.range, "custom");
  assert.equal(state.after, "2026-02-01T00:00:00.000Z");
  assert.equal(state.before, null);
  // A quick pick wins over explicit times.
  assert.equal(stateFromUrl("?range=1h&published_after=2026-02-01").after, null);
});

test("apiFilters fixes a quick pick to an absolute time and leaves the sort out", () => {
  const params = apiFilters({ ...emptyState(), q: " cats ", channels: ["UCa", "UCb"], range: "1h", sort: "published_at" }, NOW);
  assert.equal(params.get("q"), "cats");
  assert.deepEqual(params.getAll("channel_id"), ["UCa", "UCb"]);
  assert.equal(params.get("published_after"), new Date(NOW - RANGES["1h"]).toISOString());
  assert.equal(params.has("published_before"), false);
  assert.equal(params.has("sort"), false);
  const custom = apiFilters({ ...emptyState(), range: "custom", after: "2026-02-01T00:00:00.000Z", before: null }, NOW);
  assert.equal(custom.toString(), "published_after=2026-02-01T00%3A00%3A00.000Z");
});

test("the filter count and the chart bucket a range selects", () => {
  const state = { ...emptyState(), q: "cats", channels: ["UCa"], range: "custom", query: "x", sort: "published_at" };
  assert.equal(activeFilterCount(state), 4);
  const hour = 3600e3;
  const start = Date.parse("2026-02-01T05:00:00Z");
  const bar = { ...emptyState(), range: "custom", after: new Date(start).toISOString(), before: new Date(start + hour - 1).toISOString() };
  assert.equal(selectedBucket(bar, hour), start);
  assert.equal(selectedBucket(bar, 24 * hour), null);
  assert.equal(selectedBucket({ ...bar, range: "24h" }, hour), null);
});

test("the page's Published options are the quick picks, any time and custom", () => {
  const html = readFileSync(new URL("../../services/api/static/index.html", import.meta.url), "utf8");
  const select = html.match(/<select id="range">([\s\S]*?)<\/select>/)[1];
  const values = [...select.matchAll(/<option value="([^"]*)"/g)].map((m) => m[1]);
  assert.deepEqual(values, ["", ...Object.keys(RANGES), "custom"]);
});

test("the feed link carries the filters: quick picks as published_within, custom ranges as bounds, no sort", () => {
  assert.equal(feedUrl(emptyState()), FEED_PATH);
  const state = { ...emptyState(), q: " a b ", channels: ["UCa", "UCb"], range: "24h", query: "x", sort: "published_at" };
  assert.equal(feedUrl(state), `${FEED_PATH}?q=a+b&channel_id=UCa&channel_id=UCb&published_within=P1D&query=x`);
  const custom = { ...emptyState(), range: "custom", after: "2026-02-01T00:00:00.000Z", before: null };
  assert.equal(feedUrl(custom), `${FEED_PATH}?published_after=2026-02-01T00%3A00%3A00.000Z`);
  for (const [key, duration] of Object.entries(RANGE_DURATIONS)) assert.equal(parseDuration(duration), RANGES[key], key);
  assert.deepEqual(Object.keys(RANGE_DURATIONS), Object.keys(RANGES));
});

test("published_within in a URL (a feed's alternate link) is a quick pick, or a range back from now", () => {
  assert.equal(stateFromUrl("?published_within=PT24H", NOW).range, "24h");
  assert.equal(stateFromUrl("?published_within=P7D&q=x", NOW).range, "7d");
  const state = stateFromUrl("?published_within=P3D&published_before=2026-03-01", NOW);
  assert.equal(state.range, "custom");
  assert.equal(state.after, new Date(NOW - 3 * 86400e3).toISOString());
  assert.equal(state.before, "2026-03-01T00:00:00.000Z");
  assert.equal(stateFromUrl("?published_within=P1Y", NOW).range, "");
  assert.equal(stateFromUrl("?range=1h&published_within=P7D", NOW).range, "1h");
});

test("found_by is a filter of the URL, the API requests and the feed; only the API's sources", () => {
  const state = { ...emptyState(), q: "cats", foundBy: "channel" };
  assert.equal(urlFromState(state), "?q=cats&found_by=channel");
  assert.equal(apiFilters(state, NOW).get("found_by"), "channel");
  assert.equal(feedUrl(state), `${FEED_PATH}?q=cats&found_by=channel`);
  assert.equal(apiFilters(emptyState(), NOW).has("found_by"), false);
  for (const source of FOUND_BY_SOURCES) assert.equal(stateFromUrl(`?found_by=${source}`).foundBy, source);
  for (const refused of ["push", "Channel", ""]) assert.equal(stateFromUrl(`?found_by=${refused}`).foundBy, "");
  assert.equal(hasFilters({ ...emptyState(), foundBy: "search" }), true);
  assert.equal(activeFilterCount({ ...emptyState(), foundBy: "search" }), 1);
});

test("the page's Found through options are any way and the API's sources", () => {
  const html = readFileSync(new URL("../../services/api/static/index.html", import.meta.url), "utf8");
  const select = html.match(/<select id="found-by">([\s\S]*?)<\/select>/)[1];
  const values = [...select.matchAll(/<option value="([^"]*)"/g)].map((m) => m[1]);
  assert.deepEqual(values, ["", ...FOUND_BY_SOURCES]);
});
