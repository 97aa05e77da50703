/**
 * The infrastructure files are valid for the tools installed here:
 * - the rendered local haproxy.cfg and haproxy.docker.cfg pass `haproxy -c -f` with no warning,
 *   and carry the directives the topology relies on;
 * - keepalived.conf (MASTER and BACKUP) passes `keepalived -t -f`; its VRRP password has no
 *   default (none in the code or the template), the local topology's is random per data
 *   directory, kept across launches and replaced by --fresh;
 *   enable_script_security really refuses a check script in a world-writable directory;
 * - check_haproxy.sh tells a live HAProxy from a dead one (run as root, like keepalived runs it);
 * - the Redis Enterprise database definition has the agreed fields.
 * (The Docker files: test/infra/docker.test.ts.)
 * A config check that must fail is included for each tool, so a passing check means something.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { PROBLEM_TYPES } from '../../src/adapters/http/problem.ts';
import {
  checkHaproxyConfig,
  ensureSelfSignedCert,
  HAPROXY_DOCKER_CONFIG,
  type HaproxyConfigOptions,
  INFRA_DIR,
  renderHaproxyConfig,
  writeHaproxyConfig,
} from '../../src/topology/haproxy/config.ts';
import { type HaproxyHandle, startHaproxy } from '../../src/topology/haproxy/process.ts';
import {
  CHECK_HAPROXY_SCRIPT,
  checkKeepalivedConfig,
  KEEPALIVED_TEMPLATE,
  loadOrCreateVrrpPassword,
  newVrrpPassword,
  renderKeepalivedConfig,
  writeKeepalivedConfig,
} from '../../src/topology/keepalived/config.ts';
import { LaunchContext } from '../../src/topology/local/context.ts';
import { freePort } from '../../src/topology/redis-server.ts';
import { PROJECT_ROOT } from '../support/processes.ts';
import { sleep, waitFor } from '../support/wait.ts';
import {
  execFileP,
  httpGet,
  launchOptions,
  startLocalHaproxy as startSharedHaproxy,
  startTinyHttp,
  tempDir,
} from './helpers.ts';

let tmp: { dir: string; remove(): Promise<void> };
let pem: string;
const started: HaproxyHandle[] = [];

/** A real haproxy on free loopback ports with the local template, stopped after the suite. */
const startLocalHaproxy = (
  runDir: string,
  extra: Pick<HaproxyConfigOptions, 'apiServers' | 'apiCheckInter'> = {},
) => startSharedHaproxy(runDir, pem, started, extra);

/** keepalived -t checks that the interface exists: use one this machine has. */
function anInterface(): string {
  const names = existsSync('/sys/class/net') ? readdirSync('/sys/class/net') : [];
  if (names.includes('eth0')) return 'eth0';
  return names.find((n) => n !== 'lo') ?? 'lo';
}

beforeAll(async () => {
  tmp = await tempDir('cfg');
  pem = await ensureSelfSignedCert(path.join(tmp.dir, 'certs'));
});

afterAll(async () => {
  for (const h of started) await h.stop().catch(() => undefined);
  await tmp?.remove();
});

