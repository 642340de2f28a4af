#!/usr/bin/env bash
# Validates docker-compose.yml as a user runs it, with no Docker daemon: every
# profile and the GPU override, each with only ADMIN_PASSWORD in .env.
#   scripts/check-compose.sh        (needs docker-compose or the docker compose plugin)
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  echo "neither docker-compose nor the docker compose plugin is installed" >&2
  exit 1
fi
# A project folder of its own, holding the files and a .env with the password alone.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp docker-compose.yml "$work/"
mkdir -p "$work/deploy"
cp -r deploy/. "$work/deploy/"
echo "ADMIN_PASSWORD=check-compose" > "$work/.env"
run() { (cd "$work" && env -i PATH="$PATH" HOME="${HOME:-/root}" "${compose[@]}" "$@"); }

for args in "" "--profile postgres" "--profile monitoring" "-f docker-compose.yml -f deploy/compose.gpu.yml" \
  "-f docker-compose.yml -f deploy/compose.gpu.yml --profile postgres --profile monitoring"; do
  # shellcheck disable=SC2086
  run $args config -q
  echo "ok: ${compose[*]} ${args:+$args }config"
done
# The GPU reservation reaches the ollama service.
run -f docker-compose.yml -f deploy/compose.gpu.yml config | grep -q "capabilities" \
  || { echo "the GPU override does not reach ollama" >&2; exit 1; }
# The dashboard Grafana loads is valid JSON.
python3 -m json.tool deploy/grafana/dashboards/ollama-gate.json >/dev/null \
  || { echo "deploy/grafana/dashboards/ollama-gate.json is not valid JSON" >&2; exit 1; }
# Without the password Compose refuses, naming it.
rm "$work/.env"
if out=$(run config -q 2>&1); then
  echo "compose accepted a missing ADMIN_PASSWORD" >&2
  exit 1
fi
echo "$out" | grep -q ADMIN_PASSWORD || { echo "unexpected error: $out" >&2; exit 1; }
echo "ok: without ADMIN_PASSWORD compose refuses, naming it"
