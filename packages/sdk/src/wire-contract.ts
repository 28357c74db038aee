import { type Static, type TObject, type TSchema, Type } from '@sinclair/typebox'
import {
  ArchiveBundle,
  ArchiveCase,
  ArchiveErasure,
  ArchiveRetention,
  ArchiveRetentionChange,
  ArchiveSearchPage,
  ArchiveSearchQuery,
  ArchiveVerification,
  LegalHold,
  LegalHoldList,
  NewLegalHold,
  SealedHistoryPage,
  SecureHistoryRequest,
} from './archive-protocol.ts'
import { AttachmentCiphertext, AttachmentUpload, StoredAttachment } from './attachment-protocol.ts'
import { AuditEventList, AuditEventQuery } from './audit-protocol.ts'
import {
  CustomerFactorList,
  FactorRemoval,
  FactorsReset,
  FactorsResetRequest,
  InvitedPasskeyRegistration,
  InvitedStaffPasskey,
  OidcHandoff,
  Passkey,
  PasskeyCheck,
  PasskeyCreationOptions,
  PasskeyList,
  PasskeyRegistration,
  PasskeyRequestOptions,
  PasskeyVerification,
  SessionEnded,
  SimSwapCheck,
  SmsCodeCheck,
  SmsCodeRequest,
  SmsCodeSent,
  StaffInvitation,
  StaffPasskeySignIn,
  StaffSessionToken,
  StaffSignIn,
  StaffSignInStart,
  StepUpPolicy,
  TotpCode,
  TotpConfirmation,
  TotpEnrolment,
} from './auth-protocol.ts'
import {
  ChannelConfig,
  ChannelSettings,
  ChannelSettingsList,
  ConversationChannelList,
  ConversationChannelQuery,
  CustomerChannelList,
  CustomerPivotInvitation,
  DlpPolicy,
  DlpScanRequest,
  DlpScanResult,
  LinkPolicy,
  LiveCustomerPivotLink,
  LivePivotLink,
  OutreachMessage,
  OutreachStarted,
  PivotEnrolment,
  PivotInvitation,
  PivotLinkList,
  PivotLinkOpened,
  PivotRedemption,
  PivotStepUpEnrolment,
  PivotStepUpOptions,
  PivotToken,
  PublicChannelCustomer,
  PublicMessageList,
  PublicMessageListQuery,
  PublicMessageText,
  ReportReceived,
  ReportResolution,
  SentCustomerPivotLink,
  SentPivotLink,
  SentPublicMessage,
  SuspiciousMessage,
  SuspiciousReport,
  SuspiciousReportList,
  SuspiciousReportListQuery,
  WhatsAppTemplates,
} from './channel-protocol.ts'
import {
  ConsentApproval,
  ConsentDecline,
  ConsentList,
  ConsentListQuery,
  ConsentRequest,
  NewConsent,
  PayeeBlock,
  PayeeBlockLift,
  PayeeBlockList,
  ReceiptKeysQuery,
  SmsConfirmationSent,
} from './consent-protocol.ts'
import {
  Assignment,
  Conversation,
  ConversationList,
  ConversationListQuery,
  DeviceRetention,
  MarkerUpdate,
  Message,
  MessageList,
  MessageListQuery,
  NewConversation,
  NewMember,
  OutgoingMessageBody,
  PresenceChange,
  SecureGroup,
  StaffPresenceList,
  StatusChange,
} from './conversation-protocol.ts'
import { DataSubjectExport } from './data-subject-protocol.ts'
import {
  CannedReply,
  CannedReplyInput,
  CannedReplyList,
  ConversationNote,
  ConversationSearchQuery,
  NewNote,
  NoteList,
  SearchPage,
} from './desk-protocol.ts'
import {
  ArchiveRemovalExemption,
  ArchiveRemovalRequest,
  ClaimedKeyPackages,
  CommitAccepted,
  CommitSubmission,
  CredentialAuthority,
  CredentialRequest,
  KeyPackageClaim,
  KeyPackageStock,
  KeyPackageUpload,
  MemberCredential,
  MemberInstanceQuery,
  NewSecureGroup,
  PublishedGroupInfo,
  WelcomeList,
} from './e2e-protocol.ts'
import {
  Customer,
  DeviceList,
  DeviceResumed,
  DeviceRevoked,
  DeviceStateChangeBody,
  DeviceSuspended,
  DeviceToken,
  DeviceVerdictList,
  Enrolment,
  EnrolmentCode,
  Me,
  NewCustomer,
  NewStaffMember,
  SimSwapRisk,
  StaffList,
  StaffMember,
  WipeConfirmed,
} from './identity-protocol.ts'
import {
  AppRegistration,
  AppVersionDeactivation,
  AttestationEvidence,
  AttestationGrant,
  DeviceEnrolment,
  EnrolmentChallenge,
  EnrolmentChallengeRequest,
  IntegrityChallenge,
  IntegrityPolicy,
  Rekeyed,
  RekeyRequest,
  RuntimeSecretValue,
  RuntimeSecretVersion,
  SealedSecret,
  SecretsKeyRegistration,
  SignedPinSet,
} from './integrity-protocol.ts'
import { RateLimitPolicy } from './limits-protocol.ts'
import {
  ApiClient,
  AuthorizationServerMetadata,
  ClientToken,
  ClientTokenRequest,
  IssuedStaffInvitation,
  IssuedStaffToken,
  NewApiClient,
  StaffInvitationRequest,
  StaffTokenPolicy,
  StaffTokenRequest,
} from './tenancy-protocol.ts'

