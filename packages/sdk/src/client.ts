import type { JSONWebKeySet } from 'jose'
import { withBankCalls } from './clients/bank-calls.ts'
import { ClientCore } from './clients/client-core.ts'
import { withDeskCalls } from './clients/desk-calls.ts'
import { withDeviceCalls } from './clients/device-calls.ts'
import { withMemberCalls } from './clients/member-calls.ts'
import { passkeyRegistrationOptionsAt, registerPasskeyAt } from './clients/passkey-registration.ts'
import { withStaffCalls } from './clients/staff-calls.ts'
import { DEFAULT_TIMEOUT_MS, DeviceKey } from './credentials.ts'
import { type DeviceKeyAlgorithm, type DeviceKeys, generateDeviceKeys } from './device-keys.ts'
import { createDpopProof } from './dpop.ts'
import { platformFetch } from './encoding.ts'
import { StrongroomError } from './errors.ts'
import type { FactorProof } from './factors.ts'
import type { ActiveDevice } from './identity-protocol.ts'
import type { EnrolmentEvidence } from './integrity-protocol.ts'
import type { PasskeyRegistrationCredential } from './passkeys.ts'
import { fetchWipeKeys } from './remote-wipe.ts'
import { routeRequest } from './route-path.ts'
import type { WebSocketConstructor } from './transport.ts'
import type { WireAnswer } from './wire-contract.ts'

/**
 * A customer's device (the bank's app, or the secure chat in a browser): its conversations and the stream, its
 * integrity attestation, its customer's factors, devices and payment approvals. `enrolDevice` returns one.
 *
 * @example
 * const { client } = await enrolDevice({ baseUrl, enrolmentCode, label: 'Phone' })
 * for (const consent of await client.listPendingConsents()) await client.approveConsent(consent)
 */
export class DeviceClient extends withDeviceCalls(withMemberCalls(ClientCore)) {}

/**
 * A member of the bank's staff (the console): conversations they are members of and the stream, customers and their
 * devices, payment requests, the public channels, the archive, the suspicious-report queue and the desk (status,
 * notes, canned replies, search), as their role's scopes allow.
 *
 * @example
 * const client = new StaffClient({ baseUrl: 'https://chat.bank.example', credentials: new StaffToken(token) })
 * const conversation = await client.createConversation({ customerId })
 */
export class StaffClient extends withDeskCalls(withStaffCalls(withBankCalls(withMemberCalls(ClientCore)))) {}

/** A conversation's member: a device or a staff member. */
export type MemberClient = DeviceClient | StaffClient

/**
 * A bank backend (OAuth client credentials, `ClientAssertion`): registers customers, enrols their devices and asks
 * them to confirm payments. It is no conversation's member, so it neither reads messages nor opens the stream.
 *
 * @example
 * const bank = new BackendClient({ baseUrl, credentials: new ClientAssertion({ clientId, privateKey, scopes }) })
 * const consent = await bank.requestConsent({ customerId, amount, payee, reference })
 */
export class BackendClient extends withBankCalls(ClientCore) {}

/**
 * Every call of the three clients on one object, whichever principal the credentials stand for.
 *
 * @deprecated Use `DeviceClient`, `StaffClient` or `BackendClient`, which offer only what their principal may call;
 * this one goes in the next release.
 */
