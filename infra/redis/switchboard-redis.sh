#!/bin/bash
# switchboard-redis: a Redis Cluster node of infra/docker-compose.yml (image: infra/redis/Dockerfile).
#
#   switchboard-redis [redis-server options...]   write the ACL file, then run redis-server with it
#   switchboard-redis render-acl FILE             only write the ACL file (tests)
#   switchboard-redis health                      the healthcheck: PING as haproxy-check
#
# The passwords are secret files (compose `secrets:`, /run/secrets/<name>; SECRETS_DIR elsewhere):
# redis_check_password (haproxy-check) and redis_switchboard_password (switchboard). The ACL file
# holds their SHA-256 only (Redis' `#<hash>` form), and no password is ever an argument.
set -euo pipefail

SECRETS_DIR=${SECRETS_DIR:-/run/secrets}
ACL_TEMPLATE=${ACL_TEMPLATE:-/usr/local/etc/redis/users.acl.tmpl}
ACL_FILE=${ACL_FILE:-/usr/local/etc/redis/users.acl}

die() {
  printf 'switchboard-redis: %s\n' "$*" >&2
  exit 2
}

secret() {
  local file="$SECRETS_DIR/$1" value=''
  [ -r "$file" ] || die "secret $1 is missing ($file): set it in compose (secrets:), see docs/DEPLOYMENT.md"
  IFS= read -r value <"$file" || true
  value=${value%$'\r'}
  [ -n "$value" ] || die "secret $1 is empty ($file)"
  printf '%s' "$value"
}

sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

render_acl() {
  local out=$1 text
  [ -r "$ACL_TEMPLATE" ] || die "no ACL template at $ACL_TEMPLATE"
  text=$(grep -v -e '^#' -e '^[[:space:]]*$' "$ACL_TEMPLATE")
  text=${text//'{{REDIS_CHECK_PASSWORD_SHA256}}'/$(sha256 "$(secret redis_check_password)")}
  text=${text//'{{REDIS_SWITCHBOARD_PASSWORD_SHA256}}'/$(sha256 "$(secret redis_switchboard_password)")}
  [[ $text != *"{{"* ]] || die "placeholder left in $ACL_TEMPLATE"
  (umask 077 && printf '%s\n' "$text" >"$out")
}

case "${1:-}" in
  render-acl) render_acl "${2:?render-acl FILE}" ;;
  health)
    # The password reaches redis-cli through its environment (REDISCLI_AUTH), not its arguments.
    # A refused login prints an error and falls back to the default user: only a bare PONG passes.
    out=$(REDISCLI_AUTH=$(secret redis_check_password) redis-cli --no-auth-warning -p "${REDIS_PORT:-6379}" \
      --user haproxy-check ping 2>&1) || exit 1
    [ "$out" = PONG ]
    ;;
  *)
    render_acl "$ACL_FILE"
    # redis-server runs as the redis user (the image's docker-entrypoint.sh drops to it).
    if [ "$(id -u)" = 0 ]; then chown redis:redis "$ACL_FILE"; fi
    exec docker-entrypoint.sh redis-server "$@" --aclfile "$ACL_FILE"
    ;;
esac
