/**
 * Abuse limits on mutating routes (POST, PUT, PATCH, DELETE): at most RATE_LIMIT_PER_TOKEN requests
 * per token and RATE_LIMIT_PER_IP per client address in each window of RATE_LIMIT_WINDOW_SECONDS;
 * past either, 429 RATE_LIMITED with `Retry-After` (the seconds until the window ends). 0 turns a
 * limit off (the test suite runs with both off unless a test turns them on).
 *
 * Checked at onRequest, after authentication and before the body is read: a limited caller costs a
 * token lookup, never a parse. Counted in this process's memory — PER REPLICA: behind a load balancer
 * spreading over N replicas a client can make up to N times the limit. Not `elysia-rate-limit`: it
 * checks at beforeHandle, after the body is parsed and validated, and refunds failed requests by
 * default; with an Error as its answer it drops `Retry-After`, with a Response it cannot carry the
 * request id; two instances (token and address) with the same maximum are deduplicated into one.
 * Its store can be swapped for a shared one, but that would need a table this module does not own —
 * see the README (Reliability) for what a cluster-wide limit takes.
 *
 * The client address is the socket's, or — with TRUSTED_PROXY_HOPS=N — the Nth address from the
 * right of `X-Forwarded-For` (the one the outermost trusted proxy saw); without a server (tests
 * through `app.handle`) and no trusted header, every request shares the address `unknown`.
 */
import { Elysia } from 'elysia'
import { AppError } from '../../lib/errors'
import { callerOf, matchedRouteOf } from '../auth'

const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export interface RateLimitOptions {
  windowSeconds: number
  /** Requests per token per window; 0: no limit. */
  perToken: number
  /** Requests per client address per window; 0: no limit. */
  perIp: number
  /** How many proxies in front append to X-Forwarded-For (0: use the socket's address). */
  trustedProxyHops: number
  /** At most this many keys are counted; past it the oldest windows are forgotten first. */
  maxKeys?: number
  now?: () => number
}

interface Window {
  count: number
  resetAt: number
}

/** Fixed-window counters in memory, bounded in size. */
export class WindowCounter {
  private readonly windows = new Map<string, Window>()

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
    private readonly now: () => number,
  ) {}

  /** Counts one request for `key`; returns the count in its window and when the window ends. */
  hit(key: string): Window {
    const now = this.now()
    let window = this.windows.get(key)
    if (!window || window.resetAt <= now) {
      this.windows.delete(key)
      if (this.windows.size >= this.maxKeys) this.evict(now)
      window = { count: 0, resetAt: now + this.windowMs }
      this.windows.set(key, window)
    }
    window.count++
    return window
  }

  get size() {
    return this.windows.size
  }

  private evict(now: number) {
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key)
    // Still full: forget the oldest windows (Map keeps insertion order), a tenth at a time.
    if (this.windows.size >= this.maxKeys) {
      let drop = Math.max(1, Math.floor(this.maxKeys / 10))
      for (const key of this.windows.keys()) {
        if (drop-- <= 0) break
        this.windows.delete(key)
      }
    }
  }
}

/** The client address: the socket's, or the one `hops` trusted proxies report in X-Forwarded-For. */
export function clientAddress(request: Request, socketAddress: string | undefined, hops: number): string {
  if (hops > 0) {
    const forwarded = (request.headers.get('x-forwarded-for') ?? '')
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part !== '')
    // Each proxy appends the address it received from: the last `hops` entries are trusted.
    const entry = forwarded[forwarded.length - hops]
    if (entry) return entry
  }
  return socketAddress ?? 'unknown'
}

export function rateLimitPlugin(options: RateLimitOptions) {
  const { windowSeconds, perToken, perIp, trustedProxyHops } = options
  const now = options.now ?? Date.now
  const counter = new WindowCounter(windowSeconds * 1000, options.maxKeys ?? 100_000, now)
  const plugin = new Elysia({ name: 'rate-limit' })
  if (perToken === 0 && perIp === 0) return plugin

  const refuse = (what: string, limit: number, resetAt: number, set: { headers: Record<string, string | number> }) => {
    const seconds = Math.max(1, Math.ceil((resetAt - now()) / 1000))
    set.headers['retry-after'] = String(seconds)
    return new AppError(429, 'RATE_LIMITED', `More than ${limit} changes per ${windowSeconds} s from this ${what}; retry in ${seconds} s`)
  }

  return plugin.onRequest(({ request, server, set }) => {
    const route = matchedRouteOf(request)
    if (!route || !MUTATIONS.has(route.method)) return
    if (perIp > 0) {
      const address = clientAddress(request, server?.requestIP(request)?.address, trustedProxyHops)
      const window = counter.hit(`ip ${address}`)
      if (window.count > perIp) throw refuse('address', perIp, window.resetAt, set)
    }
    const caller = callerOf(request)
    if (perToken > 0 && caller) {
      const window = counter.hit(`token ${caller.tokenId ?? caller.name}`)
      if (window.count > perToken) throw refuse('token', perToken, window.resetAt, set)
    }
  })
}
