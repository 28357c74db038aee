import type { ColumnType, Generated } from 'kysely'

/** Timestamps are written as Date and read back as Date by both drivers. */
type Timestamp = ColumnType<Date, Date | string, Date | string>
/** bigint columns come back as strings from pg; we convert at the edge of each capability. */
type BigIntColumn = ColumnType<string | number, number | string, number | string>

export interface TenantsTable {
  id: string
  name: string
  created_at: Timestamp
}

export interface TenantKeysTable {
  tenant_id: string
  purpose: 'data' | 'index'
  version: number
  kek_id: string
  wrapped_key: Uint8Array
  created_at: Timestamp
  /** When the key was retired (and its wrapped form erased); null while it may open data. */
  retired_at: Timestamp | null
}

export interface StaffTable {
  tenant_id: string
  id: string
  name: string
  role: 'agent' | 'supervisor' | 'compliance' | 'admin'
  created_at: Timestamp
  deactivated_at: Timestamp | null
  external_id: string | null
  display_name: string | null
  updated_at: Timestamp | null
  deleted_at: Timestamp | null
  /** Since when the member holds no role (their groups give none): no token of theirs works; null while they hold one. */
  roleless_at: Timestamp | null
}

/** A group the bank's identity provider keeps over SCIM; its members' roles follow it through the tenant's mapping. */
export interface ScimGroupsTable {
  tenant_id: string
  id: string
  display_name: string
  external_id: string | null
  created_at: Timestamp
  updated_at: Timestamp
}

export interface ScimGroupMembersTable {
  tenant_id: string
  group_id: string
  staff_id: string
}

export interface StaffTokensTable {
  tenant_id: string
  id: string
  staff_id: string
  token_hash: Uint8Array
  scopes: string
  expires_at: Timestamp
  revoked_at: Timestamp | null
  created_at: Timestamp
  /** The OpenID Connect sign-in the token continues (refreshable until the session's end), if any. */
  sign_in_id: string | null
  /** When the token renewed its sign-in's session: it may do that once (a second time ends the session). */
  renewed_at: Timestamp | null
}

export interface StaffOidcProvidersTable {
  tenant_id: string
  issuer: string
  client_id: string
  auth_method: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt'
  /** Sealed by the keyring: the client secret, or the private JWK for private_key_jwt. */
  credential: Uint8Array
  subject_claim: string
  role_claim: string
  scopes: string
  session_seconds: number
  created_at: Timestamp
  updated_at: Timestamp
}

export interface StaffSignInsTable {
  id: string
  tenant_id: string
  state_hash: Uint8Array
  nonce: string
  /** Sealed by the keyring. */
  code_verifier: Uint8Array
  redirect_uri: string
  expires_at: Timestamp
  callback_at: Timestamp | null
  staff_id: string | null
  handoff_hash: Uint8Array | null
  handed_off_at: Timestamp | null
  session_expires_at: Timestamp | null
  /** Sealed by the keyring: the hint for RP-initiated logout. */
  id_token: Uint8Array | null
  ended_at: Timestamp | null
  created_at: Timestamp
  /** The ID token's `sub` and `sid`: what the provider's back-channel logout token names. */
  idp_subject: string | null
  idp_session: string | null
}

/** The ids of the back-channel logout tokens used, kept until they expire: each is used once. */
export interface StaffLogoutTokenJtisTable {
  tenant_id: string
  jti: string
  expires_at: Timestamp
}

export interface StaffInvitationsTable {
  tenant_id: string
  id: string
  staff_id: string
  secret_hash: Uint8Array
  expires_at: Timestamp
  used_at: Timestamp | null
  created_at: Timestamp
}

export interface CustomersTable {
  tenant_id: string
  id: string
  external_ref_index: Uint8Array
  external_ref: Uint8Array
  display_name: Uint8Array
  phone_number: Uint8Array | null
  phone_number_index: Uint8Array | null
  created_at: Timestamp
}

