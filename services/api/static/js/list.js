// The result list and its live arrivals as data: the pages fetched through next_cursor, the videos
// newer than the newest one known, and the texts that describe them. Pure functions over the store's
// `list` and `live` fields: no DOM, no fetch.

import { DEFAULT_SORT } from "./contract.js";
import { formatCount, plural } from "./format.js";
import { apiFilters } from "./state.js";

const NEWEST = DEFAULT_SORT;
// Videos per page of the list, and the most arrivals one poll asks for (both at most MAX_LIMIT).
export const PAGE_SIZE = 24;
export const LIVE_BATCH = 50;

// A list for these filters. Relative ranges become absolute times here, once per list: a cursor is
// bound to the exact filters of the page that issued it.
export function newList(filters, nowMs, id) {
  return {
    id,
    sort: filters.sort,
    params: apiFilters(filters, nowMs), // the API's filter parameters, fixed for the list's life
    cursor: null,
    started: false, // the first page has arrived
    done: false, // no next page
    loading: false,
    failed: null, // the error of the last page request
    total: null, // the API's total ({ value, relation }) when the first page had one
    items: [], // on screen, in order: { video, isNew }
    servedBy: null, // the X-Served-By of the last page
  };
}

export function newLive() {
  return {
    ready: false, // a baseline is known: what arrives from now on is new
    overflow: false, // more arrivals than one batch: the banner offers a reload
    pending: [], // new videos waiting behind the banner, newest first
    seen: new Set(), // ids on screen, known when the list was loaded, or pending
    newestMs: null, // the newest publish time seen
  };
}

function see(live, videos) {
  if (!videos.length) return live;
  const seen = new Set(live.seen);
  let newestMs = live.newestMs;
  for (const video of videos) {
    seen.add(video.video_id);
    const ms = Date.parse(video.published_at);
    if (newestMs === null || ms > newestMs) newestMs = ms;
  }
  return { ...live, seen, newestMs };
}

function onScreen(list) {
  return new Set(list.items.map((item) => item.video.video_id));
}

export function pageRequest(list, pageSize = PAGE_SIZE) {
  const params = new URLSearchParams(list.params);
  params.set("sort", list.sort);
  params.set("limit", String(pageSize));
  if (list.cursor) params.set("cursor", list.cursor);
  return params;
}

export function withPageLoading(list) {
  return { ...list, loading: true, failed: null };
}

// The list and live arrivals after a page of /api/v1/videos: never the same card twice.
export function withPage({ list, live }, body, servedBy) {
  const first = !list.started;
  const ids = onScreen(list);
  const added = [];
  for (const video of body.items) {
    if (ids.has(video.video_id)) continue;
    ids.add(video.video_id);
    added.push(video);
  }
  const next = {
    ...list,
    items: [...list.items, ...added.map((video) => ({ video, isNew: false }))],
    cursor: body.next_cursor,
    done: !body.next_cursor,
    loading: false,
    servedBy,
  };
  if (first) {
    next.total = body.total || null;
    next.started = true;
  }
  let nextLive = see(live, added);
  // Newest first: the list itself is the baseline. Other orders ask for one (see withArrivals).
  if (first && list.sort === NEWEST) nextLive = { ...nextLive, ready: true };
  return { list: next, live: nextLive };
}

export function withPageError(list, error) {
  return { ...list, loading: false, failed: error };
}

// The request for videos newer than the newest one seen, with the list's filters.
export function pollRequest(list, live, batch = LIVE_BATCH) {
  const params = new URLSearchParams(list.params);
  params.set("sort", NEWEST);
  params.set("limit", String(batch));
  if (live.newestMs !== null) {
    const floor = Date.parse(params.get("published_after") || "") || 0;
    params.set("published_after", new Date(Math.max(floor, live.newestMs)).toISOString());
  }
  return params;
}

function newestFirst(a, b) {
  return Date.parse(b.published_at) - Date.parse(a.published_at) || (a.video_id < b.video_id ? 1 : -1);
}

// Live arrivals after a poll answer. A baseline poll only records what exists now.
export function withArrivals(live, body, { baseline = false } = {}) {
  const fresh = body.items.filter((video) => !live.seen.has(video.video_id));
  const next = see(live, fresh);
  if (baseline) return { ...next, ready: true };
  if (!fresh.length) return next;
  return {
    ...next,
    overflow: next.overflow || Boolean(body.next_cursor),
    pending: [...fresh, ...live.pending].sort(newestFirst),
  };
}

// The pending arrivals moved to the top of the list (those not already on screen).
export function withArrivalsShown({ list, live }) {
  const ids = onScreen(list);
  const videos = live.pending.filter((video) => !ids.has(video.video_id));
  const nextLive = { ...live, pending: [] };
  if (!videos.length) return { list, live: nextLive };
  return {
    list: {
      ...list,
      items: [...videos.map((video) => ({ video, isNew: true })), ...list.items],
      total: list.total && { ...list.total, value: list.total.value + videos.length },
    },
    live: nextLive,
  };
}

function formatTotal(total) {
  if (!total) return null;
  return total.relation === "gte" ? `${formatCount(total.value)}+` : formatCount(total.value);
}

// "24 of 60 videos", "60 videos", "No videos", or what is happening before the first page.
export function summaryText(list) {
  if (!list.started) return list.failed ? "" : "Loading videos…";
  const shown = list.items.length;
  if (!shown) return "No videos";
  const total = formatTotal(list.total);
  const all = list.done || (list.total && list.total.relation === "eq" && list.total.value <= shown);
  return all || !total ? plural(shown, "video") : `${formatCount(shown)} of ${total} videos`;
}

// The footer under the cards: a loading line, a "Load more" button, and an end or failure note.
export function footer(list) {
  const shown = list.items.length;
  let endNote = list.started && list.done && shown ? `That's all: ${plural(shown, "video")}.` : null;
  if (list.failed && list.started) endNote = `Could not load more: ${list.failed.message}`;
  return {
    loadingMore: list.loading && list.started,
    loadMore: list.started && !list.done && !list.loading,
    loadMoreLabel: list.failed ? "Try loading more again" : "Load more videos",
    endNote,
  };
}

// The banner's text for the pending arrivals, and what choosing it does ("show", "reload", ...).
export function bannerText(list, live, batch = LIVE_BATCH) {
  const count = live.overflow ? `${batch}+` : formatCount(live.pending.length);
  const noun = live.pending.length === 1 && !live.overflow ? "new video" : "new videos";
  let action = "show";
  if (list.sort !== NEWEST) action = "show newest first";
  else if (live.overflow) action = "reload";
  return { label: `↑ ${count} ${noun} · ${action}`, announcement: `${count} ${noun}` };
}
