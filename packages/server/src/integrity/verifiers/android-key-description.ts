import {
  DER_ENUMERATED,
  DER_OCTET_STRING,
  DER_SEQUENCE,
  DER_SET,
  type DerElement,
  derBoolean,
  derChildren,
  derOctetString,
  derSmallInteger,
  expectDer,
  readDer,
} from './der.ts'
import { AttestationError } from './verifier.ts'

/**
 * Android's KeyDescription certificate extension (https://source.android.com/docs/security/features/keystore/attestation),
 * read for what a verdict needs. Authorization lists are kept as tag -> value so tags added by later KeyMint versions
 * pass through unread.
 */

export const KEY_DESCRIPTION_OID = '1.3.6.1.4.1.11129.2.1.17'

export const SecurityLevel = { software: 0, trustedEnvironment: 1, strongBox: 2 } as const
export const VerifiedBootState = { verified: 0, selfSigned: 1, unverified: 2, failed: 3 } as const

export const AuthorizationTag = {
  purpose: 1,
  origin: 702,
  rootOfTrust: 704,
  osVersion: 705,
  osPatchLevel: 706,
  attestationApplicationId: 709,
} as const

/** KeyPurpose values (Tag::PURPOSE) and KeyOrigin values (Tag::ORIGIN) from the KeyMint HAL. */
export const KeyPurpose = { encrypt: 0, decrypt: 1, sign: 2, verify: 3, wrapKey: 5, agreeKey: 6, attestKey: 7 } as const
export const KeyOrigin = { generated: 0, derived: 1, imported: 2, reserved: 3, securelyImported: 4 } as const

export interface KeyDescription {
  attestationVersion: number
  attestationSecurityLevel: number
  /** keymasterSecurityLevel, called keyMintSecurityLevel from version 100. */
  keymasterSecurityLevel: number
  attestationChallenge: Buffer
  softwareEnforced: AuthorizationList
  /** teeEnforced, called hardwareEnforced from version 100. */
  hardwareEnforced: AuthorizationList
}

/** Each `[tag] EXPLICIT value` of an AuthorizationList, by tag. */
export type AuthorizationList = ReadonlyMap<number, DerElement>

export interface RootOfTrust {
  deviceLocked: boolean
  verifiedBootState: number
}

export interface AttestationApplicationId {
  packages: { name: string; versionCode: number }[]
  signatureDigests: Buffer[]
}

function malformed(): never {
  throw new AttestationError('bad-format')
}

function parseAuthorizationList(element: DerElement | undefined): AuthorizationList {
  const list = new Map<number, DerElement>()
  for (const entry of derChildren(expectDer(element, DER_SEQUENCE))) {
    const [value, ...rest] = entry.tagClass === 'context' ? derChildren(entry) : malformed()
    if (value === undefined || rest.length > 0 || list.has(entry.tag)) malformed()
    list.set(entry.tag, value)
  }
  return list
}

export function parseKeyDescription(extensionValue: Buffer): KeyDescription {
  const fields = derChildren(expectDer(readDer(extensionValue), DER_SEQUENCE))
  return {
    attestationVersion: derSmallInteger(fields[0]),
    attestationSecurityLevel: derSmallInteger(fields[1], DER_ENUMERATED),
    keymasterSecurityLevel: derSmallInteger(fields[3], DER_ENUMERATED),
    attestationChallenge: derOctetString(fields[4]),
    softwareEnforced: parseAuthorizationList(fields[6]),
    hardwareEnforced: parseAuthorizationList(fields[7]),
  }
}

/** purpose ::= [1] EXPLICIT SET OF INTEGER */
export function parsePurposes(element: DerElement): number[] {
  return derChildren(expectDer(element, DER_SET)).map((purpose) => derSmallInteger(purpose))
}

/** RootOfTrust ::= SEQUENCE { verifiedBootKey OCTET STRING, deviceLocked BOOLEAN, verifiedBootState ENUMERATED, … } */
export function parseRootOfTrust(element: DerElement): RootOfTrust {
  const [bootKey, deviceLocked, bootState] = derChildren(expectDer(element, DER_SEQUENCE))
  expectDer(bootKey, DER_OCTET_STRING)
  return {
    deviceLocked: derBoolean(deviceLocked),
    verifiedBootState: derSmallInteger(bootState, DER_ENUMERATED),
  }
}

/**
 * attestationApplicationId is an OCTET STRING holding
 * SEQUENCE { SET OF SEQUENCE { packageName OCTET STRING, version INTEGER }, SET OF OCTET STRING (signature digests) }.
 */
export function parseAttestationApplicationId(element: DerElement): AttestationApplicationId {
  const [packageInfos, signatureDigests] = derChildren(expectDer(readDer(derOctetString(element)), DER_SEQUENCE))
  const packages = derChildren(expectDer(packageInfos, DER_SET)).map((info) => {
    const [name, version] = derChildren(expectDer(info, DER_SEQUENCE))
    return { name: derOctetString(name).toString('utf8'), versionCode: derSmallInteger(version) }
  })
  const digests = derChildren(expectDer(signatureDigests, DER_SET)).map((digest) => derOctetString(digest))
  return { packages, signatureDigests: digests }
}
