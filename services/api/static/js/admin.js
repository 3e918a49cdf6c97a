// The admin API as the Sources page speaks it: the token kept for this tab only (sessionStorage,
// never in a URL), requests with it as a bearer header, and the what-if plan put into words.
// Nothing here touches the page, so tests run it under Node.

import { ApiError } from "./api.js";
import { formatSeconds } from "./format.js";

export const ADMIN_PREFIX = "/api/v1/admin";
export const TOKEN_KEY = "tubewatch.adminToken";

// The token lives in the tab's sessionStorage: typed once, gone when the tab closes, never sent
// anywhere but in the Authorization header of the admin API's requests.
export function tokenStore(storage) {
  return {
    get: () => storage.getItem(TOKEN_KEY) || "",
    set: (token) => storage.setItem(TOKEN_KEY, token.trim()),
    clear: () => storage.removeItem(TOKEN_KEY),
  };
}

export function adminRequest(token, method, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token}` };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = method === "PATCH" ? "application/merge-patch+json" : "application/json";
    init.body = JSON.stringify(body);
  }
  return init;
}

// One admin call: the answer's JSON (null for 204), or an ApiError with the API's code, message and
// the parameter at fault, so the page can show it next to the control that sent it.
export async function adminCall(fetcher, token, method, path, { body, params } = {}) {
  const query = params ? params.toString() : "";
  const url = `${ADMIN_PREFIX}${path}${query ? `?${query}` : ""}`;
  let response;
  try {
    response = await fetcher(url, adminRequest(token, method, body));
  } catch {
    throw new ApiError("The tubewatch API cannot be reached. Is the service running?", { path: url });
  }
  if (response.status === 204) return null;
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    answer = null;
  }
  if (!response.ok) {
    const detail = answer && answer.error ? answer.error : {};
    throw new ApiError(detail.message || `${url} answered ${response.status}`, {
      status: response.status,
      code: detail.code || null,
      parameter: detail.parameter || null,
      path: url,
    });
  }
  return answer;
}

// What a refusal means for the person at the page.
export function explainError(error) {
  if (error.status === 404 && error.code === "not_found" && /ADMIN_TOKENS/.test(error.message)) {
    return { kind: "disabled", message: error.message };
  }
  if (error.status === 401) return { kind: "token", message: "This token is not accepted. Type an admin token again." };
  if (error.status === 429) return { kind: "token", message: "Too many wrong tokens: wait a minute and try again." };
  return { kind: "control", message: error.message };
}

function every(figures) {
  return figures ? `every ${formatSeconds(figures.interval_seconds)}` : "not polled";
}

// The what-if request's parameters for a query's new weight: the plan with it, not a guess.
export function reweightParams(queryId, weight) {
  return new URLSearchParams({ reweight_query: `${queryId}:${weight}` });
}

// The what-if plan as lines: each item whose interval changes, then the mean delay before and after.
export function whatIfLines(plan, section) {
  const rows = section === "channels" ? plan.channels : plan.queries;
  const summary = section === "channels" ? plan.units : plan.search;
  const lines = [];
  for (const row of rows) {
    const before = every(row.now);
    const after = every(row.after);
    if (before === after) continue;
    lines.push(`${row.name}: ${before} → ${after}`);
  }
  if (summary.based_on === null) {
    lines.push("The fetcher has not saved a plan yet: the intervals are known after its first polls.");
  } else if (summary.mean_delay_now_seconds !== null || summary.mean_delay_after_seconds !== null) {
    const delay = (s) => (s === null ? "none" : formatSeconds(s));
    lines.push(`Mean wait of a new video: ${delay(summary.mean_delay_now_seconds)} → ${delay(summary.mean_delay_after_seconds)}`);
  }
  if (summary.starved_after && !summary.starved_now) lines.push("After this change the budget no longer covers every item at its longest interval.");
  if (lines.length === 0) lines.push("No planned interval changes.");
  return lines;
}

// Why a channel is read (or not), in a few words.
export function channelReason(channel) {
  if (channel.excluded) return "excluded";
  const why = [];
  if (channel.followed) why.push("followed");
  if (channel.pinned) why.push("pinned");
  if (channel.auto) why.push(`auto #${channel.rank} (${channel.count} found)`);
  if (channel.paused) why.push("paused");
  return why.join(", ") || "not followed";
}
