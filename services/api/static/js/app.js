// The dashboard's wiring. init() finds the page's elements, creates the store and subscribes the
// view (view.js) to it, then connects the controls, the browser history, the timers and the API
// calls (list pages, live arrivals, chart, status, queries) to the store. Importing this module
// does nothing; main.js calls init() when the page loads.

import { getJson, isAbort } from "./api.js";
import { refreshRelativeTimes } from "./cards.js";
import { createChannelPicker } from "./channels.js";
import { DEFAULT_SORT, INTERVAL_MS, MAX_LIMIT } from "./contract.js";
import { debounce } from "./dom.js";
import { fromLocalInput } from "./format.js";
import {
  newList,
  newLive,
  pageRequest,
  pollRequest,
  withArrivals,
  withArrivalsShown,
  withPage,
  withPageError,
  withPageLoading,
} from "./list.js";
import { emptyState, normalise, stateFromUrl, urlFromState } from "./state.js";
import { createStore, initialState, withTitles } from "./store.js";
import { createView } from "./view.js";

const LIVE_POLL_MS = 10_000;
const STATUS_POLL_MS = 15_000;
const CLOCK_REFRESH_MS = 30_000;
const SEARCH_DEBOUNCE_MS = 300;
const HOURLY_UP_TO_MS = 7 * 86400e3;
const NEWEST = DEFAULT_SORT;

const ELEMENT_IDS = {
  searchForm: "search-form",
  q: "q",
  channelInput: "channel-input",
  channelOptions: "channel-options",
  channelChips: "channel-chips",
  range: "range",
  customRange: "custom-range",
  after: "after",
  before: "before",
  rangeNote: "range-note",
  foundBy: "found-by",
  query: "query",
  queryNote: "query-note",
  sort: "sort",
  clearFilters: "clear-filters",
  filters: "filters",
  filtersToggle: "filters-toggle",
  chartTitle: "chart-title",
  chartReadout: "chart-readout",
  chart: "chart",
  notice: "notice",
  summary: "summary",
  feedLink: "feed-link",
  feedAlternate: "feed-alternate",
  resultsHeading: "results-heading",
  banner: "live-banner",
  results: "results",
  listState: "list-state",
  loadingMore: "loading-more",
  loadMore: "load-more",
  endNote: "end-note",
  sentinel: "sentinel",
  status: "status",
};

function every(ms, task) {
  const run = async () => {
    if (!document.hidden) await task();
    setTimeout(run, ms);
  };
  setTimeout(run, ms);
}

const titlesOf = (videos) => videos.map((v) => [v.channel_id, v.channel_title]);

