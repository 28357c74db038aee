import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from 'jose'
import type { DeviceKeys } from './device-keys.ts'
import { createDpopProof } from './dpop.ts'
import { platformFetch } from './encoding.ts'
import type { SecureStore } from './mls/secure-store.ts'

/** The device as the wipe command must name it; keep it, with the pinned keys, from enrolment. */
export interface WipeTarget {
  tenantId: string
  deviceId: string
  keyThumbprint: string
}

export interface RemoteWipeOptions {
  /** The server's wipe-command keys (`/.well-known/strongroom-wipe-keys`) as fetched at enrolment: pinned. */
  pinnedKeys: JSONWebKeySet
  device: WipeTarget
  /** Every local store to erase (each must have `wipe()`). */
  stores: SecureStore[]
  /** Told once the device has erased its stores and confirmed: show the customer this device is revoked. */
  onRevoked?: (outcome: { confirmed: boolean }) => void
}

/** The server's wipe-command keys, to pin with the device at enrolment. */
export async function fetchWipeKeys(baseUrl: string, doFetch: typeof fetch = platformFetch): Promise<JSONWebKeySet> {
  const response = await doFetch(`${baseUrl.replace(/\/+$/, '')}/.well-known/strongroom-wipe-keys`)
  if (!response.ok) throw new Error(`the server's wipe keys are not available (${response.status})`)
  return (await response.json()) as JSONWebKeySet
}

/**
 * True only when the command is signed by one of the pinned keys and names exactly this tenant, device and key: a
 * command forged with another key, or one issued to another device, does not verify.
 */
export async function verifyWipeCommand(command: string, pinnedKeys: JSONWebKeySet, device: WipeTarget) {
  try {
    const { payload } = await jwtVerify(command, createLocalJWKSet(pinnedKeys), {
      algorithms: ['ES256'],
      typ: 'strongroom-wipe+jwt',
      issuer: 'strongroom',
      subject: device.deviceId,
    })
    return (
      payload.cmd === 'wipe' &&
      payload.tid === device.tenantId &&
      payload.deviceId === device.deviceId &&
      payload.jkt === device.keyThumbprint
    )
  } catch {
    return false
  }
}

/**
 * Obeys a wipe command: verifies it against the pinned keys, erases every store, then confirms to the server with the
 * device key (best effort: the erasure does not depend on it). Returns whether it wiped.
 */
export async function executeRemoteWipe(
  command: string,
  options: RemoteWipeOptions & { baseUrl: string; keys: DeviceKeys; fetch?: typeof fetch },
): Promise<{ wiped: boolean; confirmed: boolean }> {
  if (!(await verifyWipeCommand(command, options.pinnedKeys, options.device))) return { wiped: false, confirmed: false }
  for (const store of options.stores) {
    if (!store.wipe) throw new TypeError('a store to wipe has no wipe()')
    await store.wipe()
  }
  let confirmed = false
  try {
    const htu = `${options.baseUrl.replace(/\/+$/, '')}/v1/devices/wipe-confirmation`
    const response = await (options.fetch ?? platformFetch)(htu, {
      method: 'POST',
      headers: { dpop: await createDpopProof(options.keys, { htm: 'POST', htu }) },
    })
    confirmed = response.ok
  } catch {
    confirmed = false
  }
  options.onRevoked?.({ confirmed })
  return { wiped: true, confirmed }
}

export { DEVICE_WIPED_PROBLEM, isDeviceWipedProblem } from './wipe-problem.ts'
