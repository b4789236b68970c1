/** The render's text form: deterministic YAML (sorted keys, no anchors, YAML 1.1-safe strings) and sorted JSON. */
import YAML from 'yaml'

/**
 * Whether a string would not read back as itself as a plain scalar, by a YAML 1.1 reader (kubectl and
 * Helm use go-yaml: `yes`, `on`, `1_000`, `1:20`, `2001-12-14`…) or a YAML 1.2 one (`0o17`…).
 */
function readsAsSomethingElse(value: string): boolean {
  if (value.includes('\n')) return false // written as a block scalar: always a string
  const known = misreadCache.get(value)
  if (known !== undefined) return known
  let misread = false
  for (const version of ['1.1', '1.2'] as const) {
    try {
      if (YAML.parse(value, { version }) !== value) misread = true
    } catch {
      misread = true
    }
  }
  // Label keys, images and names repeat across objects and renders: parse each string once.
  if (misreadCache.size >= 10_000) misreadCache.clear()
  misreadCache.set(value, misread)
  return misread
}

const misreadCache = new Map<string, boolean>()

/**
 * Multi-document YAML with keys sorted at every level and no anchors/aliases: the same objects give
 * byte-identical text, so revisions can be diffed. Every string that a YAML 1.1 or 1.2 reader would
 * take for something else (a boolean, a number, a null, a date) is double-quoted.
 */
export function toYaml(objects: readonly object[]): string {
  return objects
    .map((object) => {
      const doc = new YAML.Document(object, { sortMapEntries: true, aliasDuplicateObjects: false })
      YAML.visit(doc, {
        Scalar(_, node) {
          if (typeof node.value === 'string' && readsAsSomethingElse(node.value)) node.type = 'QUOTE_DOUBLE'
        },
      })
      return doc.toString({ lineWidth: 0 })
    })
    .join('---\n')
}

/** The value with the keys of every object sorted: one canonical form for JSON output and comparisons. */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
  )
}
