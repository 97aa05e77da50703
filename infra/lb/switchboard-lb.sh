#!/bin/bash
# switchboard-lb: a load-balancer node of infra/docker-compose.yml (image: infra/lb/Dockerfile).
#
#   switchboard-lb run                        HAProxy + keepalived, supervised (the default)
#   switchboard-lb render-keepalived FILE     only write keepalived.conf (tests: keepalived -t)
#   switchboard-lb forward                    the published entry: TCP from this container's
#                                             ports to the same ports on LB_VIP
#
# Secrets are files (compose `secrets:`, /run/secrets/<name>; SECRETS_DIR elsewhere), never
# arguments or committed values:
#   vrrp_password          VRRP PASS authentication, 1-8 of [A-Za-z0-9_-] (run, render-keepalived)
#   redis_check_password   HAProxy's Redis check login (haproxy-check), no spaces/quotes (run)
# Settings (environment): LB_ROLE (MASTER|BACKUP), LB_ADDRESS (this node), LB_PEER (the other
# node), LB_VIP (address/prefix), LB_INTERFACE (eth0), LB_ROUTER_ID, LB_PRIORITY (101/100),
# LB_VIRTUAL_ROUTER_ID (51).
#
# Supervision (run): HAProxy (master-worker) and keepalived are children of this script. When one
# exits it is started again after a back-off (1 s doubling to 30 s; back to 1 s once it has run
# 60 s), and each restart is logged with its count. While HAProxy is down keepalived's check
# fails and the VIP moves to the peer; it comes back when HAProxy does (preemption). SIGTERM stops
# both and exits 0. If this script dies, tini (PID 1) exits and Docker restarts the container.
set -euo pipefail

SECRETS_DIR=${SECRETS_DIR:-/run/secrets}
HAPROXY_CFG=${HAPROXY_CFG:-/usr/local/etc/haproxy/haproxy.cfg}
KEEPALIVED_TMPL=${KEEPALIVED_TMPL:-/etc/keepalived/keepalived.conf.tmpl}
KEEPALIVED_CONF=${KEEPALIVED_CONF:-/etc/keepalived/keepalived.conf}
CHECK_SCRIPT=${CHECK_SCRIPT:-/etc/keepalived/check_haproxy.sh}
HAPROXY_PIDFILE=${HAPROXY_PIDFILE:-/var/run/haproxy/haproxy.pid}

log() { printf '%s switchboard-lb: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "$*"
  exit 2
}

# The first line of a secret file; refuses a missing or empty one.
secret() {
  local file="$SECRETS_DIR/$1" value
  [ -r "$file" ] || die "secret $1 is missing ($file): set it in compose (secrets:), see docs/DEPLOYMENT.md"
  IFS= read -r value <"$file" || [ -n "$value" ] || die "secret $1 is empty ($file)"
  value=${value%$'\r'}
  [ -n "$value" ] || die "secret $1 is empty ($file)"
  printf '%s' "$value"
}

