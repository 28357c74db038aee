/**
 * The console's search index forgets what is gone (issue 20, desk): a public message whose ciphertext expired is no
 * longer found by its words, and a data-subject erasure takes the customer's name and public texts out of the index.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import type { SearchPage } from '@strongroom/sdk/protocol'
import { ChannelSimulator } from '@strongroom/sdk/simulator'
import { archiveKeysOf } from '../archive/append.ts'
import { eraseCustomer } from '../archive/erasure.ts'
import { operator } from '../audit/events.ts'
import { forgetPublicTexts } from '../channels/message-search.ts'
import { purgeExpiredMessages } from '../conversations/purge-expired-messages.ts'
import { configureSimulatedChannels } from '../seed.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

const BANK_NUMBER = '+442079460778'
const DAY = 86_400_000

describe('the search index forgets expired messages and erased customers', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  const search = async (q: string) =>
    (await agent.request<SearchPage>('GET', `/v1/search/conversations?q=${encodeURIComponent(q)}`)).hits

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server, 'Forgetting Bank')
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    await configureSimulatedChannels(server.ctx, bank.adminToken, bank.agentId, { twilio: BANK_NUMBER })
  })
  after(() => server.stop())

  test('an expired public message is no longer found by its words; the others still are', async () => {
    const phone = new ChannelSimulator({ baseUrl: server.url })
    await phone.send('twilio', { from: '+447700900881', to: BANK_NUMBER, text: 'quokka sighting near the branch' })
    await phone.send('twilio', { from: '+447700900881', to: BANK_NUMBER, text: 'wombat question about fees' })
    assert.equal((await search('quokka')).length, 1)
    const [conversation] = await agent.listConversations()
    const messages = await server.ctx.db
      .selectFrom('messages')
      .select(['seq'])
      .where('conversation_id', '=', conversation?.id as string)
      .orderBy('seq')
      .execute()
    // The first text's ciphertext expires (the archive holds it): its terms go with it.
    await server.ctx.db
      .updateTable('messages')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('conversation_id', '=', conversation?.id as string)
      .where('seq', '=', messages[0]?.seq as string)
      .execute()
    const purged = await purgeExpiredMessages(server.ctx, {
      isArchived: async (refs) => new Set(refs.map((r) => `${r.tenantId}/${r.conversationId}/${r.seq}`)),
      purged: (refs) => forgetPublicTexts(server.ctx.db, refs),
    })
    assert.equal(purged, 1)
    assert.deepEqual(await search('quokka'), [])
    assert.equal((await search('wombat')).length, 1)
  })

  test('a data-subject erasure takes the customer’s name and public texts out of the index, and their reports', async () => {
    const phoneNumber = '+447700900882'
    const customer = await agent.createCustomer({
      externalRef: 'FORGET-1',
      displayName: 'Philippa Zanzibar',
      phoneNumber,
    })
    const phone = new ChannelSimulator({ baseUrl: server.url })
    await phone.send('twilio', { from: phoneNumber, to: BANK_NUMBER, text: 'platypus overdraft worry' })
    await phone.send('twilio', { from: phoneNumber, to: BANK_NUMBER, text: 'REPORT verify at examp1e-bank.com now' })
    const reports = () =>
      server.ctx.db.selectFrom('suspicious_reports').select('id').where('customer_id', '=', customer.id).execute()
    assert.equal((await reports()).length, 1)
    assert.equal((await search('Zanzibar')).length, 1)
    assert.equal((await search('platypus')).length, 1)
    // Erased once the bank's retention is over (here: the default ten years, so at a time past it).
    await eraseCustomer(
      server.ctx.db,
      archiveKeysOf(server.ctx),
      bank.tenantId,
      customer.id,
      operator,
      new Date(Date.now() + 3700 * DAY),
    )
    assert.deepEqual(await search('Zanzibar'), [])
    assert.deepEqual(await search('platypus'), [])
    // Their report of a suspicious message is sealed under the tenant's key, not theirs: it goes too.
    assert.deepEqual(await reports(), [])
    // Another customer's words are still found.
    assert.equal((await search('wombat')).length, 1)
  })
})
