import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Config } from '../platform/config.ts'

/** Where Debian (and other distributions) put SoftHSM2's PKCS#11 library. */
const MODULES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
]

function softHsmModule(): string | undefined {
  return MODULES.find((candidate) => existsSync(candidate))
}

function softHsmUtilPresent(): boolean {
  try {
    execFileSync('softhsm2-util', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** False when SoftHSM2 (its library and softhsm2-util) is there, else why the tests that need it cannot run. */
export function softHsmMissing(): string | false {
  return (!softHsmModule() || !softHsmUtilPresent()) && 'needs SoftHSM2 (apt-get install softhsm2)'
}

export interface SoftHsmToken {
  /** The directory of the token's files, its configuration and its PIN file: nothing else of the machine's. */
  dir: string
  tokenDir: string
  module: string
  tokenLabel: string
  pinFile: string
  /** The environment a child process (the CLI) needs to reach the same token. */
  env: Record<string, string>
  /** The settings a server needs: STRONGROOM_KEY_PROVIDER=pkcs11 on this token. */
  config: Partial<Config>
}

let processToken: SoftHsmToken | undefined

/**
 * This test process's SoftHSM2 token, made on first use in a temporary directory (SOFTHSM2_CONF points there, so the
 * machine's own tokens are never touched). One per process: SoftHSM2 reads its token list when the library is
 * initialized, which happens once per process. Servers of one process share the token as a cluster shares its HSM;
 * their keys have ids of their own.
 */
export function softHsmToken(): SoftHsmToken {
  if (processToken) return processToken
  const module = softHsmModule()
  if (!module) throw new Error('SoftHSM2 is not installed (apt-get install softhsm2)')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-softhsm-'))
  const tokenDir = path.join(dir, 'tokens')
  mkdirSync(tokenDir, { mode: 0o700 })
  const conf = path.join(dir, 'softhsm2.conf')
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\n`)
  const pin = `${Math.floor(Math.random() * 1e8)}`.padStart(8, '0')
  const tokenLabel = 'strongroom-test'
  execFileSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', tokenLabel, '--pin', pin, '--so-pin', `${pin}0`],
    { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: 'ignore' },
  )
  const pinFile = path.join(dir, 'pin')
  writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 })
  process.env.SOFTHSM2_CONF = conf
  processToken = {
    dir,
    tokenDir,
    module,
    tokenLabel,
    pinFile,
    env: {
      SOFTHSM2_CONF: conf,
      STRONGROOM_KEY_PROVIDER: 'pkcs11',
      STRONGROOM_PKCS11_MODULE: module,
      STRONGROOM_PKCS11_TOKEN_LABEL: tokenLabel,
      STRONGROOM_PKCS11_PIN_FILE: pinFile,
      STRONGROOM_ARCHIVE_KEY_PROVIDER: 'pkcs11',
    },
    config: {
      keyProvider: 'pkcs11',
      pkcs11Module: module,
      pkcs11TokenLabel: tokenLabel,
      pkcs11PinFile: pinFile,
      // The compliance archive's KEKs too, as objects of their own (`hsm-archive-kek-N`).
      archiveKeyProvider: 'pkcs11',
    },
  }
  return processToken
}

/** Whether this test run keeps its keys in SoftHSM2: `STRONGROOM_KEY_PROVIDER=pkcs11 npm test -- <files>`. */
export const testingWithPkcs11 = process.env.STRONGROOM_KEY_PROVIDER === 'pkcs11'

/** The key provider settings test servers and CLI runs use: SoftHSM2 when the run asks for it, else the key file. */
export function testKeyProvider(): { config: Partial<Config>; env: Record<string, string> } {
  if (!testingWithPkcs11) return { config: {}, env: {} }
  const token = softHsmToken()
  return { config: token.config, env: token.env }
}
