#!/bin/bash
# keepalived vrrp_script: exit 0 while HAProxy is alive, non-zero otherwise.
#
#   check_haproxy.sh [PIDFILE] [HOST:PORT]
#
# PIDFILE   haproxy's pidfile (default /run/haproxy.pid). The process it names must exist, must
#           be haproxy and must not be a zombie (kill -0 alone succeeds on a zombie, and on a
#           recycled pid).
# HOST:PORT optional: a TCP port HAProxy listens on (e.g. the stats page 127.0.0.1:8404); it must
#           accept a connection within 1 s. This catches a wedged HAProxy whose process still exists
#           and, in master-worker mode (the pidfile holds the master), a dead worker.
#           Or http://HOST:PORT/PATH: a GET of PATH must be answered 200 within 1 s (the stats
#           frontend's /ready: 200 only while the api backend has a server up, so an HAProxy just
#           restarted takes no VIP before it can serve).
#
# Runs as root from keepalived (script_user root + enable_script_security): this file and every
# directory above it must be writable by root only.
set -u
pidfile=${1:-/run/haproxy.pid}
probe=${2:-}

[ -r "$pidfile" ] || exit 1
read -r pid _ <"$pidfile" || exit 1
case "$pid" in '' | *[!0-9]*) exit 1 ;; esac
kill -0 "$pid" 2>/dev/null || exit 1
comm=$(cat "/proc/$pid/comm" 2>/dev/null) || exit 1
[ "$comm" = haproxy ] || exit 1
# Field 3 of /proc/PID/stat is the state; Z = zombie, X = dead. (comm has no spaces: safe split.)
read -r _ _ state _ <"/proc/$pid/stat" || exit 1
case "$state" in Z | X) exit 1 ;; esac

case "$probe" in
'') ;;
http://*)
  rest=${probe#http://}
  hostport=${rest%%/*}
  reqpath=/${rest#*/}
  [ "$hostport" = "$rest" ] && reqpath=/
  host=${hostport%:*}
  port=${hostport##*:}
  case "$port" in '' | *[!0-9]*) exit 1 ;; esac
  # The status line of the answer: "HTTP/1.x 200 ...".
  timeout 1 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" "$1" >&3
    read -r _ status _ <&3 || exit 1
    [ "$status" = 200 ]' probe "$host" "$port" "$reqpath" 2>/dev/null || exit 1
  ;;
*)
  host=${probe%:*}
  port=${probe##*:}
  case "$port" in '' | *[!0-9]*) exit 1 ;; esac
  timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' probe "$host" "$port" 2>/dev/null || exit 1
  ;;
esac
exit 0
