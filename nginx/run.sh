#!/bin/sh
# Renders the config (see render.sh for the settings) and runs nginx unprivileged in the foreground.
#   NGINX_LOG_TO_STDIO=1  sends the error log to stderr and the access log to stdout (containers).
#   Extra arguments go to nginx, e.g. `nginx/run.sh -t` only tests the rendered config.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix="${NGINX_PREFIX:-/tmp/gateway-nginx}"
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
export NGINX_PREFIX="$prefix"
if [ "${NGINX_LOG_TO_STDIO:-0}" = 1 ]; then
  mkdir -p "$prefix/logs"
  ln -sf /dev/stderr "$prefix/logs/error.log"
  [ -n "${NGINX_ACCESS_LOG:-}" ] || ln -sf /dev/stdout "$prefix/logs/access.log"
fi
conf=$(sh "$here/render.sh")
if [ $# -gt 0 ]; then
  exec nginx -p "$prefix/" -c "$conf" -e "$prefix/logs/error.log" "$@"
fi
exec nginx -p "$prefix/" -c "$conf" -e "$prefix/logs/error.log" -g 'daemon off;'
