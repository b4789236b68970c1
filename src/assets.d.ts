/** Bun's text imports (`import sql from './x.sql' with { type: 'text' }`): the file's contents. */
declare module '*.sql' {
  const text: string
  export default text
}
