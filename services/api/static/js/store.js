// The dashboard's one state store: the whole page state in one object, replaced (never mutated) by
// update(), and the listeners that turn each new state into the view. Pure: no DOM.

export function createStore(initial) {
  let state = initial;
  const listeners = new Set();
  return {
    get() {
      return state;
    },
    // `change` is a function of the current state, or the fields to replace. Returning the same
    // state object changes nothing and renders nothing.
    update(change) {
      const next = typeof change === "function" ? change(state) : { ...state, ...change };
      if (next === state) return;
      const previous = state;
      state = next;
      for (const listener of listeners) listener(state, previous);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

// The state of a freshly opened page with these filters (state.js).
export function initialState(filters) {
  return {
    filters,
    rangeProblem: false, // the custom range's start is after its end (and was not applied)
    filtersOpen: false, // the filter panel, folded away on a phone
    channelTitles: {}, // channel id -> title, from every answer that named one
    list: null, // the result list (list.js)
    live: null, // arrivals newer than the list (list.js)
    chart: { loading: true, interval: "hour", histogram: null, message: null },
    status: null, // { body } from /api/v1/status, or { error }
    queries: null, // { items } from /api/v1/queries, or { error }
  };
}

// The titles with these (channel id, title) pairs added; the same object when none is new.
export function withTitles(titles, pairs) {
  let next = titles;
  for (const [id, title] of pairs) {
    if (id && title && next[id] !== title) {
      if (next === titles) next = { ...titles };
      next[id] = title;
    }
  }
  return next;
}
