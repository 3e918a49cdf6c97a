// Unit tests of store.js: one state object, replaced by update(), and listeners told of each change.

import assert from "node:assert/strict";
import test from "node:test";

import { emptyState } from "../../services/api/static/js/state.js";
import { createStore, initialState, withTitles } from "../../services/api/static/js/store.js";

test("update replaces the state and tells every listener the new and the previous state", () => {
  const store = createStore({ a: 1, b: { c: 2 } });
  const calls = [];
  const unsubscribe = store.subscribe((state, previous) => calls.push([state, previous]));
  const before = store.get();
  store.update({ a: 3 });
  assert.deepEqual(store.get(), { a: 3, b: { c: 2 } });
  assert.equal(store.get().b, before.b, "untouched fields keep their identity");
  assert.deepEqual(calls, [[store.get(), before]]);
  store.update((state) => ({ ...state, a: state.a + 1 }));
  assert.equal(store.get().a, 4);
  unsubscribe();
  store.update({ a: 5 });
  assert.equal(calls.length, 2);
});

test("an update that returns the same state renders nothing", () => {
  const store = createStore({ a: 1 });
  let calls = 0;
  store.subscribe(() => calls++);
  store.update((state) => state);
  assert.equal(calls, 0);
});

test("the initial state holds the filters and nothing loaded yet", () => {
  const filters = emptyState();
  const state = initialState(filters);
  assert.equal(state.filters, filters);
  assert.equal(state.list, null);
  assert.equal(state.live, null);
  assert.equal(state.chart.loading, true);
});

test("withTitles returns the same object unless a title is new", () => {
  const titles = { UCa: "A" };
  assert.equal(withTitles(titles, [["UCa", "A"], ["UCb", null], [null, "x"]]), titles);
  const next = withTitles(titles, [["UCb", "B"]]);
  assert.deepEqual(next, { UCa: "A", UCb: "B" });
  assert.deepEqual(titles, { UCa: "A" }, "never mutated");
});
