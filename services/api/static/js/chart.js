// The upload-rate chart: hand-drawn SVG bars, one per UTC hour or day. A bar is a button (mouse,
// Enter or Space): choosing it narrows the date range to that bucket. Arrow keys move between bars.

import { INTERVAL_MS } from "./contract.js";
import { clear, h, svg } from "./dom.js";
import { formatBucket, formatTick, plural } from "./format.js";

const HEIGHT = 150;
const PHONE_HEIGHT = 120;
const PAD = { top: 14, right: 10, bottom: 24, left: 36 };

// The top of the value axis: the smallest "round" number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a
// power of ten) at or above the tallest bar.
export function niceCeiling(value) {
  if (value <= 4) return Math.max(1, value);
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

// The chart's geometry for these bucket counts in a container this wide (pure: no DOM).
export function layout(counts, containerWidth) {
  const width = Math.max(240, Math.floor(containerWidth));
  const height = width < 500 ? PHONE_HEIGHT : HEIGHT;
  const innerW = width - PAD.left - PAD.right;
  const innerH = height - PAD.top - PAD.bottom;
  const max = niceCeiling(Math.max(...counts, 1));
  const slot = innerW / counts.length;
  const barW = Math.max(1, slot > 6 ? slot * 0.78 : slot - 1);
  const y = (count) => PAD.top + innerH - (count / max) * innerH;
  // About one time label per 90 px, on every n-th bar.
  const tickEvery = Math.max(1, Math.ceil(counts.length / Math.max(2, Math.floor(innerW / 90))));
  return { width, height, innerH, max, slot, barW, y, tickEvery };
}

export function createChart(container, readout, { onSelect }) {
  let data = null; // { buckets: [{startMs, count}], widthMs, selectedStartMs }
  let focusIndex = -1;

  const resize = new ResizeObserver(() => {
    if (data) draw();
  });
  resize.observe(container);

  function summary() {
    const total = data.buckets.reduce((sum, b) => sum + b.count, 0);
    const per = data.widthMs >= INTERVAL_MS.day ? "day" : "hour";
    return `${plural(total, "video")} by upload ${per}. Choose a bar to see only that ${per}.`;
  }

  function describe(bucket) {
    return `${formatBucket(bucket.startMs, data.widthMs)}: ${plural(bucket.count, "video")}`;
  }

  function moveFocus(index) {
    const bars = container.querySelectorAll("g.bar");
    if (!bars.length) return;
    focusIndex = Math.max(0, Math.min(bars.length - 1, index));
    bars.forEach((bar, i) => bar.setAttribute("tabindex", i === focusIndex ? "0" : "-1"));
    bars[focusIndex].focus();
  }

  function draw() {
    const { buckets } = data;
    const { width, height, innerH, max, slot, barW, y, tickEvery } = layout(
      buckets.map((b) => b.count),
      container.clientWidth,
    );

    const chart = svg("svg", {
      class: "chart-svg",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: "group",
      "aria-label": summary(),
    });
    for (const value of [0, max / 2, max]) {
      const at = y(value);
      chart.append(svg("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: at, y2: at }));
      if (value === 0 || Number.isInteger(value)) {
        chart.append(svg("text", { class: "axis-label", x: PAD.left - 6, y: at + 4, "text-anchor": "end" }, String(value)));
      }
    }
    const tabStop = focusIndex >= 0 && focusIndex < buckets.length ? focusIndex : buckets.length - 1;
    buckets.forEach((bucket, i) => {
      const x = PAD.left + i * slot;
      const selected = data.selectedStartMs === bucket.startMs;
      const bar = svg(
        "g",
        {
          class: ["bar", selected && "is-selected", bucket.count === 0 && "is-empty"],
          role: "button",
          tabindex: i === tabStop ? "0" : "-1",
          "aria-label": `${describe(bucket)}. Show only these.`,
          "aria-pressed": selected ? "true" : "false",
          dataset: { start: new Date(bucket.startMs).toISOString(), count: String(bucket.count) },
        },
        svg("rect", { class: "bar-hit", x, y: PAD.top, width: Math.max(slot, 1), height: innerH }),
        svg("rect", {
          class: "bar-fill",
          x: x + (slot - barW) / 2,
          y: y(bucket.count),
          width: barW,
          height: Math.max(0, PAD.top + innerH - y(bucket.count)),
          rx: barW > 4 ? 2 : 0,
        }),
      );
      bar.addEventListener("click", () => onSelect(bucket.startMs, data.widthMs));
      bar.addEventListener("mouseenter", () => (readout.textContent = describe(bucket)));
      bar.addEventListener("focus", () => {
        focusIndex = i;
        readout.textContent = describe(bucket);
      });
      chart.append(bar);
      if (i % tickEvery === 0) {
        chart.append(svg("text", { class: "axis-label", x: x + slot / 2, y: height - 6, "text-anchor": "middle" }, formatTick(bucket.startMs, data.widthMs)));
      }
    });
    chart.addEventListener("mouseleave", () => (readout.textContent = summary()));
    chart.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: focusIndex - 1, ArrowRight: focusIndex + 1, Home: 0, End: buckets.length - 1 };
      if (event.key in moves) {
        event.preventDefault();
        moveFocus(moves[event.key]);
      } else if ((event.key === "Enter" || event.key === " ") && focusIndex >= 0) {
        event.preventDefault();
        onSelect(buckets[focusIndex].startMs, data.widthMs);
      }
    });
    clear(container).append(chart);
    container.classList.remove("is-loading");
    readout.textContent = summary();
  }

  return {
    show(histogram, selectedStartMs) {
      const widthMs = INTERVAL_MS[histogram.interval] || INTERVAL_MS.hour;
      const buckets = histogram.buckets.map((b) => ({ startMs: Date.parse(b.start), count: b.count }));
      focusIndex = -1;
      if (!buckets.length) {
        data = null;
        clear(container).append(h("p", { class: "chart-empty" }, "No uploads to chart for these filters."));
        container.classList.remove("is-loading");
        readout.textContent = "";
        return;
      }
      data = { buckets, widthMs, selectedStartMs };
      draw();
    },
    loading() {
      container.classList.add("is-loading");
    },
    message(text) {
      data = null;
      container.classList.remove("is-loading");
      clear(container).append(h("p", { class: "chart-empty" }, text));
      readout.textContent = "";
    },
  };
}
