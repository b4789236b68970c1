/**
 * The UI bundles the docs plugin imports with `with { type: 'file' }`: Bun gives the path of the file
 * (inside the executable once compiled), to be read with `Bun.file`. TypeScript 5 does not know that
 * import attribute, so each one is declared here.
 */
declare module 'swagger-ui-dist/swagger-ui-bundle.js' {
  const path: string
  export default path
}
declare module 'swagger-ui-dist/swagger-ui.css' {
  const path: string
  export default path
}
declare module 'redoc/bundles/redoc.standalone.js' {
  const path: string
  export default path
}
