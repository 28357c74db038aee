/**
 * Whether an SMS-code check answers in the same time for a wrong code of a real customer as for a customer with no
 * code (issue 15: it was 7-30 % slower, which told an attacker which customers had a live code). Times pairs of checks
 * through the service, in alternating order, each wrong-code check on a fresh code (a code locks after five), and
 * prints the medians and their difference.
 *
 *   npm run bench:sms-timing                 PGlite; DATABASE_URL=… for PostgreSQL
 *   npm run bench:sms-timing -- --pairs 400
 */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { operator } from '../src/audit/events.ts'
import { verifySmsOtp } from '../src/auth/sms-otp.ts'
import { createCustomer } from '../src/identity/customers.ts'
import { newId } from '../src/platform/ids.ts'
import { createTestBank, startTestServer } from '../src/testing/harness.ts'

const { values: args } = parseArgs({ options: { pairs: { type: 'string', default: '200' } } })
const pairs = Number(args.pairs)
const WARM_UP = 20

// A database of its own on DATABASE_URL's server (dropped at the end), or PGlite.
const server = await startTestServer({ natsUrl: undefined })
const bank = await createTestBank(server, 'Timing Bank')
const unknown = await createCustomer(server.ctx, bank.tenantId, { externalRef: 'NO-CODE', displayName: 'No Code' })

/** A fresh live code for the bench's customer. Its hash is random bytes: every code checked against it is wrong. */
async function freshCode(): Promise<void> {
  const now = Date.now()
  await server.ctx.db
    .insertInto('sms_otp_codes')
    .values({
      tenant_id: bank.tenantId,
      id: newId('smo'),
      customer_id: bank.customerId,
      code_hash: randomBytes(32),
      created_at: new Date(now),
      expires_at: new Date(now + 300_000),
      used_at: null,
    })
    .execute()
}

async function timed(customerId: string): Promise<number> {
  const start = process.hrtime.bigint()
  await verifySmsOtp(server.ctx, { tenantId: bank.tenantId, customerId, code: '123456', actor: operator }).then(
    () => {
      throw new Error('a wrong code was accepted')
    },
    (error: { kind?: string }) => {
      if (error.kind !== 'auth/invalid-code') throw error
    },
  )
  return Number(process.hrtime.bigint() - start) / 1e6
}

const wrong: number[] = []
const none: number[] = []
for (let i = 0; i < WARM_UP + pairs; i++) {
  await freshCode()
  // Alternating which goes first, so that neither always runs on a warmer cache.
  let w: number
  let n: number
  if (i % 2 === 0) {
    w = await timed(bank.customerId)
    n = await timed(unknown.id)
  } else {
    n = await timed(unknown.id)
    w = await timed(bank.customerId)
  }
  if (i < WARM_UP) continue
  wrong.push(w)
  none.push(n)
}

const median = (values: number[]) => {
  const sorted = [...values].sort((x, y) => x - y)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}
const [mw, mn] = [median(wrong), median(none)]
console.log(`SMS-code checks, ${pairs} pairs, ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}`)
console.log(`  wrong code, real customer:   median ${mw.toFixed(3)} ms`)
console.log(`  customer without a code:     median ${mn.toFixed(3)} ms`)
console.log(`  difference: ${(((mw - mn) / mn) * 100).toFixed(1)} % (goal: within 5 %)`)
await server.stop()
