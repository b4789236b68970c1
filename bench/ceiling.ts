/**
 * The API benchmark's ceilings: a bare Bun.serve answering each route of routes.ts with the same
 * statements and a minimal JSON body, through mysql2 (the app's driver, with its pool settings) or
 * Bun's built-in SQL client (CEILING_DRIVER=bun-sql), with DB_POOL_SIZE connections. Like the
 * original, it looks the bearer token up on every request before the route's statements (401 when it
 * is unknown or revoked). Started by bench/api.ts with DATABASE_URL, PORT, DB_POOL_SIZE, CEILING_DRIVER.
 */
import mysql from 'mysql2/promise'
import { ROUTES, type Row, type Sql } from './routes'

/** The Sql of routes.ts over a mysql2 pool (a ceiling's and the seeding's). */
export function sqlOf(pool: mysql.Pool): Sql {
  return {
    rows: async (sql, params) => (await pool.query(sql, params))[0] as Row[],
    run: async (sql, params) => (await pool.query(sql, params))[0],
  }
}

/** The Sql of routes.ts over Bun's SQL client (`?` placeholders, as mysql2). */
function bunSqlOf(client: Bun.SQL): Sql {
  return {
    rows: async (sql, params) => (await client.unsafe(sql, params)) as Row[],
    run: (sql, params) => client.unsafe(sql, params),
  }
}

/** The pool the app's client makes of DATABASE_URL and DB_POOL_SIZE. */
export const poolOf = (url: string, size: number) => mysql.createPool({ uri: url, connectionLimit: size, timezone: 'Z', charset: 'utf8mb4_unicode_ci' })

export type CeilingDriver = 'mysql2' | 'bun-sql'

/** The original's check: the token's row by its SHA-256, valid unless revoked or expired. */
async function tokenIsValid(sql: Sql, request: Request) {
  const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.get('authorization') ?? '')?.[1]
  if (!bearer) return false
  const hash = new Bun.CryptoHasher('sha256').update(bearer).digest('hex')
  const [token] = await sql.rows('SELECT id, scopes FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > NOW()) LIMIT 1', [hash])
  return token !== undefined
}

if (import.meta.main) {
  const url = process.env.DATABASE_URL ?? ''
  const poolSize = Number(process.env.DB_POOL_SIZE ?? 10)
  const sql = (process.env.CEILING_DRIVER as CeilingDriver | undefined) === 'bun-sql' ? bunSqlOf(new Bun.SQL(url, { max: poolSize })) : sqlOf(poolOf(url, poolSize))
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: Number(process.env.PORT ?? 0),
    async fetch(request) {
      const path = new URL(request.url).pathname
      for (const route of ROUTES) {
        const match = route.method === request.method ? route.ceiling.pattern.exec(path) : null
        if (!match) continue
        if (!(await tokenIsValid(sql, request))) return Response.json({ status: 'ERROR' }, { status: 401 })
        const body = request.method === 'POST' ? ((await request.json()) as Record<string, unknown>) : {}
        const data = await route.ceiling.answer(sql, match.slice(1), body)
        if (data === undefined) return Response.json({ status: 'ERROR' }, { status: 404 })
        return Response.json({ status: 'SUCCESS', message: 'OK', data }, { status: route.ceiling.status })
      }
      return new Response('not found', { status: 404 })
    },
  })
  console.log(JSON.stringify({ port: server.port }))
}
