// The dashboard's one render path, state -> view: createView() returns render(state, previous),
// which the store calls after every change. It redraws only the parts whose state changed: the
// filter controls and chips, the chart, the status strip, the query list, and the results
// (results.js). Nothing here fetches or changes state; controls report to the actions instead.

import { clear, h } from "./dom.js";
import { createChart } from "./chart.js";
import { INTERVAL_MS } from "./contract.js";
import { formatCount, toLocalInput } from "./format.js";
import { createResultsView } from "./results.js";
import { activeFilterCount, feedUrl, hasFilters, selectedBucket } from "./state.js";
import { renderStatus, renderStatusError } from "./status.js";

// actions: those of results.js, plus removeChannel(id) and selectBucket(startMs, widthMs).
export function createView(els, actions) {
  const results = createResultsView(els, actions);
  const chart = createChart(els.chart, els.chartReadout, { onSelect: actions.selectBucket });
  let drawnChips = null;

  function ensureQueryOption(query) {
    if (query && ![...els.query.options].some((o) => o.value === query)) {
      els.query.append(h("option", { value: query }, query));
    }
  }

  function drawControls({ filters }) {
    if (document.activeElement !== els.q || els.q.value.trim() !== filters.q.trim()) els.q.value = filters.q;
    els.range.value = filters.range;
    els.customRange.hidden = filters.range !== "custom";
    els.after.value = toLocalInput(filters.after);
    els.before.value = toLocalInput(filters.before);
    els.foundBy.value = filters.foundBy;
    ensureQueryOption(filters.query);
    els.query.value = filters.query;
    const searching = Boolean(filters.q.trim());
    const relevance = els.sort.querySelector('option[value="relevance"]');
    relevance.disabled = !searching;
    relevance.textContent = searching ? "Best match" : "Best match (needs a search)";
    els.sort.value = filters.sort;
    els.clearFilters.hidden = !hasFilters(filters);
    // The feed of what is on screen, for a feed reader; the page's head announces it too.
    const feed = feedUrl(filters);
    els.feedLink.href = feed;
    els.feedAlternate.href = feed;
    document.title = searching ? `“${filters.q.trim()}” · tubewatch` : "tubewatch — newest videos";
  }

  // A custom range whose start is after its end is never applied: the fields say what is wrong.
  function drawRangeProblem(backwards) {
    els.rangeNote.hidden = !backwards;
    els.rangeNote.textContent = backwards ? "“From” must be earlier than “To”." : "";
    els.after.setAttribute("aria-invalid", String(backwards));
    els.before.setAttribute("aria-invalid", String(backwards));
  }

  // One chip per chosen channel, named by its title once an answer has told it.
  function drawChips({ filters, channelTitles }) {
    const chips = filters.channels.map((id) => [id, channelTitles[id] || id]);
    const key = JSON.stringify(chips);
    if (key === drawnChips) return;
    drawnChips = key;
    clear(els.channelChips);
    for (const [id, title] of chips) {
      const chip = h(
        "button",
        { type: "button", class: "chip", "aria-label": `Remove channel filter: ${title}`, dataset: { channelId: id } },
        h("span", { class: "chip-text" }, title),
        h("span", { class: "chip-x", "aria-hidden": "true" }, "×"),
      );
      chip.addEventListener("click", () => actions.removeChannel(id));
      els.channelChips.append(h("li", {}, chip));
    }
  }

  // On a phone the filter panel folds away; its button says how many filters are set.
  function drawFiltersToggle({ filters, filtersOpen }) {
    const active = activeFilterCount(filters);
    els.filters.classList.toggle("is-open", filtersOpen);
    els.filtersToggle.dataset.active = String(active);
    els.filtersToggle.setAttribute("aria-expanded", String(filtersOpen));
    els.filtersToggle.textContent = filtersOpen ? "Done" : active ? `Edit (${active} set)` : "Edit";
  }

  function drawChart({ chart: part, filters }) {
    if (part.loading) {
      chart.loading();
    } else if (part.message) {
      chart.message(part.message);
    } else {
      els.chartTitle.textContent = part.interval === "day" ? "Uploads per day (UTC days)" : "Uploads per hour";
      chart.show(part.histogram, selectedBucket(filters, INTERVAL_MS[part.interval]));
    }
  }

  function drawQueries({ queries, filters }) {
    if (queries.error) {
      els.queryNote.hidden = false;
      els.queryNote.textContent = `Query list unavailable: ${queries.error.message}`;
      return;
    }
    for (const item of queries.items) {
      const label = item.videos_stored === null ? item.query : `${item.query} (${formatCount(item.videos_stored)})`;
      const existing = [...els.query.options].find((o) => o.value === item.query);
      if (existing) existing.textContent = label;
      else els.query.append(h("option", { value: item.query }, label));
    }
    els.query.value = filters.query;
    els.queryNote.hidden = true;
  }

  function drawStatus({ status }) {
    if (status.error) renderStatusError(els.status, status.error);
    else renderStatus(els.status, status.body);
  }

  return function render(state, previous = null) {
    const changed = (...keys) => !previous || keys.some((key) => state[key] !== previous[key]);
    if (changed("queries") && state.queries) drawQueries(state);
    if (changed("filters")) drawControls(state);
    if (changed("filters", "rangeProblem")) drawRangeProblem(state.rangeProblem);
    if (changed("filters", "filtersOpen")) drawFiltersToggle(state);
    if (changed("filters", "channelTitles")) drawChips(state);
    if (changed("chart")) drawChart(state);
    if (changed("status") && state.status) drawStatus(state);
    results(state, previous);
  };
}
