import 'fake-indexeddb/auto'
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { IndexedDbStore } from './browser-store.ts'

const bytes = (text: string) => new TextEncoder().encode(text)
const HOUR = 3_600_000

/** IndexedDB in Node (fake-indexeddb), for what the store does with expiry; the console's browser test runs Chromium. */
describe('IndexedDbStore: expiry in the browser store', () => {
  test('an expired value is hidden, then erased by purgeExpired without any network; others stay', async () => {
    let now = Date.UTC(2030, 0, 1)
    const store = await IndexedDbStore.open('expiry-test', { now: () => now })
    await store.set('mls/text/cnv_1/1', bytes('expires'), { expiresAt: new Date(now + HOUR) })
    await store.set('mls/group/cnv_1', bytes('group state'))
    await store.set('mls/text/cnv_1/2', bytes('no longer expires'), { expiresAt: new Date(now + HOUR) })
    await store.set('mls/text/cnv_1/2', bytes('no longer expires'))
    assert.deepEqual(await store.get('mls/text/cnv_1/1'), bytes('expires'))

    now += 2 * HOUR
    assert.equal(await store.get('mls/text/cnv_1/1'), undefined)
    assert.equal(await store.purgeExpired(new Date(now)), 1)
    assert.equal(await store.purgeExpired(new Date(now)), 0)
    // Gone from the database itself, not only hidden: a clock put back does not bring it back.
    now -= 2 * HOUR
    assert.equal(await store.get('mls/text/cnv_1/1'), undefined)
    assert.deepEqual(await store.get('mls/group/cnv_1'), bytes('group state'))
    assert.deepEqual(await store.get('mls/text/cnv_1/2'), bytes('no longer expires'))
    await store.delete('mls/group/cnv_1')
    assert.equal(await store.get('mls/group/cnv_1'), undefined)
    await store.wipe()
  })

  test('a database made by the first version (no expiries) opens and gains them', async () => {
    const old = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open('version-1', 1)
      request.onupgradeneeded = () => {
        request.result.createObjectStore('values')
        request.result.createObjectStore('keys')
      }
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
    })
    await new Promise((resolve) => {
      const transaction = old.transaction('values', 'readwrite')
      transaction.objectStore('values').put(bytes('kept from version 1'), 'mls/group/cnv_1')
      transaction.oncomplete = resolve
    })
    old.close()
    const store = await IndexedDbStore.open('version-1')
    assert.deepEqual(await store.get('mls/group/cnv_1'), bytes('kept from version 1'))
    await store.set('mls/text/cnv_1/1', bytes('text'), { expiresAt: new Date(Date.now() - 1) })
    assert.equal(await store.purgeExpired(new Date()), 1)
    await store.wipe()
  })
})
