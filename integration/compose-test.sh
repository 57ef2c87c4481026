#!/usr/bin/env bash
# `make compose-test`: the integration suite through docker-compose, as
# users run it (integration/docker-compose.yaml, unchanged).
#
#  1. Installs docker.io, docker-compose and debootstrap from Debian if absent.
#  2. Uses the running Docker daemon if there is one; otherwise starts dockerd
#     with its own data root (.tools/docker, kept: the layer cache), exec
#     root and socket, and stops it by PID at the end, removing the mounts,
#     network links and netfilter rules it left behind.
#  3. Images: debian:bookworm-slim and envoyproxy/envoy:v1.40.0 are pulled;
#     where no registry is reachable, the first is built with debootstrap
#     (this machine's CA bundle for its TLS-intercepting egress proxy goes
#     into that local image only) and the second is the stand-in built from
#     integration/envoy-image under the same name.
#  4. Brings the stack up, checks the demo answers on the published port,
#     runs the `suite` service (the test binaries integration/stage-suite.sh
#     put in target/compose-suite), checks the composed Envoy's log for the
#     demo's secrets, brings the stack down.
# Exits non-zero if any step or any test fails. `make compose-test` builds
# and stages everything first.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE_FILE=integration/docker-compose.yaml
PROJECT=envoy-faas-test
BASE_IMAGE=debian:bookworm-slim
ENVOY_IMAGE=envoyproxy/envoy:v1.40.0
STAND_IN_LABEL=dev.envoy-faas.stand-in
DOCKER_STATE=${FAAS_DOCKER_STATE:-$PWD/.tools/docker}
SUITE_DIR=target/compose-suite
COMPOSE=(docker-compose)  # 1.29 from Debian; $COMPOSE_V2 (a v2 binary) runs second
# Secrets of envoy/compose.yaml that must never reach Envoy's log.
DEMO_SECRETS=(demo-secret ZGVtbzpkZW1vLXNlY3JldA wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY azure-host-key)
READY_WITHIN=120   # seconds for the stack to answer after `up`

