import { createHash, KeyObject, sign } from 'node:crypto'
import { encode } from 'cbor-x'
import { generateKeys, issue, type TestCertificate, type Validity } from './test-pki.ts'

/** Builds App Attest attestations and assertions the way an iPhone would, signed by a test PKI. */

export const PRODUCTION_AAGUID = Buffer.from('appattest\0\0\0\0\0\0\0', 'latin1')
export const DEVELOPMENT_AAGUID = Buffer.from('appattestdevelop', 'latin1')
const NONCE_OID = '1.2.840.113635.100.8.2'

const sha256 = (...parts: Uint8Array[]) => {
  const hash = createHash('sha256')
  for (const part of parts) hash.update(part)
  return hash.digest()
}

export interface AttestationScenario {
  appId: string
  challenge: string
  aaguid?: Buffer
  counter?: number
  /** The credential id written into authData; the key's hash by default. */
  credentialId?: Buffer
  /** The challenge the leaf certificate's nonce covers; `challenge` by default. */
  nonceChallenge?: string
  leafValidity?: Validity
}

export interface BuiltAttestation {
  attestationObject: string
  keyId: string
  keys: CryptoKeyPair
}

function authenticatorData(appId: string, counter: number, credential?: { aaguid: Buffer; id: Buffer; cose: Buffer }) {
  const counterBytes = Buffer.alloc(4)
  counterBytes.writeUInt32BE(counter)
  const head = Buffer.concat([sha256(Buffer.from(appId)), Buffer.from([0x40]), counterBytes])
  if (credential === undefined) return head
  const idLength = Buffer.alloc(2)
  idLength.writeUInt16BE(credential.id.length)
  return Buffer.concat([head, credential.aaguid, idLength, credential.id, credential.cose])
}

export async function buildAttestation(
  intermediate: TestCertificate,
  scenario: AttestationScenario,
): Promise<BuiltAttestation> {
  const keys = await generateKeys()
  const point = Buffer.from(await crypto.subtle.exportKey('raw', keys.publicKey))
  const keyHash = sha256(point)
  const cose = Buffer.from(
    encode(
      new Map<number, number | Buffer>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, point.subarray(1, 33)],
        [-3, point.subarray(33)],
      ]),
    ),
  )
  const authData = authenticatorData(scenario.appId, scenario.counter ?? 0, {
    aaguid: scenario.aaguid ?? PRODUCTION_AAGUID,
    id: scenario.credentialId ?? keyHash,
    cose,
  })
  const nonce = sha256(authData, sha256(Buffer.from(scenario.nonceChallenge ?? scenario.challenge)))
  // SEQUENCE { [1] { OCTET STRING nonce } }
  const nonceExtension = Buffer.concat([Buffer.from([0x30, 0x24, 0xa1, 0x22, 0x04, 0x20]), nonce])
  const leaf = await issue(intermediate, 'CN=App Attest credential', {
    ...scenario.leafValidity,
    keys,
    extensions: { [NONCE_OID]: nonceExtension },
  })
  const attestation = new Map<string, unknown>([
    ['fmt', 'apple-appattest'],
    [
      'attStmt',
      new Map<string, unknown>([
        ['x5c', [leaf.der, intermediate.der]],
        ['receipt', Buffer.from('receipt')],
      ]),
    ],
    ['authData', authData],
  ])
  return { attestationObject: encode(attestation).toString('base64url'), keyId: keyHash.toString('base64'), keys }
}

export function buildAssertion(keys: CryptoKeyPair, appId: string, counter: number, clientData: string): string {
  const authData = authenticatorData(appId, counter)
  const nonce = sha256(authData, sha256(Buffer.from(clientData)))
  const signature = sign('sha256', nonce, KeyObject.from(keys.privateKey))
  return encode(
    new Map<string, Buffer>([
      ['signature', signature],
      ['authenticatorData', authData],
    ]),
  ).toString('base64url')
}
