import type {
  AuthenticationService,
  ClientConfig,
  Credential,
  KeyPackageEqualityConfig,
  KeyRetentionConfig,
} from 'ts-mls'
import { memberKeyOf } from './member-credential.ts'

/**
 * How much key material a member keeps. Set deliberately rather than left at the library's defaults (200 ratchet
 * steps, 4 epochs), which reject a phone that was offline for a busy day: the server delivers in order, so few
 * out-of-order generations are needed, but a member may have to step far ahead in one epoch and read a message that
 * was sent just before several commits.
 */
export const KEY_RETENTION: KeyRetentionConfig = {
  maximumForwardRatchetSteps: 10_000,
  retainKeysForGenerations: 64,
  retainKeysForEpochs: 16,
}

/**
 * Every message is padded to a multiple of 256 bytes so that lengths say little about content (a "yes" and a card
 * number look alike on the wire).
 */
const PADDING = { kind: 'padUntilLength', padUntilLength: 256 } as const

const sameMember = (a: Credential, b: Credential) => {
  const key = memberKeyOf(a)
  return key !== undefined && key === memberKeyOf(b)
}

/**
 * One leaf per member: a key package "is" a member already in the group when its credential names the same device,
 * staff member or archive, whatever its keys (ts-mls compares signature keys, which change when a member loses its
 * state and makes new ones). So adding a member that has a leaf must remove that leaf in the same commit, and a member
 * that lost its state re-joins by external commit in place of its own old leaf (RFC 9420, section 12.4.3.2).
 */
const ONE_LEAF_PER_MEMBER: KeyPackageEqualityConfig = {
  compareKeyPackages: (a, b) => sameMember(a.leafNode.credential, b.leafNode.credential),
  compareKeyPackageToLeafNode: (keyPackage, leaf) => sameMember(keyPackage.leafNode.credential, leaf.credential),
}

/** The client configuration every Strongroom member uses; the authentication service checks credentials. */
export function secureGroupClientConfig(authService: AuthenticationService): ClientConfig {
  return {
    keyRetentionConfig: KEY_RETENTION,
    lifetimeConfig: { maximumTotalLifetime: 90n * 24n * 3600n, validateLifetimeOnReceive: true },
    keyPackageEqualityConfig: ONE_LEAF_PER_MEMBER,
    paddingConfig: PADDING,
    authService,
  }
}