say() { echo "compose-test: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root: it may start dockerd and build a base image with debootstrap (run as root, or sudo make compose-test)"
for f in dist/openfunction.wasm dist/aws_lambda.wasm dist/azure_functions.wasm dist/gcp_functions.wasm dist/faas-emulator \
         "$SUITE_DIR/run" "$SUITE_DIR/bin/gateway"; do
  [ -f "$f" ] || die "$f is missing: run make compose-test (it builds and stages them)"
done

# --- 1. tools -----------------------------------------------------------------
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  say "installing ${missing[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- 2. the daemon and what we must undo ---------------------------------------
RUN_DIR=$(mktemp -d /tmp/envoy-faas-compose.XXXXXX)  # short: socket paths
DOCKERD_PID=
STACK_UP=
compose() { "${COMPOSE[@]}" -f "$COMPOSE_FILE" -p "$PROJECT" --profile test "$@"; }
links() { ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//'; }
mounts() { awk '{print $2}' /proc/mounts; }

cleanup() {
  local status=$?
  set +e
  if [ -n "$STACK_UP" ]; then
    compose down -v --remove-orphans -t 5 >/dev/null 2>&1 || say "warning: compose down failed"
  fi
  if [ -n "$DOCKERD_PID" ]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null && wait "$DOCKERD_PID" 2>/dev/null
    # Mounts and links dockerd made and left (netns of the exec root, docker0).
    comm -13 <(sort "$RUN_DIR/mounts.before") <(mounts | sort) | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "warning: could not unmount $m"
    done
    comm -13 <(sort "$RUN_DIR/links.before") <(links | sort) | while read -r l; do
      case "$l" in docker0|br-*|veth*) ip link delete "$l" 2>/dev/null || say "warning: could not delete link $l" ;; esac
    done
    # Netfilter as it was: restore what existed, empty what dockerd created.
    for table in filter nat; do
      if ! grep -q "^\*$table" "$RUN_DIR/iptables.before"; then
        iptables -t "$table" -F && iptables -t "$table" -X
        [ "$table" != filter ] || iptables -P FORWARD ACCEPT
      fi
    done
    [ ! -s "$RUN_DIR/iptables.before" ] || iptables-restore <"$RUN_DIR/iptables.before"
    cat "$RUN_DIR/ip_forward.before" >/proc/sys/net/ipv4/ip_forward
  fi
  rm -rf "$RUN_DIR"
  exit "$status"
}
trap cleanup EXIT
trap 'say "FAILED at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM

if docker info >/dev/null 2>&1; then
  say "using the running Docker daemon${DOCKER_HOST:+ at $DOCKER_HOST}"
else
  export DOCKER_HOST=unix://$RUN_DIR/docker.sock
  mounts >"$RUN_DIR/mounts.before"
  links >"$RUN_DIR/links.before"
  iptables-save >"$RUN_DIR/iptables.before"
  cat /proc/sys/net/ipv4/ip_forward >"$RUN_DIR/ip_forward.before"
  mkdir -p "$DOCKER_STATE"
  dockerd --data-root "$DOCKER_STATE" --exec-root "$RUN_DIR/exec" --pidfile "$RUN_DIR/dockerd.pid" \
    -H "$DOCKER_HOST" >"$RUN_DIR/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 300); do
    docker info >/dev/null 2>&1 && break
    if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
      DOCKERD_PID=
      tail -n 20 "$RUN_DIR/dockerd.log" >&2
      die "dockerd could not start on this machine (its log above); the compose suite cannot run without a Docker engine"
    fi
    sleep 0.2
  done
  docker info >/dev/null 2>&1 || { tail -n 20 "$RUN_DIR/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
  say "started dockerd (pid $DOCKERD_PID, data root $DOCKER_STATE)"
fi

# --- 3. images ----------------------------------------------------------------
# The host's Debian mirror, for debootstrap and the image's apt sources.
debian_mirror() {
  cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | awk '/^URIs:/ || /^deb / {print $2}' | grep -v -- '-security' | head -n1 || true
}

build_base_image() {
  local mirror root=$RUN_DIR/rootfs
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list{,.d}: cannot build $BASE_IMAGE"
  say "no registry: building $BASE_IMAGE with debootstrap from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$RUN_DIR/debootstrap.log" 2>&1 \
    || { tail -n 20 "$RUN_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
    "$root"/etc/apt/sources.list
  mkdir -p "$root/var/lib/apt/lists/partial" "$root/usr/local/share/ca-certificates"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  # This machine's egress proxy re-signs TLS with a CA only the host trusts.
  local bundle=/usr/local/share/ca-certificates/host-bundle.crt
  cp /etc/ssl/certs/ca-certificates.crt "$root$bundle"
  tar -C "$root" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change "ENV PIP_CERT=$bundle SSL_CERT_FILE=$bundle" \
    --change 'LABEL dev.envoy-faas.local-base=true' \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
}

stand_in() { [ "$(docker image inspect -f "{{ index .Config.Labels \"$STAND_IN_LABEL\" }}" "$ENVOY_IMAGE" 2>/dev/null)" = true ]; }

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  timeout 600 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1 || build_base_image
fi
if docker image inspect "$ENVOY_IMAGE" >/dev/null 2>&1 && ! stand_in; then
  say "using $ENVOY_IMAGE"
elif ! stand_in && timeout 600 docker pull -q "$ENVOY_IMAGE" >/dev/null 2>&1; then
  say "pulled $ENVOY_IMAGE"
else
  say "building the stand-in for $ENVOY_IMAGE (integration/envoy-image)"
  DOCKER_BUILDKIT=0 docker build -t "$ENVOY_IMAGE" integration/envoy-image >"$RUN_DIR/build.log" 2>&1 \
    || { tail -n 30 "$RUN_DIR/build.log" >&2; die "building the $ENVOY_IMAGE stand-in failed"; }
fi

# --- 4. the stack and the suite, with each compose implementation -----------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# up, the demo on the published port, the suite service, the log check, down.
run_stack() {
  export FAAS_PORT FAAS_ADMIN_PORT
  FAAS_PORT=$(free_port)
  FAAS_ADMIN_PORT=$(free_port)
  say "$("${COMPOSE[@]}" version 2>/dev/null | head -n1)"
  STACK_UP=1
  compose up -d envoy functions
  say "waiting for the demo on the published port 127.0.0.1:$FAAS_PORT"
  local i answer=
  for i in $(seq $((READY_WITHIN * 4))); do
    answer=$(curl -s -m 2 "http://127.0.0.1:$FAAS_PORT/hello/compose" || true)
    [ "$answer" != "Hello, compose!" ] || break
    [ "$i" -lt $((READY_WITHIN * 4)) ] || { compose logs --tail 30 >&2; die "the demo did not answer on 127.0.0.1:$FAAS_PORT within ${READY_WITHIN} s (last answer: ${answer:-none})"; }
    sleep 0.25
  done

  # As the official image does, Envoy runs as the unprivileged `envoy` user.
  local uid
  uid=$(compose exec -T envoy cat /proc/1/status | awk '/^Uid:/ {print $2}')
  [ -n "$uid" ] && [ "$uid" != 0 ] || die "Envoy runs as uid '${uid}' in the envoy service, not as the envoy user"

  say "running the suite in the compose network"
  local suite_status=0 envoy_log secret
  compose run --rm suite || suite_status=$?
  envoy_log=$(compose logs --no-color envoy 2>&1)
  for secret in "${DEMO_SECRETS[@]}"; do
    ! grep -qF -- "$secret" <<<"$envoy_log" || die "a demo secret appears in the composed Envoy's log"
  done
  [ "$suite_status" = 0 ] || die "the suite failed in compose (exit $suite_status)"
  compose down -v --remove-orphans -t 5
  STACK_UP=
}

run_stack
if [ -n "${COMPOSE_V2:-}" ]; then
  # The same file, unchanged, with Compose v2 (the standalone binary).
  COMPOSE=("$COMPOSE_V2")
  run_stack
fi
say "passed: $(ls "$SUITE_DIR/bin" | tr '\n' ' ')through the composed gateway"
