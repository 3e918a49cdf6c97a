#!/bin/sh
# Imports tubewatch's Kibana saved objects (data view, Discover search, visualizations, dashboard)
# through Kibana's saved objects API. Run by the one-shot `kibana-setup` service in
# docker-compose.yml; by hand: KIBANA_URL=http://127.0.0.1:5601 sh deploy/kibana/import-saved-objects.sh
# Idempotent: the objects have fixed ids and are overwritten.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
kibana_url=${KIBANA_URL:-http://127.0.0.1:5601}
objects=${SAVED_OBJECTS_FILE:-$here/tubewatch.ndjson}
response=$(mktemp)
trap 'rm -f "$response"' EXIT

status=$(curl -sS -o "$response" -w '%{http_code}' \
    -X POST "$kibana_url/api/saved_objects/_import?overwrite=true" \
    -H 'kbn-xsrf: tubewatch' \
    --form "file=@$objects")

if [ "$status" = "200" ] && grep -q '"success":true' "$response"; then
    echo "tubewatch: imported $(grep -c . "$objects") saved objects into Kibana at $kibana_url"
    exit 0
fi
echo "tubewatch: importing saved objects into $kibana_url failed (HTTP $status):" >&2
cat "$response" >&2
echo >&2
exit 1
