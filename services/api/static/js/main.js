// The dashboard: filters and sort live in the URL; the list pages through the API's next_cursor;
// a poll for videos newer than the newest one known raises the "N new videos" banner.

import { getJson, isAbort } from "./api.js";
import { refreshRelativeTimes, renderCard, skeletonCards } from "./cards.js";
import { createChannelPicker } from "./channels.js";
import { INTERVAL_MS, createChart } from "./chart.js";
import { announce, clear, debounce, h } from "./dom.js";
import { formatCount, fromLocalInput, plural, toLocalInput } from "./format.js";
import { DEFAULT_SORT, apiFilters, emptyState, hasFilters, normalise, stateFromUrl, urlFromState } from "./state.js";
import { renderStatus, renderStatusError } from "./status.js";

const PAGE_SIZE = 24;
const LIVE_BATCH = 50;
const LIVE_POLL_MS = 10_000;
const STATUS_POLL_MS = 15_000;
const CLOCK_REFRESH_MS = 30_000;
const SEARCH_DEBOUNCE_MS = 300;
const HOURLY_UP_TO_MS = 7 * 86400e3;
const NEWEST = DEFAULT_SORT;

const $ = (id) => document.getElementById(id);
const els = {
  searchForm: $("search-form"),
  q: $("q"),
  channelInput: $("channel-input"),
  channelOptions: $("channel-options"),
  channelChips: $("channel-chips"),
  range: $("range"),
  customRange: $("custom-range"),
  after: $("after"),
  before: $("before"),
  rangeNote: $("range-note"),
  query: $("query"),
  queryNote: $("query-note"),
  sort: $("sort"),
  clearFilters: $("clear-filters"),
  filters: $("filters"),
  filtersToggle: $("filters-toggle"),
  chartTitle: $("chart-title"),
  chartReadout: $("chart-readout"),
  chart: $("chart"),
  notice: $("notice"),
  summary: $("summary"),
  resultsHeading: $("results-heading"),
  banner: $("live-banner"),
  results: $("results"),
  listState: $("list-state"),
  loadingMore: $("loading-more"),
  loadMore: $("load-more"),
  endNote: $("end-note"),
  sentinel: $("sentinel"),
  status: $("status"),
};

let state = stateFromUrl(location.search);
// The result list being shown: its fixed API filters, cursor, the ids on screen, and new arrivals.
let walk = null;
// While typing, one history entry follows the search box instead of one per debounce.
let typingEntry = false;
const channelTitles = new Map();

function remember(channelId, title) {
  if (channelId && title) channelTitles.set(channelId, title);
}

// ---- state <-> controls <-> URL -------------------------------------------------------------

function ensureQueryOption(query) {
  if (query && ![...els.query.options].some((o) => o.value === query)) {
    els.query.append(h("option", { value: query }, query));
  }
}

function renderChips() {
  clear(els.channelChips);
  for (const id of state.channels) {
    const title = channelTitles.get(id) || id;
    const chip = h(
      "button",
      { type: "button", class: "chip", "aria-label": `Remove channel filter: ${title}`, dataset: { channelId: id } },
      h("span", { class: "chip-text" }, title),
      h("span", { class: "chip-x", "aria-hidden": "true" }, "×"),
    );
    chip.addEventListener("click", () => {
      commit({ ...state, channels: state.channels.filter((c) => c !== id) });
      els.channelInput.focus();
    });
    els.channelChips.append(h("li", {}, chip));
  }
}

function syncControls() {
  if (document.activeElement !== els.q || els.q.value.trim() !== state.q.trim()) els.q.value = state.q;
  els.range.value = state.range;
  els.customRange.hidden = state.range !== "custom";
  showRangeProblem(false); // the fields now show the committed (valid) range
  els.after.value = toLocalInput(state.after);
  els.before.value = toLocalInput(state.before);
  ensureQueryOption(state.query);
  els.query.value = state.query;
  const searching = Boolean(state.q.trim());
  const relevance = els.sort.querySelector('option[value="relevance"]');
  relevance.disabled = !searching;
  relevance.textContent = searching ? "Best match" : "Best match (needs a search)";
  els.sort.value = state.sort;
  els.clearFilters.hidden = !hasFilters(state);
  const active = [state.channels.length > 0, Boolean(state.range), Boolean(state.query), state.sort !== NEWEST].filter(Boolean).length;
  els.filtersToggle.dataset.active = String(active);
  updateFiltersToggle();
  renderChips();
  document.title = searching ? `“${state.q.trim()}” · tubewatch` : "tubewatch — newest videos";
}

