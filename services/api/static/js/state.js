// The filters and sort the reader chose, their one home (the page URL), and the API parameters
// they mean. URL parameters use the API's own names, so a shared link reads like the API call behind it.
// Pure functions: no DOM, no clock other than the one passed in.

import { CHANNEL_ID_PATTERN, DEFAULT_SORT, FEED_PATH, FOUND_BY_SOURCES, MAX_Q_LENGTH, SORTS } from "./contract.js";
import { parseDuration } from "./format.js";

// The quick picks of the "Published" select (the range parameter), as spans back from now, and as
// the API's published_within durations (what the feed link carries).
export const RANGES = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
export const RANGE_DURATIONS = { "1h": "PT1H", "24h": "P1D", "7d": "P7D" };

export function emptyState() {
  return { q: "", channels: [], range: "", after: null, before: null, query: "", foundBy: "", sort: DEFAULT_SORT };
}

function isoOrNull(text) {
  if (!text) return null;
  // A date alone means midnight UTC, as in the API.
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

// A feed's alternate link (and any API-style link) may say published_within: a quick pick of the
// same span, otherwise a custom range starting that long before ``nowMs``.
export function stateFromUrl(search, nowMs = Date.now()) {
  const params = new URLSearchParams(search);
  const state = emptyState();
  state.q = (params.get("q") || "").slice(0, MAX_Q_LENGTH);
  state.channels = [...new Set(params.getAll("channel_id").filter((id) => CHANNEL_ID_PATTERN.test(id)))];
  const range = params.get("range");
  const within = parseDuration(params.get("published_within"));
  const quick = Object.keys(RANGES).find((key) => RANGES[key] === within);
  if (range && Object.hasOwn(RANGES, range)) {
    state.range = range;
  } else if (quick) {
    state.range = quick;
  } else if (within) {
    state.range = "custom";
    state.after = new Date(nowMs - within).toISOString();
    state.before = isoOrNull(params.get("published_before"));
  } else {
    state.after = isoOrNull(params.get("published_after"));
    state.before = isoOrNull(params.get("published_before"));
    if (state.after || state.before) state.range = "custom";
  }
  state.query = params.get("query") || "";
  const foundBy = params.get("found_by");
  if (FOUND_BY_SOURCES.includes(foundBy)) state.foundBy = foundBy;
  const sort = params.get("sort");
  if (SORTS.includes(sort)) state.sort = sort;
  return normalise(state);
}

// Relevance needs search words; without them the API would refuse the sort.
export function normalise(state) {
  if (state.sort === "relevance" && !state.q.trim()) return { ...state, sort: DEFAULT_SORT };
  return state;
}

export function urlFromState(state) {
  const params = new URLSearchParams();
  if (state.q.trim()) params.set("q", state.q);
  for (const id of state.channels) params.append("channel_id", id);
  if (state.range && state.range !== "custom") params.set("range", state.range);
  if (state.range === "custom") {
    if (state.after) params.set("published_after", state.after);
    if (state.before) params.set("published_before", state.before);
  }
  if (state.query) params.set("query", state.query);
  if (state.foundBy) params.set("found_by", state.foundBy);
  if (state.sort !== DEFAULT_SORT) params.set("sort", state.sort);
  const text = params.toString();
  return text ? `?${text}` : "";
}

// The API's filter parameters for this state. Relative ranges are fixed to absolute times here,
// once per result list: a cursor is bound to the exact filters of the page that issued it.
export function apiFilters(state, nowMs) {
  const params = new URLSearchParams();
  const q = state.q.trim();
  if (q) params.set("q", q);
  for (const id of state.channels) params.append("channel_id", id);
  if (state.range && state.range !== "custom") {
    params.set("published_after", new Date(nowMs - RANGES[state.range]).toISOString());
  } else if (state.range === "custom") {
    if (state.after) params.set("published_after", state.after);
    if (state.before) params.set("published_before", state.before);
  }
  if (state.query) params.set("query", state.query);
  if (state.foundBy) params.set("found_by", state.foundBy);
  return params;
}

// The Atom feed of these filters: the same q, channels, query and found_by; a quick pick stays relative
// (published_within), a custom range is its absolute bounds. A feed has no sort: always newest first.
export function feedUrl(state) {
  const params = new URLSearchParams();
  const q = state.q.trim();
  if (q) params.set("q", q);
  for (const id of state.channels) params.append("channel_id", id);
  if (state.range && state.range !== "custom") {
    params.set("published_within", RANGE_DURATIONS[state.range]);
  } else if (state.range === "custom") {
    if (state.after) params.set("published_after", state.after);
    if (state.before) params.set("published_before", state.before);
  }
  if (state.query) params.set("query", state.query);
  if (state.foundBy) params.set("found_by", state.foundBy);
  const text = params.toString();
  return text ? `${FEED_PATH}?${text}` : FEED_PATH;
}

export function hasFilters(state) {
  return Boolean(state.q.trim() || state.channels.length || state.range || state.query || state.foundBy);
}

// How many filters other than the search words are set (the phone's "Edit (N set)" button).
export function activeFilterCount(state) {
  return [state.channels.length > 0, Boolean(state.range), Boolean(state.query), Boolean(state.foundBy), state.sort !== DEFAULT_SORT].filter(
    Boolean,
  ).length;
}

// The start of the chart bucket the custom range is exactly (a bar chosen on the chart), else null.
export function selectedBucket(state, widthMs) {
  if (state.range !== "custom" || !state.after || !state.before) return null;
  const start = Date.parse(state.after);
  return Date.parse(state.before) === start + widthMs - 1 ? start : null;
}
