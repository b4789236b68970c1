/**
 * A query prepared once per database handle (or transaction) and then run with its placeholders
 * filled in. Unprepared, drizzle builds a query's SQL text on every call, which on a hot read costs
 * about as much CPU as the driver's round trip (README, Benchmarks); prepared, it is built once.
 */
export function preparedPerHandle<Handle extends object, Query>(prepare: (handle: Handle) => Query): (handle: Handle) => Query {
  const prepared = new WeakMap<Handle, Query>()
  return (handle) => {
    let query = prepared.get(handle)
    if (query === undefined) {
      query = prepare(handle)
      prepared.set(handle, query)
    }
    return query
  }
}
