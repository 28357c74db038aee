/**
 * @strongroom/sdk: the client library for the bank's apps, webviews and backends.
 *
 * @example
 * import { enrolDevice } from '@strongroom/sdk'
 * const { client } = await enrolDevice({ baseUrl, enrolmentCode, label: 'My phone' })
 * const stream = client.stream({ onMessage: (m) => console.log(m.seq) })
 * await stream.send(conversationId, { contentType: 'application/mls', ciphertext })
 */

export type {
  ArchiveRecord,
  ArchiveSearch,
  ArchiveSearchPage,
  ArchiveVerification,
  CaseScope,
} from './archive-protocol.ts'
export {
  ATTACHMENT_TYPES,
  AttachmentError,
  type AttachmentRef,
  type AttachmentType,
  attachmentMessage,
  DEFAULT_MAX_ATTACHMENT_BYTES,
  downloadAttachment,
  readAttachmentMessage,
  uploadAttachment,
} from './attachments.ts'
export { type EnrolmentEvidenceSource, enrolAttestedDevice } from './attested-enrolment.ts'
export {
  BackendClient,
  DeviceClient,
  type EnrolledDevice,
  type EnrolmentAttestation,
  type EnrolOptions,
  enrolDevice,
  type MemberClient,
  StaffClient,
  StrongroomClient,
} from './client.ts'
export type { NewConsent } from './clients/bank-calls.ts'
export type { ClientCore } from './clients/client-core.ts'
export type { Attestation } from './clients/device-calls.ts'
export type { MessageRange } from './clients/member-calls.ts'
export type { AssignmentMode } from './clients/staff-calls.ts'
export {
  type ConsentReceipt,
  type ConsentRequest,
  consentPasskeyChallenge,
  consentSigningPayload,
  formatAmount,
  type PayeeBlock,
  signConsent,
  verifyConsentReceipt,
} from './consent.ts'
export { MLS_CONTENT_TYPE } from './content-types.ts'
export {
  ClientAssertion,
  type ClientAssertionOptions,
  type Credentials,
  DeviceKey,
  StaffToken,
} from './credentials.ts'
export { type DeviceKeyAlgorithm, type DeviceKeys, generateDeviceKeys } from './device-keys.ts'
export { createDpopProof } from './dpop.ts'
export { base64ToBytes, bytesToBase64 } from './encoding.ts'
export { problemKind, StrongroomError } from './errors.ts'
export type { CustomerFactor, FactorProof } from './factors.ts'
export type {
  ActiveDevice,
  Customer,
  Device,
  DeviceVerdict,
  SimSwapRisk,
  StaffMember,
} from './identity-protocol.ts'
export {
  type AppAttestKeyAttester,
  type AppIdentity,
  type AttestationProvider,
  type AttestedKeyGenerator,
  attestationClientData,
  devAttestation,
  type RiskSignals,
} from './integrity.ts'
export {
  enrolStaffPasskey,
  type Passkey,
  type PasskeyAssertion,
  type PasskeyCreationOptions,
  type PasskeyRegistrationCredential,
  type PasskeyRequestOptions,
  type StaffSignIn,
  signInStaffWithPasskey,
  staffInvitationPasskeyOptions,
  staffPasskeySignInOptions,
} from './passkeys.ts'
export {
  enrolWithPivotLink,
  openPivotLink,
  type PivotFactor,
  type PivotLinkOptions,
  type PivotRedemption,
  type PivotStepUpOptions,
  pivotStepUpOptions,
  pivotTokenOf,
  sendPivotSmsCode,
} from './pivot.ts'
export { PROBLEM_BASE, type ProblemKind, problemKinds } from './problems.ts'
export type {
  Conversation,
  ConversationStatus,
  ConversationUpdate,
  Message,
  Presence,
  ProblemDocument,
  SecurityNotice,
  StaffPresence,
} from './protocol.ts'
export {
  type ConversationChannel,
  type CustomerChannel,
  channelNames,
  IMPORTED_HISTORY_TYPE,
  isPublicChannelMessage,
  type PivotLink,
  PUBLIC_MESSAGE_TYPE,
  type PublicChannelConnector,
  type PublicMessage,
  type ReportOutcome,
  type SentPublicMessage,
  type SuspiciousReport,
} from './public-channels.ts'
export {
  DEVICE_WIPED_PROBLEM,
  executeRemoteWipe,
  fetchWipeKeys,
  isDeviceWipedProblem,
  type RemoteWipeOptions,
  verifyWipeCommand,
  type WipeTarget,
} from './remote-wipe.ts'
export { generateSecretsKeys, openRuntimeSecret, type SealedSecret, type SecretsKeys } from './secrets.ts'
export { claimStaffSession, StaffSession, type StaffSessionToken } from './staff-session.ts'
export {
  MessageStream,
  type OutgoingMessage,
  type ReceivedSignal,
  type SentMessage,
  type StreamOptions,
  type StreamState,
} from './stream.ts'
export { type ClientOptions, type IntegrityGrant, Transport, type WebSocketConstructor } from './transport.ts'
export { DEVICE_SUSPENDED_PROBLEM, isDeviceSuspendedProblem } from './wipe-problem.ts'