export class StrongroomClient extends withDeviceCalls(
  withDeskCalls(withStaffCalls(withBankCalls(withMemberCalls(ClientCore)))),
) {
  /** A device registers its customer's passkey, a staff member their own. */
  override passkeyRegistrationOptions() {
    return passkeyRegistrationOptionsAt(this, this.#passkeyRoutes())
  }

  override registerPasskey(credential: PasskeyRegistrationCredential, stepUp?: FactorProof) {
    return registerPasskeyAt(this, this.#passkeyRoutes(), credential, stepUp)
  }

  #passkeyRoutes() {
    return this.credentials instanceof DeviceKey ? '/v1/passkeys' : '/v1/staff/passkey'
  }
}

/** How a new device reaches the server, and the key it enrols (a fresh non-extractable one by default). */
export interface EnrolOptions {
  /** One server, or several nodes: each is tried in turn until one answers. */
  baseUrl: string | string[]
  label: string
  algorithm?: DeviceKeyAlgorithm
  keys?: DeviceKeys
  fetch?: typeof fetch
  WebSocket?: WebSocketConstructor
  /** How long to wait for a node's answer before trying the next (10 s by default); the client keeps it. */
  timeoutMs?: number
}

/**
 * Hardware evidence of the key being enrolled (`keys`), over a challenge from `POST /v1/integrity/enrolment-challenges`
 * with the same enrolment code: Android Key Attestation of the key itself (generated in the Keystore with
 * SHA-256(attestationClientData(challenge, app)) as its attestation challenge), or an App Attest attestation over
 * attestationClientData(challenge, app, { keyThumbprint }) of the key. `enrolAttestedDevice` does all of it.
 */
export type EnrolmentAttestation = EnrolmentEvidence

/** A device just enrolled, with a client acting as it. */
export interface EnrolledDevice {
  client: DeviceClient
  device: ActiveDevice
  tenantId: string
  keys: DeviceKeys
  /** The server's wipe-command keys, fetched now: store them with the device and pass them as `remoteWipe`. */
  wipeKeys: JSONWebKeySet | undefined
}

/**
 * Enrols this device with a single-use code that the bank issued for the customer: makes a key pair (non-extractable
 * private key), registers its public half, and returns a client acting as that device.
 *
 * @example
 * const { client, device, keys } = await enrolDevice({ baseUrl, enrolmentCode: 'ABCD-EFGH-JKMN-PQRS', label: 'Phone' })
 */
export async function enrolDevice(
  options: EnrolOptions & { enrolmentCode: string; attestation?: EnrolmentAttestation },
): Promise<EnrolledDevice> {
  const { enrolled } = await enrolWithProof(options, 'POST /v1/devices', {
    enrolmentCode: options.enrolmentCode,
    label: options.label,
    ...(options.attestation ? { attestation: options.attestation } : {}),
  })
  return enrolled
}

/**
 * Posts an enrolment (`body`) with a DPoP proof of the device key to its route, and builds the device's client from
 * the answer (`{ device, tenantId, token }`, and whatever else the route returns, given back as `answer`).
 */
export async function enrolWithProof<R extends 'POST /v1/devices' | 'POST /v1/pivot/enrol'>(
  options: EnrolOptions,
  route: R,
  body: unknown,
): Promise<{ enrolled: EnrolledDevice; answer: WireAnswer<R> }> {
  const { path } = routeRequest(route, {})
  const keys = options.keys ?? (await generateDeviceKeys(options.algorithm))
  const baseUrls = (Array.isArray(options.baseUrl) ? options.baseUrl : [options.baseUrl]).map((u) =>
    u.replace(/\/+$/, ''),
  )
  const doFetch = options.fetch ?? platformFetch
  // Each node in turn until one answers, as every other request does.
  let response: Response | undefined
  let baseUrl = baseUrls[0] as string
  for (const [index, url] of baseUrls.entries()) {
    baseUrl = url
    const htu = `${url}${path}`
    try {
      response = await doFetch(htu, {
        method: 'POST',
        headers: { 'content-type': 'application/json', dpop: await createDpopProof(keys, { htm: 'POST', htu }) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      })
      break
    } catch (error) {
      if (index === baseUrls.length - 1) throw error
    }
  }
  if (!response) throw new TypeError('baseUrl must name at least one server')
  const answer = await response.json()
  if (!response.ok) throw new StrongroomError(answer)
  const enrolment = answer as WireAnswer<R>
  const credentials = new DeviceKey(keys, {
    accessToken: enrolment.token.accessToken,
    expiresIn: enrolment.token.expiresIn,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  })
  const client = new DeviceClient({
    baseUrl: [baseUrl, ...baseUrls.filter((url) => url !== baseUrl)],
    credentials,
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
  })
  const wipeKeys = await fetchWipeKeys(baseUrl as string, doFetch).catch(() => undefined)
  const device = enrolment.device as ActiveDevice
  return { enrolled: { client, device, tenantId: enrolment.tenantId, keys, wipeKeys }, answer: enrolment }
}
