// The result list's part of the render path: the cards, the empty or error block, the summary line,
// the footer, the "N new videos" banner and the reduced-mode notice, drawn from the store's `list`
// and `live`. Cards are only ever appended (a next page) or prepended (arrivals shown), so the view
// remembers how many it drew and adds the difference.

import { renderCard, skeletonCards } from "./cards.js";
import { announce, clear, h } from "./dom.js";
import { plural } from "./format.js";
import { bannerText, footer, summaryText } from "./list.js";
import { hasFilters } from "./state.js";

const SKELETONS = 8;

// actions: pickChannel(id, title), retry(), sortNewest(), clearFilters().
export function createResultsView(els, actions) {
  // What is on screen: which list, how many of its cards (the first one's id), and which block.
  let drawn = { listId: null, skeleton: false, count: 0, firstId: null };
  let drawnBlock = null;

  const card = ({ video, isNew }) => renderCard(video, { onChannel: actions.pickChannel, isNew });

  // The card the reader is looking at: the first one whose top is in view (else the first partly visible).
  function firstVisibleCard() {
    let partly = null;
    for (const node of els.results.children) {
      const box = node.getBoundingClientRect();
      if (box.top >= 0) return box.top < window.innerHeight ? node : partly;
      if (!partly && box.bottom > 0) partly = node;
    }
    return partly;
  }

  // Arrivals go on top while the card the reader is looking at stays where it is: measure a
  // visible card before and after.
  function prepend(items) {
    const anchor = window.scrollY > 0 ? firstVisibleCard() : null;
    const anchorTop = anchor ? anchor.getBoundingClientRect().top : 0;
    els.results.prepend(...items.map(card));
    if (anchor) window.scrollBy(0, anchor.getBoundingClientRect().top - anchorTop);
    announce(`${plural(items.length, "new video")} added at the top of the list`);
  }

  function drawCards(list) {
    if (list.id !== drawn.listId) {
      drawn = { listId: list.id, skeleton: true, count: 0, firstId: null };
      clear(els.results).append(...skeletonCards(SKELETONS));
    }
    if (!list.started && !list.failed) return;
    if (drawn.skeleton) {
      clear(els.results);
      drawn.skeleton = false;
    }
    const { items } = list;
    const added = items.length - drawn.count;
    if (added <= 0) return;
    if (items[0].isNew && items[0].video.video_id !== drawn.firstId) prepend(items.slice(0, added));
    else els.results.append(...items.slice(drawn.count).map(card));
    drawn.count = items.length;
    drawn.firstId = items[0].video.video_id;
  }

  function block(kind, title, text, buttons) {
    els.listState.replaceChildren(
      h(
        "div",
        { class: ["state", `state--${kind}`], role: kind === "error" ? "alert" : "status" },
        h("h3", { class: "state-title" }, title),
        h("p", { class: "state-text" }, text),
        buttons.length ? h("div", { class: "state-actions" }, ...buttons) : null,
      ),
    );
  }

  function button(label, onClick, primary = false) {
    return h("button", { type: "button", class: ["button", !primary && "button--quiet"], onclick: onClick }, label);
  }

  function emptyBlock(filters) {
    if (hasFilters(filters)) {
      block(
        "empty",
        "No videos match these filters",
        "Try fewer words, another channel or a wider date range. Matching videos indexed from now on will be announced here.",
        [button("Clear all filters", actions.clearFilters)],
      );
    } else {
      block(
        "empty",
        "No videos yet",
        "The fetcher adds videos as YouTube publishes them for the configured search queries; they will be announced here as they arrive.",
        [],
      );
    }
  }

  function errorBlock(filters, error) {
    let title = "The videos could not be loaded";
    if (error.unreachable) title = "The tubewatch API cannot be reached";
    else if (error.status === 400) title = "The API refused these filters";
    else if (error.status === 503) title = "The search service is unavailable";
    const detail = error.parameter ? `${error.message} (parameter “${error.parameter}”)` : error.message;
    const buttons = [button("Try again", actions.retry, true)];
    if (filters.sort === "relevance" && error.status === 503) buttons.push(button("Sort by newest instead", actions.sortNewest));
    if (hasFilters(filters)) buttons.push(button("Clear all filters", actions.clearFilters));
    block("error", title, detail, buttons);
  }

  // The block under the cards: none, "no videos", or why the first page failed; drawn once per list.
  function drawBlock({ list, filters }) {
    let kind = null;
    if (list.started && !list.items.length) kind = "empty";
    else if (!list.started && list.failed) kind = "error";
    const key = kind && `${list.id}:${kind}`;
    if (key === drawnBlock) return;
    drawnBlock = key;
    if (kind === "empty") emptyBlock(filters);
    else if (kind === "error") errorBlock(filters, list.failed);
    else clear(els.listState);
  }

  function drawFooter(list) {
    const parts = footer(list);
    els.loadingMore.hidden = !parts.loadingMore;
    els.loadMore.hidden = !parts.loadMore;
    els.loadMore.textContent = parts.loadMoreLabel;
    els.endNote.hidden = !parts.endNote;
    if (parts.endNote) els.endNote.textContent = parts.endNote;
  }

  function drawNotice(servedBy) {
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

  function drawBanner(list, live) {
    const visible = live.pending.length > 0;
    if (visible) {
      const { label, announcement } = bannerText(list, live);
      els.banner.textContent = label;
      if (els.banner.hidden) announce(announcement);
    }
    els.banner.dataset.count = String(live.pending.length);
    els.banner.hidden = !visible;
  }

  return function render(state, previous) {
    const { list, live } = state;
    if (!list || (previous && list === previous.list && live === previous.live)) return;
    drawCards(list);
    drawBlock(state);
    els.results.setAttribute("aria-busy", String(!list.started && !list.failed));
    els.summary.textContent = summaryText(list);
    drawFooter(list);
    drawNotice(list.servedBy);
    drawBanner(list, live);
  };
}
