import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The wallboard (`/`) and the agent desktop (`/agent`): plain HTML, CSS and JavaScript files in
 * ./pages, and uPlot from node_modules, served by Switchboard itself (no CDN, no build step).
 * These routes are open, like /status: a page holds no data, and every API call it then makes
 * carries the API key the person types in (docs/SECURITY.md).
 */
interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

const TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

const require = createRequire(import.meta.url);
const page = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

/** The files each URL serves: read once, when the routes are registered. */
const FILES: Readonly<Record<string, string>> = {
  '/': page('./pages/wallboard.html'),
  '/agent': page('./pages/agent.html'),
  '/ui/common.js': page('./pages/common.js'),
  '/ui/wallboard.js': page('./pages/wallboard.js'),
  '/ui/agent.js': page('./pages/agent.js'),
  '/ui/style.css': page('./pages/style.css'),
  '/ui/vendor/uplot.js': require.resolve('uplot/dist/uPlot.iife.min.js'),
  '/ui/vendor/uplot.css': require.resolve('uplot/dist/uPlot.min.css'),
};

// The pages load only their own scripts and styles and talk only to this origin (the API and
// the live feed's WebSocket); uPlot sets element styles from script, which CSP allows.
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

function load(path: string): Asset {
  const body = readFileSync(path);
  const ext = path.slice(path.lastIndexOf('.') + 1);
  return {
    body,
    type: TYPES[ext] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
  };
}

/**
 * Whether an If-None-Match names the ETag, as HTTP compares them (RFC 9110, 13.1.2): `*`, or a list
 * of tags among which it is, weak or not (If-None-Match uses the weak comparison).
 */
export function namesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

export async function pageRoutes(app: FastifyInstance): Promise<void> {
  const assets = new Map(Object.entries(FILES).map(([url, path]) => [url, load(path)]));

  const serve = (asset: Asset) => (req: FastifyRequest, reply: FastifyReply) => {
    reply.headers(SECURITY_HEADERS).header('etag', asset.etag).header('cache-control', 'no-cache');
    if (namesEtag(req.headers['if-none-match'], asset.etag)) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };
  for (const [url, asset] of assets) app.get(url, serve(asset));
}
