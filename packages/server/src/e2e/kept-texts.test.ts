import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, StaffClient, StaffToken } from '@strongroom/sdk'
import {
  generateStoreKey,
  MemoryStore,
  nodeCryptoProvider,
  openFileSecureStore,
  SecureMessaging,
} from '@strongroom/sdk/mls-node'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

const DAY = 86_400_000

describe('a Node app keeps the texts it read and sent, sealed in a file, until they expire', () => {
  let server: TestServer
  let bank: TestBank
  let dir: string

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    dir = mkdtempSync(path.join(os.tmpdir(), 'sr-kept-texts-'))
  })
  after(async () => {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('read and sent texts survive a restart, never in clear, and are gone once expired even offline', async () => {
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    const agentClient = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const phone = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'phone' })
    const conversation = await agentClient.createConversation({
      customerId: bank.customerId,
      assignedStaffId: bank.agentId,
      deviceIds: [phone.device.id],
    })
    await admin.request('PUT', `/v1/conversations/${conversation.id}/retention`, { deviceMessageDays: 1 })

    const file = path.join(dir, 'phone.store')
    const key = await generateStoreKey()
    const openPhone = async (now?: () => number) =>
      SecureMessaging.open(phone.client, {
        provider: nodeCryptoProvider,
        store: await openFileSecureStore(file, key, now ? { now } : {}),
        keepTexts: true,
      })
    const agent = await SecureMessaging.open(agentClient, { provider: nodeCryptoProvider, store: new MemoryStore() })
    let phoneSecure = await openPhone()
    await agent.createGroup(conversation.id, [
      { kind: 'device', id: phone.device.id },
      { kind: 'archive', id: 'archive' },
    ])
    await phoneSecure.acceptWelcomes()

    const asked = await agent.send(conversation.id, 'Your new PIN is 4821')
    await phoneSecure.sync(conversation.id)
    const answered = await phoneSecure.send(conversation.id, 'Thanks, PIN 4821 noted')
    assert.ok(answered.expiresAt && Date.parse(answered.expiresAt) > Date.now() + DAY / 2, 'one day for devices')
    assert.deepEqual(await phoneSecure.keptText(conversation.id, asked.seq), {
      kind: 'text',
      text: 'Your new PIN is 4821',
    })
    assert.deepEqual(await phoneSecure.keptText(conversation.id, answered.seq), {
      kind: 'text',
      text: 'Thanks, PIN 4821 noted',
    })

    const raw = () => readFileSync(file)
    const stored = JSON.parse(raw().toString('utf8')) as { entries: Record<string, { v: string; x?: number }> }
    const textEntries = Object.entries(stored.entries).filter(([name]) => name.startsWith('mls/text/'))
    assert.equal(textEntries.length, 2)
    for (const [, entry] of textEntries) assert.ok(entry.x, 'each text carries its expiry')
    // The file is JSON with base64 values and expiry times, where four digits such as 4821 turn up by chance: the file
    // is searched for phrases, the decoded values for the bare PIN too.
    for (const plaintext of ['PIN 4821', 'PIN is 4821', 'Your new PIN', 'Thanks']) {
      assert.equal(raw().indexOf(Buffer.from(plaintext)), -1, `${plaintext} is not in the file in clear`)
    }
    for (const plaintext of ['4821', 'Your new PIN', 'Thanks']) {
      for (const entry of Object.values(stored.entries)) {
        assert.equal(Buffer.from(entry.v, 'base64').indexOf(Buffer.from(plaintext)), -1)
      }
    }

    // The app restarts: what it read and sent is still there to show.
    phoneSecure = await openPhone()
    assert.deepEqual(await phoneSecure.keptText(conversation.id, asked.seq), {
      kind: 'text',
      text: 'Your new PIN is 4821',
    })

    // Two days later, with the phone offline: the texts leave the file as the app opens; the group stays.
    phoneSecure = await openPhone(() => Date.now() + 2 * DAY)
    assert.equal(await phoneSecure.keptText(conversation.id, asked.seq), undefined)
    assert.equal(await phoneSecure.keptText(conversation.id, answered.seq), undefined)
    assert.ok(!raw().toString('utf8').includes('mls/text/'))
    assert.ok(await phoneSecure.isMember(conversation.id))
  })
})
