#!/usr/bin/env bash
# Audits the locked dependencies for known vulnerabilities (pip-audit, PyPI's advisory data).
# Fails on a vulnerability with a fix available, and also when it could not audit at all: on a
# machine that cannot reach the advisory service every package comes back "not found", and a
# silent pass would be a lie.
set -uo pipefail
cd "$(dirname "$0")/.."
report=$(mktemp)
trap 'rm -f "$report"' EXIT
.venv/bin/pip-audit -r requirements.lock --disable-pip --no-deps --progress-spinner off --format json \
    --output "$report" 2>/dev/null
status=$?
audited=$(.venv/bin/python - "$report" <<'PY'
import json, sys
deps = json.load(open(sys.argv[1]))["dependencies"]
print(sum(1 for d in deps if "skip_reason" not in d), len(deps))
PY
)
read -r checked total <<<"$audited"
if [[ "$checked" -eq 0 ]]; then
    echo "audit: could not audit: no advisory data reachable for any of $total locked packages" >&2
    exit 2
fi
echo "audit: $checked of $total locked packages checked"
exit "$status"