export interface EnrolmentCodesTable {
  tenant_id: string
  id: string
  customer_id: string
  code_hash: Uint8Array
  created_by: string
  expires_at: Timestamp
  used_at: Timestamp | null
  device_id: string | null
  created_at: Timestamp
}

export interface DevicesTable {
  tenant_id: string
  id: string
  customer_id: string
  jkt: string
  public_jwk: string
  label: string
  status: 'active' | 'suspended' | 'revoked'
  created_at: Timestamp
  /** When the revoked device confirmed that it erased its local store. */
  wiped_at: Timestamp | null
  /** An app (can attest) or a browser (enrolled by the pivot step-up; cannot attest). */
  kind: Generated<'app' | 'web'>
}

export interface AccessTokensTable {
  token_hash: Uint8Array
  tenant_id: string
  device_id: string
  jkt: string
  expires_at: Timestamp
  created_at: Timestamp
}

export interface DpopProofsTable {
  jkt: string
  jti: string
  expires_at: Timestamp
}

export interface ConversationsTable {
  tenant_id: string
  id: string
  /** Null for a public-channel conversation whose sender is not known yet. */
  customer_id: string | null
  assigned_staff_id: string | null
  last_seq: BigIntColumn
  /** When the last message was appended; null before the first. */
  last_message_at: Timestamp | null
  created_at: Timestamp
  /** Overrides the tenant's retention for this conversation's messages kept for devices. */
  device_message_days: number | null
  /** Only MLS messages of its group, and nothing before the group exists. */
  encryption_required: Generated<boolean>
  /** Open, pending (waiting on the customer) or resolved; a message from the customer reopens it. */
  status: Generated<ConversationStatus>
  status_changed_at: Timestamp | null
}

export type ConversationStatus = 'open' | 'pending' | 'resolved'

export interface ConversationNotesTable {
  tenant_id: string
  id: string
  conversation_id: string
  author_staff_id: string
  /** Sealed with the tenant data key. */
  body: Uint8Array
  created_at: Timestamp
}

export interface CannedRepliesTable {
  tenant_id: string
  id: string
  /** What an agent types after "/" in the composer. */
  shortcut: string
  title: string
  body: string
  updated_by: string
  created_at: Timestamp
  updated_at: Timestamp
}

/** A word of a customer's name, as a keyed blind index. */
export interface CustomerNameTermsTable {
  tenant_id: string
  term: Uint8Array
  customer_id: string
}

/** A word of a public-channel message, as a keyed blind index. */
export interface ChannelMessageTermsTable {
  tenant_id: string
  term: Uint8Array
  conversation_id: string
  seq: BigIntColumn
}

export interface MessageRetentionPoliciesTable {
  tenant_id: string
  device_message_days: number
  updated_at: Timestamp
  updated_by: string
}

export interface ConversationMembersTable {
  tenant_id: string
  conversation_id: string
  member_kind: 'device' | 'staff'
  member_id: string
  delivered_seq: BigIntColumn
  read_seq: BigIntColumn
  joined_at: Timestamp
}

export interface MessagesTable {
  tenant_id: string
  conversation_id: string
  seq: BigIntColumn
  id: string
  sender_kind: 'device' | 'staff' | 'archive' | 'channel' | 'system'
  sender_id: string
  client_message_id: string
  content_type: string
  ciphertext: Uint8Array
  created_at: Timestamp
  expires_at: Timestamp | null
}

/** An encrypted attachment of a secure conversation: ciphertext only, its key travels in an MLS message. */
export interface AttachmentsTable {
  tenant_id: string
  id: string
  conversation_id: string
  uploader_kind: 'device' | 'staff'
  uploader_id: string
  /** SHA-256 of the ciphertext, which the receiver checks before decrypting. */
  sha256: Uint8Array
  ciphertext: Uint8Array
  created_at: Timestamp
  /** After this, members can no longer download it (the message carrying its key disappears then too). */
  expires_at: Timestamp | null
  /** Deleted once expired and past this: the end of the bank's retention of secure messages. */
  retain_until: Timestamp
}

