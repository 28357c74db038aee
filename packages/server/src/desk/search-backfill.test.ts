/**
 * `strongroom search backfill` (issue 20, desk): the names of customers and the public messages stored before the
 * search index existed become searchable, a batch at a time; a run stopped at its batch limit resumes where it
 * stopped; erased customers stay out of the index, name and messages; what DLP masked is never a term.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import type { SearchPage } from '@strongroom/sdk/protocol'
import { ChannelSimulator } from '@strongroom/sdk/simulator'
import { archiveKeysOf } from '../archive/append.ts'
import { eraseCustomer } from '../archive/erasure.ts'
import { operator } from '../audit/events.ts'
import { configureSimulatedChannels } from '../seed.ts'
import { cliHarness } from '../testing/cli.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { backfillSearchIndex } from './search-backfill.ts'

const BANK_NUMBER = '+442079460779'
const DAY = 86_400_000

describe('the search backfill', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  const search = async (q: string) =>
    (await agent.request<SearchPage>('GET', `/v1/search/conversations?q=${encodeURIComponent(q)}`)).hits
  const customers = new Map<string, string>()
  const names = async (q: string) => (await search(q)).map((hit) => customers.get(hit.customerId ?? '') ?? null)
  /** Public messages stored, but the erased customer's (one). */
  let publicMessages = 0
  /** The index as it was before this version: empty, whatever is stored. */
  const forgetEverything = async () => {
    await server.ctx.db.deleteFrom('customer_name_terms').execute()
    await server.ctx.db.deleteFrom('channel_message_terms').execute()
  }

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server, 'Backfill Bank')
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    await configureSimulatedChannels(server.ctx, bank.adminToken, bank.agentId, { twilio: BANK_NUMBER })
    const phone = new ChannelSimulator({ baseUrl: server.url })
    const kept = [
      { name: 'Ottoline Quarrier', phoneNumber: '+447700900901', text: 'my standing order to the marmalade club' },
      {
        name: 'Bartholomew Fenwick',
        phoneNumber: '+447700900902',
        text: 'card 4111 1111 1111 1111 lost at the aviary',
      },
    ]
    for (const [i, c] of kept.entries()) {
      const { id } = await agent.createCustomer({
        externalRef: `BACKFILL-${i}`,
        displayName: c.name,
        phoneNumber: c.phoneNumber,
      })
      customers.set(id, c.name)
      await phone.send('twilio', { from: c.phoneNumber, to: BANK_NUMBER, text: c.text })
    }
    // A sender the bank does not know: their words are found too.
    await phone.send('twilio', { from: '+447700900903', to: BANK_NUMBER, text: 'unmatched gooseberry enquiry' })
    // An erased customer: neither their name nor what they wrote may come back.
    const erased = await agent.createCustomer({
      externalRef: 'BACKFILL-ERASED',
      displayName: 'Erasmus Vanished',
      phoneNumber: '+447700900904',
    })
    await phone.send('twilio', { from: '+447700900904', to: BANK_NUMBER, text: 'please forget my quince' })
    const later = new Date(Date.now() + 3700 * DAY)
    await eraseCustomer(server.ctx.db, archiveKeysOf(server.ctx), bank.tenantId, erased.id, operator, later)
    await forgetEverything()
    // The customer's texts, the bank's answers (the link sent after the card number was hidden) and the stranger's.
    const stored = await server.ctx.db
      .selectFrom('channel_messages')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow()
    publicMessages = Number(stored.n) - 1
  })
  after(() => server.stop())

  test('before it runs, nothing stored earlier is found', async () => {
    assert.deepEqual(await search('Ottoline'), [])
    assert.deepEqual(await search('marmalade'), [])
  })

  test('a run stopped at its batch limit resumes where it stopped, and finds names and public words', async () => {
    // Four customers: the test bank's own, the two above and the erased one.
    const first = await backfillSearchIndex(server.ctx, { batchSize: 1, maxBatches: 2 })
    assert.equal(first.complete, false)
    assert.equal(first.batches, 2)
    assert.equal(first.customerNames + first.skippedErased, 2)
    assert.equal(first.publicTexts, 0)

    const batches: number[] = []
    const rest = await backfillSearchIndex(server.ctx, { batchSize: 2, onBatch: (o) => batches.push(o.batches) })
    assert.equal(rest.complete, true)
    // The rest of the customers, then the messages, without going over the first run's customers again.
    assert.equal(first.customerNames + rest.customerNames, 3)
    assert.equal(first.skippedErased + rest.skippedErased, 2, 'the erased customer’s name and text')
    assert.equal(rest.publicTexts, publicMessages)
    assert.equal(rest.batches, 1 + Math.ceil((publicMessages + 1) / 2))
    assert.deepEqual(
      batches,
      Array.from({ length: rest.batches }, (_, i) => i + 1),
    )

    assert.deepEqual(await names('Ottoline'), ['Ottoline Quarrier'])
    assert.deepEqual(await names('fenwick bartholomew'), ['Bartholomew Fenwick'])
    assert.deepEqual(await names('marmalade'), ['Ottoline Quarrier'])
    assert.deepEqual(await names('aviary'), ['Bartholomew Fenwick'])
    assert.equal((await search('gooseberry')).length, 1)
  })

  test('erased customers stay out, and what DLP masked is never a term', async () => {
    assert.deepEqual(await search('Erasmus'), [])
    assert.deepEqual(await search('quince'), [])
    assert.deepEqual(await search('4111'), [])
  })

  test('a finished backfill does nothing more until asked to start over, which indexes the same again', async () => {
    assert.deepEqual(await backfillSearchIndex(server.ctx, { batchSize: 500 }), {
      customerNames: 0,
      publicTexts: 0,
      skippedErased: 0,
      batches: 0,
      complete: true,
    })
    const terms = async () =>
      Number(
        (
          await server.ctx.db
            .selectFrom('channel_message_terms')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      )
    const before = await terms()
    const again = await backfillSearchIndex(server.ctx, { batchSize: 500, fromStart: true })
    assert.deepEqual(again, {
      customerNames: 3,
      publicTexts: publicMessages,
      skippedErased: 2,
      batches: 2,
      complete: true,
    })
    assert.equal(await terms(), before, 'indexing twice adds nothing')
  })
})

describe('strongroom search backfill', () => {
  const cli = cliHarness()

  test('runs to the end on a database with nothing to index, and says so', () => {
    const result = cli.run(['search', 'backfill', '--batch', '100'])
    assert.equal(result.status, 0, result.stderr)
    assert.deepEqual(JSON.parse(result.stdout), {
      customerNames: 0,
      publicTexts: 0,
      skippedErased: 0,
      batches: 0,
      complete: true,
    })
  })

  test('refuses a batch size that is not a whole number in range', () => {
    const result = cli.run(['search', 'backfill', '--batch', '0'])
    assert.equal(result.status, 2)
    assert.match(result.stderr, /--batch must be a whole number from 1 to 10000/)
  })
})
