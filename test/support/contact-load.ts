import http from 'node:http';

/**
 * Keep-alive clients posting contacts (`POST /v1/workspaces/{ws}/contacts`, no Idempotency-Key,
 * never retried) to `frontend` (a load balancer's address): each answer's status counted, or the
 * error that ended the request (`error: <message>`), in `statuses`.
 */
export function contactLoad(frontend: string, ws: string, clients: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const statuses = new Map<string, number>();
  const count = (what: string) => statuses.set(what, (statuses.get(what) ?? 0) + 1);
  const port = Number(new URL(frontend).port);
  const post = (id: string) =>
    new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ id, skills: ['s'] });
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: `/v1/workspaces/${ws}/contacts`,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
      req.on('error', reject);
      req.end(body);
    });
  let n = 0;
  return {
    statuses,
    /** The clients, each posting while `going()` holds (`beforeEach` called before each request); then the connections closed. */
    async run(going: () => boolean, beforeEach?: () => void): Promise<void> {
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (going()) {
            beforeEach?.();
            try {
              count(String(await post(`c-${++n}`)));
            } catch (err) {
              count(`error: ${(err as Error).message}`);
            }
          }
        }),
      );
      agent.destroy();
    },
  };
}