export interface AuditEventsTable {
  id: Generated<number>
  tenant_id: string
  seq: BigIntColumn | null
  occurred_at: Timestamp
  actor_kind: string
  actor_id: string | null
  action: string
  target_kind: string | null
  target_id: string | null
  outcome: 'success' | 'failure' | 'denied'
  reason: string | null
  details: string
  prev_hash: Uint8Array | null
  hash: Uint8Array | null
}

export interface AuditChainsTable {
  tenant_id: string
  last_seq: BigIntColumn
  last_hash: Uint8Array
  frontier: Uint8Array
  checkpoint_seq: BigIntColumn
  checkpoint_at: Timestamp
}

export interface AuditCheckpointsTable {
  tenant_id: string
  tree_size: BigIntColumn
  root_hash: Uint8Array
  signed_at: Timestamp
  key_id: string
  signature: Uint8Array
  /** When the configured witness took it; null until then. */
  witnessed_at: Generated<Date | null>
  /** The Merkle frontier at this size: the next checkpoint's consistency proof starts from it (null before 032). */
  frontier: Uint8Array | null
}

export interface SigningKeysTable {
  id: string
  purpose: string
  /** The bank whose evidence the key signs; null for the deployment's own keys. */
  tenant_id: string | null
  public_key: Uint8Array
  kek_id: string
  wrapped_private_key: Uint8Array
  created_at: Generated<Timestamp>
}

export interface ConsentsTable {
  tenant_id: string
  id: string
  customer_id: string
  conversation_id: string | null
  amount_minor: BigIntColumn
  currency: string
  details: Uint8Array
  challenge: string
  status: 'pending' | 'approved' | 'declined'
  requested_by_kind: string
  requested_by_id: string | null
  created_at: Timestamp
  expires_at: Timestamp
  decided_at: Timestamp | null
  device_id: string | null
  factor: string | null
  decline_reason: string | null
  receipt: Uint8Array | null
  /** The customer declined it as not theirs ("This wasn't me"). */
  fraud_reported_at: Timestamp | null
  /** With a fraud report that asked for it: the payee account's blind index, refused in this customer's requests. */
  blocked_payee_index: Uint8Array | null
  /** When a supervisor or administrator lifted the payee block (the index stays as evidence), and who. */
  payee_block_lifted_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
  payee_block_lifted_by: ColumnType<string | null, string | null | undefined, string | null>
  /** When the housekeeping sweep told the streams that it expired unanswered (once, by one node). */
  expiry_announced_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
}

export interface ApiClientsTable {
  tenant_id: string
  id: string
  name: string
  jwks: string
  scopes: string
  created_at: Generated<Timestamp>
  revoked_at: Timestamp | null
  webhook_url: string | null
}

export interface WebhookDeliveriesTable {
  id: string
  tenant_id: string
  client_id: string
  url: string
  event_type: string
  body: Uint8Array
  status: 'pending' | 'delivered' | 'failed'
  attempts: Generated<number>
  next_attempt_at: Timestamp
  last_error: string | null
  created_at: Timestamp
  delivered_at: Timestamp | null
}

export interface ClientAssertionJtisTable {
  client_id: string
  jti: string
  expires_at: Timestamp
}

export interface ClientTokensTable {
  token_hash: Uint8Array
  tenant_id: string
  client_id: string
  scopes: string
  expires_at: Timestamp
}

export interface SmsOtpCodesTable {
  tenant_id: string
  id: string
  customer_id: string
  /** HMAC of the code with the tenant's index key, bound to this row's id. */
  code_hash: Uint8Array
  failed_attempts: Generated<number>
  created_at: Timestamp
  expires_at: Timestamp
  used_at: Timestamp | null
}

