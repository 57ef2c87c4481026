#!/usr/bin/env bash
# Compiles the integration suite's test binaries and stages them, with the
# suite service's command, in target/compose-suite (mounted at /suite by
# integration/docker-compose.yaml). The cases that run in compose:
#   gateway            the demo gateway, against the composed `envoy` service
#   openfunction, aws_lambda, aws_lambda_invoke, aws_credentials, azure_functions
#                      each case starts its own Envoy with its own config
#                      (the image's Envoy binary) inside the suite container
# Left to `make test` on the host: control_planes (reads deploy/ and fakes
# the Istio agent's files on the host), aws_lambda_moto (moto from the
# project's venv), oci (a loopback registry and skopeo), shipped_configs
# (repository file checks), migrate (the envoy-faas command and Envoy's
# validate mode, both from the host's dist/ and venv).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/compose-suite
SUITES=(gateway openfunction aws_lambda aws_lambda_invoke aws_credentials azure_functions)

rm -rf "$OUT" && mkdir -p "$OUT/bin"
targets=()
for s in "${SUITES[@]}"; do targets+=(--test "$s"); done
cargo test --quiet -p integration-tests "${targets[@]}" --no-run --message-format=json \
  | python3 -c '
import json, shutil, sys
for line in sys.stdin:
    m = json.loads(line)
    target = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "test" in target.get("kind", []):
        shutil.copy(m["executable"], sys.argv[1] + "/" + target["name"])
' "$OUT/bin"
cp integration/suite/run "$OUT/run"
for s in "${SUITES[@]}"; do
  [ -x "$OUT/bin/$s" ] || { echo "stage-suite: test binary $s was not built" >&2; exit 1; }
done
echo "stage-suite: ${SUITES[*]} -> $OUT"
