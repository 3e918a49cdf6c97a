// Unit tests of the chart's scaling (chart.js niceCeiling and layout): no DOM needed.

import assert from "node:assert/strict";
import test from "node:test";

import { layout, niceCeiling } from "../../services/api/static/js/chart.js";

test("the value axis ends on a round number at or above the tallest bar", () => {
  const cases = [
    [0, 1],
    [1, 1],
    [4, 4],
    [5, 5],
    [7, 8],
    [9, 10],
    [11, 15],
    [23, 25],
    [31, 40],
    [99, 100],
    [101, 150],
    [4500, 5000],
    [9100, 10000],
  ];
  for (const [value, ceiling] of cases) assert.equal(niceCeiling(value), ceiling, `niceCeiling(${value})`);
  for (let value = 1; value < 5000; value += 7) assert.ok(niceCeiling(value) >= value, `niceCeiling(${value})`);
});

test("bars fill the width and scale to the axis", () => {
  const counts = [0, 3, 7, 2];
  const geometry = layout(counts, 800);
  assert.equal(geometry.width, 800);
  assert.equal(geometry.height, 150);
  assert.equal(geometry.max, 8);
  assert.equal(geometry.slot * counts.length, 800 - 36 - 10);
  assert.ok(Math.abs(geometry.barW - geometry.slot * 0.78) < 1e-9);
  const bottom = geometry.y(0);
  assert.equal(bottom - geometry.y(geometry.max), geometry.innerH);
  assert.equal(bottom - geometry.y(4), geometry.innerH / 2);
});

test("a phone-width chart is shorter, never narrower than 240 px, and labels fewer bars", () => {
  const hours = Array.from({ length: 168 }, (_, i) => i % 5);
  const phone = layout(hours, 100);
  assert.equal(phone.width, 240);
  assert.equal(phone.height, 120);
  assert.ok(phone.barW >= 1);
  const desktop = layout(hours, 1200);
  assert.ok(phone.tickEvery > desktop.tickEvery);
  assert.ok(Math.ceil(hours.length / desktop.tickEvery) <= Math.floor((1200 - 46) / 90));
  assert.equal(layout([5], 800).tickEvery, 1);
});
