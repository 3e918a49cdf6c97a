// The values the dashboard shares with the API (parameter rules, a route): copies of the Python ones, which
// tests/unit/test_dashboard_constants.py compares with the API's parameter schema (it fails when a
// copy here drifts). index.html repeats four of them (the search box's maxlength, the sort and found-by options, the feed path).

// The sort orders of /api/v1/videos, and its default.
export const SORTS = ["-published_at", "published_at", "relevance"];
export const DEFAULT_SORT = "-published_at";
// The longest q the API accepts on /api/v1/videos and /api/v1/histogram.
export const MAX_Q_LENGTH = 200;
// The longest q the API accepts on /api/v1/channels.
export const MAX_CHANNEL_Q_LENGTH = 100;
// What a channel_id must look like.
export const CHANNEL_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
// The largest page (limit) of any list endpoint.
export const MAX_LIMIT = 100;
// The width of a histogram bucket per interval.
export const INTERVAL_MS = { hour: 3600e3, day: 86400e3 };
// The ways a video can have been found (the found_by filter of /api/v1/videos and the feed).
export const FOUND_BY_SOURCES = ["search", "channel"];
// The Atom feed of the video list's filters (the newest videos, for feed readers).
export const FEED_PATH = "/api/v1/feeds/videos.atom";