/** The successful statuses a route answers with. */
export type WireStatus = 200 | 201 | 202 | 204

/** A route's successful answers: the schema of the body for each status (`Type.Void()` where there is no body). */
export type WireResponse = Partial<Record<WireStatus, TSchema>>

/**
 * A route of the contract: its answers, the schema of the JSON body it takes (`body`), if it takes one, and of its
 * query string (`query`), if it reads one.
 */
export type WireEntry = WireResponse & { body?: TSchema; query?: TObject }

const ok = <S extends TSchema>(schema: S) => ({ 200: schema })
const created = <S extends TSchema>(schema: S) => ({ 201: schema })
const accepted = <S extends TSchema>(schema: S) => ({ 202: schema })
const noBody = Type.Void()
const noContent = { 204: noBody }
/** The body a route takes, with its answers: `{ ...created(Customer), ...taking(NewCustomer) }`. */
const taking = <S extends TSchema>(schema: S) => ({ body: schema })
/** The query string a route reads, with its answers: `{ ...ok(ConversationList), ...querying(ConversationListQuery) }`. */
const querying = <S extends TObject>(schema: S) => ({ query: schema })

/**
 * What the server answers on every route the SDK calls, by `METHOD /path` as the access table names routes: the
 * schema of each successful answer, of the JSON body the route takes (`body`) and of the query string it reads
 * (`query`). The server declares each route's body, query string and responses with the same schema objects, and a
 * server test compares every entry with the route in the OpenAPI document, so that the two cannot drift apart. The
 * clients call these routes by name (`ClientCore.call`), with a body of type `WireBody`, a query of type `WireQuery`
 * and an answer of type `WireAnswer`.
 */