export interface SmsConfirmationsTable {
  tenant_id: string
  id: string
  consent_id: string
  customer_id: string
  /** Blind index of the number the request was sent to: a reply must come from it. */
  phone_index: Uint8Array
  code_hash: Uint8Array
  failed_attempts: Generated<number>
  created_at: Timestamp
  expires_at: Timestamp
  used_at: Timestamp | null
  outcome: 'approved' | 'declined' | null
}

export interface TotpFactorsTable {
  tenant_id: string
  id: string
  customer_id: string
  secret: Uint8Array
  status: 'pending' | 'active'
  last_used_step: BigIntColumn
  failed_attempts: Generated<number>
  locked_until: Timestamp | null
  created_at: Timestamp
  /** When the factor was confirmed; null while pending. */
  activated_at: Timestamp | null
}

export interface IntegrityChallengesTable {
  challenge_hash: Uint8Array
  tenant_id: string
  device_id: string
  expires_at: Timestamp
  used_at: Timestamp | null
}

/** A challenge for the key an app generates before it enrols, bound to the device id its enrolment code reserved. */
export interface EnrolmentChallengesTable {
  challenge_hash: Uint8Array
  tenant_id: string
  device_id: string
  expires_at: Timestamp
  used_at: Timestamp | null
}

export interface TenantPoliciesTable {
  tenant_id: string
  name: string
  document: string
  updated_at: Timestamp
  updated_by: string
}

export interface DeactivatedAppVersionsTable {
  tenant_id: string
  app_id: string
  app_version: string
  reason: string | null
  deactivated_at: Timestamp
}

export interface E2eGroupsTable {
  tenant_id: string
  conversation_id: string
  group_id: Uint8Array
  cipher_suite: string
  epoch: BigIntColumn
  created_at: Timestamp
  updated_at: Timestamp
  /** The signed GroupInfo (MLS message) for the current epoch, published with the commit that started it. */
  group_info: Uint8Array | null
}

export interface E2eKeyPackagesTable {
  tenant_id: string
  id: string
  owner_kind: 'device' | 'staff' | 'archive'
  owner_id: string
  /** Which of a staff member's browsers made it (named after its signature key); '' for a device or the archive. */
  owner_instance: Generated<string>
  ref: string
  cipher_suite: string
  key_package: Uint8Array
  last_resort: boolean
  created_at: Timestamp
  /** The end of the key package's own lifetime (its leaf node's `not_after`). */
  expires_at: Timestamp
  claimed_at: Timestamp | null
  claimed_for: string | null
}

export interface E2eWelcomesTable {
  tenant_id: string
  id: string
  conversation_id: string
  recipient_kind: 'device' | 'staff' | 'archive'
  recipient_id: string
  recipient_instance: Generated<string>
  key_package_ref: string
  epoch: BigIntColumn
  commit_seq: BigIntColumn
  welcome: Uint8Array
  created_at: Timestamp
}

/** A member that lost its group state and could not re-join by itself, waiting for the archive to re-add it. */
export interface E2eReaddRequestsTable {
  tenant_id: string
  conversation_id: string
  member_kind: 'device' | 'staff'
  member_id: string
  member_instance: Generated<string>
  requested_at: Timestamp
}

/** Where the archive member of each partition (`i/n`) last said it runs. */
export interface ArchiveMemberPresenceTable {
  partition: string
  node: string
  seen_at: Timestamp
}

export interface ArchiveMemberStateTable {
  tenant_id: string
  name: string
  sealed: Uint8Array
}

/** A compliance officer's leave for one commit to take the archive out of one secure conversation. */
export interface ArchiveRemovalExemptionsTable {
  id: string
  tenant_id: string
  conversation_id: string
  granted_by: string
  reason: string
  created_at: Timestamp
  expires_at: Timestamp
  used_at: Timestamp | null
}

