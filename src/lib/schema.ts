import type { SchemaOptions, TUnsafe } from '@sinclair/typebox'
import { t } from 'elysia'

/**
 * A string enum as a union of literals. Not `t.UnionEnum`: Elysia gives that a `default` of its
 * first value, so an optional enum field left out of a PATCH or a query would silently be filled in.
 */
export function StringEnum<const T extends readonly [string, ...string[]]>(values: T, options: SchemaOptions = {}) {
  // Validated as the union of literals; typed (TUnsafe) as the plain union of the values.
  return t.Union(
    values.map((value) => t.Literal(value)),
    options,
  ) as unknown as TUnsafe<T[number]>
}
