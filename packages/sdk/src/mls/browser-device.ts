import { exportJWK, type JSONWebKeySet, type JWK } from 'jose'
import { DeviceClient, type EnrolledDevice } from '../client.ts'
import { type Credentials, DeviceKey } from '../credentials.ts'
import type { DeviceKeyAlgorithm, DeviceKeys } from '../device-keys.ts'
import type { WipeTarget } from '../remote-wipe.ts'
import type { WebSocketConstructor } from '../transport.ts'
import { type BrowserKeyShelf, openBrowserDatabase } from './browser-store.ts'
import type { SecureStore } from './secure-store.ts'

/** What a browser keeps of its enrolment (none of it secret): who it is, and the wipe keys it pinned then. */
export interface BrowserEnrolment extends WipeTarget {
  customerId: string
  label: string
  wipeKeys: JSONWebKeySet
}

const DEVICE_KEY = 'device-key'
const ENROLMENT = 'device/enrolment'

interface KeptKeyPair extends CryptoKeyPair {
  algorithm: DeviceKeyAlgorithm
}

async function deviceKeysOf(pair: KeptKeyPair): Promise<DeviceKeys> {
  const { kty, crv, x, y } = await exportJWK(pair.publicKey)
  const publicJwk: JWK = y === undefined ? { kty, crv, x } : { kty, crv, x, y }
  return { algorithm: pair.algorithm, privateKey: pair.privateKey, publicKey: pair.publicKey, publicJwk }
}

/**
 * A browser as an enrolled device of a customer: its key pair (the private key made non-extractable by WebCrypto and
 * kept as a CryptoKey, never as bytes), its enrolment and its encrypted store (MLS state, messages read), all in one
 * IndexedDB database. A remote wipe deletes that database whole: key, enrolment and store go together. Nothing goes
 * to localStorage.
 *
 * @example
 * const device = await BrowserDevice.open()
 * if (!device.enrolment) {
 *   const enrolled = await enrolWithPivotLink({ baseUrl, token, label: 'Browser', factor })
 *   await device.keep(enrolled)
 * }
 * const client = device.client({ baseUrl, onRevoked: () => showWipeScreen() })
 */
export class BrowserDevice {
  readonly store: SecureStore
  readonly #keys: BrowserKeyShelf
  #enrolment: BrowserEnrolment | undefined
  #deviceKeys: DeviceKeys | undefined

  private constructor(store: SecureStore, keys: BrowserKeyShelf) {
    this.store = store
    this.#keys = keys
  }

  static async open(name = 'strongroom-device'): Promise<BrowserDevice> {
    const { store, keys } = await openBrowserDatabase(name)
    const device = new BrowserDevice(store, keys)
    const pair = await keys.get<KeptKeyPair>(DEVICE_KEY)
    const enrolment = await store.get(ENROLMENT)
    if (pair && enrolment) {
      device.#deviceKeys = await deviceKeysOf(pair)
      device.#enrolment = JSON.parse(new TextDecoder().decode(enrolment)) as BrowserEnrolment
    }
    return device
  }

  /** The enrolment this browser holds, if it is an enrolled device. */
  get enrolment(): BrowserEnrolment | undefined {
    return this.#enrolment
  }

  get keys(): DeviceKeys | undefined {
    return this.#deviceKeys
  }

  /**
   * Keeps a new enrolment (from `enrolWithPivotLink` or `enrolDevice`) and its key pair. Without the server's wipe
   * keys to pin, it keeps nothing: a device that could not obey a wipe is not kept. A browser that already is a
   * device is wiped first (and opened again): its store holds that device's MLS identity.
   */
  async keep(enrolled: EnrolledDevice): Promise<void> {
    if (this.#enrolment) throw new TypeError('this browser already is an enrolled device: wipe() it first')
    if (!enrolled.wipeKeys) throw new TypeError('the enrolment has no wipe keys to pin; enrol again')
    const enrolment: BrowserEnrolment = {
      tenantId: enrolled.tenantId,
      deviceId: enrolled.device.id,
      keyThumbprint: enrolled.device.keyThumbprint,
      customerId: enrolled.device.customerId,
      label: enrolled.device.label,
      wipeKeys: enrolled.wipeKeys,
    }
    const pair: KeptKeyPair = {
      privateKey: enrolled.keys.privateKey,
      publicKey: enrolled.keys.publicKey,
      algorithm: enrolled.keys.algorithm,
    }
    await this.#keys.put(DEVICE_KEY, pair)
    await this.store.set(ENROLMENT, new TextEncoder().encode(JSON.stringify(enrolment)))
    this.#enrolment = enrolment
    this.#deviceKeys = enrolled.keys
  }

  /**
   * A client acting as this device, set up to obey a wipe command: when the server answers the revoked device with a
   * command signed by a pinned key, the database is deleted and `onRevoked` is told.
   */
  client(options: {
    baseUrl: string
    /** The credentials from the enrolment just made (they hold its first token); a fresh token otherwise. */
    credentials?: Credentials
    WebSocket?: WebSocketConstructor
    onRevoked: (outcome: { confirmed: boolean }) => void
  }): DeviceClient {
    const enrolment = this.#enrolment
    const keys = this.#deviceKeys
    if (!enrolment || !keys) throw new TypeError('this browser is not an enrolled device')
    const { wipeKeys, tenantId, deviceId, keyThumbprint } = enrolment
    return new DeviceClient({
      baseUrl: options.baseUrl,
      credentials: options.credentials ?? new DeviceKey(keys),
      ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
      remoteWipe: {
        pinnedKeys: wipeKeys,
        device: { tenantId, deviceId, keyThumbprint },
        stores: [this.store],
        onRevoked: (outcome) => {
          this.#enrolment = undefined
          this.#deviceKeys = undefined
          options.onRevoked(outcome)
        },
      },
    })
  }

  /** Erases everything this browser holds as a device (its key, enrolment and store); open it again to reuse. */
  async wipe(): Promise<void> {
    this.#enrolment = undefined
    this.#deviceKeys = undefined
    await this.store.wipe?.()
  }
}
