/**
 * The manifest templates, embedded in the code (and so in the compiled binary) by Bun's text imports,
 * or read from TEMPLATES_DIR when an operator customises them. Either way they come through
 * `templateSet`, parsed and checked once: a missing or unparsable template fails at start, naming
 * the file, instead of a 500 on the first deploy.
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import YAML from 'yaml'
import fastapiDeployment from '../../templates/fastapi/deployment.yaml' with { type: 'text' }
import fastapiHpa from '../../templates/fastapi/hpa.yaml' with { type: 'text' }
import fastapiIngress from '../../templates/fastapi/ingress.yaml' with { type: 'text' }
import fastapiService from '../../templates/fastapi/service.yaml' with { type: 'text' }
import fastapiVirtualService from '../../templates/fastapi/virtualservice.yaml' with { type: 'text' }
import rayService from '../../templates/ray/rayservice.yaml' with { type: 'text' }
import workflowCronJob from '../../templates/workflow/cronjob.yaml' with { type: 'text' }

/** Every template the renderer uses, by its path under templates/ (a test keeps this list complete). */
export const EMBEDDED_TEMPLATES = {
  'fastapi/deployment.yaml': fastapiDeployment as string,
  'fastapi/hpa.yaml': fastapiHpa as string,
  'fastapi/ingress.yaml': fastapiIngress as string,
  'fastapi/service.yaml': fastapiService as string,
  'fastapi/virtualservice.yaml': fastapiVirtualService as string,
  'ray/rayservice.yaml': rayService as string,
  'workflow/cronjob.yaml': workflowCronJob as string,
} as const

export type TemplatePath = keyof typeof EMBEDDED_TEMPLATES

export class TemplateError extends Error {
  override readonly name = 'TemplateError'
}

type TemplateSet = ReadonlyMap<TemplatePath, unknown>

function parseTemplate(path: string, text: string): unknown {
  let parsed: unknown
  try {
    parsed = YAML.parse(text)
  } catch (error) {
    throw new TemplateError(`template ${path} is not valid YAML: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new TemplateError(`template ${path} is not a YAML mapping`)
  return parsed
}

function loadTemplateSet(dir: string | undefined): TemplateSet {
  const set = new Map<TemplatePath, unknown>()
  for (const [path, embedded] of Object.entries(EMBEDDED_TEMPLATES) as [TemplatePath, string][]) {
    let text = embedded
    if (dir !== undefined) {
      const file = join(resolve(dir), path)
      try {
        text = readFileSync(file, 'utf8')
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : String(error)
        throw new TemplateError(`TEMPLATES_DIR=${dir} must hold every template; cannot read ${file}: ${reason}`)
      }
    }
    set.set(path, parseTemplate(dir === undefined ? path : join(dir, path), text))
  }
  return set
}

const loaded = new Map<string, TemplateSet>()

/** The parsed templates of `dir` (TEMPLATES_DIR), or the embedded ones; loaded once per directory. */
export function templateSet(dir: string | undefined): TemplateSet {
  const key = dir ?? ''
  let set = loaded.get(key)
  if (!set) {
    set = loadTemplateSet(dir)
    loaded.set(key, set)
  }
  return set
}

/** A fresh copy of one template: callers fill it in place. */
export function template<T>(dir: string | undefined, path: TemplatePath): T {
  return structuredClone(templateSet(dir).get(path)) as T
}
