/**
 * One owner for a serve's placement: only src/modules/placement/ (and the schema itself) may import the
 * tables that hold it, so no other module can read or write revisions, locks or infra configs behind
 * its back.
 */
import { expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'

const SRC = join(import.meta.dir, '../../src')
const PLACEMENT_TABLES = ['deployments', 'infraConfigs', 'changeLocks']
const OWNERS = ['modules/placement/', 'db/']

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts'))
    .map((entry) => join(entry.parentPath, entry.name))
}

test('only the placement module imports the placement tables', () => {
  const offenders: string[] = []
  for (const file of sourceFiles(SRC)) {
    const path = relative(SRC, file)
    if (OWNERS.some((owner) => path.startsWith(owner))) continue
    const text = readFileSync(file, 'utf8')
    for (const match of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'[^']*db\/schema'/g)) {
      const names = (match[1] ?? '').split(',').map((name) => name.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0])
      for (const table of PLACEMENT_TABLES) if (names.includes(table)) offenders.push(`${path} imports ${table}`)
    }
  }
  expect(offenders).toEqual([])
})
