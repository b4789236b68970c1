/**
 * A MySQL-compatible server with no setup, for `bun run dev` and `bun test` when no database is named:
 * a MySQL 8 container through testcontainers when a Docker engine answers, else a `mariadbd`/`mysqld`
 * from PATH with its data in a folder of ours, on a free port. Never used in production.
 */
import { type Subprocess, spawn, spawnSync } from 'bun'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import mysql from 'mysql2/promise'

export interface LocalServer {
  /** mysql://root@127.0.0.1:PORT/ — no database selected. */
  url: string
  kind: 'container' | 'mariadbd' | 'mysqld' | 'reused'
  stop(): Promise<void>
}

export class NoDatabaseServerError extends Error {}

const SEARCH_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/mysql/bin', '/opt/homebrew/bin', '/usr/local/bin']

function findBinary(names: string[]): string | undefined {
  for (const name of names) {
    const onPath = Bun.which(name)
    if (onPath) return onPath
    for (const dir of SEARCH_DIRS) if (existsSync(join(dir, name))) return join(dir, name)
  }
  return undefined
}

async function dockerEngineAnswers(): Promise<boolean> {
  const host = process.env.DOCKER_HOST
  try {
    const response = host?.startsWith('tcp://')
      ? await fetch(`${host.replace('tcp://', 'http://')}/_ping`, { signal: AbortSignal.timeout(1_000) })
      : await fetch('http://localhost/_ping', {
          unix: host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock',
          signal: AbortSignal.timeout(1_000),
        })
    return response.ok
  } catch {
    return false
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))))
    })
  })
}

async function waitUntilAccepting(url: string, process: Subprocess | undefined, logFile: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    if (process && process.exitCode !== null) {
      throw new Error(`the database server exited (${process.exitCode}); see ${logFile}`)
    }
    try {
      const connection = await mysql.createConnection({ uri: url, connectTimeout: 1_000 })
      await connection.end()
      return
    } catch (error) {
      lastError = error
      await Bun.sleep(150)
    }
  }
  throw new Error(`the database server did not accept connections within ${timeoutMs} ms: ${String(lastError)}`)
}

async function startContainer(): Promise<LocalServer> {
  const { MySqlContainer } = await import('@testcontainers/mysql')
  const container = await new MySqlContainer('mysql:8.0')
    .withRootPassword('root')
    .withCommand(['--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_ci'])
    .start()
  return {
    url: `mysql://root:root@${container.getHost()}:${container.getPort()}/`,
    kind: 'container',
    stop: async () => void (await container.stop()),
  }
}

function isMariaDb(binary: string) {
  if (/mariadbd$/.test(binary)) return true
  const version = spawnSync([binary, '--version'])
  return /mariadb/i.test(version.stdout.toString())
}

function initialiseDataDir(binary: string, dataDir: string, logFile: string) {
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : []
  const mariadb = isMariaDb(binary)
  const installer = mariadb ? findBinary(['mariadb-install-db', 'mysql_install_db']) : undefined
  const command = mariadb
    ? [installer ?? 'mariadb-install-db', '--no-defaults', `--datadir=${dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...asRoot]
    : [binary, '--no-defaults', '--initialize-insecure', `--datadir=${dataDir}`, ...asRoot]
  const result = spawnSync(command, { stdout: 'pipe', stderr: 'pipe' })
  writeFileSync(logFile, result.stdout.toString() + result.stderr.toString())
  if (result.exitCode !== 0) throw new Error(`initialising ${dataDir} failed; see ${logFile}`)
}

async function startProcess(binary: string, baseDir: string, fixedPort?: number): Promise<LocalServer> {
  const dataDir = join(baseDir, 'data')
  const portFile = join(baseDir, 'port')
  const pidFile = join(baseDir, 'mysqld.pid')
  const logFile = join(baseDir, 'server.log')
  mkdirSync(baseDir, { recursive: true })

  // A server left running on this data directory (another dev process) is reused rather than fought.
  if (existsSync(portFile) && existsSync(pidFile)) {
    const url = `mysql://root@127.0.0.1:${readFileSync(portFile, 'utf8').trim()}/`
    try {
      await waitUntilAccepting(url, undefined, logFile, 500)
      return { url, kind: 'reused', stop: async () => {} }
    } catch {
      rmSync(pidFile, { force: true })
    }
  }

  if (!existsSync(join(dataDir, 'mysql'))) initialiseDataDir(binary, dataDir, `${logFile}.init`)
  const port = fixedPort ?? (await freePort())
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : []
  const child = spawn(
    [
      binary,
      '--no-defaults',
      `--datadir=${dataDir}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${join(baseDir, 'mysqld.sock')}`,
      `--pid-file=${pidFile}`,
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_unicode_ci',
      '--skip-log-bin',
      '--max-connections=500',
      ...asRoot,
    ],
    // Its own process group: a Ctrl-C in the terminal reaches us, and we stop the server after the
    // work that still needs it (releasing leases); the watcher stops it should we die first.
    { stdout: Bun.file(logFile), stderr: Bun.file(logFile), detached: true },
  )
  watchParent(child.pid)
  const url = `mysql://root@127.0.0.1:${port}/`
  await waitUntilAccepting(url, child, logFile)
  writeFileSync(portFile, String(port))
  const kind = isMariaDb(binary) ? 'mariadbd' : 'mysqld'
  return {
    url,
    kind,
    stop: async () => {
      child.kill('SIGTERM')
      await child.exited
      rmSync(portFile, { force: true })
    },
  }
}

/**
 * A server of ours must not outlive us, even when we die without running exit handlers (a killed
 * test run, a crashed dev server): a detached shell polls our pid and kills the server after us.
 */
function watchParent(serverPid: number) {
  const watcher = spawn(['sh', '-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${serverPid} 2>/dev/null`], {
    stdio: ['ignore', 'ignore', 'ignore'],
  })
  watcher.unref()
}

/**
 * Finds or starts a local server. `dataDir` holds a mariadbd/mysqld's files (kept between runs
 * for `bun run dev`, a temporary folder for tests).
 */
export async function startLocalServer(options: {
  dataDir: string
  preferContainer?: boolean
  /** Listen on this port (a restarted server keeps its clients' URL); default: a free one. */
  port?: number
}): Promise<LocalServer> {
  if ((options.preferContainer ?? true) && (await dockerEngineAnswers())) return startContainer()
  const binary = findBinary(['mariadbd', 'mysqld'])
  if (!binary) {
    throw new NoDatabaseServerError(
      'No database: set DATABASE_URL, start a Docker engine, or install MariaDB (apt-get install mariadb-server / brew install mariadb).',
    )
  }
  return startProcess(binary, resolve(options.dataDir), options.port)
}