export interface IntegrityAppsTable {
  tenant_id: string
  app_id: string
  apple_team_id: string | null
  apple_bundle_id: string | null
  android_package: string | null
  /** JSON array of lowercase hex SHA-256 digests. */
  android_signing_digests: string | null
  /** The Play Integrity decryption key (AES-256), sealed with the tenant's data key. */
  play_decryption_key: Uint8Array | null
  /** The Play Integrity verification key: base64 DER SubjectPublicKeyInfo (EC P-256), as the Play Console gives it. */
  play_verification_key: string | null
  updated_at: Timestamp
}

export interface DeviceAttestationsTable {
  tenant_id: string
  device_id: string
  format: 'apple-appattest' | 'android-key'
  app_id: string
  key_id: string
  public_jwk: string
  counter: BigIntColumn
  security_level: string
  attested_at: Timestamp
  asserted_at: Timestamp | null
  /** Android: the versionCode the Keystore attested when it generated the key. */
  version_code: number | null
  /** App Attest: the app version the attestation covered; assertions must claim the same. */
  bound_app_version: string | null
}

export interface DeviceIntegrityVerdictsTable {
  tenant_id: string
  device_id: string
  decision: 'allow' | 'limited' | 'deny'
  reason: string
  /** The risk signals present, space-separated. */
  flags: string
  format: string
  security_level: string
  app_version: string
  decided_at: Timestamp
}

export interface RuntimeSecretsTable {
  tenant_id: string
  name: string
  version: number
  sealed_value: Uint8Array
  updated_at: Timestamp
}

export interface DeviceSecretKeysTable {
  tenant_id: string
  device_id: string
  public_jwk: string
  created_at: Timestamp
}

export interface PinSetsTable {
  version: number
  document: string
  created_at: Timestamp
}

export interface IntegrityPoliciesTable {
  tenant_id: string
  document: string
  updated_at: Timestamp
}

export interface ChannelConfigsTable {
  tenant_id: string
  connector: 'twilio' | 'whatsapp' | 'messenger' | 'smpp' | 'rbm'
  receiving_address: string
  settings: string
  secrets: Uint8Array
  verify_token_hash: Uint8Array | null
  created_at: Timestamp
  updated_at: Timestamp
}

export interface ChannelIdentitiesTable {
  tenant_id: string
  id: string
  connector: 'twilio' | 'whatsapp' | 'messenger' | 'smpp' | 'rbm'
  address_index: Uint8Array
  address: Uint8Array
  customer_id: string | null
  conversation_id: string
  secure_conversation_id: string | null
  imported_through_seq: ColumnType<string | number, number | string | undefined, number | string>
  last_inbound_at: Timestamp | null
  /** JSON array of the smishing and spoofing flags its messages raised (risk.ts). */
  risk_flags: ColumnType<string, string | undefined, string>
  created_at: Timestamp
}

export interface ChannelMessagesTable {
  tenant_id: string
  id: string
  identity_id: string
  conversation_id: string
  connector: 'twilio' | 'whatsapp' | 'messenger' | 'smpp' | 'rbm'
  direction: 'inbound' | 'outbound'
  client_message_id: string
  message_id: string | null
  seq: BigIntColumn | null
  provider_message_id: string | null
  status: string
  error_code: string | null
  created_at: Timestamp
  updated_at: Timestamp
}

export interface SuspiciousReportsTable {
  tenant_id: string
  id: string
  source: 'sms' | 'secure-chat'
  conversation_id: string | null
  customer_id: string | null
  /** The reported text and its links' hosts, sealed with the tenant data key. */
  sealed: Uint8Array
  /** JSON array of risk flags. */
  flags: string
  status: 'open' | 'resolved'
  outcome: 'smishing' | 'genuine' | 'unclear' | null
  resolved_by: string | null
  resolved_at: Timestamp | null
  created_at: Timestamp
}

export interface SmppMessagePartsTable {
  tenant_id: string
  part_id: string
  message_id: string
  status: string
  error_code: string | null
  created_at: Timestamp
}

