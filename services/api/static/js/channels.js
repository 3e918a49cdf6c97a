// Channel typeahead (WAI-ARIA combobox with a listbox popup) over /api/v1/channels.

import { getJson, isAbort } from "./api.js";
import { MAX_CHANNEL_Q_LENGTH, MAX_LIMIT } from "./contract.js";
import { clear, debounce, h } from "./dom.js";
import { formatCount } from "./format.js";

const SUGGESTIONS = 8;

export function createChannelPicker({ input, listbox, excluded, onPick, remember }) {
  let options = [];
  let active = -1;
  let controller = null;
  let seq = 0;

  function open() {
    input.setAttribute("aria-expanded", "true");
    listbox.hidden = false;
  }

  function close() {
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    listbox.hidden = true;
    active = -1;
  }

  function highlight(index) {
    const nodes = listbox.querySelectorAll("[role=option]");
    if (!nodes.length) return;
    active = (index + nodes.length) % nodes.length;
    nodes.forEach((node, i) => node.setAttribute("aria-selected", i === active ? "true" : "false"));
    input.setAttribute("aria-activedescendant", nodes[active].id);
    nodes[active].scrollIntoView({ block: "nearest" });
  }

  function pick(channel) {
    close();
    input.value = "";
    onPick(channel);
  }

  function render(note) {
    clear(listbox);
    active = -1;
    options.forEach((channel, i) => {
      const option = h(
        "li",
        { id: `channel-option-${i}`, role: "option", "aria-selected": "false", class: "option", dataset: { channelId: channel.channel_id } },
        h("span", { class: "option-title" }, channel.channel_title || channel.channel_id),
        h("span", { class: "option-count" }, `${formatCount(channel.video_count)} videos`),
      );
      // mousedown, not click: the input must keep focus (a blur would close the list first).
      option.addEventListener("mousedown", (event) => {
        event.preventDefault();
        pick(channel);
      });
      listbox.append(option);
    });
    if (note) listbox.append(h("li", { class: "option option--note", role: "presentation" }, note));
    open();
  }

  async function search() {
    const text = input.value.trim().slice(0, MAX_CHANNEL_Q_LENGTH);
    const mine = ++seq;
    if (controller) controller.abort();
    controller = new AbortController();
    const params = new URLSearchParams({ limit: String(Math.min(MAX_LIMIT, SUGGESTIONS + excluded().length)) });
    if (text) params.set("q", text);
    try {
      const { body } = await getJson("/api/v1/channels", params, { signal: controller.signal });
      if (mine !== seq) return;
      body.items.forEach((c) => remember(c.channel_id, c.channel_title));
      const skip = new Set(excluded());
      options = body.items.filter((c) => !skip.has(c.channel_id)).slice(0, SUGGESTIONS);
      render(options.length ? null : text ? `No channel matches “${text}”` : "No channels yet");
    } catch (error) {
      if (isAbort(error) || mine !== seq) return;
      options = [];
      render(`Channels unavailable: ${error.message}`);
    }
  }

  const searchSoon = debounce(search, 150);

  input.addEventListener("input", searchSoon);
  input.addEventListener("focus", () => search());
  input.addEventListener("blur", () => {
    searchSoon.cancel();
    close();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (listbox.hidden) {
        search();
        return;
      }
      highlight(active + (event.key === "ArrowDown" ? 1 : -1));
    } else if (event.key === "Enter") {
      if (!listbox.hidden && options.length) {
        event.preventDefault();
        pick(options[active >= 0 ? active : 0]);
      }
    } else if (event.key === "Escape") {
      if (!listbox.hidden) {
        event.preventDefault();
        close();
      }
    }
  });
  close();
}
