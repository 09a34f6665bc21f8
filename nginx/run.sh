#!/bin/sh
# Renders the config (see render.sh for the settings) and runs nginx unprivileged in the foreground.
#   NGINX_LOG_TO_STDIO=1  error log to stderr (the inherited descriptor); access log to stdout when this
#                         user may open /dev/stdout, else to <prefix>/logs/access.log (said on stderr).
#   Extra arguments go to nginx, e.g. `nginx/run.sh -t` only tests the rendered config.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix="${NGINX_PREFIX:-/tmp/gateway-nginx}"
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
export NGINX_PREFIX="$prefix"
startup_log="$prefix/logs/error.log"
if [ "${NGINX_LOG_TO_STDIO:-0}" = 1 ]; then
  export NGINX_ERROR_LOG=stderr
  startup_log=stderr
  if [ -z "${NGINX_ACCESS_LOG:-}" ]; then
    # nginx reopens log paths by name; an unprivileged user may not reopen a stdout it did not create.
    if (: >>/dev/stdout) 2>/dev/null; then
      export NGINX_ACCESS_LOG=/dev/stdout
    else
      echo "nginx/run.sh: cannot reopen /dev/stdout as $(id -un 2>/dev/null || id -u); access log in $prefix/logs/access.log" >&2
    fi
  fi
elif [ -n "${NGINX_ERROR_LOG:-}" ]; then
  startup_log="$NGINX_ERROR_LOG"
fi
conf=$(sh "$here/render.sh")
if [ $# -gt 0 ]; then
  exec nginx -p "$prefix/" -c "$conf" -e "$startup_log" "$@"
fi
exec nginx -p "$prefix/" -c "$conf" -e "$startup_log" -g 'daemon off;'
