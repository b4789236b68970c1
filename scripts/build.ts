/**
 * `npm run build`: the artefact the Dockerfile ships and CI smoke-tests — one self-contained
 * executable, dist/darwin-ml-serve. The migrations, manifest templates and docs assets are imported
 * by the code, so the executable carries them: nothing needs to lie beside it.
 */
import { rmSync } from 'node:fs'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dir, '..')
const dist = join(root, 'dist')
rmSync(dist, { recursive: true, force: true })

const started = performance.now()
const build = Bun.spawnSync(
  [
    process.execPath,
    'build',
    '--compile',
    '--minify',
    // Ships the parsed bytecode rather than the source: start-up CPU falls by about a third (README,
    // Benchmarks), at the cost of a larger file. Bytecode of a module with top-level await needs ESM.
    '--bytecode',
    '--format=esm',
    // Only `bun run dev` and tests start a database container; keep testcontainers out of the binary.
    '--external=@testcontainers/mysql',
    join(root, 'src/index.ts'),
    '--outfile',
    join(dist, 'darwin-ml-serve'),
  ],
  { stdout: 'inherit', stderr: 'inherit', cwd: root },
)
if (build.exitCode !== 0) process.exit(build.exitCode ?? 1)

const size = Bun.file(join(dist, 'darwin-ml-serve')).size
console.log(`built dist/darwin-ml-serve (${(size / 1024 / 1024).toFixed(1)} MiB) in ${Math.round(performance.now() - started)} ms`)
