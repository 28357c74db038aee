import { createHash } from 'node:crypto'
import {
  AttestationApplicationId,
  AttestationPackageInfo,
  AuthorizationList,
  KeyDescription,
  RootOfTrust,
  SecurityLevel,
  VerifiedBootState,
} from '@peculiar/asn1-android'
import { AsnConvert, OctetString } from '@peculiar/asn1-schema'
import { type IssueOptions, issue, type TestCertificate } from './test-pki.ts'

/**
 * Builds Android key attestation chains the way KeyMint would: the KeyDescription is encoded with
 * @peculiar/asn1-android, an encoder independent of the verifier's own DER reader.
 */

export const KEY_DESCRIPTION_OID = '1.3.6.1.4.1.11129.2.1.17'
export const TEST_SIGNING_DIGEST = createHash('sha256').update('the bank app signing certificate').digest()

export interface KeyDescriptionScenario {
  challenge: string
  securityLevel?: SecurityLevel
  keymasterSecurityLevel?: SecurityLevel
  packageName?: string
  signatureDigests?: Buffer[]
  verifiedBootState?: VerifiedBootState
  deviceLocked?: boolean
  omitRootOfTrust?: boolean
  omitApplicationId?: boolean
  /** Whole `[tag] EXPLICIT value` encodings appended to hardwareEnforced, as a later KeyMint might add. */
  extraHardwareEntries?: Buffer[]
}

function derSequence(contents: Buffer): Buffer {
  const length = contents.length
  const lengthBytes = length < 0x80 ? [length] : length < 0x100 ? [0x81, length] : [0x82, length >> 8, length & 0xff]
  return Buffer.concat([Buffer.from([0x30, ...lengthBytes]), contents])
}

/** Strips a SEQUENCE header, returning its contents. */
function sequenceContents(der: Buffer): Buffer {
  const lengthByte = der[1] ?? 0
  return der.subarray(lengthByte < 0x80 ? 2 : 2 + (lengthByte & 0x7f))
}

export function keyDescriptionDer(scenario: KeyDescriptionScenario): Buffer {
  const securityLevel = scenario.securityLevel ?? SecurityLevel.trustedEnvironment
  const applicationId = new AttestationApplicationId({
    packageInfos: [
      new AttestationPackageInfo({
        packageName: new OctetString(Buffer.from(scenario.packageName ?? 'com.bank.app')),
        version: 320,
      }),
    ],
    signatureDigests: (scenario.signatureDigests ?? [TEST_SIGNING_DIGEST]).map((digest) => new OctetString(digest)),
  })
  const softwareEnforced = new AuthorizationList({
    creationDateTime: 1_768_478_400_000,
    ...(scenario.omitApplicationId
      ? {}
      : { attestationApplicationId: new OctetString(AsnConvert.serialize(applicationId)) }),
  })
  const rootOfTrust = new RootOfTrust({
    verifiedBootKey: new OctetString(Buffer.alloc(32, 1)),
    deviceLocked: scenario.deviceLocked ?? true,
    verifiedBootState: scenario.verifiedBootState ?? VerifiedBootState.verified,
    verifiedBootHash: new OctetString(Buffer.alloc(32, 2)),
  })
  const hardwareEnforced = new AuthorizationList({
    algorithm: 3,
    keySize: 256,
    ...(scenario.omitRootOfTrust ? {} : { rootOfTrust }),
    osVersion: 140000,
    osPatchLevel: 202405,
  })
  const description = Buffer.from(
    AsnConvert.serialize(
      new KeyDescription({
        attestationVersion: 200,
        attestationSecurityLevel: securityLevel,
        keymasterVersion: 200,
        keymasterSecurityLevel: scenario.keymasterSecurityLevel ?? securityLevel,
        attestationChallenge: new OctetString(Buffer.from(scenario.challenge)),
        uniqueId: new OctetString(),
        softwareEnforced,
        teeEnforced: hardwareEnforced,
      }),
    ),
  )
  if (scenario.extraHardwareEntries === undefined) return description
  // hardwareEnforced is the last field: re-encode it with the extra entries, then the KeyDescription around it.
  const hardware = Buffer.from(AsnConvert.serialize(hardwareEnforced))
  const fields = sequenceContents(description)
  const before = fields.subarray(0, fields.length - hardware.length)
  const extended = derSequence(Buffer.concat([sequenceContents(hardware), ...scenario.extraHardwareEntries]))
  return derSequence(Buffer.concat([before, extended]))
}

export interface AndroidChainOptions {
  leaf?: IssueOptions
  /** Defaults to the KeyDescription of the scenario. */
  keyDescription?: Buffer
}

/** A chain as KeyStore.getCertificateChain returns it: leaf, intermediate, root, base64 DER. */
export async function buildAndroidChain(
  root: TestCertificate,
  intermediate: TestCertificate,
  scenario: KeyDescriptionScenario,
  options: AndroidChainOptions = {},
): Promise<{ chain: string[]; leaf: TestCertificate }> {
  const leaf = await issue(intermediate, 'CN=Android Keystore Key', {
    ...options.leaf,
    extensions: {
      [KEY_DESCRIPTION_OID]: options.keyDescription ?? keyDescriptionDer(scenario),
      ...options.leaf?.extensions,
    },
  })
  return { chain: [leaf.der, intermediate.der, root.der].map((der) => der.toString('base64')), leaf }
}
