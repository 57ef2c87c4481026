#!/usr/bin/env bash
# `make run`: the emulator and Envoy with envoy/demo.yaml, in the foreground
# until Ctrl-C, then both are stopped. Expects `make build envoy` done.
set -euo pipefail
cd "$(dirname "$0")/.."

EMULATOR=target/release/faas-emulator
ENVOY=.venv/bin/envoy
LISTEN=127.0.0.1:10000
ADMIN=127.0.0.1:9901
FUNCTIONS=127.0.0.1:8090
mkdir -p .run

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped envoy and the emulator"
}
trap cleanup EXIT INT TERM

# Wait for a condition, polling, while the process it depends on lives.
wait_for() { # pid what log cmd...
  local pid=$1 what=$2 log=$3; shift 3
  for _ in $(seq 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: $what exited; its log ($log):" >&2; tail -n 30 "$log" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "error: $what did not become ready; see $log" >&2; exit 1
}

"$EMULATOR" --listen "$FUNCTIONS" >.run/emulator.log 2>&1 &
pids+=($!)
wait_for "${pids[0]}" "the emulator" .run/emulator.log grep -q listening .run/emulator.log

"$ENVOY" -c envoy/demo.yaml --log-level info >.run/envoy.log 2>&1 &
pids+=($!)
wait_for "${pids[1]}" "envoy" .run/envoy.log curl -sf "http://$ADMIN/ready"

cat <<MSG

envoy-faas demo is running (Ctrl-C stops it)
  gateway   http://$LISTEN      (Envoy + the openfunction, aws-lambda, azure-functions and gcp-functions modules)
  admin     http://$ADMIN
  functions http://$FUNCTIONS      (local function emulator)
  logs      .run/envoy.log, .run/emulator.log

Try:
  curl http://$LISTEN/hello/world
  curl 'http://$LISTEN/hello?name=Envoy'
  curl -d '{"name":"JSON"}' http://$LISTEN/hello
  curl 'http://$LISTEN/echo/any/path?b=2&a=1'
  curl -H 'authorization: Bearer mine' http://$LISTEN/secure
  curl --http2-prior-knowledge http://$LISTEN/hello/h2
  curl http://$LISTEN/lambda/SigV4          # aws-lambda: signed call to an (emulated) Function URL
  curl 'http://$LISTEN/azure?name=Azure'    # azure-functions: greeting, with the master function key
  curl http://$LISTEN/gcp/CloudRun          # gcp-functions: a private Cloud Run service, with a Google ID token
  curl http://$LISTEN/plain/not-a-function

MSG
wait "${pids[1]}"
