import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import { sql } from 'kysely'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { PROBLEMS, problemOf } from '../testing/problems.ts'

const PAYEE = { name: 'Quick Parcel Ltd', account: 'GB33BUKB20201555555555' }

/** Issue 20: a payee blocked by "This wasn't me" is seen, and lifted with a reason, by a supervisor or an admin. */
describe('payee blocks', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let supervisor: StaffClient
  let supervisorId: string
  let phone: Awaited<ReturnType<TestBank['enrol']>>

  const ask = (reference: string, account = PAYEE.account) =>
    agent.requestConsent({
      customerId: bank.customerId,
      amount: { value: 99000, currency: 'GBP' },
      payee: { ...PAYEE, account },
      reference,
    })
  const blockWith = async (reference: string) => {
    const consent = await ask(reference)
    await phone.client.declineConsent(consent.id, { fraud: true, blockPayee: true })
    return consent.id
  }

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server, 'Block Bank')
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const sup = await bank.staffToken('supervisor', 'sue')
    supervisorId = sup.staffId
    supervisor = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(sup.token) })
    phone = await bank.enrol('phone')
  })
  after(() => server.stop())

  test('a supervisor sees the block and lifts it with a reason (audited); requests to the payee are accepted again', async () => {
    const first = await blockWith('Customs fee')
    // However it is spaced, cased or punctuated, in fullwidth or with invisible characters, it is refused while blocked.
    for (const spelling of [
      'gb33 bukb 2020 1555 5555 55',
      'GB33-BUKB-2020-1555-5555-55',
      'GB33.BUKB.2020.1555.5555.55',
      'GB33\u200bBUKB20201555555555',
      'ＧＢ３３ＢＵＫＢ２０２０１５５５５５５５５５',
    ]) {
      const blockedRequest = await problemOf(ask('Again', spelling))
      assert.equal(blockedRequest.type, `${PROBLEMS}consent/payee-blocked`, spelling)
    }
    const blocks = await supervisor.listPayeeBlocks(bank.customerId)
    assert.deepEqual(
      blocks.map((b) => [b.consentId, b.payee, b.liftedAt]),
      [[first, PAYEE, null]],
    )
    const lifted = await supervisor.liftPayeeBlock(
      first,
      'Customer called from the number on file: the courier is theirs',
    )
    assert.equal(lifted.liftedBy, `staff:${supervisorId}`)
    assert.ok(lifted.liftedAt)
    assert.equal((await ask('After the lift')).status, 'pending')
    // The evidence stays: the request still reads as reported, no longer as blocking.
    const seen = await agent.getConsent(first)
    assert.deepEqual([seen.fraudReported, seen.payeeBlocked], [true, false])
    const audit = await sql<{ actor_id: string; details: string }>`select actor_id, details::text as details
      from audit_events where action = 'consent.payee_block.lift' and target_id = ${first}`.execute(server.ctx.db)
    assert.equal(audit.rows.length, 1)
    assert.equal(audit.rows[0]?.actor_id, supervisorId)
    assert.match(audit.rows[0]?.details ?? '', /the courier is theirs/)
    // Lifting again finds no block in force.
    const again = await problemOf(supervisor.liftPayeeBlock(first, 'twice'))
    assert.equal(again.status, 404)
  })

  test('two requests to one payee both declined as fraud: one lift lifts both blocks', async () => {
    // Both asked before either was declined: two blocks on one account.
    const one = await ask('One')
    const two = await ask('Two')
    await phone.client.declineConsent(one.id, { fraud: true, blockPayee: true })
    await phone.client.declineConsent(two.id, { fraud: true, blockPayee: true })
    assert.equal((await problemOf(ask('Refused'))).type, `${PROBLEMS}consent/payee-blocked`)
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await admin.liftPayeeBlock(two.id, 'Fraud team cleared the payee')
    assert.equal((await ask('Cleared')).status, 'pending')
    const blocks = await admin.listPayeeBlocks(bank.customerId)
    assert.equal(blocks.length, 3)
    assert.ok(blocks.every((b) => b.liftedAt !== null))
  })

  test('an agent can neither see nor lift a block; a reason is required; another bank finds nothing', async () => {
    const id = await blockWith('Agent tries')
    assert.equal((await problemOf(agent.listPayeeBlocks(bank.customerId))).type, `${PROBLEMS}auth/forbidden`)
    assert.equal((await problemOf(agent.liftPayeeBlock(id, 'I think it is fine'))).type, `${PROBLEMS}auth/forbidden`)
    assert.equal((await problemOf(supervisor.liftPayeeBlock(id, ''))).status, 400)
    const other = await createTestBank(server, 'Other Block Bank')
    const otherAdmin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.adminToken) })
    assert.equal((await problemOf(otherAdmin.liftPayeeBlock(id, 'not ours'))).status, 404)
    assert.equal((await problemOf(otherAdmin.listPayeeBlocks(bank.customerId))).status, 404)
    assert.equal((await problemOf(ask('Still blocked'))).type, `${PROBLEMS}consent/payee-blocked`)
  })

  test('a block recorded under the earlier index (spaces dropped, punctuation kept) still blocks that spelling', async () => {
    const dashed = 'GB29-NWBK-6016-1331-9268-19'
    const consent = await ask('Earlier block', dashed)
    await phone.client.declineConsent(consent.id, { fraud: true, blockPayee: true })
    // As a version before punctuation was dropped recorded it.
    const earlier = await server.ctx.keyring.blindIndex(bank.tenantId, 'consents.blocked_payee', dashed.toUpperCase())
    await server.ctx.db
      .updateTable('consents')
      .set({ blocked_payee_index: earlier })
      .where('id', '=', consent.id)
      .execute()
    assert.equal((await problemOf(ask('Same spelling', dashed))).type, `${PROBLEMS}consent/payee-blocked`)
    await supervisor.liftPayeeBlock(consent.id, 'test over')
  })
})
