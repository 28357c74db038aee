/**
 * Builds the web pages (agent console, customer secure chat, dev simulator) with Vite into `outDir`, and prints each
 * page's JavaScript size gzipped. `npm run build` runs it into `packages/web/dist`, which the server serves; tests
 * build into a temporary directory.
 */
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build, defaultClientConditions, type Plugin } from 'vite'

export const webRoot = import.meta.dirname
export const defaultOutDir = path.join(webRoot, 'dist')
export const pages = ['console', 'secure', 'simulator'] as const

export interface PageSize {
  page: string
  files: number
  bytes: number
  gzipBytes: number
  /** With the chunks it may load later (dynamic imports), gzipped. */
  allGzipBytes: number
}

/**
 * Sums the JavaScript each page loads at first (its entry chunk and everything that imports statically), and with the
 * chunks it may load later (dynamic imports: the MLS library loads some of its crypto that way).
 */
function pageSizes(report: (sizes: PageSize[]) => void): Plugin {
  return {
    name: 'strongroom-page-sizes',
    generateBundle(_options, bundle) {
      const sizes: PageSize[] = []
      for (const page of pages) {
        const entry = Object.values(bundle).find(
          (c) => c.type === 'chunk' && c.isEntry && c.facadeModuleId?.endsWith(`/${page}/index.html`),
        )
        if (entry?.type !== 'chunk') continue
        const reach = (withDynamic: boolean) => {
          const seen = new Set<string>()
          const visit = (file: string) => {
            if (seen.has(file)) return
            seen.add(file)
            const chunk = bundle[file]
            if (chunk?.type !== 'chunk') return
            for (const imported of chunk.imports) visit(imported)
            if (withDynamic) for (const imported of chunk.dynamicImports) visit(imported)
          }
          visit(entry.fileName)
          return seen
        }
        const gzipped = (file: string) => {
          const chunk = bundle[file]
          return chunk?.type === 'chunk' ? gzipSync(chunk.code, { level: 9 }).byteLength : 0
        }
        const seen = reach(false)
        let bytes = 0
        let gzipBytes = 0
        for (const file of seen) {
          const chunk = bundle[file]
          if (chunk?.type !== 'chunk') continue
          bytes += Buffer.byteLength(chunk.code)
          gzipBytes += gzipped(file)
        }
        const allGzipBytes = [...reach(true)].reduce((sum, file) => sum + gzipped(file), 0)
        sizes.push({ page, files: seen.size, bytes, gzipBytes, allGzipBytes })
      }
      report(sizes)
    },
  }
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`

export async function buildWeb(options: { outDir?: string; quiet?: boolean } = {}): Promise<PageSize[]> {
  const outDir = options.outDir ?? defaultOutDir
  let sizes: PageSize[] = []
  await build({
    configFile: false,
    root: webRoot,
    base: '/',
    logLevel: options.quiet ? 'silent' : 'info',
    plugins: [pageSizes((s) => (sizes = s))],
    oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
    // The SDK from its sources, like the tests: the pages never depend on the SDK's own build being there or current.
    resolve: { conditions: ['@strongroom/source', ...defaultClientConditions] },
    build: {
      outDir,
      emptyOutDir: true,
      manifest: true,
      target: 'es2022',
      // No inline data: URLs for assets: the pages' CSP allows only files from this server.
      assetsInlineLimit: 0,
      // The SDK's crypto is needed on first load anyway; one chunk per page keeps the count of requests low.
      modulePreload: { polyfill: false },
      rollupOptions: {
        input: Object.fromEntries(pages.map((page) => [page, path.join(webRoot, page, 'index.html')])),
      },
    },
  })
  if (!options.quiet) {
    for (const s of sizes) {
      console.log(
        `strongroom web: ${s.page.padEnd(9)} JavaScript ${kb(s.gzipBytes)} gzipped on first load ` +
          `(${kb(s.bytes)}, ${s.files} files); ${kb(s.allGzipBytes)} gzipped with what it loads later`,
      )
    }
  }
  return sizes
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await buildWeb({ outDir: process.argv[2] ? path.resolve(process.argv[2]) : defaultOutDir })
}
