#!/bin/sh
# Renders nginx/gateway.conf.template into "$NGINX_PREFIX/nginx.conf" and makes the folders nginx
# needs under that prefix (logs/, tmp/). POSIX sh + awk only, so it runs in a slim nginx image, in
# docker compose and in the tests alike. Settings come from the environment:
#   NGINX_UPSTREAMS     required; gateway replicas, "host:port host:port" (spaces or commas)
#   NGINX_LISTEN        port or addr:port to listen on               (default 8080)
#   NGINX_PREFIX        folder for conf, pid, logs and temp files     (default /tmp/gateway-nginx)
#   NGINX_WEB_ROOT      the web form folder                           (default <repo>/web)
#   NGINX_RATE          API requests per client                       (default 50r/s)
#   NGINX_BURST         requests over the rate let through at once    (default 100)
#   NGINX_BODY_MAX      largest request body                          (default 8m)
#   NGINX_TRIES         replicas tried per request                    (default 3)
#   NGINX_CONNECT_TIMEOUT / NGINX_READ_TIMEOUT                        (default 2s / 60s)
#   NGINX_MAX_FAILS / NGINX_FAIL_TIMEOUT  passive health of a replica (default 3 / 5s)
#   NGINX_WORKERS       worker processes                              (default auto)
#   NGINX_USER          "user" directive, only meaningful when started as root (default none)
#   NGINX_ACCESS_LOG    access log path, or "off"                     (default <prefix>/logs/access.log)
#   NGINX_ERROR_LOG     error log path, or "stderr"                   (default <prefix>/logs/error.log)
#   NGINX_ERROR_LOG_LEVEL                                             (default warn)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
template="${NGINX_TEMPLATE:-$here/gateway.conf.template}"
prefix="${NGINX_PREFIX:-/tmp/gateway-nginx}"
web_root="${NGINX_WEB_ROOT:-$here/../web}"

fail() { echo "nginx/render.sh: $*" >&2; exit 2; }

[ -n "${NGINX_UPSTREAMS:-}" ] || fail "NGINX_UPSTREAMS is empty: give the gateway replicas as \"host:port host:port\""
[ -f "$template" ] || fail "template not found: $template"
[ -d "$web_root" ] || fail "web root not found: $web_root"
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
web_root=$(cd "$web_root" && pwd)

# Values land inside nginx directives: allow only characters that cannot end a directive.
check() { # name value pattern
  printf '%s' "$2" | grep -Eq "^($3)\$" || fail "$1 has an unexpected value: '$2'"
}
check NGINX_PREFIX "$prefix" '/[A-Za-z0-9._/-]*'
check NGINX_WEB_ROOT "$web_root" '/[A-Za-z0-9._/-]*'
check NGINX_LISTEN "${NGINX_LISTEN:-8080}" '([0-9.]+:|\[[0-9a-fA-F:]+\]:)?[0-9]{1,5}'
check NGINX_RATE "${NGINX_RATE:-50r/s}" '[0-9]+r/[sm]'
check NGINX_BURST "${NGINX_BURST:-100}" '[0-9]+'
check NGINX_BODY_MAX "${NGINX_BODY_MAX:-8m}" '[0-9]+[kmKM]?'
check NGINX_TRIES "${NGINX_TRIES:-3}" '[0-9]+'
check NGINX_CONNECT_TIMEOUT "${NGINX_CONNECT_TIMEOUT:-2s}" '[0-9]+(ms|s|m)?'
check NGINX_READ_TIMEOUT "${NGINX_READ_TIMEOUT:-60s}" '[0-9]+(ms|s|m)?'
check NGINX_MAX_FAILS "${NGINX_MAX_FAILS:-3}" '[0-9]+'
check NGINX_FAIL_TIMEOUT "${NGINX_FAIL_TIMEOUT:-5s}" '[0-9]+(ms|s|m)?'
check NGINX_WORKERS "${NGINX_WORKERS:-auto}" 'auto|[0-9]+'
check NGINX_ERROR_LOG_LEVEL "${NGINX_ERROR_LOG_LEVEL:-warn}" 'debug|info|notice|warn|error|crit'
[ -z "${NGINX_USER:-}" ] || check NGINX_USER "$NGINX_USER" '[A-Za-z0-9_-]+( [A-Za-z0-9_-]+)?'
access_log="${NGINX_ACCESS_LOG:-$prefix/logs/access.log}"
check NGINX_ACCESS_LOG "$access_log" 'off|/[A-Za-z0-9._/-]*'
error_log="${NGINX_ERROR_LOG:-$prefix/logs/error.log}"
check NGINX_ERROR_LOG "$error_log" 'stderr|/[A-Za-z0-9._/-]*'

