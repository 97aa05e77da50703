#!/bin/bash
# Makes the three secrets infra/docker-compose.yml needs, as random values in infra/secrets/
# (git-ignored; the directory owner-only), and infra/.env naming their files (Compose reads it).
# An existing secret is kept: run it again safely. Rotate by deleting a file and running it again
# (then recreate the containers that use it: docs/DEPLOYMENT.md, "Docker").
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 700 secrets
secret_file() { # name length alphabet
  local file="secrets/$1"
  [ -s "$file" ] && return
  local value
  # A finite input, read to its end: no SIGPIPE under pipefail.
  value=$(head -c 4096 /dev/urandom | LC_ALL=C tr -dc "$3" | cut -c "1-$2")
  [ "${#value}" = "$2" ] || { echo "could not make $1" >&2; exit 1; }
  printf '%s\n' "$value" >"$file"
  # Readable inside the containers (their users are not this host user): the directory keeps
  # them from other users of this host.
  chmod 644 "$file"
  echo "made $file"
}
secret_file vrrp_password 8 'A-Za-z0-9'
secret_file redis_check_password 32 'A-Za-z0-9'
secret_file redis_switchboard_password 32 'A-Za-z0-9'
if [ ! -e .env ]; then
  cat >.env <<ENV
VRRP_PASSWORD_FILE=./secrets/vrrp_password
REDIS_CHECK_PASSWORD_FILE=./secrets/redis_check_password
REDIS_SWITCHBOARD_PASSWORD_FILE=./secrets/redis_switchboard_password
ENV
  echo "made .env"
fi
