/**
 * Runs once before all test files (bunfig.toml): finds a MySQL-compatible server — DATABASE_URL if
 * set, else a container when a Docker engine answers, else a throwaway mariadbd/mysqld in a temp
 * folder — and publishes its root URL for test/support/context.ts. No SQLite stand-in.
 */
import { afterAll } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startLocalServer } from '../../src/db/local-server'
import { conformance } from './openapi-contract'

if (!process.env.TEST_DATABASE_SERVER_URL) {
  if (process.env.DATABASE_URL) {
    const url = new URL(process.env.DATABASE_URL)
    url.pathname = '/'
    process.env.TEST_DATABASE_SERVER_URL = url.toString()
  } else {
    const dataDir = mkdtempSync(join(tmpdir(), 'darwin-ml-serve-test-db-'))
    const server = await startLocalServer({ dataDir })
    process.env.TEST_DATABASE_SERVER_URL = server.url
    // Hooks in a preload file are global: this runs once, after the last test file.
    afterAll(async () => {
      await server.stop()
      rmSync(dataDir, { recursive: true, force: true })
    })
  }
}

// Hooks in a preload file are global: after the last test file, how much of the suite checked /docs/json.
afterAll(() => {
  if (conformance.checked > 0) console.log(`${conformance.checked} answers validated against the schemas of /docs/json`)
})
