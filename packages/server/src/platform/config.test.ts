import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { archiveKeyFileOf, ConfigError, loadConfig } from './config.ts'

function refuses(env: NodeJS.ProcessEnv, setting: string, pattern: RegExp) {
  assert.throws(
    () => loadConfig(env),
    (error) => {
      assert.ok(error instanceof ConfigError)
      assert.equal(error.setting, setting)
      assert.match(error.message, pattern)
      assert.ok(!error.message.includes('\n'), 'one line')
      return true
    },
  )
}

describe('configuration', () => {
  test('the defaults are the embedded dev setup', () => {
    const config = loadConfig({})
    assert.equal(config.mode, 'dev')
    assert.equal(config.port, 8080)
    assert.equal(config.databaseUrl, undefined)
    assert.equal(config.natsUrl, undefined)
    assert.equal(config.keyFile, path.join('./strongroom-data', 'keyring.json'))
    assert.equal(config.maxMessageBytes, 65536)
    // Dev needs no public URL (the listening URL stands in), and may name an http:// one.
    assert.equal(config.publicUrl, undefined)
    assert.equal(loadConfig({ STRONGROOM_PUBLIC_URL: 'http://localhost:8080' }).publicUrl, 'http://localhost:8080')
  })

  test('values come from the environment, typed', () => {
    const config = loadConfig({ PORT: '9000', STRONGROOM_TRUST_PROXY: 'true', NATS_URL: 'nats://127.0.0.1:4222' })
    assert.equal(config.port, 9000)
    assert.equal(config.trustProxy, true)
    assert.equal(config.natsUrl, 'nats://127.0.0.1:4222')
  })

  test('a bad value stops with one line naming the setting', () => {
    refuses({ PORT: 'eighty' }, 'PORT', /PORT must be an integer from 0 to 65535/)
    refuses({ PORT: '70000' }, 'PORT', /PORT/)
    refuses({ STRONGROOM_MODE: 'prod' }, 'STRONGROOM_MODE', /must be one of dev, production/)
    refuses({ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL', /must match/)
    refuses({ STRONGROOM_TRUST_PROXY: 'maybe' }, 'STRONGROOM_TRUST_PROXY', /true or false/)
  })

  test('a config file supplies values, the environment wins, unknown keys are refused', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-config-'))
    const file = path.join(dir, 'config.json')
    writeFileSync(file, JSON.stringify({ port: 7000, logLevel: 'warn' }))
    assert.equal(loadConfig({ STRONGROOM_CONFIG: file }).port, 7000)
    assert.equal(loadConfig({ STRONGROOM_CONFIG: file, PORT: '7001' }).port, 7001)
    writeFileSync(file, JSON.stringify({ prot: 7000 }))
    refuses({ STRONGROOM_CONFIG: file }, 'STRONGROOM_CONFIG', /unknown setting "prot"/)
    writeFileSync(file, '{')
    refuses({ STRONGROOM_CONFIG: file }, 'STRONGROOM_CONFIG', /JSON/)
  })

  describe('production mode refuses unsafe settings', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-prod-'))
    const keyFile = path.join(dir, 'keyring.json')
    writeFileSync(keyFile, '{}', { mode: 0o600 })
    const base = {
      STRONGROOM_MODE: 'production',
      DATABASE_URL: 'postgres://db/strongroom',
      STRONGROOM_KEY_FILE: keyFile,
      STRONGROOM_PUBLIC_URL: 'https://chat.bank.example',
    }

    test('a safe production config loads, with dev seeding off', () => {
      const config = loadConfig(base)
      assert.equal(config.mode, 'production')
      assert.equal(config.devSeed, false)
    })

    test('without a database URL (PGlite is for dev)', () => {
      refuses({ ...base, DATABASE_URL: '' }, 'DATABASE_URL', /required in production/)
    })

    test('without a public URL: the server would take its own URL (the OAuth issuer) from the Host header', () => {
      refuses(
        { ...base, STRONGROOM_PUBLIC_URL: '' },
        'STRONGROOM_PUBLIC_URL',
        /is required in production mode: the https:\/\/ URL clients reach this server at/,
      )
    })

    test('with a public URL that is not https://', () => {
      refuses(
        { ...base, STRONGROOM_PUBLIC_URL: 'http://chat.bank.example' },
        'STRONGROOM_PUBLIC_URL',
        /must be an https:\/\/ URL in production mode/,
      )
      assert.equal(loadConfig(base).publicUrl, 'https://chat.bank.example')
    })

    test('with a key file others can read', () => {
      const loose = path.join(dir, 'loose.json')
      writeFileSync(loose, '{}')
      chmodSync(loose, 0o644)
      refuses({ ...base, STRONGROOM_KEY_FILE: loose }, 'STRONGROOM_KEY_FILE', /chmod 600/)
    })

    test('`keys init` loads the configuration before the key files exist', () => {
      const absent = { ...base, STRONGROOM_KEY_FILE: path.join(dir, 'not-yet.json'), STRONGROOM_ARCHIVE_MEMBER: 'true' }
      refuses(absent, 'STRONGROOM_KEY_FILE', /must exist/)
      assert.equal(loadConfig(absent, {}, { creatingKeyFiles: true }).keyFile, path.join(dir, 'not-yet.json'))
      assert.throws(() => loadConfig({ ...absent, STRONGROOM_DEV_SEED: 'true' }, {}, { creatingKeyFiles: true }))
    })

    test('with a missing key file', () => {
      refuses({ ...base, STRONGROOM_KEY_FILE: path.join(dir, 'absent.json') }, 'STRONGROOM_KEY_FILE', /must exist/)
    })

    test('never from ./strongroom-data in the directory it starts in, even when key files are there', () => {
      const started = process.cwd()
      const workdir = mkdtempSync(path.join(os.tmpdir(), 'sr-prod-cwd-'))
      mkdirSync(path.join(workdir, 'strongroom-data'))
      for (const file of ['keyring.json', 'archive-keyring.json']) {
        writeFileSync(path.join(workdir, 'strongroom-data', file), '{}', { mode: 0o600 })
      }
      process.chdir(workdir)
      try {
        const { STRONGROOM_KEY_FILE: _, ...unnamed } = base
        refuses(unnamed, 'STRONGROOM_KEY_FILE', /must be set in production mode/)
        refuses({ ...base, STRONGROOM_ARCHIVE_MEMBER: 'true' }, 'STRONGROOM_ARCHIVE_KEY_FILE', /must be set/)
        // A node that runs no archive member does not even look at the archive's key file lying there.
        assert.equal(loadConfig(base).archiveKeyFile, undefined)
        assert.throws(() => archiveKeyFileOf(loadConfig(base)), /STRONGROOM_ARCHIVE_KEY_FILE must be set/)
        const named = loadConfig({ ...unnamed, STRONGROOM_DATA_DIR: path.join(workdir, 'strongroom-data') })
        assert.equal(named.keyFile, path.join(workdir, 'strongroom-data', 'keyring.json'))
      } finally {
        process.chdir(started)
        rmSync(workdir, { recursive: true, force: true })
      }
    })

    test('with the dev seed asked for', () => {
      refuses({ ...base, STRONGROOM_DEV_SEED: 'true' }, 'STRONGROOM_DEV_SEED', /dev-only/)
    })

    test('the archive member runs only with its own private key file, apart from the keyring', () => {
      assert.equal(loadConfig(base).archiveMember, false, 'off unless the operator picks this node')
      const archive = { ...base, STRONGROOM_ARCHIVE_MEMBER: 'true' }
      refuses(archive, 'STRONGROOM_ARCHIVE_KEY_FILE', /must be set in production mode/)
      const emptyDataDir = mkdtempSync(path.join(os.tmpdir(), 'sr-prod-data-'))
      refuses({ ...archive, STRONGROOM_DATA_DIR: emptyDataDir }, 'STRONGROOM_ARCHIVE_KEY_FILE', /must exist/)
      refuses(
        { ...archive, STRONGROOM_ARCHIVE_KEY_FILE: path.join(dir, 'absent.json') },
        'STRONGROOM_ARCHIVE_KEY_FILE',
        /must exist/,
      )
      refuses({ ...archive, STRONGROOM_ARCHIVE_KEY_FILE: keyFile }, 'STRONGROOM_ARCHIVE_KEY_FILE', /live keyring/)
      const loose = path.join(dir, 'archive-loose.json')
      writeFileSync(loose, '{}')
      chmodSync(loose, 0o640)
      refuses({ ...archive, STRONGROOM_ARCHIVE_KEY_FILE: loose }, 'STRONGROOM_ARCHIVE_KEY_FILE', /chmod 600/)
      const own = path.join(dir, 'archive-keyring.json')
      writeFileSync(own, '{}', { mode: 0o600 })
      assert.equal(loadConfig({ ...archive, STRONGROOM_ARCHIVE_KEY_FILE: own }).archiveMember, true)
    })

    test('metrics and NATS settings are checked like the rest', () => {
      refuses({ ...base, STRONGROOM_METRICS_TOKEN: 'short' }, 'STRONGROOM_METRICS_TOKEN', /at least 32 characters/)
      refuses({ ...base, STRONGROOM_METRICS_PORT: 'x' }, 'STRONGROOM_METRICS_PORT', /integer/)
      refuses(
        { ...base, STRONGROOM_ALLOW_DEV_SEEDED_DATABASE: 'perhaps' },
        'STRONGROOM_ALLOW_DEV_SEEDED_DATABASE',
        /true or false/,
      )
      const config = loadConfig({ ...base, NATS_URL: 'tls://u:p@nats.internal:4222', NATS_TLS_CA_FILE: '/etc/ca.pem' })
      assert.equal(config.natsTlsCaFile, '/etc/ca.pem')
    })

    test('an archive partition outside its count', () => {
      refuses({ ...base, STRONGROOM_ARCHIVE_PARTITION: '4/4' }, 'STRONGROOM_ARCHIVE_PARTITION', /0 <= i < n/)
    })
  })
})