export interface PivotLinksTable {
  tenant_id: string
  id: string
  token_hash: Uint8Array
  conversation_id: string
  identity_id: string
  customer_id: string
  created_by_kind: 'staff' | 'system'
  created_by_id: string | null
  expires_at: Timestamp
  opened_at: Timestamp | null
  completed_at: Timestamp | null
  device_id: string | null
  secure_conversation_id: string | null
  /** How the link was completed: by an enrolled device, or by a new one that stepped up with a factor. */
  completed_via: 'device' | 'passkey' | 'sms-otp' | null
  /** When a newer link for the same customer replaced it (one live link per customer), or null. */
  revoked_at: Timestamp | null
  created_at: Timestamp
  /** When the housekeeping sweep told the streams that it expired unused (once, by one node). */
  expiry_announced_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
}

export interface PasskeyCredentialsTable {
  tenant_id: string
  id: string
  /** base64url, as the authenticator made it */
  credential_id: string
  owner_kind: 'customer' | 'staff'
  owner_id: string
  /** COSE_Key */
  public_key: Uint8Array
  sign_count: BigIntColumn
  /** space-separated */
  transports: string
  aaguid: string
  backup_eligible: boolean
  backed_up: boolean
  created_at: Timestamp
  last_used_at: Timestamp | null
}

export interface PasskeyChallengesTable {
  challenge_hash: Uint8Array
  tenant_id: string
  purpose: 'register' | 'authenticate' | 'sign-in' | 'pivot'
  owner_kind: 'customer' | 'staff' | null
  owner_id: string | null
  expires_at: Timestamp
  used_at: Timestamp | null
}

export type ArchiveRecordClass =
  | 'secure-message'
  | 'public-message'
  | 'membership-change'
  | 'consent'
  | 'pivot'
  | 'device-event'
  | 'redaction'
  | 'deletion'
  | 'erasure'

export interface ArchiveRecordsTable {
  id: Generated<number>
  tenant_id: string
  seq: BigIntColumn | null
  record_class: ArchiveRecordClass
  source_ref: string
  conversation_id: string | null
  conversation_seq: BigIntColumn | null
  customer_id: string | null
  occurred_at: Timestamp
  key_id: string | null
  sealed: Uint8Array | null
  content_hash: Uint8Array | null
  content_digest: Uint8Array | null
  details: string
  prev_hash: Uint8Array | null
  hash: Uint8Array | null
  deleted_at: Timestamp | null
}

export interface ArchiveKeysTable {
  id: string
  tenant_id: string
  scope: string
  kek_id: string | null
  wrapped_key: Uint8Array | null
  created_at: Timestamp
  destroyed_at: Timestamp | null
}

export interface ArchiveRetentionTable {
  tenant_id: string
  record_class: string
  retention_days: number
  updated_at: Timestamp
  updated_by: string
}

export interface ArchiveHoldsTable {
  id: string
  tenant_id: string
  scope_kind: 'customer' | 'conversation'
  scope_id: string
  reason: string
  placed_by: string
  placed_at: Timestamp
  released_by: string | null
  released_at: Timestamp | null
}

export interface RateLimitCountersTable {
  key: string
  window_start: BigIntColumn
  hits: number
  expires_at: Timestamp
}

export interface IdempotencyKeysTable {
  tenant_id: string
  /** `staff:<id>`, `device:<id>` or `client:<id>`: a key is its sender's own. */
  principal: string
  key: string
  fingerprint: Uint8Array
  status: number
  response: Uint8Array
  expires_at: Timestamp
}

/** Where `strongroom search backfill` stands, per kind of text (migration 054). */
export interface SearchBackfillProgressTable {
  kind: 'customer-names' | 'public-texts'
  /** The last row indexed, in (tenant, id) order. */
  after_tenant_id: string
  after_id: string
  completed_at: Timestamp | null
  updated_at: Timestamp
}

