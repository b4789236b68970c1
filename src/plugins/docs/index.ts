/**
 * The API docs: the OpenAPI document (./document.ts), and the pages — Swagger UI at /docs, ReDoc at
 * /redoc, both reading that document — and their scripts and styles, from the pinned `swagger-ui-dist` and
 * `redoc` packages. The bundles are file imports, so they are inside the compiled executable: the
 * pages work without internet and run no code a third party publishes after the build. Every
 * response carries a Content-Security-Policy that allows nothing but this origin.
 */
import { Elysia } from 'elysia'
import redocBundle from 'redoc/bundles/redoc.standalone.js' with { type: 'file' }
import { version as redocVersion } from 'redoc/package.json'
import swaggerUiBundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'file' }
import swaggerUiCss from 'swagger-ui-dist/swagger-ui.css' with { type: 'file' }
import { version as swaggerUiVersion } from 'swagger-ui-dist/package.json'
import { routeScopes } from '../auth/scopes'

/**
 * Only this origin: no inline script, no other host, for every page and file. The one exception
 * Swagger UI needs: `img-src data:`, as swagger-ui.css draws its icons with data: URIs (so does
 * ReDoc's). ReDoc's footer asks cdn.redoc.ly for a logo: refused, and ReDoc then leaves it out.
 */
const POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'self'",
]
export const DOCS_CSP = POLICY.join('; ')
/**
 * ReDoc needs two more, on its page only (both checked in headless Chromium):
 * `style-src 'unsafe-inline'` — it styles itself with styled-components, which writes <style>
 * elements at run time (styles only, never script; without it ReDoc shows "Something went wrong");
 * `worker-src blob:` — its search runs in a Web Worker made from a blob: URL of its own bundled code
 * (without it the search box finds nothing).
 */
export const REDOC_CSP = [...POLICY, "style-src 'self' 'unsafe-inline'", 'worker-src blob:'].join('; ')

/** Starts Swagger UI: a file of its own, since the policy refuses inline script. */
const SWAGGER_INIT = `window.ui = SwaggerUIBundle({
  url: document.getElementById('swagger-ui').dataset.specUrl,
  dom_id: '#swagger-ui',
  deepLinking: true,
  // Otherwise a badge image is fetched from validator.swagger.io.
  validatorUrl: null,
})
`

interface Asset {
  url: string
  /** A path for Bun.file (inside the executable once compiled), or the text itself. */
  body: { path: string } | { text: string }
  contentType: string
}

const JS = 'text/javascript; charset=utf-8'
const CSS = 'text/css; charset=utf-8'

// Each URL names the package version (or the content's hash), so the files can be cached for good.
const ASSETS = {
  swaggerUiJs: { url: `/docs/assets/swagger-ui-dist@${swaggerUiVersion}/swagger-ui-bundle.js`, body: { path: swaggerUiBundle }, contentType: JS },
  swaggerUiCss: { url: `/docs/assets/swagger-ui-dist@${swaggerUiVersion}/swagger-ui.css`, body: { path: swaggerUiCss }, contentType: CSS },
  swaggerInit: { url: `/docs/assets/swagger-init.${Bun.hash(SWAGGER_INIT).toString(16)}.js`, body: { text: SWAGGER_INIT }, contentType: JS },
  redocJs: { url: `/docs/assets/redoc@${redocVersion}/redoc.standalone.js`, body: { path: redocBundle }, contentType: JS },
} satisfies Record<string, Asset>

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c)

const head = (title: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>`

/** Open to everyone, and left out of /docs/json (a new object each time: Elysia's macros rewrite route options in place). */
const hidden = () => ({ scope: 'public' as const, detail: { hide: true } })

/** `specPath`: where the OpenAPI document is served; `document`: the document (./document.ts). */
export function docsPlugin(options: { title: string; specPath: string; document: () => object }) {
  const specPath = escapeHtml(options.specPath)
  const swaggerPage = `${head(`${options.title} — Swagger UI`)}
<link rel="stylesheet" href="${ASSETS.swaggerUiCss.url}"></head>
<body><div id="swagger-ui" data-spec-url="${specPath}"></div>
<script src="${ASSETS.swaggerUiJs.url}"></script>
<script src="${ASSETS.swaggerInit.url}"></script></body></html>
`
  const redocPage = `${head(`${options.title} — ReDoc`)}</head>
<body><redoc spec-url="${specPath}"></redoc>
<script src="${ASSETS.redocJs.url}"></script></body></html>
`
  // The pages name the asset URLs of this build: revalidated each time, unlike the assets.
  const html = (page: string, csp: string) =>
    new Response(page, {
      headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', 'content-security-policy': csp, 'x-content-type-options': 'nosniff' },
    })

  const plugin = new Elysia({ name: 'docs' })
    .use(routeScopes)
    .get('/docs', () => html(swaggerPage, DOCS_CSP), hidden())
    .get('/redoc', () => html(redocPage, REDOC_CSP), hidden())
    .get(options.specPath, () => options.document(), hidden())
  for (const asset of Object.values(ASSETS) as Asset[]) {
    const headers = {
      'content-type': asset.contentType,
      'cache-control': 'public, max-age=31536000, immutable',
      'content-security-policy': DOCS_CSP,
      'x-content-type-options': 'nosniff',
    }
    plugin.get(asset.url, () => new Response('path' in asset.body ? Bun.file(asset.body.path) : asset.body.text, { headers }), hidden())
  }
  return plugin
}
