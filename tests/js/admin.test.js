// Unit tests of admin.js: the token kept per tab, the requests it makes, refusals explained, the
// what-if in words. Run by `make jstest` in en-US and UTC.

import assert from "node:assert/strict";
import test from "node:test";

import { ADMIN_PREFIX, TOKEN_KEY, adminCall, adminRequest, channelReason, explainError, reweightParams, tokenStore, whatIfLines } from "../../services/api/static/js/admin.js";

function memoryStorage() {
  const items = new Map();
  return { getItem: (k) => (items.has(k) ? items.get(k) : null), setItem: (k, v) => items.set(k, String(v)), removeItem: (k) => items.delete(k), items };
}

const TOKEN = "t".repeat(40);

test("the token is kept trimmed under one key of the tab's storage and cleared", () => {
  const storage = memoryStorage();
  const tokens = tokenStore(storage);
  assert.equal(tokens.get(), "");
  tokens.set(`  ${TOKEN}\n`);
  assert.equal(storage.items.get(TOKEN_KEY), TOKEN);
  assert.equal(tokens.get(), TOKEN);
  tokens.clear();
  assert.equal(tokens.get(), "");
});

test("requests carry the token as a bearer header, JSON bodies, merge patches for PATCH, and no cookies", () => {
  const post = adminRequest(TOKEN, "POST", { text: "chess" });
  assert.equal(post.headers.Authorization, `Bearer ${TOKEN}`);
  assert.equal(post.headers["Content-Type"], "application/json");
  assert.equal(post.body, '{"text":"chess"}');
  assert.equal(post.credentials, "omit");
  assert.equal(adminRequest(TOKEN, "PATCH", { paused: true }).headers["Content-Type"], "application/merge-patch+json");
  assert.equal(adminRequest(TOKEN, "GET").body, undefined);
});

test("the token never goes into the URL; a refusal keeps the API's code and parameter", async () => {
  const seen = [];
  const fetcher = async (url, init) => {
    seen.push([url, init]);
    return { ok: false, status: 409, json: async () => ({ error: { code: "conflict", message: "the query 'chess' is already followed", parameter: "text" } }) };
  };
  await assert.rejects(adminCall(fetcher, TOKEN, "POST", "/queries", { body: { text: "chess" } }), (error) => {
    assert.equal(error.code, "conflict");
    assert.equal(error.parameter, "text");
    assert.equal(explainError(error).kind, "control");
    return true;
  });
  const [[url]] = seen;
  assert.equal(url, `${ADMIN_PREFIX}/queries`);
  assert.ok(!url.includes(TOKEN));
  const noContent = async () => ({ ok: true, status: 204, json: async () => assert.fail("a 204 has no body") });
  assert.equal(await adminCall(noContent, TOKEN, "DELETE", "/queries/q_1"), null);
});

test("404 saying ADMIN_TOKENS is the admin API off; 401 and 429 ask for the token again", () => {
  assert.equal(explainError({ status: 404, code: "not_found", message: "the admin API is off: set ADMIN_TOKENS" }).kind, "disabled");
  assert.equal(explainError({ status: 404, code: "not_found", message: "no query q_1 is followed" }).kind, "control");
  assert.equal(explainError({ status: 401, code: "unauthorized", message: "" }).kind, "token");
  assert.equal(explainError({ status: 429, code: "too_many_requests", message: "" }).kind, "token");
});

test("the what-if names each item whose interval changes and the mean wait before and after", () => {
  const figures = (interval) => ({ interval_seconds: interval, expected_mean_delay_seconds: interval / 2, calls_per_day: 1 });
  const plan = {
    queries: [
      { name: "cricket", id: "q_1", now: figures(600), after: figures(300) },
      { name: "chess", id: "q_2", now: figures(1200), after: null },
      { name: "go", id: "q_3", now: figures(60), after: figures(60) },
    ],
    channels: [],
    search: { mean_delay_now_seconds: 400, mean_delay_after_seconds: 150, starved_now: false, starved_after: true, based_on: "2026-12-02T12:00:00Z" },
    units: { mean_delay_now_seconds: null, mean_delay_after_seconds: null, starved_now: false, starved_after: false, based_on: null },
  };
  assert.deepEqual(whatIfLines(plan, "queries"), [
    "cricket: every 10 min → every 5 min",
    "chess: every 20 min → not polled",
    "Mean wait of a new video: 7 min → 3 min",
    "After this change the budget no longer covers every item at its longest interval.",
  ]);
  assert.deepEqual(whatIfLines(plan, "channels"), ["The fetcher has not saved a plan yet: the intervals are known after its first polls."]);
});

test("a reweight asks the what-if for the query's id and its new weight", async () => {
  const params = reweightParams("q_0123456789abcdef", 2.5);
  assert.equal(params.toString(), "reweight_query=q_0123456789abcdef%3A2.5");
  const seen = [];
  const fetcher = async (url) => {
    seen.push(url);
    return { ok: true, status: 200, json: async () => ({}) };
  };
  await adminCall(fetcher, TOKEN, "GET", "/plan", { params });
  assert.match(seen[0], /\/api\/v1\/admin\/plan\?reweight_query=q_0123456789abcdef%3A2\.5$/);
});

test("a channel says why it is read", () => {
  const base = { followed: false, pinned: false, auto: false, excluded: false, paused: false, rank: null, count: null };
  assert.equal(channelReason({ ...base, followed: true }), "followed");
  assert.equal(channelReason({ ...base, auto: true, rank: 2, count: 31, pinned: true }), "pinned, auto #2 (31 found)");
  assert.equal(channelReason({ ...base, excluded: true, auto: true }), "excluded");
  assert.equal(channelReason(base), "not followed");
});
