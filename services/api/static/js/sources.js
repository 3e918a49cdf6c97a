// The Sources page's entry module (sources.html loads it): the followed queries and channels with
// their statistics, changed through the admin API. Every change first shows the plan's what-if and
// waits for a confirmation; a refusal is shown next to the control that caused it.

import { adminCall, channelReason, explainError, reweightParams, tokenStore, whatIfLines } from "./admin.js";
import { clear, h } from "./dom.js";
import { formatCount, formatRelative, formatSeconds } from "./format.js";

const tokens = tokenStore(window.sessionStorage);
const $ = (id) => document.getElementById(id);
const call = (method, path, options) => adminCall((url, init) => fetch(url, init), tokens.get(), method, path, options);

function dash(value, format = String) {
  return value === null || value === undefined ? "—" : format(value);
}

function showTokenForm(message = "") {
  $("sources-body").hidden = true;
  $("token-form").hidden = false;
  $("token-error").textContent = message;
  $("admin-token").focus();
}

// A refusal: the admin API off, a token not accepted, or a problem of one control (shown at ``where``).
function refused(error, where) {
  const meaning = explainError(error);
  if (meaning.kind === "disabled") {
    $("token-form").hidden = true;
    $("sources-body").hidden = true;
    const notice = $("sources-disabled");
    notice.hidden = false;
    notice.textContent = `${meaning.message}. Until then the sources are the deployment's SEARCH_QUERIES and FOLLOW_CHANNELS.`;
  } else if (meaning.kind === "token") {
    tokens.clear();
    showTokenForm(meaning.message);
  } else {
    where.textContent = meaning.message;
  }
}

// Shows the what-if in ``box`` with Confirm and Cancel; Confirm runs ``change``, reloads the page's data
// and then hides the box.
async function preview(box, errorNode, { params, lines, section, lead = [] }, change) {
  errorNode.textContent = "";
  let text = lines;
  if (!text) {
    try {
      text = [...lead, ...whatIfLines(await call("GET", "/plan", { params }), section)];
    } catch (error) {
      refused(error, errorNode);
      return;
    }
  }
  const confirm = h("button", { class: "button", type: "button" }, "Confirm");
  const cancel = h("button", { class: "button button--quiet", type: "button" }, "Cancel");
  clear(box).append(h("p", null, "What this changes:"), h("ul", null, text.map((line) => h("li", null, line))), confirm, " ", cancel);
  box.hidden = false;
  cancel.addEventListener("click", () => {
    box.hidden = true;
    clear(box);
  });
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    try {
      await change();
      // Hidden only once the tables show the change: a control used meanwhile would belong to a
      // row the reload is about to replace.
      await load();
      box.hidden = true;
    } catch (error) {
      confirm.disabled = false;
      refused(error, errorNode);
    }
  });
  confirm.focus();
}

function controlCell(buttons) {
  const errorNode = h("p", { class: "control-error", role: "alert" });
  const box = h("div", { class: "what-if", hidden: true, "aria-live": "polite" });
  return { cell: h("td", null, h("div", { class: "actions" }, ...buttons), errorNode, box), errorNode, box };
}

function button(label, onClick, extra = {}) {
  return h("button", { class: "button button--quiet", type: "button", onclick: onClick, ...extra }, label);
}

function queryRow(query, managed) {
  const weight = h("input", { type: "number", min: "0.1", max: "10", step: "0.1", value: String(query.weight), "aria-label": `Weight of ${query.text}` });
  const id = encodeURIComponent(query.id);
  const buttons = managed
    ? []
    : [
        button(query.paused ? "Resume…" : "Pause…", () =>
          preview(controls.box, controls.errorNode, { params: new URLSearchParams(query.paused ? { add_query: query.text } : { remove_query: query.id }), section: "queries" }, () =>
            call("PATCH", `/queries/${id}`, { body: { paused: !query.paused } }),
          ),
        ),
        button("Reweight…", () => {
          const next = Number(weight.value);
          const lead = [`${query.text}: weight ${query.weight} → ${next}.`];
          preview(controls.box, controls.errorNode, { params: reweightParams(query.id, next), section: "queries", lead }, () =>
            call("PATCH", `/queries/${id}`, { body: { weight: next } }),
          );
        }),
        button("Remove…", () =>
          preview(controls.box, controls.errorNode, { params: new URLSearchParams({ remove_query: query.id }), section: "queries" }, () => call("DELETE", `/queries/${id}`)),
        ),
      ];
  const controls = controlCell(buttons);
  return h(
    "tr",
    { dataset: { queryId: query.id } },
    h("th", { scope: "row" }, query.text, query.paused ? " (paused)" : ""),
    h("td", null, dash(query.videos_stored, formatCount)),
    h("td", null, dash(query.last_poll_at, (t) => formatRelative(t))),
    h("td", null, dash(query.next_poll_at, (t) => formatRelative(t))),
    h("td", null, dash(query.calls_per_day, (n) => n.toFixed(1))),
    h("td", null, dash(query.freshness_p50_seconds, formatSeconds)),
    h("td", null, managed ? String(query.weight) : weight),
    controls.cell,
  );
}