function commit(next, { typing = false } = {}) {
  next = normalise(next);
  const url = urlFromState(next);
  const changed = url !== urlFromState(state);
  state = next;
  if (changed) {
    const target = url || location.pathname;
    if (typing && typingEntry) history.replaceState(null, "", target);
    else history.pushState(null, "", target);
  }
  typingEntry = typing;
  syncControls();
  if (changed) reload();
}

window.addEventListener("popstate", () => {
  state = stateFromUrl(location.search);
  typingEntry = false;
  syncControls();
  reload();
});

// On a phone the filter panel folds away; its button says how many filters are set.
function updateFiltersToggle() {
  const open = els.filters.classList.contains("is-open");
  const active = Number(els.filtersToggle.dataset.active || 0);
  els.filtersToggle.setAttribute("aria-expanded", String(open));
  els.filtersToggle.textContent = open ? "Done" : active ? `Edit (${active} set)` : "Edit";
}

els.filtersToggle.addEventListener("click", () => {
  els.filters.classList.toggle("is-open");
  updateFiltersToggle();
});

// ---- the result list ------------------------------------------------------------------------

function newWalk() {
  return {
    filters: apiFilters(state, Date.now()),
    sort: state.sort,
    cursor: null,
    started: false,
    done: false,
    loading: false,
    failed: null,
    total: null,
    ids: new Set(), // on screen
    seen: new Set(), // on screen, or known when the list was loaded, or waiting behind the banner
    newestMs: null,
    pending: [],
    overflow: false,
    liveReady: false,
    polling: false,
    controller: new AbortController(),
  };
}

function reload() {
  if (walk) walk.controller.abort();
  walk = newWalk();
  hideBanner();
  showServedBy(null);
  clear(els.listState);
  clear(els.results).append(...skeletonCards(8));
  els.results.setAttribute("aria-busy", "true");
  els.summary.textContent = "Loading videos…";
  updateFooter();
  loadChart(walk);
  loadPage(walk);
}

function see(w, video) {
  w.seen.add(video.video_id);
  const ms = Date.parse(video.published_at);
  if (w.newestMs === null || ms > w.newestMs) w.newestMs = ms;
}

function addChannel(channelId, title) {
  remember(channelId, title);
  if (!state.channels.includes(channelId)) commit({ ...state, channels: [...state.channels, channelId] });
}

async function loadPage(w) {
  if (w !== walk || w.loading || w.done) return;
  const first = !w.started;
  w.loading = true;
  w.failed = null;
  updateFooter();
  const params = new URLSearchParams(w.filters);
  params.set("sort", w.sort);
  params.set("limit", String(PAGE_SIZE));
  if (w.cursor) params.set("cursor", w.cursor);
  try {
    const { body, servedBy } = await getJson("/api/v1/videos", params, { signal: w.controller.signal });
    if (w !== walk) return;
    if (first) {
      clear(els.results);
      w.total = body.total || null;
      w.started = true;
    }
    showServedBy(servedBy);
    const cards = [];
    for (const video of body.items) {
      if (w.ids.has(video.video_id)) continue; // never the same card twice
      w.ids.add(video.video_id);
      see(w, video);
      remember(video.channel_id, video.channel_title);
      cards.push(renderCard(video, { onChannel: addChannel }));
    }
    els.results.append(...cards);
    w.cursor = body.next_cursor;
    w.done = !body.next_cursor;
    if (first) {
      renderChips(); // titles of channels picked from a shared link are known now
      if (!w.ids.size) showEmpty();
      if (w.sort === NEWEST) w.liveReady = true;
      else pollNew(w, { baseline: true });
    }
  } catch (error) {
    if (isAbort(error) || w !== walk) return;
    w.failed = error;
    if (first) showListError(error);
  } finally {
    if (w === walk) {
      w.loading = false;
      els.results.setAttribute("aria-busy", "false");
      updateSummary();
      updateFooter();
      if (!w.failed) requestAnimationFrame(fillViewport);
    }
  }
}

function sentinelNearViewport() {
  return els.sentinel.getBoundingClientRect().top < window.innerHeight + 800;
}

function fillViewport() {
  if (walk && walk.started && !walk.done && !walk.loading && !walk.failed && sentinelNearViewport()) loadPage(walk);
}

new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) fillViewport();
}, { rootMargin: "0px 0px 800px 0px" }).observe(els.sentinel);

function formatTotal(total) {
  if (!total) return null;
  return total.relation === "gte" ? `${formatCount(total.value)}+` : formatCount(total.value);
}

