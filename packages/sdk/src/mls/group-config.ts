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
 * How long a key package lives: 90 days from its making (and an hour before, for clocks a little behind). The
 * directory refuses longer ones and hands out none that expired; members top up well before theirs run out.
 */
export const KEY_PACKAGE_LIFETIME_SECONDS = 90 * 24 * 3600
export const KEY_PACKAGE_CLOCK_SKEW_SECONDS = 3600

/** The lifetime for a key package made now. */
export function keyPackageLifetime(now = Date.now()): { notBefore: bigint; notAfter: bigint } {
  const seconds = Math.floor(now / 1000)
  return {
    notBefore: BigInt(seconds - KEY_PACKAGE_CLOCK_SKEW_SECONDS),
    notAfter: BigInt(seconds + KEY_PACKAGE_LIFETIME_SECONDS),
  }
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
    // A key package's lifetime is checked by the member that adds it (ts-mls always checks what its own commit adds)
    // and by the directory, which takes no longer-lived one and hands out no expired one. Not on receipt: a leaf keeps
    // its key package's lifetime in the tree until its member next commits, and a customer's phone may not commit for
    // months, so checking every leaf on receipt would make a quiet group unjoinable (no new agent, no re-join, no
    // archive recovery) once that lifetime passed. RFC 9420, section 7.3, leaves the receiver's check optional.
    lifetimeConfig: {
      maximumTotalLifetime: BigInt(KEY_PACKAGE_LIFETIME_SECONDS + KEY_PACKAGE_CLOCK_SKEW_SECONDS),
      validateLifetimeOnReceive: false,
    },
    keyPackageEqualityConfig: ONE_LEAF_PER_MEMBER,
    paddingConfig: PADDING,
    authService,
  }
}
