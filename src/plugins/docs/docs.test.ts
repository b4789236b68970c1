import { describe, expect, test } from 'bun:test'
import { createTestContext } from '../../../test/support/context'

// Auth is on in the test app and no request here sends a token: the docs must stay open.
const ctx = await createTestContext()
const get = (path: string) => ctx.app.handle(new Request(`http://localhost${path}`))

const PAGES = ['/docs', '/redoc'] as const
const pages = new Map<string, string>()
for (const path of PAGES) pages.set(path, await (await get(path)).text())

/** Every src and href of a page. */
const referencesOf = (html: string) => [...html.matchAll(/\b(?:src|href)\s*=\s*["']([^"']*)["']/gi)].map((m) => m[1] ?? '')
const assetUrls = [...new Set([...pages.values()].flatMap(referencesOf))]

/** A policy names no host: each source is a keyword ('self', 'none', 'unsafe-inline') or a scheme (data:, blob:). */
function expectNoExternalSource(policy: string | null) {
  expect(policy).toBeTruthy()
  const directives = policy!.split(';').map((d) => d.trim().split(/\s+/))
  expect(directives.find(([name]) => name === 'default-src')?.slice(1)).toEqual(["'self'"])
  expect(directives.find(([name]) => name === 'script-src')?.slice(1)).toEqual(["'self'"])
  for (const [, ...sources] of directives) {
    for (const source of sources) expect(source).toMatch(/^('(self|none|unsafe-inline)'|data:|blob:)$/)
  }
  expect(policy).not.toMatch(/https?:|\/\/|\*|unsafe-eval/)
}

describe('API docs pages', () => {
  test.each(PAGES)('%s answers HTML without a token, with a strict CSP', async (path) => {
    const response = await get(path)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toStartWith('text/html')
    expectNoExternalSource(response.headers.get('content-security-policy'))
  })

  test.each(PAGES)('%s names no external host and runs no inline script', (path) => {
    const html = pages.get(path)!
    expect(html).not.toMatch(/(https?:)?\/\/[^\s"'<>]/i)
    const references = referencesOf(html)
    expect(references.length).toBeGreaterThan(0)
    for (const url of references) expect(url).toMatch(/^\/(?!\/)[^\s:]*$/)
    for (const [, attributes, body] of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
      expect(attributes).toMatch(/\bsrc=/)
      expect(body?.trim()).toBe('')
    }
  })

  test('both pages read the spec at /docs/json', () => {
    expect(pages.get('/docs')).toContain('data-spec-url="/docs/json"')
    expect(pages.get('/redoc')).toContain('spec-url="/docs/json"')
  })

  test('the pages reference Swagger UI (script, style, start-up script) and ReDoc under /docs/assets', () => {
    expect(assetUrls.every((url) => url.startsWith('/docs/assets/'))).toBe(true)
    expect(assetUrls.some((url) => url.endsWith('/swagger-ui-bundle.js'))).toBe(true)
    expect(assetUrls.some((url) => url.endsWith('/swagger-ui.css'))).toBe(true)
    expect(assetUrls.some((url) => /\/swagger-init\.[0-9a-f]+\.js$/.test(url))).toBe(true)
    expect(assetUrls.some((url) => url.endsWith('/redoc.standalone.js'))).toBe(true)
  })
})

describe('API docs assets', () => {
  test.each(assetUrls)('%s answers 200, non-empty, typed, cacheable, under a strict CSP, without a token', async (url) => {
    const response = await get(url)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toStartWith(url.endsWith('.css') ? 'text/css' : 'text/javascript')
    expect(response.headers.get('cache-control')).toContain('immutable')
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    expectNoExternalSource(response.headers.get('content-security-policy'))
    expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(0)
  })

  test('the vendor files are the pinned packages, whole', async () => {
    const pinned = (await import('../../../package.json')).dependencies
    for (const [name, file] of [
      ['swagger-ui-dist', 'swagger-ui-bundle.js'],
      ['swagger-ui-dist', 'swagger-ui.css'],
      ['redoc', 'redoc.standalone.js'],
    ] as const) {
      const url = assetUrls.find((u) => u.endsWith(`/${file}`))
      expect(url).toContain(`/${name}@${pinned[name]}/`)
      const served = await (await get(url!)).text()
      const original = await Bun.file(Bun.resolveSync(name === 'redoc' ? `redoc/bundles/${file}` : `${name}/${file}`, import.meta.dir)).text()
      expect(served.length).toBe(original.length)
      expect(served === original).toBe(true)
    }
  })

  test('an unknown asset is a 404', async () => {
    expect((await get('/docs/assets/nope.js')).status).toBe(404)
  })
})

describe('OpenAPI document', () => {
  test('/docs/json still answers the document, without the docs routes', async () => {
    const response = await get('/docs/json')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toStartWith('application/json')
    const spec = (await response.json()) as { openapi: string; info: { title: string }; paths: Record<string, unknown> }
    expect(spec.openapi).toStartWith('3.')
    expect(spec.info.title).toBe('Darwin ML Serve')
    expect(spec.paths['/api/v1/environment']).toBeDefined()
    expect(Object.keys(spec.paths).filter((path) => path.startsWith('/docs') || path === '/redoc')).toEqual([])
  })
})
