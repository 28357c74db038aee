/**
 * Secure conversations with Messaging Layer Security (RFC 9420), behind Strongroom's own group interface so that the
 * MLS library can be replaced in one place.
 *
 * @example
 * import { SecureGroup, generateKeyPackages } from '@strongroom/sdk/mls'
 * const group = await SecureGroup.create(member, groupId)
 */

export { BrowserDevice, type BrowserEnrolment } from './mls/browser-device.ts'
export {
  browserCryptoProvider,
  deleteBrowserSecureStore,
  IndexedDbStore,
  openBrowserSecureStore,
} from './mls/browser-store.ts'
export {
  type AcceptedCommit,
  type DeliveryService,
  httpDeliveryService,
  isEpochConflict,
  type KeyPackageStock,
  type MemberRef,
  MLS_CONTENT_TYPE,
  type PendingWelcome,
} from './mls/delivery-service.ts'
export {
  KEY_PACKAGE_CLOCK_SKEW_SECONDS,
  KEY_PACKAGE_LIFETIME_SECONDS,
  KEY_RETENTION,
  secureGroupClientConfig,
} from './mls/group-config.ts'
export {
  CREDENTIAL_ISSUER,
  CREDENTIAL_TYPE,
  credentialAuthorityService,
  isMemberRef,
  leafKeyOf,
  type MemberCredentialClaims,
  type MemberIdentity,
  memberCredentialClaims,
  memberOfCredential,
  mlsCredential,
  signMemberCredential,
} from './mls/member-credential.ts'
export {
  type GroupEvent,
  type GroupMember,
  generateKeyPackages,
  type KeyPackageSecrets,
  type LocalMember,
  type PendingCommit,
  SecureGroup,
  SecureGroupError,
  type SecureGroupErrorCode,
} from './mls/secure-group.ts'
export {
  fetchSecureHistory,
  type HistoryMessage,
  SECURE_HISTORY_INFO,
  type SealedHistoryMessage,
  secureHistoryAad,
  secureHistorySuite,
} from './mls/secure-history.ts'
export { type KeptText, type SecureEvent, SecureMessaging } from './mls/secure-messaging.ts'
export {
  encryptedStore,
  generateStoreKey,
  importStoreKey,
  MemoryStore,
  type SecureStore,
} from './mls/secure-store.ts'
export {
  decodeSignal,
  encodeSignal,
  MAX_SIGNALS_BETWEEN_MESSAGES,
  SIGNAL_MARKER,
  type Signal,
  type SignalEvent,
  SignalPacer,
  TYPING_INTERVAL_MS,
  TYPING_SHOWN_MS,
} from './mls/signals.ts'
