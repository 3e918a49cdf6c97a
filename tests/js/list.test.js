// Unit tests of list.js: pages through next_cursor without duplicates, live arrivals behind the
// banner, and the texts of the summary, footer and banner.

import assert from "node:assert/strict";
import test from "node:test";

import { MAX_LIMIT } from "../../services/api/static/js/contract.js";
import {
  LIVE_BATCH,
  PAGE_SIZE,
  bannerText,
  footer,
  newList,
  newLive,
  pageRequest,
  pollRequest,
  summaryText,
  withArrivals,
  withArrivalsShown,
  withPage,
  withPageError,
  withPageLoading,
} from "../../services/api/static/js/list.js";
import { emptyState } from "../../services/api/static/js/state.js";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const video = (id, minutesAgo) => ({ video_id: id, published_at: new Date(NOW - minutesAgo * 60e3).toISOString() });
const ids = (list) => list.items.map((item) => item.video.video_id);

function firstPage(sort = "-published_at") {
  const list = withPageLoading(newList({ ...emptyState(), sort }, NOW, 1));
  return withPage(
    { list, live: newLive() },
    { items: [video("a", 1), video("b", 2)], next_cursor: "c1", total: { value: 5, relation: "eq" } },
    "elasticsearch",
  );
}

test("page sizes fit the API's limit", () => {
  assert.ok(PAGE_SIZE <= MAX_LIMIT && LIVE_BATCH <= MAX_LIMIT);
});

test("the page request carries the list's filters, sort, limit and cursor", () => {
  const list = newList({ ...emptyState(), q: "cats", sort: "published_at" }, NOW, 1);
  assert.equal(pageRequest(list).toString(), `q=cats&sort=published_at&limit=${PAGE_SIZE}`);
  assert.equal(pageRequest({ ...list, cursor: "xyz" }, 5).get("cursor"), "xyz");
});

test("pages append in order and never show a video twice", () => {
  const { list, live } = firstPage();
  assert.deepEqual(ids(list), ["a", "b"]);
  assert.equal(list.started, true);
  assert.equal(list.loading, false);
  assert.equal(list.cursor, "c1");
  assert.equal(list.servedBy, "elasticsearch");
  assert.equal(live.ready, true, "newest first: the list is the baseline");
  assert.equal(live.newestMs, Date.parse(video("a", 1).published_at));
  const next = withPage({ list, live }, { items: [video("b", 2), video("c", 3)], next_cursor: null, total: null }, null);
  assert.deepEqual(ids(next.list), ["a", "b", "c"]);
  assert.equal(next.list.done, true);
  assert.deepEqual(next.list.total, { value: 5, relation: "eq" }, "the total of the first page stays");
});

test("other sort orders wait for a baseline of what exists", () => {
  const { live } = firstPage("published_at");
  assert.equal(live.ready, false);
  const baseline = withArrivals(live, { items: [video("z", 0), video("a", 1)], next_cursor: null }, { baseline: true });
  assert.equal(baseline.ready, true);
  assert.deepEqual(baseline.pending, []);
  assert.ok(baseline.seen.has("z"));
});

test("a failed page keeps the list and says why", () => {
  const { list } = firstPage();
  const failed = withPageError(withPageLoading(list), new Error("boom"));
  assert.equal(failed.loading, false);
  assert.equal(failed.failed.message, "boom");
  assert.deepEqual(footer(failed), { loadingMore: false, loadMore: true, loadMoreLabel: "Try loading more again", endNote: "Could not load more: boom" });
  const first = withPageError(withPageLoading(newList(emptyState(), NOW, 2)), new Error("down"));
  assert.equal(summaryText(first), "");
});

test("polls ask for what is newer than the newest video seen, within the list's range", () => {
  const { list, live } = firstPage();
  const params = pollRequest(list, live);
  assert.equal(params.get("sort"), "-published_at");
  assert.equal(params.get("limit"), String(LIVE_BATCH));
  assert.equal(params.get("published_after"), video("a", 1).published_at);
  const ranged = newList({ ...emptyState(), range: "custom", after: new Date(NOW).toISOString() }, NOW, 3);
  assert.equal(pollRequest(ranged, live).get("published_after"), new Date(NOW).toISOString());
  assert.equal(pollRequest(ranged, newLive()).get("published_after"), new Date(NOW).toISOString());
});

test("arrivals wait behind the banner, newest first, and go on top when shown", () => {
  const { list, live } = firstPage();
  let next = withArrivals(live, { items: [video("x", 0.5), video("a", 1)], next_cursor: null });
  next = withArrivals(next, { items: [video("y", 0.2), video("x", 0.5)], next_cursor: null });
  assert.deepEqual(next.pending.map((v) => v.video_id), ["y", "x"]);
  assert.equal(next.overflow, false);
  assert.deepEqual(bannerText(list, next), { label: "↑ 2 new videos · show", announcement: "2 new videos" });
  const shown = withArrivalsShown({ list, live: next });
  assert.deepEqual(ids(shown.list), ["y", "x", "a", "b"]);
  assert.deepEqual(shown.list.items.map((item) => item.isNew), [true, true, false, false]);
  assert.deepEqual(shown.list.total, { value: 7, relation: "eq" });
  assert.deepEqual(shown.live.pending, []);
});

test("more arrivals than one batch offer a reload; other orders offer newest first", () => {
  const { list, live } = firstPage();
  const many = withArrivals(live, { items: [video("x", 0.5)], next_cursor: "more" });
  assert.equal(many.overflow, true);
  assert.equal(bannerText(list, many).label, `↑ ${LIVE_BATCH}+ new videos · reload`);
  const one = withArrivals(live, { items: [video("x", 0.5)], next_cursor: null });
  assert.equal(bannerText({ ...list, sort: "published_at" }, one).label, "↑ 1 new video · show newest first");
});

test("summary and footer", () => {
  const loading = newList(emptyState(), NOW, 1);
  assert.equal(summaryText(loading), "Loading videos…");
  const { list } = firstPage();
  assert.equal(summaryText(list), "2 of 5 videos");
  assert.equal(summaryText({ ...list, total: { value: 1000, relation: "gte" } }), "2 of 1,000+ videos");
  assert.equal(summaryText({ ...list, done: true }), "2 videos");
  assert.equal(summaryText({ ...list, items: [] }), "No videos");
  assert.deepEqual(footer(list), { loadingMore: false, loadMore: true, loadMoreLabel: "Load more videos", endNote: null });
  assert.equal(footer(withPageLoading(list)).loadingMore, true);
  assert.equal(footer({ ...list, done: true }).endNote, "That's all: 2 videos.");
});
