// Unit tests of foundby.js: the labels a card shows for how its video was found.

import assert from "node:assert/strict";
import test from "node:test";

import { foundByLabels, textMatchLabels } from "../../services/api/static/js/foundby.js";

const CHANNEL = { source: "channel", channel_id: "UCaaaaaaaaaaaaaaaaaaaaaa", via: "poll" };

test("a search find names its query, a channel find says channel", () => {
  assert.deepEqual(
    foundByLabels([{ source: "search", query: "cricket" }]).map((label) => [label.source, label.text]),
    [["search", "search: cricket"]],
  );
  const [channel] = foundByLabels([CHANNEL]);
  assert.equal(channel.text, "channel");
  assert.match(channel.title, /followed channel/);
});

test("every way is shown once, the searches first in order, then the channel", () => {
  const labels = foundByLabels([
    CHANNEL,
    { source: "search", query: "football" },
    { ...CHANNEL, via: "push" },
    { source: "search", query: "cricket" },
    { source: "search", query: "football" },
  ]);
  assert.deepEqual(
    labels.map((label) => label.text),
    ["search: cricket", "search: football", "channel"],
  );
  assert.equal(labels[0].title, "Found by the search query “cricket”");
});

test("what the page does not know is left out, and nothing is no label", () => {
  assert.deepEqual(foundByLabels(undefined), []);
  assert.deepEqual(foundByLabels([]), []);
  assert.deepEqual(foundByLabels([null, "search", { source: "rumour" }, { source: "search" }]), []);
});

test("a query the video matches by text alone is marked, one search confirmed is not", () => {
  const labels = textMatchLabels({ cricket: "search", "test match": "text", bowl: "text" });
  assert.deepEqual(
    labels.map((label) => [label.source, label.text]),
    [
      ["text", "text: bowl"],
      ["text", "text: test match"],
    ],
  );
  assert.match(labels[0].title, /has not found it/);
  assert.deepEqual(textMatchLabels(undefined), []);
  assert.deepEqual(textMatchLabels({ cricket: "search", odd: "rumour" }), []);
});
