import assert from 'node:assert/strict'
import { test } from 'node:test'
import { enrolDevice } from '@strongroom/sdk'
import { purgeExpiredAccessTokens } from './identity/devices.ts'
import { purgeExpiredProofs } from './identity/dpop.ts'
import { purgeExpiredChallenges } from './integrity/challenges.ts'
import { createTestBank, startTestServer } from './testing/harness.ts'

test('housekeeping forgets expired proofs, tokens and challenges, and keeps live ones', async () => {
  const server = await startTestServer()
  try {
    const bank = await createTestBank(server)
    const { client, device } = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'p',
    })
    await client.me()
    await client.request('POST', '/v1/integrity/challenges')
    const db = server.ctx.db
    const count = async (table: 'dpop_proofs' | 'access_tokens' | 'integrity_challenges') =>
      Number(
        (
          await db
            .selectFrom(table)
            .select(({ fn }) => fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      )
    const live = { proofs: await count('dpop_proofs'), tokens: await count('access_tokens') }
    await purgeExpiredProofs(server.ctx)
    await purgeExpiredAccessTokens(server.ctx)
    await purgeExpiredChallenges(server.ctx)
    assert.deepEqual(
      [await count('dpop_proofs'), await count('access_tokens'), await count('integrity_challenges')],
      [live.proofs, live.tokens, 1],
    )
    const past = new Date(Date.now() - 1000)
    await db.updateTable('dpop_proofs').set({ expires_at: past }).execute()
    await db.updateTable('access_tokens').set({ expires_at: past }).where('device_id', '=', device.id).execute()
    await db.updateTable('integrity_challenges').set({ expires_at: past }).execute()
    await purgeExpiredProofs(server.ctx)
    await purgeExpiredAccessTokens(server.ctx)
    await purgeExpiredChallenges(server.ctx)
    assert.deepEqual([await count('dpop_proofs'), await count('integrity_challenges')], [0, 0])
    assert.equal(await count('access_tokens'), live.tokens - 1)
  } finally {
    await server.stop()
  }
})
