#!/usr/bin/env bash
# OCI images through a real registry (make oci-test):
# 1. the images are reproducible: a second build gives the same digests;
# 2. `make oci-push` pushes them to a loopback docker-registry (Debian's
#    registry:2) with skopeo;
# 3. tools/oci.py pulls each one back over the distribution API with the
#    checks Istio's and Envoy Gateway's fetchers make, and the extracted
#    module must equal dist/<filter>.wasm;
# 4. real Envoy loads each pulled module and serves requests through it
#    (tests/tests/oci.rs).
# The registry is stopped by PID and its storage removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VERSION:?}" "${FILTERS:?}" "${ENVOY_BIN:?}"
PYTHON=${PYTHON:-python3}

scratch=$(mktemp -d /tmp/envoy-faas-oci.XXXXXX)
registry_pid=
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

echo "== reproducible: a second build gives the same manifest digests"
"$PYTHON" tools/oci.py build --version "$VERSION" --out "$scratch/rebuild" $FILTERS >/dev/null
diff -u dist/oci/digests.env "$scratch/rebuild/digests.env"

echo "== loopback registry"
port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$scratch/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $scratch/storage}
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$scratch/registry.yml" > "$scratch/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then break; fi
  kill -0 "$registry_pid" 2>/dev/null || { cat "$scratch/registry.log"; exit 1; }
  sleep 0.05
done
curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null

echo "== make oci-push"
make --no-print-directory oci-push REGISTRY="127.0.0.1:$port/envoy-faas" SKOPEO_FLAGS=--dest-tls-verify=false

echo "== pull back with the fetchers' checks"
mkdir -p "$scratch/pulled"
set -a; . dist/oci/digests.env; set +a
for f in $FILTERS; do
  var="$(echo "$f" | tr 'a-z-' 'A-Z_')_SHA256"
  "$PYTHON" tools/oci.py check --registry "127.0.0.1:$port" --repo "envoy-faas/$f" --tag "$VERSION" \
    --expect-digest "${!var}" --out "$scratch/pulled/${f//-/_}.wasm"
  cmp "$scratch/pulled/${f//-/_}.wasm" "dist/${f//-/_}.wasm"
done

echo "== real Envoy serves through the pulled modules"
OCI_PULLED_DIR="$scratch/pulled" ENVOY_BIN="$ENVOY_BIN" \
  cargo test --quiet -p integration-tests --test oci -- --ignored