describe('haproxy.cfg (local template)', () => {
  it('renders with default ports and passes haproxy -c without warnings', async () => {
    const runDir = path.join(tmp.dir, 'run-default');
    const file = await writeHaproxyConfig({
      runDir,
      tlsPem: pem,
      redisCheckPassword: 'check-Pa$$word',
      apiServers: [{ host: '127.0.0.1', port: 3001 }],
      redisServers: [
        { host: '127.0.0.1', port: 7001 },
        { host: '127.0.0.1', port: 7002 },
      ],
    });
    const result = await checkHaproxyConfig(file);
    expect(result.output).toContain('Configuration file is valid');
    expect(result.ok).toBe(true);
    expect(result.output).not.toMatch(/\[WARNING\]|\[ALERT\]/);

    const cfg = await readFile(file, 'utf8');
    for (const line of [
      'bind 127.0.0.1:8000',
      'bind 127.0.0.1:8443 ssl crt',
      'bind 127.0.0.1:8404',
      'bind 127.0.0.1:12000',
      'balance roundrobin',
      'option httpchk GET /health',
      'timeout tunnel 1h',
      'retries 3',
      'option redispatch',
      'retry-on conn-failure empty-response response-timeout',
      'stats uri /stats',
      `stats socket ${runDir}/haproxy.sock mode 600 level admin expose-fd listeners`,
      'option tcp-check',
      'tcp-check send "AUTH haproxy-check check-Pa\\$\\$word\\r\\n"',
      'tcp-check expect string +OK',
      'tcp-check send "PING\\r\\n"',
      'tcp-check expect string +PONG',
      'tcp-check send "QUIT\\r\\n"',
      'server api1 127.0.0.1:3001 check',
      'server redis2 127.0.0.1:7002 check',
    ]) {
      expect(cfg, line).toContain(line);
    }
    expect(cfg).not.toMatch(/\{\{[A-Z_]+\}\}/);
  });

  it('renders configurable ports and an empty API backend (servers added at run time)', async () => {
    const cfg = renderHaproxyConfig({
      runDir: '/run/sb',
      tlsPem: pem,
      redisCheckPassword: 'x',
      bindAddress: '0.0.0.0',
      httpPort: 18000,
      tlsPort: 18443,
      statsPort: 18404,
      redisPort: 19000,
    });
    expect(cfg).toContain('bind 0.0.0.0:18000');
    expect(cfg).toContain('bind 0.0.0.0:18443 ssl');
    expect(cfg).toContain('bind 0.0.0.0:18404');
    expect(cfg).toContain('bind 0.0.0.0:19000');
    expect(cfg).not.toMatch(/^\s+server /m);
    const file = path.join(tmp.dir, 'empty.cfg');
    await writeFile(file, cfg.replaceAll('/run/sb', path.join(tmp.dir, 'run-empty')));
    const result = await checkHaproxyConfig(file);
    expect(result.ok, result.output).toBe(true);
  });

  it('will not share a port with another HAProxy: a second one on the same ports fails to start, the first keeps every connection', async () => {
    const first = await startLocalHaproxy(path.join(tmp.dir, 'run-port-owner'));
    const runDir = path.join(tmp.dir, 'run-port-second');
    const file = await writeHaproxyConfig({
      runDir,
      tlsPem: pem,
      redisCheckPassword: 'x',
      httpPort: first.httpPort,
      tlsPort: first.tlsPort,
      statsPort: first.statsPort,
      redisPort: first.redisPort,
    });
    const second = await startHaproxy({ configPath: file, socket: path.join(runDir, 'haproxy.sock') }).then(
      (hp) => {
        started.push(hp);
        return hp;
      },
      (err: Error) => err,
    );
    // With SO_REUSEPORT both would listen and the kernel would split the connections.
    expect(second).toBeInstanceOf(Error);
    expect((second as Error).message).toMatch(
      new RegExp(
        `cannot bind socket \\(Address already in use\\) for \\[127\\.0\\.0\\.1:${first.httpPort}\\]`,
      ),
    );
    // Every request on the port reaches the first one (the only one with a server behind it).
    const backend = await startTinyHttp('first');
    try {
      await first.rt.addServer('api', 'only', '127.0.0.1', backend.port, { check: false });
      for (let i = 0; i < 12; i++) {
        const r = await httpGet('127.0.0.1', first.httpPort, '/');
        expect(r).toEqual({ status: 200, body: 'first' });
      }
    } finally {
      await backend.close();
    }
  });

  it('rejects values that would break the config or the Redis inline AUTH', () => {
    const base = { runDir: '/run/sb', tlsPem: pem, redisCheckPassword: 'ok' };
    expect(() => renderHaproxyConfig({ ...base, redisCheckPassword: 'has space' })).toThrow();
    expect(() => renderHaproxyConfig({ ...base, redisCheckPassword: 'quo"te' })).toThrow();
    expect(() => renderHaproxyConfig({ ...base, httpPort: 70000 })).toThrow();
    expect(() => renderHaproxyConfig({ ...base, apiCheckInter: '1 s' })).toThrow();
    expect(() => renderHaproxyConfig({ ...base, apiServers: [{ host: 'a b', port: 1 }] })).toThrow();
    expect(() => renderHaproxyConfig({ ...base, maxconn: 0 })).toThrow();
  });

  it('leaves maxconn to HAProxy (its file-descriptor limit) unless one is given', () => {
    const base = { runDir: '/run/sb', tlsPem: pem, redisCheckPassword: 'ok' };
    expect(renderHaproxyConfig(base)).not.toMatch(/^\s*maxconn /m);
    expect(renderHaproxyConfig({ ...base, maxconn: 20_000 })).toMatch(/^ {4}maxconn 20000$/m);
  });

  it('holds more live-feed WebSockets than the 4,096 connections the template used to allow', async () => {
    // Backend: a WebSocket server that says hello; 4,500 sockets open through HAProxy at once.
    const backend = http.createServer((req, res) => {
      res.writeHead(req.url === '/health' ? 200 : 404).end();
    });
    const wss = new WebSocketServer({ server: backend });
    wss.on('connection', (ws) => ws.send('hello'));
    // A backlog as deep as the kernel allows (somaxconn): HAProxy opens 500 connections at once, and
    // a busy machine accepts them slowly; past node's default backlog (511) the SYNs are dropped and
    // HAProxy's connect (2 s, 3 retries) can give up with a 503.
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', 65_535, () => r()));
    const backendPort = (backend.address() as { port: number }).port;
    const sockets: WebSocket[] = [];
    try {
      const { hp, rt, httpPort } = await startLocalHaproxy(path.join(tmp.dir, 'run-many'), {
        apiServers: [{ host: '127.0.0.1', port: backendPort }],
        apiCheckInter: '200ms',
      });
      await waitFor('api1 UP', async () => (await rt.serverState('api', 'api1'))?.checkStatus === 'L7OK');
      // Its checks stop once it is UP: this is about how many connections HAProxy holds. The
      // backend shares this process with the 4,500 clients, and a machine busy enough to keep it
      // from answering two checks (200 ms apart) in time would mark it DOWN: 503 for the rest.
      await rt.command('disable health api/api1');
      const info = await rt.command('show info');
      const maxconn = Number(/^Maxconn: (\d+)$/m.exec(info)?.[1]);
      // Derived from the descriptor limit (about half of it): this machine allows more than 4,500.
      expect(maxconn, info).toBeGreaterThan(4500);
      // Opened in batches of 500, each batch once the one before has been greeted, every socket
      // kept open: all 4,500 are held at once at the end (checked below), as when they were
      // opened all together, but a loaded machine no longer has 4,500 handshakes racing one
      // timer. Each socket still has 30 s from its own batch's start to be greeted.
      const greeted: (string | null)[] = [];
      /** Sockets that closed after their hello: HAProxy must hold every one. */
      const closedAfterHello: number[] = [];
      for (let from = 0; from < 4500; from += 500) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(500, 4500 - from) }, async (_, j) => {
            const ws = new WebSocket(`ws://127.0.0.1:${httpPort}/feed`);
            sockets.push(ws);
            // Why a socket was not greeted: null when it was.
            return new Promise<string | null>((resolve) => {
              const timer = setTimeout(() => resolve('no hello in 30 s'), 30_000);
              ws.once('message', () => {
                clearTimeout(timer);
                ws.once('close', () => closedAfterHello.push(from + j));
                resolve(null);
              });
              ws.once('error', (err) => {
                clearTimeout(timer);
                resolve(err.message);
              });
            });
          }),
        );
        greeted.push(...batch);
        if (batch.some((g) => g !== null)) break;
      }
      const reasons: Record<string, number> = {};
      for (const g of greeted) if (g !== null) reasons[g] = (reasons[g] ?? 0) + 1;
      expect(reasons, 'sockets not greeted, by reason').toEqual({});
      expect(greeted).toHaveLength(4500);
      // All 4,500 open at once, through HAProxy: none closed, and HAProxy counts them.
      expect(closedAfterHello, 'sockets closed after their hello').toEqual([]);
      expect(sockets.filter((ws) => ws.readyState !== WebSocket.OPEN)).toHaveLength(0);
      const held = Number(/^CurrConns: (\d+)$/m.exec(await rt.command('show info'))?.[1]);
      expect(held).toBeGreaterThanOrEqual(4500);
      await hp.stop();
    } finally {
      for (const ws of sockets) ws.terminate();
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise<void>((r) => backend.close(() => r()));
    }
  }, 120_000);

  it('haproxy -c fails on a broken config (the check is meaningful)', async () => {
    const cfg = renderHaproxyConfig({ runDir: '/run/sb', tlsPem: pem, redisCheckPassword: 'x' }).replace(
      'balance roundrobin',
      'balance no-such-algorithm',
    );
    const file = path.join(tmp.dir, 'broken.cfg');
    await writeFile(file, cfg);
    const result = await checkHaproxyConfig(file);
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/ALERT/);
  });

  it('the TLS frontend serves the self-signed certificate and the stats page answers', async () => {
    const runDir = path.join(tmp.dir, 'run-live');
    const { hp, httpPort, tlsPort, statsPort } = await startLocalHaproxy(runDir);
    const tls = execFileP(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${tlsPort}`, '-servername', 'localhost'],
      {
        timeout: 10_000,
      },
    );
    tls.child.stdin?.end(); // EOF on stdin: s_client closes after the handshake
    const { stdout } = await tls.catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    expect(String(stdout)).toMatch(/subject=.*CN ?= ?localhost/);
    const res = await fetch(`http://127.0.0.1:${statsPort}/stats;csv`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('api_https');
    const metrics = await fetch(`http://127.0.0.1:${statsPort}/metrics`);
    expect(await metrics.text()).toContain('haproxy_process_');
    // The API backend has no server yet: HAProxy answers 503 itself.
    expect((await fetch(`http://127.0.0.1:${httpPort}/health`)).status).toBe(503);
    await hp.stop();
  });

  it('reuses its connections to an API server: one for a client keep-alive connection, not one per request', async () => {
    // Backend: counts the connections that carried a request other than the health check.
    const carrying = new Set<object>();
    const backend = http.createServer((req, res) => {
      if (req.url !== '/health') carrying.add(req.socket);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    const backendPort = (backend.address() as { port: number }).port;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const { hp, rt, file, httpPort } = await startLocalHaproxy(path.join(tmp.dir, 'run-reuse'), {
        apiServers: [{ host: '127.0.0.1', port: backendPort }],
        apiCheckInter: '200ms',
      });
      await waitFor('api1 UP', async () => (await rt.serverState('api', 'api1'))?.checkStatus === 'L7OK');
      const post = () =>
        new Promise<number>((resolve, reject) => {
          const req = http.request(
            { host: '127.0.0.1', port: httpPort, path: '/v1/workspaces/w/contacts', method: 'POST', agent },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end('{}');
        });
      for (let i = 0; i < 30; i++) expect(await post()).toBe(200);
      // With `option http-server-close` (the template before) each of the 30 had a connection of its own.
      expect(carrying.size).toBeLessThanOrEqual(2);
      expect(await readFile(file, 'utf8')).not.toContain('http-server-close');
      await hp.stop();
    } finally {
      agent.destroy();
      backend.closeAllConnections();
      await new Promise<void>((r) => backend.close(() => r()));
    }
  });

  it('removes a server only once the request it is serving has been answered', async () => {
    // Backend: answers /slow after 800 ms (a request in progress when the server is removed).
    let slowArrived = false;
    const backend = http.createServer((req, res) => {
      if (req.url === '/slow') {
        slowArrived = true;
        setTimeout(() => res.writeHead(200).end('done'), 800);
      } else res.writeHead(200).end();
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    const backendPort = (backend.address() as { port: number }).port;
    try {
      const { hp, rt, httpPort } = await startLocalHaproxy(path.join(tmp.dir, 'run-drain'));
      await rt.addServer('api', 'slow1', '127.0.0.1', backendPort, { inter: '200ms' });
      await waitFor('slow1 UP', async () => (await rt.serverState('api', 'slow1'))?.status === 'UP');
      const answer = fetch(`http://127.0.0.1:${httpPort}/slow`).then(
        async (r) => `${r.status} ${await r.text()}`,
        (err: Error) => `failed: ${err.message}`,
      );
      // In progress: the backend has it (on a loaded machine 200 ms was not always enough).
      await waitFor('the request at the backend', () => slowArrived, { everyMs: 10 });
      const t0 = Date.now();
      await rt.removeServer('api', 'slow1');
      // Before, its session was cut at once (`shutdown sessions`): the client got no answer.
      expect(await answer).toBe('200 done');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
      expect(await rt.listServers('api')).toEqual([]);
      await hp.stop();
    } finally {
      backend.closeAllConnections();
      await new Promise<void>((r) => backend.close(() => r()));
    }
  });

  it('answers its own errors as problem+json with a documented type and X-Request-Id: no instance up, a broken answer (not a request it cannot parse)', async () => {
    const { rt, httpPort } = await startLocalHaproxy(path.join(tmp.dir, 'run-errors'));
    const asProblem = async (r: Response) => {
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      const body = (await r.json()) as { type: string; status: number; detail: string };
      expect(PROBLEM_TYPES[body.type.replace('/problems/', '') as keyof typeof PROBLEM_TYPES]).toBe(r.status);
      expect(body.status).toBe(r.status);
      return body;
    };
    const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    // No API instance in the backend: HAProxy's own 503.
    const none = await fetch(`http://127.0.0.1:${httpPort}/v1/workspaces/default/agents`);
    expect(none.status).toBe(503);
    expect((await asProblem(none)).type).toBe('/problems/no-instance-available');
    expect(none.headers.get('x-request-id')).toMatch(UUID);
    const given = await fetch(`http://127.0.0.1:${httpPort}/health`, {
      headers: { 'x-request-id': 'req-42' },
    });
    await asProblem(given);
    expect(given.headers.get('x-request-id')).toBe('req-42');

    // An instance whose answer is not HTTP: a 502, naming the id the instance was given.
    const heard: string[] = [];
    const broken = net.createServer((socket) => {
      // HAProxy may reset the connection once it has read the garbage: not this test's failure.
      socket.on('error', () => undefined);
      socket.once('data', (b) => {
        heard.push(/x-request-id: (\S+)/i.exec(b.toString())?.[1] ?? '');
        socket.end('nonsense\r\n\r\n');
      });
    });
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', () => r()));
    try {
      await rt.addServer('api', 'broken1', '127.0.0.1', (broken.address() as net.AddressInfo).port, {
        check: false,
      });
      const bad = await fetch(`http://127.0.0.1:${httpPort}/v1/workspaces/default/stats`);
      expect(bad.status).toBe(502);
      expect((await asProblem(bad)).type).toBe('/problems/bad-gateway');
      expect(bad.headers.get('x-request-id')).toMatch(UUID);
      expect(heard).toContain(bad.headers.get('x-request-id'));
    } finally {
      broken.close();
    }

    // Not HTTP/1.1 (a header line without a colon): HAProxy 2.6's HTTP/1 parser answers 400 itself,
    // in HTML, whatever `http-error` or `errorfile` say (a limitation, documented in the template
    // and docs/DEPLOYMENT.md): nothing reached an API instance, and the status says what happened.
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(httpPort, '127.0.0.1', () =>
        socket.write('GET /health HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n'),
      );
      let got = '';
      socket.on('data', (b) => (got += b.toString()));
      // HAProxy may end the connection with a reset once it has answered.
      socket.on('close', () => (got ? resolve(got) : reject(new Error('no answer'))));
      socket.on('error', () => undefined);
    });
    const [head = '', text = ''] = raw.split('\r\n\r\n');
    expect(head, raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/content-type: text\/html/i);
    expect(text).toContain('400 Bad request');

    // Every error HAProxy is told to answer (the 500 and 504 too) is a documented type of its status.
    const cfg = await readFile(path.join(tmp.dir, 'run-errors', 'haproxy.cfg'), 'utf8');
    const errors = [
      ...cfg.matchAll(/http-error status (\d+) content-type application\/problem\+json .* string "(.*)"$/gm),
    ];
    expect(errors.map((m) => Number(m[1]))).toEqual([500, 502, 503, 504, 408]);
    for (const m of errors) {
      const body = JSON.parse(m[2]!.replaceAll('\\"', '"')) as { type: string; status: number };
      expect(body.status).toBe(Number(m[1]));
      expect(PROBLEM_TYPES[body.type.replace('/problems/', '') as keyof typeof PROBLEM_TYPES]).toBe(
        body.status,
      );
    }
  });

  it('passes WebSocket upgrades through the HTTP and TLS frontends', async () => {
    // Backend: /health 200 and a WebSocket echo.
    const backend = http.createServer((req, res) => {
      res.writeHead(req.url === '/health' ? 200 : 404).end();
    });
    const wss = new WebSocketServer({ server: backend });
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m.toString()}`)));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    const backendPort = (backend.address() as { port: number }).port;
    try {
      const { hp, rt, httpPort, tlsPort } = await startLocalHaproxy(path.join(tmp.dir, 'run-ws'), {
        apiServers: [{ host: '127.0.0.1', port: backendPort }],
        apiCheckInter: '200ms',
      });
      await waitFor('api1 UP', async () => (await rt.serverState('api', 'api1'))?.checkStatus === 'L7OK');
      // Both frontends at once: each socket's idle pause is its own.
      await Promise.all(
        [`ws://127.0.0.1:${httpPort}/feed`, `wss://127.0.0.1:${tlsPort}/feed`].map(async (url) => {
          const ws = new WebSocket(url, { rejectUnauthorized: false });
          const replies: string[] = [];
          ws.on('message', (m) => replies.push(m.toString()));
          await new Promise<void>((resolve, reject) => {
            ws.once('open', () => resolve());
            ws.once('error', reject);
          });
          ws.send('one');
          await waitFor(`first echo over ${url}`, async () => replies.includes('echo:one'));
          // Still open after an idle pause longer than the check interval and keep-alive handling.
          await sleep(1200);
          ws.send('two');
          await waitFor(`second echo over ${url}`, async () => replies.includes('echo:two'));
          ws.close();
        }),
      );
      await hp.stop();
    } finally {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise<void>((r) => backend.close(() => r()));
    }
  });
});

