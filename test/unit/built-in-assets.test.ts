/**
 * The service carries its templates and migrations (the compiled binary has nothing beside it):
 * the built-in copies must be exactly the repository's files, all of them, and the overrides
 * (TEMPLATES_DIR, MIGRATIONS_DIR) must take over or fail naming the file.
 */
import { describe, expect, test } from 'bun:test'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { readMigrationFiles } from 'drizzle-orm/migrator'
import { loadConfig } from '../../src/config'
import { EMBEDDED_MIGRATIONS, migrationsFrom } from '../../src/db/migrations'
import { type RenderInput, renderServe } from '../../src/render'
import { EMBEDDED_TEMPLATES, TemplateError, templateSet } from '../../src/render/templates'

const root = resolve(import.meta.dir, '../..')

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort()
}

const input: RenderInput = {
  serve: { name: 'fraud', type: 'api', description: '' },
  environment: { name: 'prod', domain_suffix: '.example.com', namespace: 'ml', cluster_name: 'c', security_group: '', subnets: '', workflow_url: '' },
  infra: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 2, node_capacity_type: 'spot' },
  artifact: { version: 'v1', image: 'registry.example.com/fraud:v1' },
  deployment: { strategy: 'rolling', environment_variables: {}, revision: 1 },
}

describe('built-in templates', () => {
  test('are every file of templates/, byte for byte', () => {
    const files = filesUnder(join(root, 'templates'))
    expect(Object.keys(EMBEDDED_TEMPLATES).sort()).toEqual(files)
    for (const [path, text] of Object.entries(EMBEDDED_TEMPLATES)) {
      expect(text).toBe(readFileSync(join(root, 'templates', path), 'utf8'))
    }
  })

  test('TEMPLATES_DIR replaces them: a customised template is what renders', () => {
    const dir = mkdtempSync(join(tmpdir(), 'templates-'))
    try {
      cpSync(join(root, 'templates'), dir, { recursive: true })
      const deployment = readFileSync(join(dir, 'fastapi/deployment.yaml'), 'utf8')
      writeFileSync(join(dir, 'fastapi/deployment.yaml'), deployment.replace(/^spec:\n/m, 'spec:\n  minReadySeconds: 42\n'))
      const minReadySeconds = (env: Record<string, string>) => {
        const rendered = renderServe(input, loadConfig({ ENV: 'prod', ENABLE_OTEL: 'false', ...env })).manifests.find((object) => object.kind === 'Deployment')
        return (rendered?.spec as { minReadySeconds?: number } | undefined)?.minReadySeconds
      }
      expect(minReadySeconds({ TEMPLATES_DIR: dir })).toBe(42)
      expect(minReadySeconds({})).toBeUndefined()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('a TEMPLATES_DIR missing a file, or with one that is not YAML, is refused naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'templates-'))
    try {
      cpSync(join(root, 'templates'), dir, { recursive: true })
      unlinkSync(join(dir, 'ray/rayservice.yaml'))
      expect(() => templateSet(dir)).toThrow(TemplateError)
      expect(() => templateSet(dir)).toThrow(`cannot read ${join(dir, 'ray/rayservice.yaml')}: it does not exist`)
      const broken = `${dir}-broken`
      cpSync(join(root, 'templates'), broken, { recursive: true })
      writeFileSync(join(broken, 'fastapi/hpa.yaml'), 'spec: [unclosed\n')
      expect(() => templateSet(broken)).toThrow(`template ${join(broken, 'fastapi/hpa.yaml')} is not valid YAML`)
      rmSync(broken, { recursive: true, force: true })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('built-in migrations', () => {
  test('are every migration of drizzle/, byte for byte, in the journal', () => {
    const sqlFiles = readdirSync(join(root, 'drizzle')).filter((name) => name.endsWith('.sql')).sort()
    expect(Object.keys(EMBEDDED_MIGRATIONS).map((tag) => `${tag}.sql`).sort()).toEqual(sqlFiles)
    for (const [tag, sql] of Object.entries(EMBEDDED_MIGRATIONS)) expect(sql).toBe(readFileSync(join(root, 'drizzle', `${tag}.sql`), 'utf8'))
  })

  test("are what drizzle's own folder reader makes of drizzle/ (same statements, hashes and timestamps)", () => {
    const fromFolder = readMigrationFiles({ migrationsFolder: join(root, 'drizzle') })
    expect(migrationsFrom(undefined)).toEqual(fromFolder)
    expect(migrationsFrom(join(root, 'drizzle'))).toEqual(fromFolder)
    expect(fromFolder.length).toBeGreaterThan(0)
  })
})
