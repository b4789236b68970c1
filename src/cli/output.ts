/**
 * How the CLI prints what the service answered: `json` (the envelope's `data`, indented), `yaml`, or
 * `table` (a list as rows of its scalar fields; one object as field/value lines).
 */
import { stringify } from 'yaml'

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const
export type OutputFormat = (typeof OUTPUT_FORMATS)[number]

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** A cell: scalars as they are, null as "-", nested values as compact JSON. */
function cell(value: unknown): string {
  if (value === null || value === undefined) return '-'
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? []
  return rows.map((row) => row.map((text, column) => (column === row.length - 1 ? text : text.padEnd(widths[column] ?? 0))).join('  ').trimEnd()).join('\n')
}

export function format(value: unknown, as: OutputFormat): string {
  if (as === 'json') return JSON.stringify(value, null, 2)
  if (as === 'yaml') return stringify(value).trimEnd()
  if (Array.isArray(value)) {
    if (value.length === 0) return '(none)'
    // Columns: the scalar fields of the first row, in its order.
    const first = value[0]
    const columns = isRecord(first) ? Object.keys(first).filter((key) => !isRecord(first[key]) && !Array.isArray(first[key])) : []
    if (columns.length === 0) return value.map(cell).join('\n')
    return table([columns.map((column) => column.toUpperCase()), ...value.map((row) => columns.map((column) => cell(isRecord(row) ? row[column] : undefined)))])
  }
  if (isRecord(value)) return table(Object.entries(value).map(([key, inner]) => [`${key}:`, cell(inner)]))
  return cell(value)
}
