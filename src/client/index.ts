/**
 * The typed TypeScript client: Elysia's Eden Treaty over the app's own type, so that a program's
 * calls, bodies and answers are checked against the routes as they are — the CLI (src/cli) uses it
 * too, so the two cannot drift. Published as the package's `./client` entry point:
 *
 *     import { createClient } from 'darwin-ml-serve/client'
 *     const api = createClient({ url: 'https://ml-serve.example.com', token: process.env.DARWIN_ML_SERVE_TOKEN })
 *     const { data, error } = await api.api.v1.serve({ serve_name: 'fraud' }).deploy.post({ env: 'prod', artifact_version: 'v2' })
 */
import { treaty } from '@elysiajs/eden'
import type { App } from '../app'

export interface ClientOptions {
  /** The service's base URL, e.g. `https://ml-serve.example.com`. */
  url: string
  /** An API token; sent as `Authorization: Bearer …`. */
  token?: string
  /** Another fetch (tests call the app in process). */
  fetch?: (request: Request) => Promise<Response>
  /** Extra headers on every request (`x-request-id`, …). */
  headers?: Record<string, string>
}

export function createClient(options: ClientOptions) {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  const fetcher = options.fetch
  return treaty<App>(options.url, {
    headers,
    ...(fetcher ? { fetcher: ((input: string | URL | Request, init?: RequestInit) => fetcher(input instanceof Request ? new Request(input, init) : new Request(String(input), init))) as typeof fetch } : {}),
  })
}

export type Client = ReturnType<typeof createClient>