describe('haproxy.docker.cfg', () => {
  it('passes haproxy -c (certificate path pointed at a local file, password from the environment)', async () => {
    const original = await readFile(HAPROXY_DOCKER_CONFIG, 'utf8');
    expect(original).toMatch(/^resolvers docker$/m);
    expect(original).toContain('nameserver dns1 127.0.0.11:53');
    expect(original).toMatch(/server-template api 1-16 api:8000 check .*resolvers docker .*init-addr none/);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: HAProxy's environment-variable syntax
    expect(original).toContain('tcp-check send "AUTH haproxy-check ${REDIS_CHECK_PASSWORD}\\r\\n"');
    const file = path.join(tmp.dir, 'docker.cfg');
    await writeFile(file, original.replaceAll('/usr/local/etc/haproxy/certs/switchboard.pem', pem));
    const result = await checkHaproxyConfig(file, { REDIS_CHECK_PASSWORD: 'from-env' });
    expect(result.ok, result.output).toBe(true);
    expect(result.output).not.toMatch(/\[WARNING\]|\[ALERT\]/);
  });
});

describe('keepalived.conf', () => {
  const iface = anInterface();
  const common = {
    interface: iface,
    vip: '10.231.0.100/24',
    haproxyPidfile: '/run/haproxy.pid',
    haproxyProbe: '127.0.0.1:8404',
    authPass: newVrrpPassword(),
  };

  it('MASTER (101) and BACKUP (100) pass keepalived -t', async () => {
    for (const [role, priority, src, peer] of [
      ['MASTER', 101, '10.231.0.11', '10.231.0.12'],
      ['BACKUP', 100, '10.231.0.12', '10.231.0.11'],
    ] as const) {
      const file = await writeKeepalivedConfig(
        { ...common, role, unicastSrcIp: src, unicastPeers: [peer] },
        path.join(tmp.dir, `keepalived-${role}.conf`),
      );
      const text = await readFile(file, 'utf8');
      expect(text).toContain(`state ${role}`);
      expect(text).toContain(`priority ${priority}`);
      for (const line of [
        'advert_int 1',
        'script_user root',
        'enable_script_security',
        'interval 2',
        'weight -20',
        'fall 2',
        'rise 2',
        `script "${CHECK_HAPROXY_SCRIPT} /run/haproxy.pid 127.0.0.1:8404"`,
        `10.231.0.100/24 dev ${iface}`,
        'chk_haproxy',
        `auth_pass ${common.authPass}`,
      ]) {
        expect(text, line).toContain(line);
      }
      const result = await checkKeepalivedConfig(file);
      expect(result.ok, result.output).toBe(true);
    }
  });

  it('two checks: HAProxy alive (-50) and its /ready (-20), so a dead HAProxy loses to a live one with no server up', async () => {
    const file = await writeKeepalivedConfig(
      { ...common, role: 'MASTER', haproxyProbe: 'http://127.0.0.1:8404/ready' },
      path.join(tmp.dir, 'keepalived-ready.conf'),
    );
    const text = await readFile(file, 'utf8');
    const block = (name: string) =>
      /\{[^}]*\}/.exec(text.slice(text.indexOf(`vrrp_script ${name} {`)))?.[0] ?? '';
    expect(block('chk_haproxy')).toContain(
      `script "${CHECK_HAPROXY_SCRIPT} /run/haproxy.pid 127.0.0.1:8404"`,
    );
    expect(block('chk_haproxy')).toContain('weight -50');
    expect(block('chk_haproxy_ready')).toContain(
      `script "${CHECK_HAPROXY_SCRIPT} /run/haproxy.pid http://127.0.0.1:8404/ready"`,
    );
    expect(block('chk_haproxy_ready')).toContain('weight -20');
    expect(text).toMatch(/track_script \{\s*chk_haproxy\s+chk_haproxy_ready\s*\}/);
    const result = await checkKeepalivedConfig(file);
    expect(result.ok, result.output).toBe(true);
    expect(() =>
      renderKeepalivedConfig({ ...common, role: 'MASTER', haproxyProbe: 'http://nohost/ready' }),
    ).toThrow(/haproxyProbe/);
  });

  it('multicast variant (no unicast peers) passes keepalived -t', async () => {
    const file = await writeKeepalivedConfig(
      { ...common, role: 'MASTER' },
      path.join(tmp.dir, 'keepalived-mc.conf'),
    );
    expect(await readFile(file, 'utf8')).not.toContain('unicast_peer');
    const result = await checkKeepalivedConfig(file);
    expect(result.ok, result.output).toBe(true);
    // The optional shorter master-down timer is valid keepalived syntax too.
    const fast = await writeKeepalivedConfig(
      { ...common, role: 'BACKUP', downTimerAdverts: 1 },
      path.join(tmp.dir, 'ka-fast.conf'),
    );
    expect(await readFile(fast, 'utf8')).toContain('down_timer_adverts 1');
    const fastResult = await checkKeepalivedConfig(fast);
    expect(fastResult.ok, fastResult.output).toBe(true);
  });

  it('has no default VRRP password: none is rendered without one, none is written in the code or template', async () => {
    const { authPass: _none, ...without } = common;
    expect(() =>
      renderKeepalivedConfig({ ...without, role: 'MASTER' } as Parameters<typeof renderKeepalivedConfig>[0]),
    ).toThrow(/authPass .*required/);
    for (const bad of ['', 'has space', 'ninechars', 'quo"te']) {
      expect(() => renderKeepalivedConfig({ ...common, role: 'MASTER', authPass: bad }), bad).toThrow(
        /authPass/,
      );
    }
    // The only auth_pass in the template is the placeholder, and the code that renders it (and
    // the topology that calls it) carries no password literal.
    const template = await readFile(KEEPALIVED_TEMPLATE, 'utf8');
    expect([...template.matchAll(/auth_pass\s+(\S+)/g)].map((m) => m[1])).toEqual(['{{AUTH_PASS}}']);
    const topology = path.join(PROJECT_ROOT, 'src', 'topology');
    const sources = readdirSync(topology, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => path.join(topology, f));
    expect(sources.length).toBeGreaterThan(5);
    for (const f of sources) {
      const text = readFileSync(f, 'utf8');
      expect(text, f).not.toMatch(/authPass\s*(\?\?|\|\||:)\s*['"`]/);
      expect(text, f).not.toMatch(/auth_pass\s+[A-Za-z0-9_-]/);
      expect(text, f).not.toContain('sbvrrp');
    }
  });

  it("the local topology's VRRP password: random per data directory, kept across launches, replaced by --fresh", async () => {
    const dirA = path.join(tmp.dir, 'data-a');
    const dirB = path.join(tmp.dir, 'data-b');
    const a = new LaunchContext(launchOptions(dirA, false));
    const first = loadOrCreateVrrpPassword(a.vrrpPasswordFile);
    expect(first).toMatch(/^[A-Za-z0-9_-]{8}$/);
    expect(a.vrrpPasswordFile).toBe(path.join(dirA, 'vrrp-password'));
    expect(statSync(a.vrrpPasswordFile).mode & 0o777).toBe(0o600);
    // Rendered as is, and keepalived takes it.
    const file = await writeKeepalivedConfig(
      { ...common, role: 'MASTER', authPass: first },
      path.join(tmp.dir, 'ka-kept.conf'),
    );
    expect(await readFile(file, 'utf8')).toContain(`auth_pass ${first}\n`);
    const check = await checkKeepalivedConfig(file);
    expect(check.ok, check.output).toBe(true);
    // The next launch on the same data directory (no --fresh) reads the same one.
    const again = new LaunchContext(launchOptions(dirA, false));
    again.wipeIfFresh();
    expect(loadOrCreateVrrpPassword(again.vrrpPasswordFile)).toBe(first);
    // Another data directory has its own.
    const other = loadOrCreateVrrpPassword(new LaunchContext(launchOptions(dirB, false)).vrrpPasswordFile);
    expect(other).not.toBe(first);
    // --fresh deletes it with the cluster's other secrets: a new one is made.
    const fresh = new LaunchContext(launchOptions(dirA, true));
    fresh.wipeIfFresh();
    expect(existsSync(fresh.vrrpPasswordFile)).toBe(false);
    const replaced = loadOrCreateVrrpPassword(fresh.vrrpPasswordFile);
    expect(replaced).toMatch(/^[A-Za-z0-9_-]{8}$/);
    expect(replaced).not.toBe(first);
    // 100 fresh ones: all different (48 random bits each).
    expect(new Set(Array.from({ length: 100 }, newVrrpPassword)).size).toBe(100);
  });

  it('keepalived -t refuses a check script in a world-writable directory (enable_script_security)', async () => {
    const unsafeDir = path.join(tmp.dir, 'unsafe');
    await mkdir(unsafeDir);
    await chmod(unsafeDir, 0o777);
    const script = path.join(unsafeDir, 'check_haproxy.sh');
    await copyFile(CHECK_HAPROXY_SCRIPT, script);
    await chmod(script, 0o755);
    const file = await writeKeepalivedConfig(
      { ...common, role: 'MASTER', checkScript: script },
      path.join(tmp.dir, 'ka-unsafe.conf'),
    );
    const result = await checkKeepalivedConfig(file);
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/insecure/i);
  });
});

