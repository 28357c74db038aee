import { type Actor, recordAudit } from '../audit/events.ts'
import { findCustomer } from '../identity/customers.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { assessSimSwap, type SimSwapProvider, SimSwapUnavailable } from './sim-swap.ts'
import { simSwapWindowHours } from './step-up-policy.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'config'>

/**
 * The check every SMS-based factor passes before anything is sent or trusted: the customer's number on file, and the
 * carrier's word that its SIM did not change within the tenant's window. A swap, or a carrier that cannot say, means
 * no SMS (fail closed); either is audited without the number. Returns the number to send to.
 */
export async function requireSmsUsable(
  ctx: Ctx,
  simSwap: SimSwapProvider,
  input: { tenantId: string; customerId: string; actor: Actor; purpose: 'sms-otp' | 'sms-reply' },
): Promise<string> {
  const customer = await findCustomer(ctx, input.tenantId, input.customerId)
  if (!customer) throw new Problem('request/not-found', 'no such customer')
  if (!customer.phoneNumber) throw new Problem('auth/no-phone-number')
  let refusal: Problem | undefined
  let swapped: boolean | undefined
  try {
    const window = await simSwapWindowHours(ctx, input.tenantId)
    const assessment = await assessSimSwap(simSwap, customer.phoneNumber, window)
    swapped = assessment.swapped
    if (!assessment.smsFactorsAllowed) refusal = new Problem('risk/sim-swapped')
  } catch (error) {
    if (!(error instanceof SimSwapUnavailable)) throw error
    refusal = new Problem('risk/sim-swap-unavailable', error.reason)
  }
  await recordAudit(ctx.db, {
    tenantId: input.tenantId,
    actor: input.actor,
    action: 'risk.sim-swap.check',
    target: { kind: 'customer', id: input.customerId },
    outcome: refusal ? 'denied' : 'success',
    reason: refusal ? refusal.kind : undefined,
    details: { purpose: input.purpose, ...(swapped === undefined ? {} : { swapped }) },
  })
  if (refusal) throw refusal
  return customer.phoneNumber
}
