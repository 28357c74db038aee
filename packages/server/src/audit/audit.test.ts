import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { enrolDevice } from '@strongroom/sdk'
import { sql } from 'kysely'
import { secretHash } from '../platform/ids.ts'
import { verificationKeys } from '../platform/keyring/signing-keys.ts'
import { createStaff } from '../tenancy/staff.ts'
import { createTenant } from '../tenancy/tenants.ts'
import { createTestBank, startTestServer, type TestServer } from '../testing/harness.ts'
import { operator } from './events.ts'
import { recordHash } from './record-hash.ts'
import { verifyAuditChain } from './verify.ts'

describe('the audit log', () => {
  let server: TestServer

  before(async () => {
    server = await startTestServer({ auditCheckpointRecords: 5 })
  })
  after(() => server.stop())

  const verify = async (tenantId: string) =>
    verifyAuditChain(server.ctx.db, tenantId, { keys: await verificationKeys(server.ctx.db, 'audit-checkpoint') })

  test('security events are recorded with actor, target and outcome, chained, and never hold a secret', async () => {
    const bank = await createTestBank(server, 'Audited Bank')
    const enrolmentCode = await bank.enrolmentCode()
    const { device } = await enrolDevice({ baseUrl: server.url, enrolmentCode, label: 'phone' })
    const refused = await fetch(`${server.url}/v1/staff`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bank.agentToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'eve', role: 'admin' }),
    })
    assert.equal(refused.status, 403)
    await server.flushAudit()

    const compliance = await bank.staffToken('compliance')
    await server.flushAudit()
    const response = await fetch(`${server.url}/v1/audit/events?limit=1000`, {
      headers: { authorization: `Bearer ${compliance.token}` },
    })
    const { events } = await response.json()
    const summary = events.map((e: { action: string; outcome: string }) => `${e.action}:${e.outcome}`)
    assert.deepEqual(summary, [
      'tenant.create:success',
      'staff.create:success',
      'staff.token.issue:success',
      'staff.create:success',
      'staff.token.issue:success',
      'device.enrolment-code.issue:success',
      'device.enrol:success',
      'auth.refuse:denied',
      'staff.create:success',
      'staff.token.issue:success',
    ])
    assert.deepEqual(
      events.map((e: { seq: number }) => e.seq),
      events.map((_: unknown, i: number) => i + 1),
    )
    const enrol = events.find((e: { action: string }) => e.action === 'device.enrol')
    assert.deepEqual(enrol.actor, { kind: 'device', id: device.id })
    assert.equal(enrol.details.customerId, bank.customerId)
    const refusal = events.find((e: { action: string }) => e.action === 'auth.refuse')
    assert.deepEqual(
      [refusal.actor.id, refusal.reason, refusal.details.route],
      [bank.agentId, 'auth/forbidden', 'POST /v1/staff'],
    )

    const everything = JSON.stringify(await server.ctx.db.selectFrom('audit_events').selectAll().execute())
    for (const secret of [bank.adminToken, bank.agentToken, compliance.token, enrolmentCode]) {
      assert.ok(!everything.includes(secret))
      assert.ok(!everything.includes(secretHash(secret).toString('hex')))
    }
    assert.deepEqual(await verify(bank.tenantId), {
      tenantId: bank.tenantId,
      ok: true,
      records: 10,
      checkpoints: 2,
      witnessed: 0,
      unsealed: 0,
      pending: 0,
    })
  })

  test('the audit log is for compliance and admins only, and only of their own tenant', async () => {
    const bank = await createTestBank(server, 'Private Bank')
    const asAgent = await fetch(`${server.url}/v1/audit/events`, {
      headers: { authorization: `Bearer ${bank.agentToken}` },
    })
    assert.equal(asAgent.status, 403)
    await server.flushAudit()
    const asAdmin = await fetch(`${server.url}/v1/audit/events?limit=1000`, {
      headers: { authorization: `Bearer ${bank.adminToken}` },
    })
    const { events } = await asAdmin.json()
    const tenants = await server.ctx.db.selectFrom('audit_events').select('tenant_id').distinct().execute()
    assert.ok(tenants.length > 1)
    assert.ok(events.every((e: { target: { id: string } | null; actor: { id: string } }) => e.target?.id !== 'x'))
    const own = await server.ctx.db
      .selectFrom('audit_events')
      .select(({ fn }) => fn.countAll<number>().as('n'))
      .where('tenant_id', '=', bank.tenantId)
      .where('seq', 'is not', null)
      .executeTakeFirstOrThrow()
    assert.equal(events.length, Number(own.n))
  })

  describe('tampering directly in the database is detected at the first record it touches', () => {
    /** A tenant with twelve chained events, checkpointed at 5 and 10. */
    async function chainOfTwelve(): Promise<string> {
      const tenant = await createTenant(server.ctx, `Tamper ${Math.random()}`, operator)
      for (let i = 0; i < 11; i++) {
        await createStaff(server.ctx, tenant.id, { name: `s${i}`, role: 'agent' }, operator)
      }
      await server.flushAudit()
      const result = await verify(tenant.id)
      assert.deepEqual([result.ok, result.records, result.checkpoints], [true, 12, 2])
      return tenant.id
    }
    const db = () => server.ctx.db
    const failure = async (tenantId: string) => (await verify(tenantId)).failure

    test('an altered record', async () => {
      const tenantId = await chainOfTwelve()
      await db()
        .updateTable('audit_events')
        .set({ reason: 'nothing to see' })
        .where('tenant_id', '=', tenantId)
        .where('seq', '=', 7)
        .execute()
      assert.deepEqual(await failure(tenantId), {
        seq: 7,
        id: Number((await row(tenantId, 7)).id),
        reason: 'record altered',
      })
    })

    test('a deleted record', async () => {
      const tenantId = await chainOfTwelve()
      await db().deleteFrom('audit_events').where('tenant_id', '=', tenantId).where('seq', '=', 7).execute()
      assert.deepEqual(await failure(tenantId), { seq: 7, id: null, reason: 'record missing (sequence gap)' })
    })

    test('two records swapped', async () => {
      const tenantId = await chainOfTwelve()
      const move = (from: number, to: number) =>
        sql`update audit_events set seq = ${to} where tenant_id = ${tenantId} and seq = ${from}`.execute(db())
      await move(6, -6)
      await move(7, 6)
      await move(-6, 7)
      const found = await failure(tenantId)
      assert.equal(found?.seq, 6)
      assert.match(found?.reason ?? '', /not linked to the previous record/)
    })

    test('a record altered and every hash after it recomputed: the signed checkpoint catches it', async () => {
      const tenantId = await chainOfTwelve()
      await db()
        .updateTable('audit_events')
        .set({ outcome: 'failure' })
        .where('tenant_id', '=', tenantId)
        .where('seq', '=', 3)
        .execute()
      const rows = await db()
        .selectFrom('audit_events')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('seq')
        .execute()
      let previous: Buffer = Buffer.alloc(32)
      for (const record of rows) {
        const hash = recordHash(previous, record)
        await db().updateTable('audit_events').set({ prev_hash: previous, hash }).where('id', '=', record.id).execute()
        previous = hash
      }
      assert.deepEqual(await failure(tenantId), {
        seq: 5,
        id: Number((await row(tenantId, 5)).id),
        reason: 'records up to 5 do not match their signed checkpoint',
      })
    })

    test('a forged checkpoint', async () => {
      const tenantId = await chainOfTwelve()
      await db()
        .updateTable('audit_checkpoints')
        .set({ root_hash: Buffer.alloc(32, 7) })
        .where('tenant_id', '=', tenantId)
        .where('tree_size', '=', 10)
        .execute()
      assert.equal((await failure(tenantId))?.reason, 'checkpoint 10 has a bad signature')
    })

    test('the newest records cut off below a checkpoint', async () => {
      const tenantId = await chainOfTwelve()
      await db().deleteFrom('audit_events').where('tenant_id', '=', tenantId).where('seq', '>', 8).execute()
      assert.deepEqual(await failure(tenantId), {
        seq: 9,
        id: null,
        reason: 'records missing: checkpoint covers 10, chain ends at 8',
      })
    })

    async function row(tenantId: string, seq: number) {
      return db()
        .selectFrom('audit_events')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('seq', '=', seq)
        .executeTakeFirstOrThrow()
    }
  })
})
