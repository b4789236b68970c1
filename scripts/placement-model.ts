/**
 * `bun run model -- --runs 300 --seed N`: the placement model-based test
 * (test/model/placement.model.test.ts) for longer than CI runs it, or to replay a failure. Options:
 * --runs (default 300), --seed (default: a fresh one, printed), --max-commands (per sequence,
 * default 24), --path and --replay (the counterexample path and replayPath a failure prints). It
 * runs the test file under `bun test` (which provides the database server), and exits as it does.
 */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  args: Bun.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    runs: { type: 'string', default: '300' },
    seed: { type: 'string' },
    'max-commands': { type: 'string' },
    path: { type: 'string' },
    replay: { type: 'string' },
  },
  strict: true,
})

const seed = values.seed ?? String(Math.floor(Math.random() * 2 ** 31))
const env: Record<string, string> = { ...(process.env as Record<string, string>), PLACEMENT_MODEL_RUNS: values.runs as string, PLACEMENT_MODEL_SEED: seed }
if (values['max-commands']) env.PLACEMENT_MODEL_MAX_COMMANDS = values['max-commands']
if (values.path) env.PLACEMENT_MODEL_PATH = values.path
if (values.replay) env.PLACEMENT_MODEL_REPLAY = values.replay

console.log(`placement model: ${values.runs} runs, seed ${seed}${values.path ? `, path ${values.path}` : ''}`)
const root = resolve(import.meta.dir, '..')
const child = Bun.spawn([process.execPath, 'test', './test/model/placement.model.test.ts'], { cwd: root, env, stdout: 'inherit', stderr: 'inherit' })
process.exit(await child.exited)
