// Numbers, durations and times in the reader's locale and time zone.

const numberFormat = new Intl.NumberFormat(undefined);
// Like YouTube: 6.7K, 12K, 652K, 1.5M — two significant digits, three for 100K-999K style numbers.
const compactFormats = [2, 3].map((digits) => new Intl.NumberFormat(undefined, { notation: "compact", maximumSignificantDigits: digits }));
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const absoluteFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const shortDayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

export function formatCount(n) {
  return numberFormat.format(n);
}

export function formatViews(n) {
  if (n === null || n === undefined) return null;
  const text = n < 1000 ? numberFormat.format(n) : compactFormats[String(Math.floor(n)).length % 3 === 0 ? 1 : 0].format(n);
  return `${text} ${n === 1 ? "view" : "views"}`;
}

export function plural(n, one, many = `${one}s`) {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return null;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${h ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

const UNITS = [
  ["year", 365 * 86400],
  ["month", 30 * 86400],
  ["week", 7 * 86400],
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
];

export function formatRelative(iso, nowMs = Date.now()) {
  const seconds = Math.round((Date.parse(iso) - nowMs) / 1000);
  const size = Math.abs(seconds);
  if (size < 45) return seconds > 5 ? "in a few seconds" : "just now";
  for (const [unit, unitSeconds] of UNITS) {
    if (size >= unitSeconds) return relativeFormat.format(Math.trunc(seconds / unitSeconds), unit);
  }
  return relativeFormat.format(Math.trunc(seconds / 60), "minute");
}

export function formatAbsolute(iso) {
  return absoluteFormat.format(new Date(iso));
}

export function formatBucket(startMs, widthMs) {
  const start = new Date(startMs);
  if (widthMs >= 86400000) return shortDayFormat.format(start);
  return `${shortDayFormat.format(start)}, ${timeFormat.format(start)}–${timeFormat.format(new Date(startMs + widthMs))}`;
}

export function formatTick(ms, widthMs) {
  const at = new Date(ms);
  return widthMs >= 86400000 ? shortDayFormat.format(at) : timeFormat.format(at);
}

export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return null;
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// <input type="datetime-local"> speaks local wall-clock time without a zone.
export function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromLocalInput(value) {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

// An ISO 8601 duration as the API's published_within takes it (P1D, PT6H, P1W, P1DT12H), in
// milliseconds; null for anything else (years and months have no fixed length).
const DURATION = /^P(?:(\d+)W|(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?)$/;
export function parseDuration(text) {
  const match = DURATION.exec(text || "");
  if (!match || text === "P" || text.endsWith("T")) return null;
  const [weeks, days, hours, minutes, seconds] = match.slice(1).map((n) => Number(n || 0));
  const ms = ((((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000;
  return ms > 0 ? ms : null;
}
