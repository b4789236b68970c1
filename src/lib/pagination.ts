import { t } from 'elysia'

export const DEFAULT_PAGE_SIZE = 20
export const MAX_PAGE_SIZE = 200

/** `?page=&limit=` on every list route: pages start at 1, at most MAX_PAGE_SIZE items a page. */
export const PageQuery = {
  page: t.Optional(t.Integer({ minimum: 1, maximum: 1_000_000, default: 1, description: 'Page number, from 1' })),
  limit: t.Optional(
    t.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE, description: 'Items per page' }),
  ),
}

export interface PageRequest {
  page?: number
  limit?: number
}

export interface Page<T> {
  items: T[]
  total: number
  page: number
  limit: number
}

export function pageWindow(request: PageRequest) {
  const page = request.page ?? 1
  const limit = request.limit ?? DEFAULT_PAGE_SIZE
  return { page, limit, offset: (page - 1) * limit }
}

/** Escapes LIKE wildcards so that a user's prefix filter matches literally. */
export function escapeLike(value: string) {
  return value.replace(/[\\%_]/g, (char) => `\\${char}`)
}
