#!/usr/bin/env bash
# Starts tubewatch's services in the foreground (Ctrl-C stops them; `make down` stops the servers).
# Without YOUTUBE_API_KEYS it runs the YouTube emulator too and points the fetcher at it.
set -euo pipefail
cd "$(dirname "$0")/.."

processes=(fetcher indexer notifier api)
if [[ -z "${YOUTUBE_API_KEYS:-}" ]]; then
    export YOUTUBE_API_URL="http://127.0.0.1:${EMULATOR_PORT:-8090}/youtube/v3"
    export YOUTUBE_API_KEYS="demo-key-alpha-0001 demo-key-bravo-0002"
    # The emulator's demo keys get a budget far beyond a day of polling, and the fetcher is told so.
    export EMULATOR_SEARCH_CALLS_PER_DAY="${EMULATOR_SEARCH_CALLS_PER_DAY:-1000000}"
    export YOUTUBE_SEARCH_CALLS_PER_DAY="${EMULATOR_SEARCH_CALLS_PER_DAY}"
    processes=(emulator "${processes[@]}")
    echo "tubewatch: no YOUTUBE_API_KEYS set: demo mode with the YouTube emulator on ${YOUTUBE_API_URL}"
fi
echo "tubewatch: dashboard and API at http://${API_HOST:-127.0.0.1}:${API_PORT:-8080}/ (Ctrl-C stops)"
exec .venv/bin/honcho -d . -f deploy/Procfile start "${processes[@]}"