servers=""
for u in $(printf '%s' "$NGINX_UPSTREAMS" | tr ',' ' '); do
  check "NGINX_UPSTREAMS entry" "$u" '[A-Za-z0-9._-]+:[0-9]{1,5}|\[[0-9a-fA-F:]+\]:[0-9]{1,5}'
  servers="$servers    server $u max_fails=${NGINX_MAX_FAILS:-3} fail_timeout=${NGINX_FAIL_TIMEOUT:-5s};
"
done
[ -n "$servers" ] || fail "NGINX_UPSTREAMS holds no server"

user_directive=""
[ -z "${NGINX_USER:-}" ] || user_directive="user $NGINX_USER;"

mkdir -p "$prefix/logs" "$prefix/tmp"

R_PREFIX="$prefix" R_WEB_ROOT="$web_root" R_SERVERS="$servers" R_USER="$user_directive" \
R_LISTEN="${NGINX_LISTEN:-8080}" R_RATE="${NGINX_RATE:-50r/s}" R_BURST="${NGINX_BURST:-100}" \
R_BODY_MAX="${NGINX_BODY_MAX:-8m}" R_TRIES="${NGINX_TRIES:-3}" \
R_CONNECT_TIMEOUT="${NGINX_CONNECT_TIMEOUT:-2s}" R_READ_TIMEOUT="${NGINX_READ_TIMEOUT:-60s}" \
R_WORKERS="${NGINX_WORKERS:-auto}" R_ACCESS_LOG="$access_log" R_ERROR_LOG="$error_log" R_ERROR_LOG_LEVEL="${NGINX_ERROR_LOG_LEVEL:-warn}" \
awk '
  function put(s, key, val,   i, out) {
    out = ""
    while ((i = index(s, key)) > 0) { out = out substr(s, 1, i - 1) val; s = substr(s, i + length(key)) }
    return out s
  }
  {
    line = $0
    if (line == "@@UPSTREAM_SERVERS@@") { printf "%s", ENVIRON["R_SERVERS"]; next }
    line = put(line, "@@USER_DIRECTIVE@@", ENVIRON["R_USER"])
    line = put(line, "@@PREFIX@@", ENVIRON["R_PREFIX"])
    line = put(line, "@@WEB_ROOT@@", ENVIRON["R_WEB_ROOT"])
    line = put(line, "@@LISTEN@@", ENVIRON["R_LISTEN"])
    line = put(line, "@@RATE@@", ENVIRON["R_RATE"])
    line = put(line, "@@BURST@@", ENVIRON["R_BURST"])
    line = put(line, "@@BODY_MAX@@", ENVIRON["R_BODY_MAX"])
    line = put(line, "@@TRIES@@", ENVIRON["R_TRIES"])
    line = put(line, "@@CONNECT_TIMEOUT@@", ENVIRON["R_CONNECT_TIMEOUT"])
    line = put(line, "@@READ_TIMEOUT@@", ENVIRON["R_READ_TIMEOUT"])
    line = put(line, "@@WORKERS@@", ENVIRON["R_WORKERS"])
    line = put(line, "@@ACCESS_LOG@@", ENVIRON["R_ACCESS_LOG"])
    line = put(line, "@@ERROR_LOG_LEVEL@@", ENVIRON["R_ERROR_LOG_LEVEL"])
    line = put(line, "@@ERROR_LOG@@", ENVIRON["R_ERROR_LOG"])
    if (line ~ /@@[A-Z_]+@@/) { print "unknown placeholder in template: " line > "/dev/stderr"; exit 3 }
    print line
  }
' "$template" > "$prefix/nginx.conf.new"
mv "$prefix/nginx.conf.new" "$prefix/nginx.conf"
echo "$prefix/nginx.conf"