export const wireContract = {
  'GET /v1/me': ok(Me),
  'POST /v1/customers': { ...created(Customer), ...taking(NewCustomer) },
  'GET /v1/customers/:customerId': ok(Customer),
  'GET /v1/customers/:customerId/devices': ok(DeviceList),
  'POST /v1/customers/:customerId/enrolment-codes': created(EnrolmentCode),
  'POST /v1/devices': { ...created(Enrolment), ...taking(DeviceEnrolment) },
  'GET /v1/devices': ok(DeviceList),
  'POST /v1/devices/token': ok(DeviceToken),
  'POST /v1/devices/:deviceId/revoke': { ...ok(DeviceRevoked), ...taking(DeviceStateChangeBody) },
  'POST /v1/devices/:deviceId/suspend': { ...ok(DeviceSuspended), ...taking(DeviceStateChangeBody) },
  'POST /v1/devices/:deviceId/resume': { ...ok(DeviceResumed), ...taking(DeviceStateChangeBody) },
  'POST /v1/integrity/challenges': created(IntegrityChallenge),
  'POST /v1/integrity/attest': { ...ok(AttestationGrant), ...taking(AttestationEvidence) },
  'POST /v1/integrity/enrolment-challenges': { ...created(EnrolmentChallenge), ...taking(EnrolmentChallengeRequest) },
  'POST /v1/integrity/rekey': { ...ok(Rekeyed), ...taking(RekeyRequest) },
  'POST /v1/integrity/secrets-key': { ...noContent, ...taking(SecretsKeyRegistration) },
  'GET /v1/secrets/:name': ok(SealedSecret),
  'POST /v1/risk/sim-swap': { ...ok(SimSwapRisk), ...taking(SimSwapCheck) },
  'GET /v1/customers/:customerId/device-integrity': ok(DeviceVerdictList),
  'POST /v1/staff': { ...created(StaffMember), ...taking(NewStaffMember) },
  'GET /v1/staff': ok(StaffList),
  'GET /v1/staff/presence': ok(StaffPresenceList),
  'PUT /v1/staff/me/presence': { ...noContent, ...taking(PresenceChange) },
  'GET /v1/factors': ok(CustomerFactorList),
  'POST /v1/factors/totp': created(TotpEnrolment),
  'POST /v1/factors/totp/confirm': { ...noContent, ...taking(TotpConfirmation) },
  'POST /v1/factors/:factorId/remove': { ...noContent, ...taking(FactorRemoval) },
  'POST /v1/factors/sms/send': { ...accepted(SmsCodeSent), ...taking(SmsCodeRequest) },
  'GET /v1/customers/:customerId/factors': ok(CustomerFactorList),
  'POST /v1/customers/:customerId/factors/reset': { ...ok(FactorsReset), ...taking(FactorsResetRequest) },
  'GET /v1/passkeys': ok(PasskeyList),
  'POST /v1/passkeys/registration/options': ok(PasskeyCreationOptions),
  'POST /v1/passkeys/registration': { ...created(Passkey), ...taking(PasskeyRegistration) },
  'POST /v1/passkeys/authentication/options': ok(PasskeyRequestOptions),
  'POST /v1/passkeys/authentication': { ...ok(PasskeyVerification), ...taking(PasskeyCheck) },
  'POST /v1/staff/passkey/registration/options': ok(PasskeyCreationOptions),
  'POST /v1/staff/passkey/registration': { ...created(Passkey), ...taking(PasskeyRegistration) },
  'POST /v1/staff/passkey/sign-in/options': { ...ok(PasskeyRequestOptions), ...taking(StaffSignInStart) },
  'POST /v1/staff/passkey/sign-in': { ...created(StaffSignIn), ...taking(StaffPasskeySignIn) },
  'POST /v1/staff/invitation/passkey/options': { ...ok(PasskeyCreationOptions), ...taking(StaffInvitation) },
  'POST /v1/staff/invitation/passkey': { ...created(InvitedStaffPasskey), ...taking(InvitedPasskeyRegistration) },
  'POST /v1/staff/oidc/session': { ...created(StaffSessionToken), ...taking(OidcHandoff) },
  'POST /v1/staff/session/refresh': created(StaffSessionToken),
  'POST /v1/staff/session/sign-out': ok(SessionEnded),
  'POST /v1/consents': { ...created(ConsentRequest), ...taking(NewConsent) },
  'GET /v1/consents': { ...ok(ConsentList), ...querying(ConsentListQuery) },
  // Its answer is RFC 7517's key set, which the route does not declare: only the query is the contract's.
  'GET /.well-known/jwks.json': querying(ReceiptKeysQuery),
  'GET /v1/consents/:consentId': ok(ConsentRequest),
  'POST /v1/consents/:consentId/approve': { ...ok(ConsentRequest), ...taking(ConsentApproval) },
  'POST /v1/consents/:consentId/approve/passkey': { ...ok(ConsentRequest), ...taking(PasskeyCheck) },
  'POST /v1/consents/:consentId/decline': { ...ok(ConsentRequest), ...taking(ConsentDecline) },
  'GET /v1/customers/:customerId/payee-blocks': ok(PayeeBlockList),
  'POST /v1/consents/:consentId/payee-block/lift': { ...ok(PayeeBlock), ...taking(PayeeBlockLift) },
  'POST /v1/conversations': { ...created(Conversation), ...taking(NewConversation) },
  'GET /v1/conversations': { ...ok(ConversationList), ...querying(ConversationListQuery) },
  'GET /v1/conversations/:conversationId': ok(Conversation),
  'POST /v1/conversations/:conversationId/members': { ...noContent, ...taking(NewMember) },
  'PUT /v1/conversations/:conversationId/assignment': { ...ok(Conversation), ...taking(Assignment) },
  'PUT /v1/conversations/:conversationId/status': { ...ok(Conversation), ...taking(StatusChange) },
  'POST /v1/conversations/:conversationId/messages': {
    ...ok(Message),
    ...created(Message),
    ...taking(OutgoingMessageBody),
  },
  'GET /v1/conversations/:conversationId/messages': { ...ok(MessageList), ...querying(MessageListQuery) },
  'POST /v1/conversations/:conversationId/markers': { ...noContent, ...taking(MarkerUpdate) },
  'GET /v1/e2e/credential-authority': ok(CredentialAuthority),
  'POST /v1/e2e/credentials': { ...created(MemberCredential), ...taking(CredentialRequest) },
  'GET /v1/e2e/key-packages': { ...ok(KeyPackageStock), ...querying(MemberInstanceQuery) },
  'POST /v1/e2e/key-packages': { ...ok(KeyPackageStock), ...taking(KeyPackageUpload) },
  'POST /v1/conversations/:conversationId/e2e/key-packages/claim': {
    ...ok(ClaimedKeyPackages),
    ...taking(KeyPackageClaim),
  },
  'PUT /v1/conversations/:conversationId/e2e/group': { ...created(SecureGroup), ...taking(NewSecureGroup) },
  'GET /v1/conversations/:conversationId/e2e/group': ok(SecureGroup),
  'POST /v1/conversations/:conversationId/e2e/commits': { ...created(CommitAccepted), ...taking(CommitSubmission) },
  'GET /v1/conversations/:conversationId/e2e/group-info': ok(PublishedGroupInfo),
  'POST /v1/conversations/:conversationId/e2e/readd-requests': { 202: noBody, ...querying(MemberInstanceQuery) },
  'GET /v1/e2e/welcomes': { ...ok(WelcomeList), ...querying(MemberInstanceQuery) },
  'DELETE /v1/e2e/welcomes/:welcomeId': noContent,
  'POST /v1/conversations/:conversationId/secure-history': {
    ...ok(SealedHistoryPage),
    ...taking(SecureHistoryRequest),
  },
  'POST /v1/conversations/:conversationId/attachments': { ...created(StoredAttachment), ...taking(AttachmentUpload) },
  'GET /v1/conversations/:conversationId/attachments/:attachmentId': ok(AttachmentCiphertext),
  'GET /v1/conversations/:conversationId/notes': ok(NoteList),
  'POST /v1/conversations/:conversationId/notes': { ...created(ConversationNote), ...taking(NewNote) },
  'GET /v1/canned-replies': ok(CannedReplyList),
  'GET /v1/search/conversations': { ...ok(SearchPage), ...querying(ConversationSearchQuery) },
  'GET /v1/customers/:customerId/conversations': ok(ConversationList),
  'GET /v1/conversations/:conversationId/public-messages': {
    ...ok(PublicMessageList),
    ...querying(PublicMessageListQuery),
  },
  'POST /v1/conversations/:conversationId/public-messages': {
    ...created(SentPublicMessage),
    ...taking(PublicMessageText),
  },
  'POST /v1/conversations/:conversationId/pivot': {
    ...ok(LivePivotLink),
    ...created(SentPivotLink),
    ...taking(PivotInvitation),
  },
  'GET /v1/conversations/:conversationId/pivot-links': ok(PivotLinkList),
  'GET /v1/channels/conversations': { ...ok(ConversationChannelList), ...querying(ConversationChannelQuery) },
  'GET /v1/customers/:customerId/public-channels': ok(CustomerChannelList),
  'POST /v1/customers/:customerId/public-messages': { ...created(OutreachStarted), ...taking(OutreachMessage) },
  'POST /v1/customers/:customerId/pivot': {
    ...ok(LiveCustomerPivotLink),
    ...created(SentCustomerPivotLink),
    ...taking(CustomerPivotInvitation),
  },
  'POST /v1/pivot/open': { ...ok(PivotLinkOpened), ...taking(PivotToken) },
  'POST /v1/pivot/redeem': { ...ok(PivotRedemption), ...taking(PivotToken) },
  'POST /v1/pivot/step-up/options': { ...ok(PivotStepUpOptions), ...taking(PivotToken) },
  'POST /v1/pivot/step-up/sms': { ...accepted(SmsCodeSent), ...taking(PivotToken) },
  'POST /v1/pivot/enrol': { ...created(PivotEnrolment), ...taking(PivotStepUpEnrolment) },
  'POST /v1/suspicious-reports': { ...created(ReportReceived), ...taking(SuspiciousMessage) },
  'GET /v1/suspicious-reports': { ...ok(SuspiciousReportList), ...querying(SuspiciousReportListQuery) },
  'POST /v1/suspicious-reports/:reportId/resolve': { ...ok(SuspiciousReport), ...taking(ReportResolution) },
  'GET /v1/archive/records': { ...ok(ArchiveSearchPage), ...querying(ArchiveSearchQuery) },
  'GET /v1/archive/verification': ok(ArchiveVerification),

  // Administration: routes of the console's operations pages, the CLI and bank backends' set-up.
  'POST /v1/staff/:staffId/tokens': { ...created(IssuedStaffToken), ...taking(StaffTokenRequest) },
  'POST /v1/staff/:staffId/invitations': { ...created(IssuedStaffInvitation), ...taking(StaffInvitationRequest) },
  'POST /v1/staff/:staffId/tokens/:tokenId/revoke': noContent,
  'POST /v1/staff/:staffId/deactivate': ok(StaffMember),
  'POST /v1/staff/:staffId/activate': ok(StaffMember),
  'GET /v1/policies/staff-tokens': ok(StaffTokenPolicy),
  'PUT /v1/policies/staff-tokens': { ...ok(StaffTokenPolicy), ...taking(StaffTokenPolicy) },
  'GET /.well-known/oauth-authorization-server': ok(AuthorizationServerMetadata),
  'POST /v1/api-clients': { ...created(ApiClient), ...taking(NewApiClient) },
  // Its body is form-encoded (RFC 6749): `ClientCredentials` sends it, never `call`, which writes JSON.
  'POST /v1/oauth/token': { ...ok(ClientToken), ...taking(ClientTokenRequest) },
  'GET /v1/audit/events': { ...ok(AuditEventList), ...querying(AuditEventQuery) },
  'POST /v1/archive/exports': { ...ok(ArchiveBundle), ...taking(ArchiveCase) },
  'GET /v1/archive/retention': ok(ArchiveRetention),
  'PUT /v1/archive/retention': { ...ok(ArchiveRetention), ...taking(ArchiveRetentionChange) },
  'GET /v1/archive/holds': ok(LegalHoldList),
  'POST /v1/archive/holds': { ...created(LegalHold), ...taking(NewLegalHold) },
  'POST /v1/archive/holds/:holdId/release': ok(LegalHold),
  'POST /v1/archive/customers/:customerId/erase': ok(ArchiveErasure),
  'POST /v1/canned-replies': { ...created(CannedReply), ...taking(CannedReplyInput) },
  'PUT /v1/canned-replies/:replyId': { ...ok(CannedReply), ...taking(CannedReplyInput) },
  'DELETE /v1/canned-replies/:replyId': noContent,
  'GET /v1/policies/rate-limits': ok(RateLimitPolicy),
  'PUT /v1/policies/rate-limits': { ...ok(RateLimitPolicy), ...taking(RateLimitPolicy) },
  'POST /v1/factors/sms/verify': { ...noContent, ...taking(SmsCodeCheck) },
  'POST /v1/factors/totp/verify': { ...noContent, ...taking(TotpCode) },
  'GET /v1/policies/step-up': ok(StepUpPolicy),
  'PUT /v1/policies/step-up': { ...ok(StepUpPolicy), ...taking(StepUpPolicy) },
  'POST /v1/consents/:consentId/sms-confirmation': accepted(SmsConfirmationSent),
  'GET /v1/policies/retention': ok(DeviceRetention),
  'PUT /v1/policies/retention': { ...ok(DeviceRetention), ...taking(DeviceRetention) },
  'PUT /v1/conversations/:conversationId/retention': { ...ok(DeviceRetention), ...taking(DeviceRetention) },
  'GET /v1/policies/integrity': ok(IntegrityPolicy),
  'PUT /v1/policies/integrity': { ...ok(IntegrityPolicy), ...taking(IntegrityPolicy) },
  'GET /.well-known/strongroom-pins': ok(SignedPinSet),
  'PUT /v1/secrets/:name': { ...ok(RuntimeSecretVersion), ...taking(RuntimeSecretValue) },
  'PUT /v1/apps/:appId': { ...noContent, ...taking(AppRegistration) },
  'POST /v1/apps/:appId/versions/:appVersion/deactivate': { ...noContent, ...taking(AppVersionDeactivation) },
  'POST /v1/apps/:appId/version-codes/:versionCode/deactivate': { ...noContent, ...taking(AppVersionDeactivation) },
  'PUT /v1/channels/:connector': { ...ok(ChannelSettings), ...taking(ChannelConfig) },
  'GET /v1/channels': ok(ChannelSettingsList),
  'POST /v1/conversations/:conversationId/public-channel/customer': { ...noContent, ...taking(PublicChannelCustomer) },
  'GET /v1/policies/dlp': ok(DlpPolicy),
  'PUT /v1/policies/dlp': { ...ok(DlpPolicy), ...taking(DlpPolicy) },
  'POST /v1/dlp/scan': { ...ok(DlpScanResult), ...taking(DlpScanRequest) },
  'GET /v1/policies/links': ok(LinkPolicy),
  'PUT /v1/policies/links': { ...ok(LinkPolicy), ...taking(LinkPolicy) },
  'GET /v1/channels/whatsapp/templates': ok(WhatsAppTemplates),
  'PUT /v1/channels/whatsapp/templates': { ...ok(WhatsAppTemplates), ...taking(WhatsAppTemplates) },
  'POST /v1/devices/wipe-confirmation': ok(WipeConfirmed),
  'POST /v1/conversations/:conversationId/e2e/archive-removal-exemptions': {
    ...created(ArchiveRemovalExemption),
    ...taking(ArchiveRemovalRequest),
  },
  'POST /v1/customers/:customerId/export': ok(DataSubjectExport),
} as const satisfies Record<string, WireEntry>

