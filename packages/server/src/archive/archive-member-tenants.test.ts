import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { newId } from '../platform/ids.ts'
import { createTestBank, startTestServer, type TestServer } from '../testing/harness.ts'
import { ARCHIVE_KEY_PACKAGES_WANTED_SUBJECT_PREFIX } from './member-presence.ts'

describe('the archive member and a tenant it cannot open', () => {
  let server: TestServer
  before(async () => {
    server = await startTestServer()
  })
  after(() => server.stop())

  test('a tenant it cannot open (not in this database) does not stop it flushing the others', async () => {
    const member = server.archiveMember
    assert.ok(member)
    // A bank whose archive the member holds open, with its store to flush.
    await member.ensureTenant((await createTestBank(server)).tenantId)
    // The flush starts; meanwhile the bus asks for a tenant this database does not hold (its data key cannot be
    // stored), so that tenant's opening fails while the flush goes through the tenants.
    const flushed = member.idle()
    server.ctx.bus.publish(`${ARCHIVE_KEY_PACKAGES_WANTED_SUBJECT_PREFIX}${newId('ten')}`, new Uint8Array())
    await flushed
    await member.idle()
  })
})
