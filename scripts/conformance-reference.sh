#!/usr/bin/env bash
# Runs the conformance suite, as an implementer would, against the reference
# server and the Stripe emulator at level `all`, and keeps the JSON report,
# the JUnit file and the badge in conformance-report/ (CI keeps that folder).
set -euo pipefail
cd "$(dirname "$0")/.."

out=conformance-report
mkdir -p "$out"
work=$(mktemp -d)
emulator_port=12111
server_port=4021
secret="conformance-run-secret-$(date +%s)-0123456789abcdef"
pids=()
# Waits for the server to exit before removing its data directory: PGlite writes while it shuts down.
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work" || true
}
trap cleanup EXIT

node bin/stripe402.js emulator --port "$emulator_port" >"$work/emulator.log" 2>&1 &
pids+=($!)
STRIPE_SECRET_KEY=sk_test_emulator STRIPE_PUBLISHABLE_KEY=pk_test_emulator STRIPE402_SERVER_SECRET="$secret" \
  node bin/stripe402.js serve --port "$server_port" --ledger "pglite:$work/ledger" \
  --stripe-url "http://127.0.0.1:$emulator_port" --quiet >"$work/server.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 180); do
  curl -fs "http://127.0.0.1:$server_port/health" >/dev/null 2>&1 && break
  sleep 1
done
curl -fs "http://127.0.0.1:$server_port/health" >/dev/null || { cat "$work/server.log" >&2; exit 3; }

STRIPE402_SERVER_SECRET="$secret" node bin/conformance.js --target "http://127.0.0.1:$server_port" \
  --stripe-url "http://127.0.0.1:$emulator_port" --stripe-key sk_test_emulator \
  --failing-route /api/fail --level all \
  --json "$out/report.json" --junit "$out/junit.xml" --badge "$out/badge.svg"
