/**
 * Where the files that ship beside the code live: SQL migrations (drizzle/) and manifest templates
 * (templates/). An env var wins; a compiled binary (`bun build --compile`, whose modules live in the
 * virtual /$bunfs) looks next to its executable — /app/drizzle in the image, dist/drizzle after
 * `npm run build`; from source they are at the repository root.
 */
import { dirname, join, resolve } from 'node:path'

const compiled = import.meta.dir.startsWith('/$bunfs') || import.meta.dir.startsWith('B:/~BUN')
const baseDir = compiled ? dirname(process.execPath) : resolve(import.meta.dir, '../..')

export function assetDir(name: string, override: string | undefined): string {
  return override && override.trim() !== '' ? resolve(override) : join(baseDir, name)
}

export const MIGRATIONS_DIR = assetDir('drizzle', process.env.MIGRATIONS_DIR)
/** For the manifest renderer: YAML templates, `TEMPLATES_DIR` or templates/ beside the code. */
export const TEMPLATES_DIR = assetDir('templates', process.env.TEMPLATES_DIR)
