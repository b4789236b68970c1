/**
 * Smoke test of the built artefact (`npm run build` → dist/darwin-ml-serve), as CI runs it: a
 * throwaway database server, the binary started against it with only environment variables, the
 * probes, the spec and one API round trip, then SIGTERM and a clean exit. Prints one `ok`/`not ok`
 * line per check and `smoke: N passed, N failed`; exits 1 when any check failed.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { waitFor200 } from '../../bench/support'
import { freePort, startLocalServer } from '../../src/db/local-server'

const binary = resolve(process.argv[2] ?? join(import.meta.dir, '../../dist/darwin-ml-serve'))
const token = `smoke-admin-token-${crypto.randomUUID()}`
let passed = 0
let failed = 0

function check(name: string, ok: boolean, detail = '') {
  if (ok) passed++
  else failed++
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}${ok || !detail ? '' : ` (${detail})`}`)
}

const dataDir = mkdtempSync(join(tmpdir(), 'darwin-ml-serve-smoke-'))
// The server of startLocalServer is reached over TCP like any MySQL; the binary knows it only by URL.
const server = await startLocalServer({ dataDir, preferContainer: false })
const port = await freePort()
// A working directory without the repository, so nothing is found by accident (drizzle/ comes from beside the binary).
const workDir = mkdtempSync(join(tmpdir(), 'darwin-ml-serve-smoke-cwd-'))
const env = {
  PATH: process.env.PATH ?? '',
  ENV: 'smoke',
  PORT: String(port),
  DATABASE_URL: `${server.url}darwin_ml_serve_smoke`,
  ML_SERVE_BOOTSTRAP_ADMIN_TOKEN: token,
  ENABLE_OTEL: 'false',
  LOG_LEVEL: 'warn',
}
// As in Kubernetes: the migrate subcommand (the Job) first, then the server without migrating.
const migrated = Bun.spawnSync([binary, 'migrate'], { cwd: workDir, env, stdout: 'inherit', stderr: 'inherit' })
check('`darwin-ml-serve migrate` exits 0', migrated.exitCode === 0, `got ${migrated.exitCode}`)
const child = Bun.spawn([binary], { cwd: workDir, env: { ...env, MIGRATE_ON_START: 'false' }, stdout: 'inherit', stderr: 'inherit' })
const base = `http://127.0.0.1:${port}`
const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }

try {
  check('starts and answers /healthcheck', await waitFor200(`${base}/healthcheck`, 20_000))
  check('/readyz is 200 (migrated database reachable)', await waitFor200(`${base}/readyz`, 5_000))
  const spec = await fetch(`${base}/docs/json`).then((r) => r.json() as Promise<{ openapi?: string; paths?: object }>).catch(() => ({}) as { openapi?: string; paths?: object })
  check('/docs/json is an OpenAPI 3 spec', typeof spec.openapi === 'string' && spec.openapi.startsWith('3.') && '/api/v1/environment' in (spec.paths ?? {}))
  const body = {
    name: 'smoke',
    environment_configs: { domain_suffix: '.example.com', cluster_name: 'c', namespace: 'ml', security_group: '', ft_redis_url: '', workflow_url: '' },
  }
  const created = await fetch(`${base}/api/v1/environment`, { method: 'POST', headers: auth, body: JSON.stringify(body) })
  check('POST /api/v1/environment → 201', created.status === 201, `got ${created.status}`)
  const read = await fetch(`${base}/api/v1/environment/smoke`, { headers: auth })
  const readBody = (await read.json().catch(() => ({}))) as { data?: { name?: string } }
  check('GET /api/v1/environment/smoke → 200 with it', read.status === 200 && readBody.data?.name === 'smoke', `got ${read.status}`)
  check('the healthcheck subcommand exits 0', Bun.spawnSync([binary, 'healthcheck'], { env: { PORT: String(port), ENV: 'smoke' } }).exitCode === 0)
} finally {
  child.kill('SIGTERM')
  const code = await Promise.race([child.exited, Bun.sleep(15_000).then(() => 'timeout' as const)])
  check('SIGTERM → exit 0', code === 0, `got ${code}`)
  if (code === 'timeout') child.kill('SIGKILL')
  await server.stop()
  rmSync(dataDir, { recursive: true, force: true })
  rmSync(workDir, { recursive: true, force: true })
}

console.log(`smoke: ${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
