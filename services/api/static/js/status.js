// The pipeline strip, from /api/v1/status: fetcher keys and quota, indexer queue, videos stored.

import { clear, h } from "./dom.js";
import { formatCount, formatRelative, formatSeconds, plural } from "./format.js";

function item(label, value, { tone = "neutral", detail = null, name } = {}) {
  return h(
    "li",
    { class: ["status-item", `tone-${tone}`], dataset: { status: name } },
    h("span", { class: "status-label" }, label),
    h("span", { class: "status-value" }, value),
    detail ? h("span", { class: "status-detail" }, detail) : null,
  );
}

function keysItem(fetcher) {
  const { live, parked, disabled } = fetcher.keys;
  const total = live + parked + disabled;
  if (!total) return item("Fetcher", "no keys reported yet", { tone: "muted", name: "keys" });
  const notes = [];
  if (parked) notes.push(`${formatCount(parked)} parked`);
  if (disabled) notes.push(`${formatCount(disabled)} disabled`);
  const tone = live === 0 ? "bad" : parked || disabled ? "warn" : "good";
  return item("Keys", `${formatCount(live)} live`, { tone, detail: notes.join(", ") || null, name: "keys" });
}

function lastPollItem(fetcher) {
  if (!fetcher.last_poll_at) return item("Last poll", "not yet", { tone: "muted", name: "last-poll" });
  const ageSeconds = (Date.now() - Date.parse(fetcher.last_poll_at)) / 1000;
  const expected = fetcher.effective_interval_seconds || 60;
  const stale = ageSeconds > 3 * expected + 60;
  const leader = fetcher.leader;
  let detail = null;
  if (leader && !leader.active) detail = "no active fetcher";
  return item("Last poll", formatRelative(fetcher.last_poll_at), {
    tone: stale || detail ? "warn" : "good",
    detail,
    name: "last-poll",
  });
}

function queueItem(indexer) {
  const { queue } = indexer;
  if (queue.messages === null) {
    return item("Indexer queue", "unknown", { tone: "warn", detail: queue.error, name: "queue" });
  }
  let tone = queue.messages > 1000 ? "warn" : "good";
  let detail = null;
  if (queue.consumers === 0) {
    tone = "warn";
    detail = "no indexer connected";
  }
  return item("Indexer queue", `${formatCount(queue.messages)} waiting`, { tone, detail, name: "queue" });
}

function deadItem(indexer) {
  const count = indexer.dead_letters.messages;
  if (count === null) return null;
  return item("Dead letters", formatCount(count), { tone: count ? "bad" : "good", name: "dead-letters" });
}

export function renderStatus(list, status) {
  const { fetcher, indexer, videos } = status;
  const items = [
    item("Videos", videos.stored === null ? "unknown" : formatCount(videos.stored), {
      tone: videos.stored === null ? "warn" : "neutral",
      detail: videos.indexed !== null && videos.stored !== null && videos.indexed !== videos.stored ? `${formatCount(videos.indexed)} searchable` : null,
      name: "videos",
    }),
    item("Search", status.served_by === "elasticsearch" ? "Elasticsearch" : "MongoDB (reduced)", {
      tone: status.served_by === "elasticsearch" ? "good" : "warn",
      name: "served-by",
    }),
    keysItem(fetcher),
    item("Quota left", fetcher.calls_left_today === null ? "unknown" : plural(fetcher.calls_left_today, "call"), {
      tone: fetcher.calls_left_today === null ? "muted" : fetcher.calls_left_today < 10 ? "warn" : "neutral",
      name: "quota",
    }),
    item("Polling", fetcher.effective_interval_seconds === null ? "unknown" : `every ${formatSeconds(fetcher.effective_interval_seconds)}`, {
      tone: "neutral",
      name: "interval",
    }),
    lastPollItem(fetcher),
    queueItem(indexer),
    deadItem(indexer),
  ];
  clear(list).append(...items.filter(Boolean));
  list.dataset.state = "ready";
}

export function renderStatusError(list, error) {
  clear(list).append(item("Pipeline status", "unavailable", { tone: "bad", detail: error.message, name: "error" }));
  list.dataset.state = "error";
}