word() { # value what
  [[ $1 =~ ^[A-Za-z0-9_.:/-]+$ ]] || die "bad $2: \"$1\""
  printf '%s' "$1"
}
ipv4() { [[ $1 =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] || die "bad $2: \"$1\" (an IPv4 address)"; }

# keepalived.conf from the shared template (infra/keepalived/keepalived.conf.tmpl): the same
# placeholders src/topology/keepalived/config.ts fills for the local topology.
render_keepalived() {
  local out=$1 role=${LB_ROLE:-} self=${LB_ADDRESS:-} peer=${LB_PEER:-} vip=${LB_VIP:-}
  local iface pass priority vrid unicast line key router_id script pidfile
  case "$role" in MASTER | BACKUP) ;; *) die "LB_ROLE must be MASTER or BACKUP (got \"$role\")" ;; esac
  ipv4 "$self" LB_ADDRESS
  ipv4 "$peer" LB_PEER
  [[ $vip =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] || die "bad LB_VIP: \"$vip\" (address/prefix)"
  iface=$(word "${LB_INTERFACE:-eth0}" LB_INTERFACE)
  pass=$(secret vrrp_password)
  [[ $pass =~ ^[A-Za-z0-9_-]{1,8}$ ]] || die "secret vrrp_password must be 1-8 of [A-Za-z0-9_-] (VRRP PASS authentication)"
  if [ "$role" = MASTER ]; then priority=${LB_PRIORITY:-101}; else priority=${LB_PRIORITY:-100}; fi
  vrid=${LB_VIRTUAL_ROUTER_ID:-51}
  [[ $priority =~ ^[0-9]+$ ]] && ((priority >= 1 && priority <= 254)) || die "bad LB_PRIORITY: $priority"
  [[ $vrid =~ ^[0-9]+$ ]] && ((vrid >= 1 && vrid <= 255)) || die "bad LB_VIRTUAL_ROUTER_ID: $vrid"
  unicast="    unicast_src_ip $self"$'\n'"    unicast_peer {"$'\n'"        $peer"$'\n'"    }"
  # Checked here, each in an assignment of its own: inside `declare -A values=(...)` below, a
  # refused value would print its error and leave an empty field (declare's status hides it).
  router_id=$(word "${LB_ROUTER_ID:-switchboard_${role,,}}" LB_ROUTER_ID)
  script=$(word "$CHECK_SCRIPT" CHECK_SCRIPT)
  pidfile=$(word "$HAPROXY_PIDFILE" HAPROXY_PIDFILE)
  declare -A values=(
    [ROUTER_ID]=$router_id
    # Liveness (weight -50: a dead HAProxy loses to any live one) and readiness (/ready 200: a
    # server up, weight -20), as src/topology/keepalived/config.ts renders them.
    [CHECK_COMMAND]="$script $pidfile 127.0.0.1:8404"
    [READY_COMMAND]="$script $pidfile http://127.0.0.1:8404/ready"
    [INSTANCE]=VI_SWITCHBOARD
    [STATE]=$role
    [INTERFACE]=$iface
    [VIRTUAL_ROUTER_ID]=$vrid
    [PRIORITY]=$priority
    [AUTH_PASS]=$pass
    [UNICAST]=$unicast
    [VIP]=$vip
    [DOWN_TIMER_ADVERTS]=""
  )
  [ -r "$KEEPALIVED_TMPL" ] || die "no template at $KEEPALIVED_TMPL"
  local text
  text=$(<"$KEEPALIVED_TMPL")
  for key in "${!values[@]}"; do text=${text//"{{$key}}"/"${values[$key]}"}; done
  [[ $text != *"{{"* ]] || die "placeholder left in $KEEPALIVED_TMPL: $(grep -o '{{[A-Z_]*}}' <<<"$text" | head -n1)"
  (umask 077 && printf '%s\n' "$text" >"$out")
}

forward() {
  local vip=${LB_VIP%%/*} cfg=${FORWARD_CFG:-/tmp/forward.cfg} port
  ipv4 "$vip" LB_VIP
  {
    printf 'global\n    log stdout format raw local0 notice\n    user haproxy\n    group haproxy\n    maxconn 4096\n'
    printf 'defaults\n    mode tcp\n    log global\n    timeout connect 2s\n    timeout client 1h\n    timeout server 1h\n'
    for port in ${FORWARD_PORTS:-8000 8443 8404}; do
      [[ $port =~ ^[0-9]+$ ]] || die "bad port in FORWARD_PORTS: $port"
      printf 'listen p%s\n    bind :%s\n    server vip %s:%s\n' "$port" "$port" "$vip" "$port"
    done
  } >"$cfg"
  # FORWARD_CHECK=1: check the config and stop (tests).
  if [ "${FORWARD_CHECK:-0}" = 1 ]; then exec haproxy -c -f "$cfg"; fi
  exec haproxy -db -f "$cfg"
}

run() {
  local check
  check=$(secret redis_check_password)
  [[ $check =~ ^[!-~]+$ && $check != *'"'* && $check != *"'"* && $check != *'\'* ]] ||
    die "secret redis_check_password must be printable with no spaces, quotes or backslashes"
  render_keepalived "$KEEPALIVED_CONF"
  keepalived -t -f "$KEEPALIVED_CONF" -l -n >/dev/null 2>&1 || die "the rendered keepalived.conf does not pass keepalived -t"
  REDIS_CHECK_PASSWORD=$check haproxy -c -q -f "$HAPROXY_CFG" || die "$HAPROXY_CFG does not pass haproxy -c"
  mkdir -p "$(dirname "$HAPROXY_PIDFILE")"

  declare -A pid=() started=() delay=() restarts=()
  start() {
    case "$1" in
      # Only HAProxy's environment holds the check password (its config reads it).
      haproxy) REDIS_CHECK_PASSWORD=$check haproxy -W -db -f "$HAPROXY_CFG" & ;;
      keepalived) keepalived --dont-fork --log-console --log-detail --vrrp -f "$KEEPALIVED_CONF" & ;;
    esac
    pid[$1]=$!
    started[$1]=$SECONDS
    log "$1 started (pid ${pid[$1]})"
  }
  local stopping=0
  stop() {
    stopping=1
    log "stopping"
    kill -TERM "${pid[@]}" 2>/dev/null || true
    wait || true
    exit 0
  }
  trap stop TERM INT
  for p in haproxy keepalived; do
    delay[$p]=1
    restarts[$p]=0
    start "$p"
  done
  local exited code p
  while :; do
    exited=''
    # Bash 5.1+: -p names the child that ended.
    wait -n -p exited && code=0 || code=$?
    ((stopping)) && exit 0
    for p in haproxy keepalived; do
      [ "${pid[$p]}" = "$exited" ] || continue
      if ((SECONDS - started[$p] >= 60)); then delay[$p]=1; fi
      restarts[$p]=$((restarts[$p] + 1))
      log "$p exited (code $code); restart ${restarts[$p]} in ${delay[$p]} s"
      sleep "${delay[$p]}" &
      wait $! || true
      ((stopping)) && exit 0
      delay[$p]=$((delay[$p] * 2 > 30 ? 30 : delay[$p] * 2))
      start "$p"
    done
  done
}

case "${1:-run}" in
  run) run ;;
  render-keepalived) render_keepalived "${2:?render-keepalived FILE}" ;;
  forward) forward ;;
  *) die "usage: switchboard-lb [run | render-keepalived FILE | forward]" ;;
esac
