// Unit tests of format.js. Numbers and times follow the reader's locale and time zone, so these run
// in en-US and UTC (make jstest sets LC_ALL=en_US.UTF-8 and TZ=UTC).

import assert from "node:assert/strict";
import test from "node:test";

import {
  formatAbsolute,
  formatBucket,
  formatCount,
  formatDuration,
  formatRelative,
  parseDuration,
  formatSeconds,
  formatTick,
  formatViews,
  fromLocalInput,
  plural,
  toLocalInput,
} from "../../services/api/static/js/format.js";

const HOUR = 3600e3;
const NOW = Date.parse("2026-03-01T12:00:00Z");

test("runs in en-US and UTC", () => {
  const { locale, timeZone } = Intl.DateTimeFormat().resolvedOptions();
  assert.equal(locale, "en-US", "run with LC_ALL=en_US.UTF-8 (make jstest)");
  assert.equal(timeZone, "UTC", "run with TZ=UTC (make jstest)");
});

test("counts and views", () => {
  assert.equal(formatCount(1234567), "1,234,567");
  assert.equal(plural(1, "video"), "1 video");
  assert.equal(plural(2, "video"), "2 videos");
  assert.equal(plural(1200, "call"), "1,200 calls");
  assert.equal(formatViews(null), null);
  assert.equal(formatViews(1), "1 view");
  assert.equal(formatViews(999), "999 views");
  assert.equal(formatViews(6712), "6.7K views");
  assert.equal(formatViews(12345), "12K views");
  assert.equal(formatViews(652400), "652K views");
  assert.equal(formatViews(1_512_000), "1.5M views");
});

test("durations", () => {
  assert.equal(formatDuration(null), null);
  assert.equal(formatDuration(0), "0:00");
  assert.equal(formatDuration(59), "0:59");
  assert.equal(formatDuration(61), "1:01");
  assert.equal(formatDuration(3600), "1:00:00");
  assert.equal(formatDuration(3 * 3600 + 5 * 60 + 9), "3:05:09");
  assert.equal(formatSeconds(null), null);
  assert.equal(formatSeconds(30), "30 s");
  assert.equal(formatSeconds(600), "10 min");
  assert.equal(formatSeconds(7200), "2.0 h");
});

test("relative and absolute times", () => {
  const ago = (ms) => new Date(NOW - ms).toISOString();
  assert.equal(formatRelative(ago(3000), NOW), "just now");
  assert.equal(formatRelative(new Date(NOW + 20_000).toISOString(), NOW), "in a few seconds");
  assert.equal(formatRelative(ago(5 * 60e3), NOW), "5 minutes ago");
  assert.equal(formatRelative(ago(HOUR), NOW), "1 hour ago");
  assert.equal(formatRelative(ago(26 * HOUR), NOW), "yesterday");
  assert.equal(formatRelative(ago(15 * 24 * HOUR), NOW), "2 weeks ago");
  assert.equal(formatAbsolute("2026-03-01T09:05:00Z"), "Mar 1, 2026, 9:05 AM");
});

test("chart bucket labels", () => {
  const start = Date.parse("2026-03-01T09:00:00Z");
  assert.equal(formatBucket(start, HOUR), "Sun, Mar 1, 09:00 AM–10:00 AM");
  assert.equal(formatBucket(start, 24 * HOUR), "Sun, Mar 1");
  assert.equal(formatTick(start, HOUR), "09:00 AM");
  assert.equal(formatTick(start, 24 * HOUR), "Sun, Mar 1");
});

test("datetime-local fields round trip in local time", () => {
  assert.equal(toLocalInput(null), "");
  assert.equal(toLocalInput("2026-03-01T09:05:30Z"), "2026-03-01T09:05");
  assert.equal(fromLocalInput("2026-03-01T09:05"), "2026-03-01T09:05:00.000Z");
  assert.equal(fromLocalInput(""), null);
  assert.equal(fromLocalInput("nonsense"), null);
});

test("durations as published_within takes them, in milliseconds; anything else is null", () => {
  assert.equal(parseDuration("PT1H"), 3600e3);
  assert.equal(parseDuration("P1W"), 7 * 86400e3);
  assert.equal(parseDuration("P1DT12H"), 1.5 * 86400e3);
  assert.equal(parseDuration("PT90M"), 5400e3);
  assert.equal(parseDuration("PT30S"), 30e3);
  for (const text of ["", null, "P", "PT", "P1DT", "P1Y", "P1M", "p1d", "PT0S", "PT1.5H"]) assert.equal(parseDuration(text), null, text);
});
