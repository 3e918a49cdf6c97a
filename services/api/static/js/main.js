// The page's entry module (index.html loads it): starts the dashboard. Everything else is in
// modules that do nothing when imported, so tests can import them without a page.

import { init } from "./app.js";

init();
