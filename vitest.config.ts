import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Two targets: every suite against a single redis-server, and the API, routing and archive suites
 * again against a local 3-master Redis Cluster with replicas (SWITCHBOARD_TEST_TARGET=cluster).
 */
export default defineConfig({
  test: {
    pool: 'forks',
    // Files share their fork's module cache instead of each starting a fork of its own: 137 fork
    // starts and module transfers fewer (collect 26 s instead of 98 - 107 s; the suite 698 s
    // instead of 850 - 876 s in the same hour). Module state that a suite changes is put back by
    // it (useLuaFunctions: test/routing/lua-functions.test.ts); every suite passes either way.
    isolate: false,
    // Three forks on two cores: the suites wait on timers (failovers, VRRP, the browser) often
    // enough that a third keeps the cores busy (the run 551 s instead of 599 - 642 s with two). As
    // many forks at least as at most: with a minimum of one, the pool ends forks that idle, and a
    // run failed with "Terminating worker thread" where the cluster target's suites end.
    poolOptions: { forks: { maxForks: 3, minForks: 3, execArgv: ['--max-semi-space-size=32'] } },
    // src/main.ts built once for the Switchboard processes the suites start (test/support/main-build.ts).
    // The cluster target's suites each take a fresh Redis Cluster made ahead (test/support/cluster-pool.ts).
    globalSetup: ['test/support/main-build.ts', 'test/support/cluster-pool.ts', 'test/support/data-root.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'single',
          include: ['test/**/*.test.ts'],
          // The pool of clusters exists in the cluster project only.
          exclude: [...configDefaults.exclude, 'test/support/cluster-pool.test.ts'],
        },
      },
      {
        extends: true,
        // The cost bounds (decision-cost, shape-cost) run on the single target only: a step runs on
        // the one master of its workspace's slot, the same Lua either way.
        test: {
          name: 'cluster',
          include: [
            'test/api/**/*.test.ts',
            'test/routing/property.test.ts',
            'test/workers/**/*.test.ts',
            'test/e2e/multiprocess.test.ts',
            'test/e2e/crash.test.ts',
            'test/archive/archive.test.ts',
            'test/support/cluster-pool.test.ts',
          ],
          // A cluster client learns the nodes' own addresses: the relay that suite holds
          // connections with stands in front of a single Redis only. The others are refusals made
          // before anything reaches Redis, or documents checked without a server: the target
          // changes nothing in them, and each would take a cluster of its own.
          exclude: [
            ...configDefaults.exclude,
            'test/api/live-start.test.ts',
            // Redis stopped with SIGSTOP, on the single target's one server.
            'test/workers/leases-frozen.test.ts',
            'test/api/live-redis-down.test.ts',
            // A stall or a refused command hooked on the single client's one connection.
            'test/workers/timers-clock-offset.test.ts',
            'test/workers/alarm-clock-race.test.ts',
            // Blocked clients counted on the single target's one server (CLIENT LIST).
            'test/workers/alarm-handover.test.ts',
            'test/api/command-query.test.ts',
            'test/api/keys-strict.test.ts',
            'test/api/attributes-numbers.test.ts',
            'test/api/live-protocol-errors.test.ts',
            'test/api/http-edges-7.test.ts',
            // The liveness ping's rule, on the instance's sockets: the same whatever Redis is.
            'test/api/live-edges-5.test.ts',
            'test/api/openapi-lint.test.ts',
            // Every route's answers against the OpenAPI document: the same documents on either target.
            'test/api/openapi-conformance*.test.ts',
            // Commands racing on one workspace: its keys are one slot on one master, the same steps
            // either way (crash, multiprocess and the property suite race across processes here).
            'test/api/races-edges-*.test.ts',
            'test/api/events-doc.test.ts',
            'test/api/metrics-docs.test.ts',
            // The documents' examples against the answers: the same answers on either target.
            'test/api/docs-examples-edges-*.test.ts',
            // Names refused before anything is appended; a 503 not-replicated needs a master
            // without a replica, which the cluster target's masters all have.
            'test/api/names-agents.test.ts',
            'test/api/not-replicated-id.test.ts',
            // The docs' routing, lifecycle and settings rules case by case: the same steps as the
            // suites above run on this target (lifecycle, policy, routing-commands-edges, the
            // property suite), with nothing of their own that depends on where the keys are.
            'test/api/routing-rules-edges-*.test.ts',
            'test/api/settings-edges-*.test.ts',
            'test/api/lifecycle-edges-7.test.ts',
            // Many workspaces on one process, lookalike names' feeds and keys: workspaces-edges-1
            // holds their isolation on this target (each workspace's keys in its own slot).
            'test/api/workspaces-edges-[234].test.ts',
          ],
          env: { SWITCHBOARD_TEST_TARGET: 'cluster' },
        },
      },
    ],
  },
});
