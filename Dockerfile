# syntax=docker/dockerfile:1
# Switchboard's application image: every role (ROLES=api, projector, dispatcher, archiver), run as
# TypeScript through tsx exactly as `npm start` runs it, by an unprivileged user, with nothing
# mounted from the host. infra/docker-compose.yml builds it; by hand, from the repository root:
#
#   docker build -t switchboard .
#   docker run --rm -p 8080:8080 -e REDIS_URL=redis://switchboard:PASSWORD@redis:6379 switchboard
#
# Configuration is the environment (src/app/config.ts, the README's table); no secret is baked in.
# Checked statically by test/infra/docker.test.ts; built and run only where a Docker engine is
# (docs/DEPLOYMENT.md, "Docker").
ARG NODE_IMAGE=node:20-bookworm-slim

# 1. The npm packages, installed inside the image for its own platform: exactly the committed lock
#    (npm ci), production dependencies only (tsx, which runs the sources, is one).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# 2. The runtime: the packages and the sources, owned by root and read-only to the process.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/var/lib/switchboard
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
# DATA_DIR: the admin key of the first start (admin-key, 0600) and the archive; the only writable place.
RUN mkdir -p /var/lib/switchboard \
 && chown node:node /var/lib/switchboard \
 && chmod 700 /var/lib/switchboard
VOLUME ["/var/lib/switchboard"]
# The node image's unprivileged user (uid 1000).
USER node
EXPOSE 8080
# GET /health where this process serves the API (ROLES unset or with api); a worker-only process
# has no port: it is healthy while it runs (it exits on a fatal error, and the restart policy acts).
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const r=process.env.ROLES??'api';if(!r.split(',').map(s=>s.trim()).includes('api'))process.exit(0);fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health',{signal:AbortSignal.timeout(2500)}).then(x=>process.exit(x.ok?0:1),()=>process.exit(1))"]
# SIGTERM (docker stop) finishes in-flight work within SHUTDOWN_TIMEOUT_MS (10 s) and exits 0; an API
# instance drains for LB_DRAIN_MS first (up to twice that), so give `docker stop -t` or compose's
# stop_grace_period more than SHUTDOWN_TIMEOUT_MS + 2 x LB_DRAIN_MS (infra/docker-compose.yml: 20 s).
STOPSIGNAL SIGTERM
# REDIS_PASSWORD_FILE (a secret file, as compose mounts them) becomes REDIS_PASSWORD in the
# process's environment only; then node replaces the shell (PID 1 is node, which handles SIGTERM).
ENTRYPOINT ["/bin/sh", "-c", "if [ -n \"${REDIS_PASSWORD_FILE:-}\" ]; then REDIS_PASSWORD=$(cat \"$REDIS_PASSWORD_FILE\") || exit 2; export REDIS_PASSWORD; fi; exec node --import tsx src/main.ts", "switchboard"]
