// How a video was found, in words for its card: one label per way (a search query, a followed
// channel's uploads), each once, the searches first; then the queries it belongs to by its text
// alone (matched "text": search has not found it for them). Pure: no DOM.

// A video lists its finds in found_by; anything the page does not know is left out.
export function foundByLabels(foundBy) {
  const searches = new Set();
  let channel = false;
  for (const entry of Array.isArray(foundBy) ? foundBy : []) {
    if (entry && entry.source === "search" && typeof entry.query === "string") searches.add(entry.query);
    else if (entry && entry.source === "channel") channel = true;
  }
  const labels = [...searches]
    .sort()
    .map((query) => ({ source: "search", text: `search: ${query}`, title: `Found by the search query “${query}”` }));
  if (channel) labels.push({ source: "channel", text: "channel", title: "Found in the uploads of a followed channel" });
  return labels;
}

// A video's matched maps each query it belongs to to "search" or "text": a label for each "text".
export function textMatchLabels(matched) {
  const queries = matched && typeof matched === "object" ? Object.keys(matched) : [];
  return queries
    .filter((query) => matched[query] === "text")
    .sort()
    .map((query) => ({
      source: "text",
      text: `text: ${query}`,
      title: `Its words match the search query “${query}”; that search has not found it (yet)`,
    }));
}
