import {
  type AuthenticationService,
  type ClientConfig,
  defaultKeyPackageEqualityConfig,
  type KeyRetentionConfig,
} from 'ts-mls'

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

/** The client configuration every Strongroom member uses; the authentication service checks credentials. */
export function secureGroupClientConfig(authService: AuthenticationService): ClientConfig {
  return {
    keyRetentionConfig: KEY_RETENTION,
    lifetimeConfig: { maximumTotalLifetime: 90n * 24n * 3600n, validateLifetimeOnReceive: true },
    keyPackageEqualityConfig: defaultKeyPackageEqualityConfig,
    paddingConfig: PADDING,
    authService,
  }
}