describe('check_haproxy.sh', () => {
  /** The script's exit code for `args`, as keepalived runs it. */
  const run = (...args: string[]) =>
    execFileP(CHECK_HAPROXY_SCRIPT, args, { timeout: 5000 }).then(
      () => 0,
      (e: { code?: number }) => e.code ?? -1,
    );

  it('exits 0 for a live haproxy (pid + stats port) and 1 once it is killed, missing or not haproxy', async () => {
    const runDir = path.join(tmp.dir, 'run-check');
    const { hp, statsPort } = await startLocalHaproxy(runDir);
    const pidfile = path.join(runDir, 'test.pid');
    await writeFile(pidfile, `${hp.pid}\n`);
    expect(await run(pidfile, `127.0.0.1:${statsPort}`)).toBe(0);
    expect(await run(pidfile)).toBe(0);
    // Something else listens nowhere on this port: the probe fails.
    expect(await run(pidfile, `127.0.0.1:${await freePort()}`)).toBe(1);
    // A live pid that is not haproxy.
    const notHaproxy = path.join(runDir, 'self.pid');
    await writeFile(notHaproxy, `${process.pid}\n`);
    expect(await run(notHaproxy)).toBe(1);
    expect(await run(path.join(runDir, 'missing.pid'))).toBe(1);
    hp.kill('SIGKILL');
    await new Promise((r) => hp.process.once('exit', r));
    expect(await run(pidfile, `127.0.0.1:${statsPort}`)).toBe(1);
    expect(await run(pidfile)).toBe(1);
  });

  it('with an http:// probe of /ready: 1 while the api backend has no server up, 0 once one is', async () => {
    const runDir = path.join(tmp.dir, 'run-ready');
    const api = await startTinyHttp('api');
    try {
      // One API server, put in maintenance at once (no server up), then made ready.
      const { hp, rt, statsPort } = await startLocalHaproxy(runDir, {
        apiServers: [{ host: '127.0.0.1', port: api.port }],
        apiCheckInter: '100ms',
      });
      const pidfile = path.join(runDir, 'test.pid');
      await writeFile(pidfile, `${hp.pid}\n`);
      const ready = `http://127.0.0.1:${statsPort}/ready`;
      await rt.command('set server api/api1 state maint');
      const answer = await fetch(ready);
      expect(answer.status).toBe(503);
      expect(answer.headers.get('content-type')).toBe('application/problem+json');
      expect(((await answer.json()) as { type: string }).type).toBe('/problems/no-instance-available');
      expect(await run(pidfile, ready)).toBe(1);
      // The plain TCP probe still passes: HAProxy runs, it just cannot serve.
      expect(await run(pidfile, `127.0.0.1:${statsPort}`)).toBe(0);
      await rt.command('set server api/api1 state ready');
      await waitFor('api1 UP', async () => (await rt.serverState('api', 'api1'))?.checkStatus === 'L7OK');
      expect((await fetch(ready)).status).toBe(200);
      expect(await run(pidfile, ready)).toBe(0);
      // Nothing listening there: the probe fails.
      expect(await run(pidfile, `http://127.0.0.1:${await freePort()}/ready`)).toBe(1);
    } finally {
      await api.close();
    }
  });
});

