import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import { FileStore, openFileSecureStore } from './file-store.ts'
import { generateStoreKey, importStoreKey } from './secure-store.ts'

const bytes = (text: string) => new TextEncoder().encode(text)
const HOUR = 3_600_000

describe('FileStore: a SecureStore in one file, for Node', () => {
  let dir: string
  let n = 0
  const fresh = () => path.join(dir, `store-${++n}.json`)

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sr-file-store-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('what is set is there after reopening, expiry included; deletes stick; only the owner can read the file', async () => {
    const file = fresh()
    const store = await FileStore.open(file)
    await store.set('a', bytes('one'))
    await store.set('b', bytes('two'), { expiresAt: new Date(Date.now() + HOUR) })
    await store.set('c', bytes('three'))
    await store.delete('c')
    await store.set('a', bytes('one, again'))
    store.close()
    assert.equal(statSync(file).mode & 0o777, 0o600)

    const reopened = await FileStore.open(file)
    assert.deepEqual(await reopened.get('a'), bytes('one, again'))
    assert.deepEqual(await reopened.get('b'), bytes('two'))
    assert.equal(await reopened.get('c'), undefined)
    reopened.close()
  })

  test('a hundred changes at once all reach the file (they share writes)', async () => {
    const file = fresh()
    const store = await FileStore.open(file)
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.set(`k${i}`, bytes(`v${i}`))))
    store.close()
    const reopened = await FileStore.open(file)
    for (let i = 0; i < 100; i++) assert.deepEqual(await reopened.get(`k${i}`), bytes(`v${i}`))
    reopened.close()
  })

  test('a torn temporary file from a crash does not lose the state before it', async () => {
    const file = fresh()
    const store = await FileStore.open(file)
    await store.set('kept', bytes('before the crash'))
    store.close()
    const complete = readFileSync(file, 'utf8')
    // The process died while writing the next state: half a file beside the real one.
    writeFileSync(`${file}.tmp`, complete.slice(0, Math.floor(complete.length / 2)))
    const reopened = await FileStore.open(file)
    assert.deepEqual(await reopened.get('kept'), bytes('before the crash'))
    assert.ok(!existsSync(`${file}.tmp`), 'the unfinished write is dropped')
    await reopened.set('after', bytes('the restart'))
    reopened.close()
    assert.deepEqual(await (await FileStore.open(file)).get('after'), bytes('the restart'))
  })

  test('a process killed at any moment while writing leaves a whole state behind', async () => {
    const file = fresh()
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { FileStore } from ${JSON.stringify(path.join(import.meta.dirname, 'file-store.ts'))}
         const store = await FileStore.open(${JSON.stringify(file)})
         for (let i = 1; ; i++) {
           await store.set('entry/' + i, new Uint8Array(512).fill(i % 256))
           await store.set('counter', new TextEncoder().encode(String(i)))
           if (i % 5 === 0) console.log(i)
         }`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    const lines = createInterface({ input: child.stdout })
    for await (const line of lines) if (Number(line) >= 20) break
    child.kill('SIGKILL')
    await new Promise((resolve) => child.once('exit', resolve))

    const store = await FileStore.open(file)
    const counter = Number(new TextDecoder().decode(await store.get('counter')))
    assert.ok(counter >= 20)
    // Each entry was written before the counter that names it: all of them are there, whole.
    for (let i = 1; i <= counter; i++) {
      assert.deepEqual(await store.get(`entry/${i}`), new Uint8Array(512).fill(i % 256), `entry ${i}`)
    }
    store.close()
  })

  test('what expired while the app was closed (or offline) is erased from the file when it opens', async () => {
    const file = fresh()
    const t0 = Date.UTC(2030, 0, 1)
    const store = await openFileSecureStore(file, await generateStoreKey(), { now: () => t0 })
    await store.set('mls/text/cnv_1/1', bytes('expires soon'), { expiresAt: new Date(t0 + HOUR) })
    await store.set('mls/group/cnv_1', bytes('group state'))
    const sealed = JSON.parse(readFileSync(file, 'utf8')).entries['mls/text/cnv_1/1'].v as string

    // Two hours later, with no network: opening erases it, from the file as well as from view.
    const later = await FileStore.open(file, { now: () => t0 + 2 * HOUR })
    assert.equal(await later.get('mls/text/cnv_1/1'), undefined)
    const raw = readFileSync(file, 'utf8')
    assert.ok(!raw.includes('mls/text/cnv_1/1'))
    assert.ok(!raw.includes(sealed))
    assert.ok(await later.get('mls/group/cnv_1'), 'what does not expire stays')
    later.close()
  })

  test('an expired value is hidden at once, and leaves the file at its expiry while the store is open', async () => {
    const file = fresh()
    let now = Date.now()
    const store = await FileStore.open(file, { now: () => now })
    await store.set('short', bytes('brief'), { expiresAt: new Date(now + 200) })
    now += 201
    assert.equal(await store.get('short'), undefined)
    const deadline = Date.now() + 5000
    while (readFileSync(file, 'utf8').includes('short') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.ok(!readFileSync(file, 'utf8').includes('short'))
    assert.equal(await store.purgeExpired(new Date(now)), 0)
    store.close()
  })

  test('wipe erases the file; the sealed store can no longer be used', async () => {
    const file = fresh()
    const store = await openFileSecureStore(file, await generateStoreKey())
    await store.set('mls/signature-key', bytes('private key bytes'))
    await store.wipe?.()
    assert.ok(!existsSync(file))
    assert.ok(!existsSync(`${file}.tmp`))
    await assert.rejects(store.get('mls/signature-key'), /the store was wiped/)
    const reopened = await FileStore.open(file)
    assert.equal(await reopened.get('mls/signature-key'), undefined)
    reopened.close()
  })

  test('nothing is in clear in the file; a changed byte or a value moved to another name does not open', async () => {
    const file = fresh()
    const key = await importStoreKey(crypto.getRandomValues(new Uint8Array(32)))
    const store = await openFileSecureStore(file, key)
    const secrets = ['Your new PIN is 4821', 'IBAN GB33BUKB20201555555555']
    await store.set('mls/text/cnv_1/1', bytes(secrets[0] as string))
    await store.set('mls/text/cnv_1/2', bytes(secrets[1] as string))
    const raw = readFileSync(file)
    const document = JSON.parse(raw.toString('utf8')) as { entries: Record<string, { v: string }> }
    for (const secret of secrets) {
      assert.equal(raw.indexOf(Buffer.from(secret)), -1)
      assert.equal(raw.indexOf(Buffer.from(secret).toString('base64')), -1)
      for (const entry of Object.values(document.entries)) {
        assert.equal(Buffer.from(entry.v, 'base64').indexOf(Buffer.from(secret)), -1)
      }
    }

    const one = document.entries['mls/text/cnv_1/1'] as { v: string }
    const two = document.entries['mls/text/cnv_1/2'] as { v: string }
    const tampered = Buffer.from(one.v, 'base64')
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1
    writeFileSync(
      file,
      JSON.stringify({
        ...document,
        entries: { ...document.entries, 'mls/text/cnv_1/1': { v: tampered.toString('base64') }, moved: two },
      }),
    )
    const reopened = await openFileSecureStore(file, key)
    await assert.rejects(reopened.get('mls/text/cnv_1/1'))
    await assert.rejects(reopened.get('moved'))
    assert.deepEqual(await reopened.get('mls/text/cnv_1/2'), bytes(secrets[1] as string))
    await assert.rejects(
      (await openFileSecureStore(file, await generateStoreKey())).get('mls/text/cnv_1/2'),
      'another key opens nothing',
    )
  })

  test('a file that is not a store is refused, not replaced', async () => {
    const file = fresh()
    writeFileSync(file, '{"something": "else"}')
    await assert.rejects(FileStore.open(file), /is not a Strongroom store/)
    assert.equal(readFileSync(file, 'utf8'), '{"something": "else"}')
    assert.throws(() => importStoreKey(new Uint8Array(16)), /a store key is 32 bytes/)
  })
})