function updateSummary() {
  const w = walk;
  if (!w || !w.started) return;
  const shown = w.ids.size;
  if (!shown) {
    els.summary.textContent = "No videos";
    return;
  }
  const total = formatTotal(w.total);
  const all = w.done || (w.total && w.total.relation === "eq" && w.total.value <= shown);
  els.summary.textContent = all || !total ? plural(shown, "video") : `${formatCount(shown)} of ${total} videos`;
}

function updateFooter() {
  const w = walk;
  const busy = Boolean(w && w.loading && w.started);
  els.loadingMore.hidden = !busy;
  els.loadMore.hidden = !w || !w.started || w.done || w.loading;
  els.loadMore.textContent = w && w.failed ? "Try loading more again" : "Load more videos";
  const end = Boolean(w && w.started && w.done && w.ids.size);
  els.endNote.hidden = !end;
  if (end) els.endNote.textContent = `That's all: ${plural(w.ids.size, "video")}.`;
  if (w && w.failed && w.started) {
    els.endNote.hidden = false;
    els.endNote.textContent = `Could not load more: ${w.failed.message}`;
  }
}

els.loadMore.addEventListener("click", () => {
  if (walk) loadPage(walk);
});

function stateBlock(kind, title, text, actions) {
  els.listState.replaceChildren(
    h(
      "div",
      { class: ["state", `state--${kind}`], role: kind === "error" ? "alert" : "status" },
      h("h3", { class: "state-title" }, title),
      h("p", { class: "state-text" }, text),
      actions.length ? h("div", { class: "state-actions" }, ...actions) : null,
    ),
  );
}

function actionButton(label, onClick, primary = false) {
  return h("button", { type: "button", class: ["button", !primary && "button--quiet"], onclick: onClick }, label);
}

function clearFiltersAction() {
  return actionButton("Clear all filters", () => commit({ ...emptyState(), sort: state.sort }));
}

function showEmpty() {
  if (hasFilters(state)) {
    stateBlock(
      "empty",
      "No videos match these filters",
      "Try fewer words, another channel or a wider date range. Matching videos indexed from now on will be announced here.",
      [clearFiltersAction()],
    );
  } else {
    stateBlock(
      "empty",
      "No videos yet",
      "The fetcher adds videos as YouTube publishes them for the configured search queries; they will be announced here as they arrive.",
      [],
    );
  }
}

function showListError(error) {
  clear(els.results);
  let title = "The videos could not be loaded";
  if (error.unreachable) title = "The tubewatch API cannot be reached";
  else if (error.status === 400) title = "The API refused these filters";
  else if (error.status === 503) title = "The search service is unavailable";
  const detail = error.parameter ? `${error.message} (parameter “${error.parameter}”)` : error.message;
  const actions = [actionButton("Try again", () => reload(), true)];
  if (state.sort === "relevance" && error.status === 503) {
    actions.push(actionButton("Sort by newest instead", () => commit({ ...state, sort: NEWEST })));
  }
  if (hasFilters(state)) actions.push(clearFiltersAction());
  stateBlock("error", title, detail, actions);
  els.summary.textContent = "";
}

function showServedBy(servedBy) {
  if (servedBy === "mongodb") {
    els.notice.hidden = false;
    els.notice.dataset.kind = "degraded";
    els.notice.textContent =
      "Search is running in reduced mode: results come from the database (MongoDB) while Elasticsearch is unavailable. " +
      "Words match whole only (no prefixes) and “Best match” sorting is off.";
  } else {
    els.notice.hidden = true;
    els.notice.textContent = "";
  }
}

// ---- live arrivals --------------------------------------------------------------------------

async function pollNew(w = walk, { baseline = false } = {}) {
  if (!w || w !== walk || w.polling || w.overflow || (!baseline && !w.liveReady)) return;
  w.polling = true;
  const params = new URLSearchParams(w.filters);
  params.set("sort", NEWEST);
  params.set("limit", String(LIVE_BATCH));
  if (w.newestMs !== null) {
    const floor = Date.parse(params.get("published_after") || "") || 0;
    params.set("published_after", new Date(Math.max(floor, w.newestMs)).toISOString());
  }
  try {
    const { body } = await getJson("/api/v1/videos", params, { signal: w.controller.signal });
    if (w !== walk) return;
    const fresh = body.items.filter((v) => !w.seen.has(v.video_id));
    for (const video of fresh) see(w, video);
    if (baseline) {
      w.liveReady = true; // what exists now is the baseline; only later arrivals are "new"
      return;
    }
    // More arrivals than one batch: the banner offers a reload instead of a partial prepend.
    if (body.next_cursor && fresh.length) w.overflow = true;
    if (fresh.length) {
      w.pending = [...fresh, ...w.pending].sort((a, b) => Date.parse(b.published_at) - Date.parse(a.published_at) || (a.video_id < b.video_id ? 1 : -1));
      showBanner(w);
    }
  } catch (error) {
    // A failed poll is retried on the next tick; the list on screen stays valid.
    if (!isAbort(error) && baseline && w === walk) w.liveReady = true;
  } finally {
    w.polling = false;
  }
}

