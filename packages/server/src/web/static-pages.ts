import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'

/** The pages the web package builds; the simulator is served in dev mode only. */
export const webPages = ['console', 'secure', 'simulator'] as const
export type WebPage = (typeof webPages)[number]

export interface StaticFile {
  body: Buffer
  /** The same body gzipped, when that is smaller. */
  gzipped: Buffer | undefined
  contentType: string
  etag: string
}

/** What the server serves of the web build: only the files the served pages load, held in memory. */
export interface WebBuild {
  pages: Map<WebPage, StaticFile>
  /** Hashed assets by their path under /assets/ (e.g. "console-PP1xycBu.js"). */
  assets: Map<string, StaticFile>
}

interface ManifestChunk {
  file: string
  imports?: string[]
  dynamicImports?: string[]
  css?: string[]
  assets?: string[]
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
}
const compressible = new Set(['.html', '.js', '.css', '.svg', '.json'])

function staticFile(file: string): StaticFile {
  const body = readFileSync(file)
  const extension = path.extname(file)
  const gzipped = compressible.has(extension) ? gzipSync(body, { level: 9 }) : undefined
  return {
    body,
    gzipped: gzipped && gzipped.byteLength < body.byteLength ? gzipped : undefined,
    contentType: contentTypes[extension] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
  }
}

/** The directory the web build was written to is usable when Vite's manifest is there. */
export function isWebBuilt(dir: string): boolean {
  return existsSync(path.join(dir, '.vite', 'manifest.json'))
}

/**
 * Reads the web build (Vite's output) for the given pages. Only the pages' HTML and the assets the manifest says they
 * load are kept: nothing else in the directory can be reached, and in production the simulator's code is not served
 * at all. Returns undefined when there is no build.
 */
export function loadWebBuild(dir: string, pages: readonly WebPage[]): WebBuild | undefined {
  if (!isWebBuilt(dir)) return undefined
  const manifest = JSON.parse(readFileSync(path.join(dir, '.vite', 'manifest.json'), 'utf8')) as Record<
    string,
    ManifestChunk
  >
  const build: WebBuild = { pages: new Map(), assets: new Map() }
  const wanted = new Set<string>()
  const visit = (key: string) => {
    const chunk = manifest[key]
    if (!chunk || wanted.has(chunk.file)) return
    wanted.add(chunk.file)
    for (const file of [...(chunk.css ?? []), ...(chunk.assets ?? [])]) wanted.add(file)
    for (const imported of [...(chunk.imports ?? []), ...(chunk.dynamicImports ?? [])]) visit(imported)
  }
  for (const page of pages) {
    const html = path.join(dir, page, 'index.html')
    if (!manifest[`${page}/index.html`] || !existsSync(html)) continue
    build.pages.set(page, staticFile(html))
    visit(`${page}/index.html`)
  }
  for (const file of wanted) {
    // Vite writes every hashed file under assets/; anything else would not be reachable under /assets/ anyway.
    if (!file.startsWith('assets/') || file.includes('..')) continue
    build.assets.set(file.slice('assets/'.length), staticFile(path.join(dir, file)))
  }
  return build
}