function channelRow(channel, managed) {
  const path = `/channels/${encodeURIComponent(channel.channel_id)}`;
  const stopOrStart = (stopping) => new URLSearchParams(stopping ? { remove_channel: channel.channel_id } : { add_channel: channel.channel_id });
  const patch = (body, stopping) => () => preview(controls.box, controls.errorNode, { params: stopOrStart(stopping), section: "channels" }, () => call("PATCH", path, { body }));
  const buttons = managed
    ? []
    : [
        button(channel.pinned ? "Unpin…" : "Pin…", patch({ pinned: !channel.pinned }, false)),
        button(channel.paused ? "Resume…" : "Pause…", patch({ paused: !channel.paused }, !channel.paused)),
        button(channel.excluded ? "Include…" : "Exclude…", patch({ excluded: !channel.excluded }, !channel.excluded)),
        channel.followed || channel.pinned || channel.excluded || channel.paused
          ? button("Unfollow…", () => preview(controls.box, controls.errorNode, { params: stopOrStart(!channel.auto), section: "channels" }, () => call("DELETE", path)))
          : null,
      ];
  const controls = controlCell(buttons.filter(Boolean));
  return h(
    "tr",
    { dataset: { channelId: channel.channel_id } },
    h("th", { scope: "row" }, channel.channel_id),
    h("td", null, channelReason(channel), channel.read ? "" : " (not read)"),
    h("td", null, dash(channel.videos_published, formatCount)),
    h("td", null, dash(channel.last_read_at, (t) => formatRelative(t))),
    h("td", null, dash(channel.next_read_at, (t) => formatRelative(t))),
    h("td", null, dash(channel.units_per_day, (n) => n.toFixed(1))),
    h("td", null, dash(channel.freshness_p50_seconds, formatSeconds)),
    controls.cell,
  );
}

function auditItem(entry) {
  const state = entry.after || entry.before || {};
  const what = entry.kind === "query" ? `query “${state.text || entry.target}”` : `channel ${entry.target}`;
  return h("li", null, `${formatRelative(entry.at)}: ${entry.actor} — ${entry.action} ${what}`);
}

async function load() {
  let queries, channels, audit;
  try {
    [queries, channels, audit] = await Promise.all([call("GET", "/queries"), call("GET", "/channels"), call("GET", "/audit", { params: new URLSearchParams({ limit: "20" }) })]);
  } catch (error) {
    refused(error, $("token-error"));
    if (!$("token-form").hidden || !$("sources-disabled").hidden) return;
    showTokenForm(explainError(error).message);
    return;
  }
  const managed = queries.managed_by_environment;
  $("token-form").hidden = true;
  $("sources-body").hidden = false;
  $("sources-managed").hidden = !managed;
  $("add-query").hidden = managed;
  $("add-channel").hidden = managed;
  clear($("queries-table").tBodies[0]).append(...queries.items.map((q) => queryRow(q, managed)));
  clear($("channels-table").tBodies[0]).append(...channels.items.map((c) => channelRow(c, managed)));
  clear($("audit-list")).append(...audit.items.map(auditItem));
}

function wireForms() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    tokens.set($("admin-token").value);
    $("admin-token").value = "";
    load();
  });
  const addQuery = $("add-query");
  addQuery.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("new-query").value;
    const weight = Number($("new-weight").value);
    preview(addQuery.querySelector(".what-if"), addQuery.querySelector(".control-error"), { params: new URLSearchParams({ add_query: text }), section: "queries" }, async () => {
      await call("POST", "/queries", { body: { text, weight } });
      addQuery.reset();
    });
  });
  const addChannel = $("add-channel");
  addChannel.addEventListener("submit", (event) => {
    event.preventDefault();
    const channelId = $("new-channel").value.trim();
    preview(addChannel.querySelector(".what-if"), addChannel.querySelector(".control-error"), { params: new URLSearchParams({ add_channel: channelId }), section: "channels" }, async () => {
      await call("POST", "/channels", { body: { channel_id: channelId } });
      addChannel.reset();
    });
  });
}

// The page says whether ADMIN_TOKENS is set (services/api/dashboard.py): when it is not, say how
// to turn the admin API on instead of asking for a token it would refuse.
function start() {
  wireForms();
  if ($("sources").dataset.admin === "off") {
    const notice = $("sources-disabled");
    notice.hidden = false;
    notice.textContent =
      "The admin API is off: set ADMIN_TOKENS to label:token pairs (tokens of at least 32 characters) and restart the API. " +
      "Until then the sources are the deployment's SEARCH_QUERIES and FOLLOW_CHANNELS.";
    return;
  }
  if (tokens.get()) load();
  else showTokenForm();
}

start();
