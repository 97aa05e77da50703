#!/usr/bin/env bash
# Installs what Switchboard needs and is missing: Debian's redis-server (built with TLS), openssl
# (certificates for HAProxy and the Redis TLS tests), haproxy and keepalived for the topology (as
# root; a user who is not root needs those three only for the topology and the tests), the npm
# packages, and with SWITCHBOARD_BROWSER=1 (the test command) Debian's chromium for the browser
# tests, prometheus for promtool (the metrics and dashboard checks) and the locales' sources (the
# collation test). Safe to run again: it only acts on what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# The topology's tools (openssl for its certificates, haproxy, keepalived): installed whenever this
# runs as root. Only `npm run topology` (SWITCHBOARD_TOPOLOGY_TOOLS=1) and the tests use them, so
# for a user who is not root, `npm start` and the other tools carry on without them (a note says
# so); SWITCHBOARD_TOPOLOGY_TOOLS=0 leaves them out altogether.
topology=()
if [ "${SWITCHBOARD_TOPOLOGY_TOOLS:-}" != 0 ]; then
  command -v openssl >/dev/null 2>&1 || topology+=(openssl)
  command -v haproxy >/dev/null 2>&1 || topology+=(haproxy)
  command -v keepalived >/dev/null 2>&1 || topology+=(keepalived)
fi
if [ ${#topology[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] || [ "${SWITCHBOARD_TOPOLOGY_TOOLS:-}" = 1 ] || [ "${SWITCHBOARD_BROWSER:-0}" = 1 ]; then
    need+=("${topology[@]}")
  else
    echo "switchboard: ${topology[*]} not installed: not needed here, only by npm run topology and npm test (apt-get install ${topology[*]})" >&2
  fi
fi
# The browser tests' headless Chromium (test/browser): only where the test command asks for it
# (npm test sets SWITCHBOARD_BROWSER=1), so `npm start` never waits for a browser install.
if [ "${SWITCHBOARD_BROWSER:-0}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # promtool, which checks the /metrics text and the Grafana dashboard's PromQL in the tests.
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  # A locale whose collation is not byte order (test/routing/collation.test.ts builds en_US.UTF-8
  # with localedef from these sources).
  [ -f /usr/share/i18n/locales/en_US ] || need+=(locales)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "switchboard: missing ${need[*]}; install them (apt-get install ${need[*]}) or run this as root" >&2
    exit 1
  fi
  echo "switchboard: installing ${need[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The packages start a system redis on 6379 and a Prometheus server on 9090; Switchboard runs its
  # own Redis and needs only promtool, so leave both off.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now redis-server >/dev/null 2>&1 || true
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# `npm ci`: exactly the committed lock, which it never rewrites, so a fresh clone stays clean. The
# lock lists every platform's optional binaries (esbuild, rollup, biome), as npm writes it when it
# resolves without a node_modules in place (npm/cli#4828: with one, it keeps only this platform's,
# and `npm ci` then refuses the lock elsewhere). To change it: `rm -rf node_modules && npm install`.
# The packages' own install scripts are not run, but esbuild's (which checks its platform binary):
# the others compile optional native code for testcontainers' SSH transport (ssh2, cpu-features:
# a C++ build, and a compiler the machine need not have), send a usage report (@scarf/scarf,
# swagger-ui-dist's) or print a notice (protobufjs). Each works without.
stamp=node_modules/.switchboard-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "switchboard: installing npm packages" >&2
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  npm rebuild esbuild --loglevel=error >/dev/null
  cp package-lock.json "$stamp"
fi
