import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { openAesGcm, sealAesGcm } from './aes-gcm.ts'
import type { KeyProvider, Signer, SigningAlgorithm, StoredSigningKey } from './key-provider.ts'

interface KeyFile {
  version: 1
  current: string
  keys: Record<string, string>
}

/**
 * KEKs in a local JSON file, readable only by the service user (created 0600; production refuses a looser one).
 * `rotate` adds a version and makes it current; older versions stay so that data keys wrapped under them still open
 * until they are re-wrapped. Another process that rotated is noticed on the first unknown KEK id.
 */
export class LocalKeyFileProvider implements KeyProvider {
  readonly name = 'local-key-file'
  readonly #path: string
  #file: KeyFile

  private constructor(filePath: string, file: KeyFile) {
    this.#path = filePath
    this.#file = file
  }

  static async open(filePath: string, options: { create: boolean }): Promise<LocalKeyFileProvider> {
    let file: KeyFile
    try {
      file = readKeyFile(filePath)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      if (!options.create)
        throw new Error(`key file ${filePath} does not exist (create it with \`strongroom keys init\`)`)
      file = { version: 1, current: 'kek-1', keys: { 'kek-1': randomBytes(32).toString('base64') } }
      mkdirSync(path.dirname(filePath), { recursive: true, mode: 0o700 })
      try {
        writeKeyFile(filePath, file, true)
      } catch (raced) {
        // Another node on the same data directory created it first: use theirs.
        if ((raced as NodeJS.ErrnoException).code !== 'EEXIST') throw raced
        file = readKeyFile(filePath)
      }
    }
    return new LocalKeyFileProvider(filePath, file)
  }

  async currentKekId(): Promise<string> {
    return this.#file.current
  }

  async wrap(dataKey: Buffer, aad: Buffer) {
    const kekId = this.#file.current
    return { kekId, wrapped: sealAesGcm(this.#key(kekId) as Buffer, dataKey, aad) }
  }

  async unwrap(kekId: string, wrapped: Buffer, aad: Buffer): Promise<Buffer> {
    let key = this.#key(kekId)
    if (!key) {
      this.#file = readKeyFile(this.#path)
      key = this.#key(kekId)
    }
    if (!key) throw new Error(`key-encryption key ${kekId} is not in the key file`)
    return openAesGcm(key, wrapped, aad)
  }

  /** Adds a new KEK and makes it current; returns its id. */
  async rotate(): Promise<string> {
    this.#file = readKeyFile(this.#path)
    const next = Math.max(...Object.keys(this.#file.keys).map((id) => Number(id.replace('kek-', '')) || 0)) + 1
    const kekId = `kek-${next}`
    this.#file = {
      ...this.#file,
      current: kekId,
      keys: { ...this.#file.keys, [kekId]: randomBytes(32).toString('base64') },
    }
    writeKeyFile(this.#path, this.#file, false)
    return kekId
  }

  /** A key pair made in this process; the private half is stored wrapped (PKCS#8 under the current KEK). */
  async generateSigningKey(algorithm: SigningAlgorithm, aad: Buffer): Promise<StoredSigningKey> {
    const pair =
      algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const { kekId, wrapped } = await this.wrap(pair.privateKey.export({ format: 'der', type: 'pkcs8' }), aad)
    return { kekId, privateKey: wrapped, publicKey: pair.publicKey.export({ format: 'der', type: 'spki' }) }
  }

  async signer(algorithm: SigningAlgorithm, stored: StoredSigningKey, aad: Buffer): Promise<Signer> {
    const der = await this.unwrap(stored.kekId, stored.privateKey, aad)
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    return algorithm === 'ed25519'
      ? (message) => sign(null, message, key)
      : (message) => sign('sha256', message, { key, dsaEncoding: 'ieee-p1363' })
  }

  async rewrapSigningKey(stored: StoredSigningKey, aad: Buffer): Promise<StoredSigningKey | undefined> {
    if (stored.kekId === this.#file.current) return undefined
    const { kekId, wrapped } = await this.wrap(await this.unwrap(stored.kekId, stored.privateKey, aad), aad)
    return { ...stored, kekId, privateKey: wrapped }
  }

  async close(): Promise<void> {}

  #key(kekId: string): Buffer | undefined {
    const encoded = this.#file.keys[kekId]
    return encoded === undefined ? undefined : Buffer.from(encoded, 'base64')
  }
}

function readKeyFile(filePath: string): KeyFile {
  const file = JSON.parse(readFileSync(filePath, 'utf8')) as KeyFile
  if (file.version !== 1 || typeof file.current !== 'string' || !file.keys?.[file.current]) {
    throw new Error(`key file ${filePath} is not a Strongroom key file`)
  }
  return file
}

/**
 * Written whole to a temporary file with mode 0600, then put in place in one step, so a reader never sees half a
 * file: a new file is hard-linked (which fails if another process created one first), a rotated one renamed over.
 */
function writeKeyFile(filePath: string, file: KeyFile, create: boolean): void {
  const temporary = `${filePath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  writeFileSync(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' })
  try {
    if (create) linkSync(temporary, filePath)
    else renameSync(temporary, filePath)
  } finally {
    rmSync(temporary, { force: true })
  }
}
