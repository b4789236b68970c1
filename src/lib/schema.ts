import type { SchemaOptions, TSchema, TUnsafe } from '@sinclair/typebox'
import { t } from 'elysia'

/** Where a schema's name for /docs/json is kept (src/plugins/docs/document.ts makes it a component). */
export const SCHEMA_NAME = 'x-schema-name'

/**
 * `schema`, named in /docs/json: it becomes `components.schemas[name]`, referenced wherever it is
 * used, so that generated clients get one type per resource. Validation is unchanged.
 */
export const Named = <T extends TSchema>(name: string, schema: T): T => ({ ...schema, [SCHEMA_NAME]: name })

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

/**
 * An enum that also accepts other spellings of its values (what the original's clients send), turned
 * into the canonical value while the request is validated: stored and answered in one form only.
 */
export function StringEnumWithAliases<const T extends readonly [string, ...string[]]>(values: T, aliases: Record<string, T[number]>, options: SchemaOptions = {}) {
  const accepted = t.Union([...values, ...Object.keys(aliases)].map((value) => t.Literal(value)), options) as unknown as TUnsafe<string>
  return t
    .Transform(accepted)
    .Decode((value: string) => (aliases[value] ?? value) as T[number])
    .Encode((value: T[number]) => value) as unknown as TUnsafe<T[number]>
}