describe('Redis Enterprise database definition', () => {
  it('has 2 shards, all-nodes proxies, hash-tag sharding, replication and AOF', () => {
    const db = JSON.parse(readFileSync(path.join(INFRA_DIR, 'redis-enterprise', 'database.json'), 'utf8'));
    expect(db).toMatchObject({
      shards_count: 2,
      sharding: true,
      proxy_policy: 'all-nodes',
      replication: true,
      data_persistence: 'aof',
      port: 12000,
    });
    const rules = (db.shard_key_regex as { regex: string }[]).map((r) => new RegExp(`^(?:${r.regex})$`));
    expect(db.shard_key_regex[0].regex).toBe('.*\\{(?<tag>.*)\\}.*');
    const tagOf = (key: string) => {
      for (const re of rules) {
        const m = re.exec(key);
        if (m?.groups?.tag !== undefined) return m.groups.tag;
      }
      return undefined;
    };
    // Every key of a workspace hashes on the workspace; untagged keys on their whole name.
    expect(tagOf('sb:{acme}:queue')).toBe('acme');
    expect(tagOf('sb:{acme}:agent:42')).toBe('acme');
    expect(tagOf('sb:instances')).toBe('sb:instances');
  });
});

describe('shell scripts', () => {
  it('check_haproxy.sh is executable and parses', async () => {
    await execFileP('bash', ['-n', CHECK_HAPROXY_SCRIPT]);
    // Git records only "executable or not" (100755); the group and other bits of the checkout
    // come from the umask, so only the owner's execute bit is certain here. (keepalived's
    // enable_script_security wants a root-only path: the launcher copies the script when the
    // checkout is not, src/topology/local/load-balancers.ts.)
    expect(statSync(CHECK_HAPROXY_SCRIPT).mode & 0o100).toBe(0o100);
    const relative = path.relative(PROJECT_ROOT, CHECK_HAPROXY_SCRIPT);
    const staged = await execFileP('git', ['ls-files', '--stage', '--', relative], {
      cwd: PROJECT_ROOT,
    }).catch(() => ({ stdout: '' }));
    // In a git checkout the script is committed as executable.
    if (staged.stdout !== '') expect(staged.stdout.split(' ')[0]).toBe('100755');
  });
});
