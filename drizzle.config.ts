import { defineConfig } from 'drizzle-kit'

// Only `drizzle-kit generate` is used (never `push`, which is unreliable on MariaDB): it needs no database.
export default defineConfig({
  dialect: 'mysql',
  schema: './src/db/schema.ts',
  out: './drizzle',
})