function showBanner(w) {
  const count = w.overflow ? `${LIVE_BATCH}+` : formatCount(w.pending.length);
  const noun = w.pending.length === 1 && !w.overflow ? "new video" : "new videos";
  let action = "show";
  if (w.sort !== NEWEST) action = "show newest first";
  else if (w.overflow) action = "reload";
  els.banner.textContent = `↑ ${count} ${noun} · ${action}`;
  els.banner.dataset.count = String(w.pending.length);
  if (els.banner.hidden) announce(`${count} ${noun}`);
  els.banner.hidden = false;
}

function hideBanner() {
  els.banner.hidden = true;
  els.banner.dataset.count = "0";
}

// The card the reader is looking at: the first one whose top is in view (else the first partly visible).
function firstVisibleCard() {
  let partly = null;
  for (const card of els.results.children) {
    const box = card.getBoundingClientRect();
    if (box.top >= 0) return box.top < window.innerHeight ? card : partly;
    if (!partly && box.bottom > 0) partly = card;
  }
  return partly;
}

els.banner.addEventListener("click", () => {
  const w = walk;
  if (!w) return;
  if (w.sort !== NEWEST) {
    commit({ ...state, sort: NEWEST });
    return;
  }
  if (w.overflow) {
    reload();
    els.resultsHeading.focus();
    return;
  }
  const videos = w.pending.filter((v) => !w.ids.has(v.video_id));
  w.pending = [];
  hideBanner();
  if (!videos.length) return;
  // Keep what the reader is looking at where it is: measure a visible card before and after.
  const anchor = window.scrollY > 0 ? firstVisibleCard() : null;
  const anchorTop = anchor ? anchor.getBoundingClientRect().top : 0;
  clear(els.listState);
  const cards = videos.map((video) => {
    w.ids.add(video.video_id);
    remember(video.channel_id, video.channel_title);
    return renderCard(video, { onChannel: addChannel, isNew: true });
  });
  els.results.prepend(...cards);
  if (anchor) window.scrollBy(0, anchor.getBoundingClientRect().top - anchorTop);
  if (w.total) w.total = { ...w.total, value: w.total.value + cards.length };
  updateSummary();
  updateFooter();
  announce(`${plural(cards.length, "new video")} added at the top of the list`);
});

// ---- chart ----------------------------------------------------------------------------------

const chart = createChart(els.chart, els.chartReadout, {
  onSelect(startMs, widthMs) {
    commit({
      ...state,
      range: "custom",
      after: new Date(startMs).toISOString(),
      before: new Date(startMs + widthMs - 1).toISOString(),
    });
  },
});

function selectedBucket(widthMs) {
  if (state.range !== "custom" || !state.after || !state.before) return null;
  const start = Date.parse(state.after);
  return Date.parse(state.before) === start + widthMs - 1 ? start : null;
}

async function loadChart(w) {
  chart.loading();
  const after = Date.parse(w.filters.get("published_after") || "");
  const before = Date.parse(w.filters.get("published_before") || "") || Date.now();
  let interval = !Number.isNaN(after) && before - after > HOURLY_UP_TO_MS ? "day" : "hour";
  try {
    let body = await histogram(w, interval);
    if (interval === "hour" && Number.isNaN(after) && body.buckets.length > HOURLY_UP_TO_MS / INTERVAL_MS.hour) {
      interval = "day";
      body = await histogram(w, interval);
    }
    if (w !== walk) return;
    els.chartTitle.textContent = interval === "day" ? "Uploads per day (UTC days)" : "Uploads per hour";
    chart.show(body, selectedBucket(INTERVAL_MS[interval]));
  } catch (error) {
    if (isAbort(error) || w !== walk) return;
    if (interval === "hour" && error.status === 400 && error.parameter !== "published_after") {
      // Too many hours for one chart: the API refuses; a day per bar always fits.
      try {
        const body = await histogram(w, "day");
        if (w !== walk) return;
        els.chartTitle.textContent = "Uploads per day (UTC days)";
        chart.show(body, selectedBucket(INTERVAL_MS.day));
        return;
      } catch (retryError) {
        if (isAbort(retryError) || w !== walk) return;
        error = retryError;
      }
    }
    chart.message(`Upload chart unavailable: ${error.message}`);
  }
}

