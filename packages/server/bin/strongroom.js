#!/usr/bin/env node
// The strongroom command: the compiled server (`npm run build`; `npm start` builds it when missing or older than its
// sources). Stack traces point at the TypeScript through the source maps. `npm run dev` runs the sources instead.
import { existsSync } from 'node:fs'
import module from 'node:module'

const main = new URL('../dist/cli/main.js', import.meta.url)
if (!existsSync(main)) {
  process.stderr.write('strongroom: the server is not built: run `npm run build` (or `npm run dev` for the sources)\n')
  process.exit(1)
}
process.setSourceMapsEnabled(true)
// Node caches the compiled code of the server and its dependencies between starts (Node 22.1 and later).
module.enableCompileCache?.()
await import(main.href)
