import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { problem, sendProblem } from './problem.ts';

/**
 * `/docs`: Swagger UI for the API's own OpenAPI document (`/openapi.json`), served by Switchboard
 * from the `swagger-ui-dist` package (no CDN, nothing fetched from elsewhere). Open like
 * /openapi.json: the page is documentation; "Authorize" takes an API key for the calls tried from it.
 */
const ASSETS: Readonly<Record<string, string>> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  validatorUrl: null,
});
`;

/** Only this server's scripts, and calls to it ("Try it out"); Swagger UI sets inline styles and data: images. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

let distDir: string | undefined;
function assetPath(file: string): string {
  distDir ??= dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  return join(distDir, file);
}

export async function docsRoutes(app: FastifyInstance): Promise<void> {
  const cache = new Map<string, Promise<Buffer>>();
  const asset = (file: string): Promise<Buffer> => {
    let p = cache.get(file);
    if (!p) {
      p = readFile(assetPath(file));
      cache.set(file, p);
      p.catch(() => cache.delete(file));
    }
    return p;
  };

  app.get('/docs', async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      // As the pages: no framing in browsers that ignore CSP's frame-ancestors, and no referrer.
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .send(PAGE),
  );
  app.get('/docs/init.js', async (_req, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(INIT),
  );
  app.get('/docs/:file', async (req, reply) => {
    const file = (req.params as { file: string }).file;
    const type = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
    if (!type)
      return sendProblem(
        reply,
        problem(
          404,
          'no-route',
          'No such route',
          `${req.method} /docs/${file} is not a file of the API docs; see /docs.`,
        ),
      );
    let body: Buffer;
    try {
      body = await asset(file);
    } catch (err) {
      req.log.error({ err: (err as Error).message }, 'swagger-ui-dist is not installed');
      return sendProblem(
        reply,
        problem(
          404,
          'no-route',
          'No such route',
          'The API docs are not installed here (npm package swagger-ui-dist).',
        ),
      );
    }
    return reply.type(type).header('cache-control', 'public, max-age=3600').send(body);
  });
}