async function histogram(w, interval) {
  const params = new URLSearchParams(w.filters);
  params.set("interval", interval);
  const { body } = await getJson("/api/v1/histogram", params, { signal: w.controller.signal });
  return body;
}

// ---- side panels: queries and pipeline status ------------------------------------------------

async function loadQueries() {
  try {
    const { body } = await getJson("/api/v1/queries");
    for (const item of body.items) {
      const label = item.videos_stored === null ? item.query : `${item.query} (${formatCount(item.videos_stored)})`;
      const existing = [...els.query.options].find((o) => o.value === item.query);
      if (existing) existing.textContent = label;
      else els.query.append(h("option", { value: item.query }, label));
    }
    els.query.value = state.query;
    els.queryNote.hidden = true;
  } catch (error) {
    els.queryNote.hidden = false;
    els.queryNote.textContent = `Query list unavailable: ${error.message}`;
  }
}

async function loadStatus() {
  try {
    const { body } = await getJson("/api/v1/status");
    renderStatus(els.status, body);
  } catch (error) {
    renderStatusError(els.status, error);
  }
}

// Channel titles for channel ids that arrive in a shared link, before any of their videos loads.
async function loadChannelTitles() {
  try {
    const { body } = await getJson("/api/v1/channels", new URLSearchParams({ limit: "100" }));
    body.items.forEach((c) => remember(c.channel_id, c.channel_title));
    renderChips();
  } catch {
    // The picker shows its own error when opened; chips keep showing ids meanwhile.
  }
}

// ---- wiring ---------------------------------------------------------------------------------

const searchSoon = debounce(() => commit({ ...state, q: els.q.value }, { typing: true }), SEARCH_DEBOUNCE_MS);
els.q.addEventListener("input", searchSoon);
els.searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  searchSoon.cancel();
  commit({ ...state, q: els.q.value });
});

els.range.addEventListener("change", () => {
  const range = els.range.value;
  if (range === "custom") {
    const after = state.after || new Date(Date.now() - 86400e3).toISOString();
    commit({ ...state, range: "custom", after, before: state.before });
    els.after.focus();
  } else {
    commit({ ...state, range, after: null, before: null });
  }
});
// A custom range whose start is after its end is never sent: the fields say what is wrong instead.
// The "To" field shows minutes; it includes the whole of its last minute.
function commitCustomRange() {
  const after = fromLocalInput(els.after.value);
  const minute = fromLocalInput(els.before.value);
  const before = minute && new Date(Date.parse(minute) + 59_999).toISOString();
  const backwards = Boolean(after && before && Date.parse(after) > Date.parse(before));
  showRangeProblem(backwards);
  if (!backwards) commit({ ...state, range: "custom", after, before });
}

function showRangeProblem(backwards) {
  els.rangeNote.hidden = !backwards;
  els.rangeNote.textContent = backwards ? "“From” must be earlier than “To”." : "";
  els.after.setAttribute("aria-invalid", String(backwards));
  els.before.setAttribute("aria-invalid", String(backwards));
}

els.after.addEventListener("change", commitCustomRange);
els.before.addEventListener("change", commitCustomRange);
els.query.addEventListener("change", () => commit({ ...state, query: els.query.value }));
els.sort.addEventListener("change", () => commit({ ...state, sort: els.sort.value }));
els.clearFilters.addEventListener("click", () => {
  commit({ ...emptyState(), sort: state.sort });
  els.q.focus();
});

createChannelPicker({
  input: els.channelInput,
  listbox: els.channelOptions,
  excluded: () => state.channels,
  remember,
  onPick: (channel) => addChannel(channel.channel_id, channel.channel_title),
});

document.addEventListener("keydown", (event) => {
  const typing = event.target instanceof HTMLElement && event.target.closest("input, select, textarea, [contenteditable]");
  if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
    event.preventDefault();
    els.q.focus();
    els.q.select();
  }
});

function every(ms, task) {
  const run = async () => {
    if (!document.hidden) await task();
    setTimeout(run, ms);
  };
  setTimeout(run, ms);
}

every(LIVE_POLL_MS, () => pollNew());
every(STATUS_POLL_MS, loadStatus);
every(CLOCK_REFRESH_MS, () => refreshRelativeTimes(els.results));
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  pollNew();
  loadStatus();
  refreshRelativeTimes(els.results);
});

syncControls();
reload();
loadStatus();
loadQueries();
if (state.channels.length) loadChannelTitles();