export function init() {
  const els = Object.fromEntries(Object.entries(ELEMENT_IDS).map(([name, id]) => [name, document.getElementById(id)]));
  const store = createStore(initialState(stateFromUrl(location.search)));
  const filters = () => store.get().filters;
  // The requests of the list on screen: aborted together when another list replaces it.
  let session = null;
  let sessions = 0;
  // While typing, one history entry follows the search box instead of one per debounce.
  let typingEntry = false;

  function remember(pairs) {
    store.update((st) => {
      const channelTitles = withTitles(st.channelTitles, pairs);
      return channelTitles === st.channelTitles ? st : { ...st, channelTitles };
    });
  }

  // ---- filters <-> URL ----------------------------------------------------------------------

  function commit(next, { typing = false } = {}) {
    next = { ...normalise(next) };
    const url = urlFromState(next);
    const changed = url !== urlFromState(filters());
    if (changed) {
      const target = url || location.pathname;
      if (typing && typingEntry) history.replaceState(null, "", target);
      else history.pushState(null, "", target);
    }
    typingEntry = typing;
    store.update({ filters: next, rangeProblem: false });
    if (changed) reload();
  }

  function addChannel(channelId, title) {
    remember([[channelId, title]]);
    const current = filters();
    if (!current.channels.includes(channelId)) commit({ ...current, channels: [...current.channels, channelId] });
  }

  const clearFilters = () => commit({ ...emptyState(), sort: filters().sort });

  // ---- the result list ----------------------------------------------------------------------

  function reload() {
    if (session) session.controller.abort();
    session = { id: ++sessions, controller: new AbortController(), polling: false };
    store.update({ list: newList(filters(), Date.now(), session.id), live: newLive() });
    loadChart(session);
    loadPage(session);
  }

  async function loadPage(s) {
    const { list } = store.get();
    if (s !== session || list.loading || list.done) return;
    const first = !list.started;
    store.update((st) => ({ ...st, list: withPageLoading(st.list) }));
    try {
      const { body, servedBy } = await getJson("/api/v1/videos", pageRequest(list), { signal: s.controller.signal });
      if (s !== session) return;
      remember(titlesOf(body.items));
      store.update((st) => ({ ...st, ...withPage(st, body, servedBy) }));
      if (first && list.sort !== NEWEST) pollNew({ baseline: true });
    } catch (error) {
      if (isAbort(error) || s !== session) return;
      store.update((st) => ({ ...st, list: withPageError(st.list, error) }));
    }
    if (s === session && !store.get().list.failed) requestAnimationFrame(fillViewport);
  }

  function fillViewport() {
    const { list } = store.get();
    if (!session || !list.started || list.done || list.loading || list.failed) return;
    if (els.sentinel.getBoundingClientRect().top < window.innerHeight + 800) loadPage(session);
  }

  // ---- live arrivals ------------------------------------------------------------------------

  async function pollNew({ baseline = false } = {}) {
    const s = session;
    const { list, live } = store.get();
    if (!s || s.polling || live.overflow || (!baseline && !live.ready)) return;
    s.polling = true;
    try {
      const { body } = await getJson("/api/v1/videos", pollRequest(list, live), { signal: s.controller.signal });
      if (s !== session) return;
      store.update((st) => ({ ...st, live: withArrivals(st.live, body, { baseline }) }));
    } catch (error) {
      // A failed poll is retried on the next tick; the list on screen stays valid.
      if (!isAbort(error) && baseline && s === session) store.update((st) => ({ ...st, live: { ...st.live, ready: true } }));
    } finally {
      s.polling = false;
    }
  }

  function showArrivals() {
    const { list, live } = store.get();
    if (!list) return;
    if (list.sort !== NEWEST) {
      commit({ ...filters(), sort: NEWEST });
    } else if (live.overflow) {
      reload();
      els.resultsHeading.focus();
    } else {
      remember(titlesOf(live.pending));
      store.update((st) => ({ ...st, ...withArrivalsShown(st) }));
    }
  }

  // ---- chart, queries, status, channel titles -----------------------------------------------

  const setChart = (chart) => store.update((st) => ({ ...st, chart: { ...st.chart, ...chart } }));

  async function histogram(s, interval) {
    const params = new URLSearchParams(store.get().list.params);
    params.set("interval", interval);
    const { body } = await getJson("/api/v1/histogram", params, { signal: s.controller.signal });
    return body;
  }

  async function loadChart(s) {
    setChart({ loading: true });
    const { params } = store.get().list;
    const after = Date.parse(params.get("published_after") || "");
    const before = Date.parse(params.get("published_before") || "") || Date.now();
    let interval = !Number.isNaN(after) && before - after > HOURLY_UP_TO_MS ? "day" : "hour";
    const show = (histogramBody) => setChart({ loading: false, interval, histogram: histogramBody, message: null });
    try {
      let body = await histogram(s, interval);
      if (interval === "hour" && Number.isNaN(after) && body.buckets.length > HOURLY_UP_TO_MS / INTERVAL_MS.hour) {
        interval = "day";
        body = await histogram(s, interval);
      }
      if (s !== session) return;
      show(body);
    } catch (error) {
      if (isAbort(error) || s !== session) return;
      let failure = error;
      if (interval === "hour" && error.status === 400 && error.parameter !== "published_after") {
        // Too many hours for one chart: the API refuses; a day per bar always fits.
        try {
          interval = "day";
          const body = await histogram(s, interval);
          if (s !== session) return;
          show(body);
          return;
        } catch (retryError) {
          if (isAbort(retryError) || s !== session) return;
          failure = retryError;
        }
      }
      setChart({ loading: false, message: `Upload chart unavailable: ${failure.message}` });
    }
  }

  async function loadQueries() {
    try {
      const { body } = await getJson("/api/v1/queries");
      store.update({ queries: { items: body.items } });
    } catch (error) {
      store.update({ queries: { error } });
    }
  }

  async function loadStatus() {
    try {
      const { body } = await getJson("/api/v1/status");
      store.update({ status: { body } });
    } catch (error) {
      store.update({ status: { error } });
    }
  }

  // Channel titles for channel ids that arrive in a shared link, before any of their videos loads.
  async function loadChannelTitles() {
    try {
      const { body } = await getJson("/api/v1/channels", new URLSearchParams({ limit: String(MAX_LIMIT) }));
      remember(titlesOf(body.items));
    } catch {
      // The picker shows its own error when opened; chips keep showing ids meanwhile.
    }
  }

  // ---- the view, and the controls that change the state -------------------------------------

  const render = createView(els, {
    pickChannel: addChannel,
    removeChannel(id) {
      commit({ ...filters(), channels: filters().channels.filter((c) => c !== id) });
      els.channelInput.focus();
    },
    retry: () => reload(),
    sortNewest: () => commit({ ...filters(), sort: NEWEST }),
    clearFilters,
    selectBucket(startMs, widthMs) {
      commit({
        ...filters(),
        range: "custom",
        after: new Date(startMs).toISOString(),
        before: new Date(startMs + widthMs - 1).toISOString(),
      });
    },
  });
  store.subscribe(render);
  render(store.get());

  window.addEventListener("popstate", () => {
    typingEntry = false;
    store.update({ filters: stateFromUrl(location.search), rangeProblem: false });
    reload();
  });

  const searchSoon = debounce(() => commit({ ...filters(), q: els.q.value }, { typing: true }), SEARCH_DEBOUNCE_MS);
  els.q.addEventListener("input", searchSoon);
  els.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    searchSoon.cancel();
    commit({ ...filters(), q: els.q.value });
  });

  els.range.addEventListener("change", () => {
    const range = els.range.value;
    const current = filters();
    if (range === "custom") {
      const after = current.after || new Date(Date.now() - 86400e3).toISOString();
      commit({ ...current, range: "custom", after, before: current.before });
      els.after.focus();
    } else {
      commit({ ...current, range, after: null, before: null });
    }
  });
  // The "To" field shows minutes; it includes the whole of its last minute.
  function commitCustomRange() {
    const after = fromLocalInput(els.after.value);
    const minute = fromLocalInput(els.before.value);
    const before = minute && new Date(Date.parse(minute) + 59_999).toISOString();
    if (after && before && Date.parse(after) > Date.parse(before)) store.update({ rangeProblem: true });
    else commit({ ...filters(), range: "custom", after, before });
  }
  els.after.addEventListener("change", commitCustomRange);
  els.before.addEventListener("change", commitCustomRange);
  els.foundBy.addEventListener("change", () => commit({ ...filters(), foundBy: els.foundBy.value }));
  els.query.addEventListener("change", () => commit({ ...filters(), query: els.query.value }));
  els.sort.addEventListener("change", () => commit({ ...filters(), sort: els.sort.value }));
  els.clearFilters.addEventListener("click", () => {
    clearFilters();
    els.q.focus();
  });
  els.filtersToggle.addEventListener("click", () => store.update((st) => ({ ...st, filtersOpen: !st.filtersOpen })));

  createChannelPicker({
    input: els.channelInput,
    listbox: els.channelOptions,
    excluded: () => filters().channels,
    remember: (id, title) => remember([[id, title]]),
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

  els.banner.addEventListener("click", showArrivals);
  els.loadMore.addEventListener("click", () => {
    if (session) loadPage(session);
  });
  new IntersectionObserver(
    (entries) => {
      if (entries.some((e) => e.isIntersecting)) fillViewport();
    },
    { rootMargin: "0px 0px 800px 0px" },
  ).observe(els.sentinel);

  every(LIVE_POLL_MS, () => pollNew());
  every(STATUS_POLL_MS, loadStatus);
  every(CLOCK_REFRESH_MS, () => refreshRelativeTimes(els.results));
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    pollNew();
    loadStatus();
    refreshRelativeTimes(els.results);
  });

  reload();
  loadStatus();
  loadQueries();
  if (filters().channels.length) loadChannelTitles();
}