/** A node's console connections of one staff member (presence), refreshed while they are open. */
export interface StaffConnectionsTable {
  tenant_id: string
  staff_id: string
  node_id: string
  seen_at: Timestamp
}

/** A staff member who said they are away, since when. */
export interface StaffAwayTable {
  tenant_id: string
  staff_id: string
  since: Timestamp
}

export interface Database {
  tenants: TenantsTable
  tenant_keys: TenantKeysTable
  staff: StaffTable
  staff_tokens: StaffTokensTable
  staff_oidc_providers: StaffOidcProvidersTable
  staff_sign_ins: StaffSignInsTable
  staff_logout_token_jtis: StaffLogoutTokenJtisTable
  staff_invitations: StaffInvitationsTable
  scim_groups: ScimGroupsTable
  scim_group_members: ScimGroupMembersTable
  customers: CustomersTable
  enrolment_codes: EnrolmentCodesTable
  devices: DevicesTable
  access_tokens: AccessTokensTable
  dpop_proofs: DpopProofsTable
  conversations: ConversationsTable
  conversation_members: ConversationMembersTable
  messages: MessagesTable
  attachments: AttachmentsTable
  audit_events: AuditEventsTable
  audit_chains: AuditChainsTable
  audit_checkpoints: AuditCheckpointsTable
  signing_keys: SigningKeysTable
  consents: ConsentsTable
  api_clients: ApiClientsTable
  client_assertion_jtis: ClientAssertionJtisTable
  client_tokens: ClientTokensTable
  webhook_deliveries: WebhookDeliveriesTable
  totp_factors: TotpFactorsTable
  sms_otp_codes: SmsOtpCodesTable
  sms_confirmations: SmsConfirmationsTable
  integrity_challenges: IntegrityChallengesTable
  enrolment_challenges: EnrolmentChallengesTable
  tenant_policies: TenantPoliciesTable
  deactivated_app_versions: DeactivatedAppVersionsTable
  e2e_groups: E2eGroupsTable
  e2e_key_packages: E2eKeyPackagesTable
  e2e_welcomes: E2eWelcomesTable
  e2e_readd_requests: E2eReaddRequestsTable
  archive_member_state: ArchiveMemberStateTable
  archive_member_presence: ArchiveMemberPresenceTable
  archive_removal_exemptions: ArchiveRemovalExemptionsTable
  integrity_apps: IntegrityAppsTable
  device_attestations: DeviceAttestationsTable
  device_integrity_verdicts: DeviceIntegrityVerdictsTable
  runtime_secrets: RuntimeSecretsTable
  device_secret_keys: DeviceSecretKeysTable
  pin_sets: PinSetsTable
  integrity_policies: IntegrityPoliciesTable
  channel_configs: ChannelConfigsTable
  channel_identities: ChannelIdentitiesTable
  suspicious_reports: SuspiciousReportsTable
  channel_messages: ChannelMessagesTable
  pivot_links: PivotLinksTable
  smpp_message_parts: SmppMessagePartsTable
  passkey_credentials: PasskeyCredentialsTable
  passkey_challenges: PasskeyChallengesTable
  archive_records: ArchiveRecordsTable
  archive_chains: AuditChainsTable
  archive_checkpoints: AuditCheckpointsTable
  archive_keys: ArchiveKeysTable
  archive_retention: ArchiveRetentionTable
  archive_holds: ArchiveHoldsTable
  message_retention_policies: MessageRetentionPoliciesTable
  rate_limit_counters: RateLimitCountersTable
  idempotency_keys: IdempotencyKeysTable
  conversation_notes: ConversationNotesTable
  canned_replies: CannedRepliesTable
  customer_name_terms: CustomerNameTermsTable
  channel_message_terms: ChannelMessageTermsTable
  search_backfill_progress: SearchBackfillProgressTable
  staff_connections: StaffConnectionsTable
  staff_away: StaffAwayTable
}

export type { Generated }