export type WireRoute = keyof typeof wireContract

/** The schemas of a route's successful answers. */
type AnswerSchema<R extends WireRoute> = (typeof wireContract)[R][Exclude<
  keyof (typeof wireContract)[R],
  'body' | 'query'
>]

/**
 * What a route answers, as the SDK types it: the `Static` type of its contract schema (of either, where it answers
 * with two statuses). A client method calls its route with `call`, whose answer has this type, so a method whose
 * declared result differs from its route's schema does not compile.
 */
export type WireAnswer<R extends WireRoute> = R extends WireRoute ? Static<Extract<AnswerSchema<R>, TSchema>> : never

/**
 * The body a route takes, as the SDK types it: the `Static` type of its contract's `body` schema, or `never` for a
 * route that takes none. `call` accepts only this, so a method that sends a body the server's schema refuses does not
 * compile.
 */
export type WireBody<R extends WireRoute> = (typeof wireContract)[R] extends { body: infer S extends TSchema }
  ? Static<S>
  : never

/**
 * The query a route reads, as the SDK types it: the `Static` type of its contract's `query` schema, or `never` for a
 * route that reads none. `call` accepts only this and writes it as the query string (numbers in decimal, undefined
 * values left out), so that a method sending a parameter the server's schema refuses does not compile.
 */
export type WireQuery<R extends WireRoute> = (typeof wireContract)[R] extends { query: infer S extends TSchema }
  ? Static<S>
  : never
