import type { DevicePrincipal } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { acceptAssertion, auditRefusedEvidence } from './hardware-attestation.ts'

/**
 * Per-request App Attest assertions, for tenants whose policy asks for them (`"assertions": true`): every gated request
 * of a device whose integrity token came from App Attest carries `Strongroom-Assertion`, an assertion whose client
 * data is the request's own DPoP proof (unique per request, bound to its method, URL and time). The counter must grow
 * with each one, so a captured request replayed, or an assertion from a cloned key state rolled back, is refused.
 * Refusals are audited.
 */
export async function checkRequestAssertion(
  ctx: Pick<ServerContext, 'db'>,
  device: DevicePrincipal,
  request: { appId: string; dpop: string | undefined; assertion: string | undefined },
): Promise<void> {
  const accepted =
    request.assertion === undefined || request.dpop === undefined
      ? { refused: 'assertion-missing' }
      : await acceptAssertion(ctx, device, {
          assertion: request.assertion,
          clientData: request.dpop,
          appId: request.appId,
        })
  if (!('refused' in accepted)) return
  await auditRefusedEvidence(ctx, device, 'integrity.assert', accepted.refused)
  throw new Problem('integrity/assertion-invalid', accepted.refused)
}
