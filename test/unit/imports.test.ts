/**
 * The layering of src/, read from its import lines (type-only imports count: they tie the code
 * together as much as value imports do). Test files under src/ are left out: they set up what they
 * test from anywhere.
 *   - modules import each other one way: no cycle between src/modules/<a> and src/modules/<b>;
 *   - plugins take what they need as parameters: nothing under src/plugins/ imports src/modules/;
 *   - lib/ is at the bottom: nothing under src/lib/ imports src/modules/ or src/plugins/.
 */
import { describe, expect, test } from 'bun:test'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const SRC = resolve(import.meta.dir, '../../src')

/**
 * Module cycles that exist today and are being taken apart elsewhere; each is written as its
 * modules in alphabetical order from the first one. The list must stay exactly the current set:
 * a new cycle fails, and so does a listed one that is gone (remove it here).
 */
const ALLOWED_MODULE_CYCLES: readonly string[] = [
  // artifact/service → serve/service (findServe); serve/overview → artifact/service and model.
  'artifact → serve → artifact',
  // infra-config/service → serve/service (findServe); serve/overview → infra-config/service and model.
  'infra-config → serve → infra-config',
]

interface Edge {
  from: string // path under src/, e.g. modules/token/service.ts
  to: string // resolved path under src/
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return path.endsWith('.ts') && !path.endsWith('.test.ts') ? [path] : []
  })
}

/** Relative specifiers of `import … from`, `export … from`, `import '…'` and `import('…')`. */
function relativeSpecifiers(code: string): string[] {
  const withoutComments = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  const patterns = [/\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/g, /\bimport\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g]
  return patterns.flatMap((pattern) => [...withoutComments.matchAll(pattern)].map((match) => match[1] as string))
}

function resolveImport(fromFile: string, specifier: string): string {
  const base = resolve(dirname(fromFile), specifier)
  const candidate = [base, `${base}.ts`, join(base, 'index.ts')].find((path) => existsSync(path) && statSync(path).isFile())
  if (!candidate) throw new Error(`${relative(SRC, fromFile)}: cannot resolve import '${specifier}'`)
  return relative(SRC, candidate)
}

function importGraph(): Edge[] {
  return sourceFiles(SRC).flatMap((file) =>
    relativeSpecifiers(readFileSync(file, 'utf8')).map((specifier) => ({ from: relative(SRC, file), to: resolveImport(file, specifier) })),
  )
}

const moduleOf = (path: string) => (path.startsWith('modules/') ? path.split('/')[1] : undefined)

/** Every elementary cycle of a small directed graph, each rotated to start at its smallest node. */
function elementaryCycles(graph: Map<string, Set<string>>): string[] {
  const nodes = [...graph.keys()].sort()
  const cycles: string[] = []
  for (const start of nodes) {
    const walk = (node: string, path: string[]) => {
      for (const next of [...(graph.get(node) ?? [])].sort()) {
        if (next === start) cycles.push([...path, start].join(' → '))
        // Only nodes after the start: each cycle is found once, from its smallest node.
        else if (next > start && !path.includes(next)) walk(next, [...path, next])
      }
    }
    walk(start, [start])
  }
  return cycles.sort()
}

describe('import layering of src/', () => {
  const edges = importGraph()

  test('the graph is read: app.ts imports the auth plugin, services import lib/', () => {
    expect(edges).toContainEqual({ from: 'app.ts', to: 'plugins/auth/index.ts' })
    expect(edges.some((edge) => edge.from.startsWith('modules/') && edge.to.startsWith('lib/'))).toBe(true)
  })

  test('no cycle between modules (beyond the listed ones)', () => {
    const graph = new Map<string, Set<string>>()
    const via = new Map<string, string[]>()
    for (const { from, to } of edges) {
      const [a, b] = [moduleOf(from), moduleOf(to)]
      if (!a || !b || a === b) continue
      graph.set(a, (graph.get(a) ?? new Set()).add(b))
      via.set(`${a} → ${b}`, [...(via.get(`${a} → ${b}`) ?? []), `${from} → ${to}`])
    }
    const cycles = elementaryCycles(graph)
    const unexpected = cycles.filter((cycle) => !ALLOWED_MODULE_CYCLES.includes(cycle))
    const explained = unexpected.map((cycle) => {
      const steps = cycle.split(' → ')
      const imports = steps.slice(1).flatMap((to, i) => via.get(`${steps[i]} → ${to}`) ?? [])
      return `${cycle}\n    ${imports.join('\n    ')}`
    })
    expect(explained).toEqual([])
    // A listed cycle that is gone: take it off ALLOWED_MODULE_CYCLES.
    expect(ALLOWED_MODULE_CYCLES.filter((cycle) => !cycles.includes(cycle))).toEqual([])
  })

  test('plugins import no module', () => {
    const offending = edges.filter(({ from, to }) => from.startsWith('plugins/') && to.startsWith('modules/'))
    expect(offending.map(({ from, to }) => `${from} → ${to}`)).toEqual([])
  })

  test('lib/ imports no module and no plugin', () => {
    const offending = edges.filter(({ from, to }) => from.startsWith('lib/') && (to.startsWith('modules/') || to.startsWith('plugins/')))
    expect(offending.map(({ from, to }) => `${from} → ${to}`)).toEqual([])
  })
})
