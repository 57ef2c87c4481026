#!/bin/sh
# The stand-in image's entrypoint, behaving as the official image's does:
# arguments starting with '-' are Envoy's; $loglevel adds --log-level;
# commands run as the `envoy` user (ENVOY_UID / ENVOY_GID renumber it)
# unless ENVOY_UID=0 or the container already runs as non-root.
set -e

case "$1" in
  -*) set -- envoy "$@" ;;
esac
if [ "$1" = envoy ] && [ -n "${loglevel:-}" ]; then
  set -- "$@" --log-level "$loglevel"
fi

if [ "${ENVOY_UID:-}" != 0 ] && [ "$(id -u)" = 0 ]; then
  [ -z "${ENVOY_UID:-}" ] || usermod -u "$ENVOY_UID" envoy
  [ -z "${ENVOY_GID:-}" ] || groupmod -g "$ENVOY_GID" envoy
  # The envoy user writes its log to the container's stdout/stderr.
  chown envoy:envoy /dev/stdout /dev/stderr
  exec setpriv --reuid=envoy --regid=envoy --init-groups "$@"
fi
exec "$@"
