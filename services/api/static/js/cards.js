// One card per video. Every text goes in through text nodes; only https URLs become links or images.

import { h } from "./dom.js";
import { formatAbsolute, formatDuration, formatRelative, formatViews } from "./format.js";
import { foundByLabels, textMatchLabels } from "./foundby.js";

const THUMBNAIL_PREFERENCE = ["medium", "high", "default"];
const HUES = 8;

function httpsUrl(url) {
  return typeof url === "string" && url.startsWith("https://") ? url : null;
}

function thumbnailUrl(video) {
  for (const name of THUMBNAIL_PREFERENCE) {
    const url = httpsUrl(video.thumbnails && video.thumbnails[name] && video.thumbnails[name].url);
    if (url) return url;
  }
  return null;
}

// A stable colour per video for the placeholder shown when a thumbnail cannot load.
function hueClass(videoId) {
  let hash = 0;
  for (const char of videoId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return `hue-${hash % HUES}`;
}

function thumbnail(video, link) {
  const frame = h("a", {
    class: ["thumb", hueClass(video.video_id)],
    href: link,
    target: "_blank",
    rel: "noopener noreferrer",
    tabindex: "-1",
    "aria-hidden": "true",
  });
  frame.append(h("span", { class: "thumb-placeholder" }));
  const src = thumbnailUrl(video);
  if (src) {
    const img = h("img", { src, alt: "", loading: "lazy", decoding: "async", width: "320", height: "180" });
    img.addEventListener("error", () => {
      img.remove();
      frame.classList.add("thumb--missing");
    });
    frame.append(img);
  } else {
    frame.classList.add("thumb--missing");
  }
  const duration = formatDuration(video.duration_seconds);
  if (duration) frame.append(h("span", { class: "duration" }, duration));
  return frame;
}

// Where the video came from: a search query, a followed channel, or both.
function foundBy(video) {
  const labels = [...foundByLabels(video.found_by), ...textMatchLabels(video.matched)];
  if (!labels.length) return null;
  return h(
    "p",
    { class: "card-found" },
    h("span", { class: "visually-hidden" }, "Found by: "),
    ...labels.map((label) => h("span", { class: ["found", `found--${label.source}`], title: label.title }, label.text)),
  );
}

export function renderCard(video, { onChannel, isNew = false } = {}) {
  const link = httpsUrl(video.url) || `https://www.youtube.com/watch?v=${encodeURIComponent(video.video_id)}`;
  const channelName = video.channel_title || video.channel_id;
  const views = formatViews(video.view_count);
  const card = h(
    "li",
    { class: ["card", isNew && "card--new"], dataset: { videoId: video.video_id, publishedAt: video.published_at } },
    thumbnail(video, link),
    h(
      "div",
      { class: "card-body" },
      h("h3", { class: "card-title" }, h("a", { href: link, target: "_blank", rel: "noopener noreferrer" }, video.title || "(untitled)")),
      h(
        "button",
        {
          type: "button",
          class: "channel-link",
          title: `Show only videos from ${channelName}`,
          onclick: () => onChannel && onChannel(video.channel_id, video.channel_title),
        },
        channelName,
      ),
      h(
        "p",
        { class: "card-meta" },
        views && h("span", { class: "views" }, views),
        h(
          "time",
          { datetime: video.published_at, title: `Published ${formatAbsolute(video.published_at)}`, class: "relative-time" },
          formatRelative(video.published_at),
        ),
      ),
      h("p", { class: "card-date" }, formatAbsolute(video.published_at)),
      foundBy(video),
      video.description ? h("p", { class: "card-description" }, video.description) : null,
    ),
  );
  return card;
}

// Keep "5 minutes ago" true while the page stays open.
export function refreshRelativeTimes(root) {
  const now = Date.now();
  for (const node of root.querySelectorAll("time.relative-time")) {
    node.textContent = formatRelative(node.getAttribute("datetime"), now);
  }
}

export function skeletonCards(count) {
  return Array.from({ length: count }, () =>
    h(
      "li",
      { class: "card card--skeleton", "aria-hidden": "true" },
      h("span", { class: "thumb" }),
      h("div", { class: "card-body" }, h("span", { class: "bone bone--title" }), h("span", { class: "bone" }), h("span", { class: "bone bone--short" })),
    ),
  );
}
