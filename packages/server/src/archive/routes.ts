import { PassThrough } from 'node:stream'
import { Type } from '@sinclair/typebox'
import {
  ARCHIVE_SEARCH_SCAN_LIMIT,
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
  SECURE_HISTORY_PAGE,
  SealedHistoryPage,
  SecureHistoryRequest,
} from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import { IdempotencyKeyHeaders, idempotent } from '../idempotency/idempotency.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import type { TenantSigningKeys } from '../platform/keyring/signing-keys.ts'
import { archiveKeysOf } from './append.ts'
import { eraseCustomer } from './erasure.ts'
import { exportCase } from './export.ts'
import { listLegalHolds, placeLegalHold, releaseLegalHold } from './holds.ts'
import { archiveRecordView } from './open-records.ts'
import { retentionPolicy, setRetentionPolicy } from './retention.ts'
import { searchArchive } from './search.ts'
import { serveSecureHistory } from './secure-history.ts'
import { verifyArchiveNow } from './verify.ts'

/** How many record lines an export's bundle will have, sent before its body. */
export const EXPORT_RECORDS_HEADER = 'strongroom-export-records'

/** Writes a line, waiting while the reader is behind; a reader that went away ends the export. */
async function writeOrWait(stream: PassThrough, line: string): Promise<void> {
  if (stream.destroyed) throw new Error('the reader went away')
  if (stream.write(line)) return
  await new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done)
      stream.off('close', done)
      resolve()
    }
    stream.once('drain', done)
    stream.once('close', done)
  })
}

const date = (value: string | undefined) => (value === undefined ? undefined : new Date(value))

/** The compliance archive for compliance staff: search, export, retention, legal holds and erasure. */
export async function archiveRoutes(
  app: App,
  ctx: ServerContext,
  options: { signers: TenantSigningKeys },
): Promise<void> {
  await recordRoutes(app, ctx)
  await exportRoutes(app, ctx, options)
  await verificationAndRetentionRoutes(app, ctx)
  await holdRoutes(app, ctx)
  await erasureRoutes(app, ctx)
  await secureHistoryRoutes(app, ctx)
}

/** Earlier secure messages for the conversation's staff, sealed by the archive to the asking device. */
async function secureHistoryRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/secure-history',
    {
      config: { access: allow.staff('conversations:read') },
      schema: {
        summary:
          'Earlier secure messages of a conversation, each sealed by the archive to the key the caller’s device made ' +
          'for this request (HPKE); for staff members of the conversation; audited',
        tags: ['archive'],
        params: Type.Object({ conversationId: idOf('cnv') }),
        body: SecureHistoryRequest,
        response: {
          200: SealedHistoryPage,
          ...problemResponses(400, 401, 403, 404, 503),
        },
      },
    },
    async (request) =>
      serveSecureHistory(ctx, principalOf(request), request.params.conversationId, {
        recipientKey: Buffer.from(request.body.recipientKey, 'base64'),
        after: request.body.after ?? 0,
        limit: request.body.limit ?? SECURE_HISTORY_PAGE,
      }),
  )
}

/** Searching the archive's records. */
async function recordRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/archive/records',
    {
      config: { access: allow.staff('archive:read') },
      schema: {
        summary: 'Search the archive by customer, conversation, time and text (decrypted for the caller; audited)',
        description: `Text search decrypts the candidates the other filters leave, at most ${ARCHIVE_SEARCH_SCAN_LIMIT} per request; follow \`next\` for more.`,
        tags: ['archive'],
        querystring: ArchiveSearchQuery,
        response: {
          200: ArchiveSearchPage,
          ...problemResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { from, to, ...rest } = request.query
      const result = await searchArchive(
        ctx,
        principal.tenantId,
        { ...rest, from: date(from), to: date(to) },
        actorOf(principal),
      )
      return { records: result.records.map(archiveRecordView), next: result.next, scanned: result.scanned }
    },
  )
}

/** Exporting records as a signed bundle. */
async function exportRoutes(app: App, ctx: ServerContext, options: { signers: TenantSigningKeys }): Promise<void> {
  app.post(
    '/v1/archive/exports',
    {
      config: { access: allow.staff('archive:read') },
      schema: {
        summary: 'Export a case as a signed bundle (JSON lines, the last one the signed manifest; audited)',
        description: `Streamed as it is built; the \`${EXPORT_RECORDS_HEADER}\` header gives the number of record lines to come.`,
        tags: ['archive'],
        body: ArchiveCase,
        response: { 200: ArchiveBundle, ...problemResponses(400, 401, 403, 503) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { from, to, ...scope } = request.body
      const bundle = new PassThrough()
      let counted: (total: number) => void = () => {}
      const total = new Promise<number>((resolve) => {
        counted = resolve
      })
      let streaming = false
      const built = exportCase(
        ctx,
        await options.signers.for(principal.tenantId),
        principal.tenantId,
        { ...scope, from: date(from), to: date(to) },
        actorOf(principal),
        (line) => writeOrWait(bundle, line),
        (_done, records) => counted(records),
      )
      built.then(
        () => bundle.end(),
        (error: Error) => {
          // Once lines have gone out the status is sent: a bundle cut short has no manifest, and fails to verify.
          // Before that, the route answers the error itself and the unused stream is dropped quietly.
          if (streaming) bundle.destroy(error)
          else bundle.destroy()
        },
      )
      // The body streams as the bundle is built, after the count; what fails before it is answered as a problem.
      const records = await Promise.race([total, built.then(() => total)])
      streaming = true
      return reply
        .header(EXPORT_RECORDS_HEADER, String(records))
        .type('application/x-ndjson')
        .send(bundle as never) // a stream: the schema describes its text
    },
  )
}

/** Verifying the chains, and the archive's retention. */
async function verificationAndRetentionRoutes(app: App, ctx: ServerContext): Promise<void> {
  // One walk of a tenant's chain at a time, shared by whoever asks while it runs: requests cannot pile up walks.
  const walks = new Map<string, ReturnType<typeof verifyArchiveNow>>()
  const verifyOnce = (tenantId: string) => {
    const walking = walks.get(tenantId)
    if (walking) return walking
    const walk = verifyArchiveNow(ctx.db, tenantId).finally(() => walks.delete(tenantId))
    walks.set(tenantId, walk)
    return walk
  }

  app.get(
    '/v1/archive/verification',
    {
      config: { access: allow.staff('archive:read') },
      schema: {
        summary:
          'Verify the tenant’s archive chain now, as `strongroom archive verify` does: links, hashes, content, signed checkpoints (audited)',
        description:
          'Walks the whole chain: callers arriving while a walk runs share its result. Names the first failing record.',
        tags: ['archive'],
        response: { 200: ArchiveVerification, ...problemResponses(401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const verification = await verifyOnce(principal.tenantId)
      await recordAudit(ctx.db, {
        tenantId: principal.tenantId,
        actor: actorOf(principal),
        action: 'archive.verify',
        outcome: verification.ok ? 'success' : 'failure',
        reason: verification.failure?.reason,
        details: { records: verification.records, failedAt: verification.failure?.seq ?? null },
      })
      const { tenantId: _tenant, ...shown } = verification
      return shown
    },
  )

  app.get(
    '/v1/archive/retention',
    {
      config: { access: allow.staff('archive:read') },
      schema: {
        summary: 'Retention per record class, in days',
        tags: ['archive'],
        response: { 200: ArchiveRetention, ...problemResponses(401, 403) },
      },
    },
    async (request) => retentionPolicy(ctx.db, principalOf(request).tenantId),
  )

  app.put(
    '/v1/archive/retention',
    {
      config: { access: allow.staff('archive:manage') },
      schema: {
        summary: 'Set retention for some record classes (audited)',
        tags: ['archive'],
        body: ArchiveRetentionChange,
        response: { 200: ArchiveRetention, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return setRetentionPolicy(ctx.db, principal.tenantId, request.body, actorOf(principal))
    },
  )
}

/** Legal holds: placing, listing and releasing them. */
async function holdRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/archive/holds',
    {
      config: { access: allow.staff('archive:read') },
      schema: {
        summary: 'Legal holds, newest first',
        tags: ['archive'],
        response: { 200: LegalHoldList, ...problemResponses(401, 403) },
      },
    },
    async (request) => ({ holds: await listLegalHolds(ctx.db, principalOf(request).tenantId) }),
  )

  app.post(
    '/v1/archive/holds',
    {
      config: { access: allow.staff('archive:manage') },
      schema: {
        summary: 'Place a legal hold on a customer or a conversation: their records stop expiring (audited)',
        tags: ['archive'],
        body: NewLegalHold,
        headers: IdempotencyKeyHeaders,
        response: { 201: LegalHold, ...problemResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      return idempotent(ctx, request, reply, 201, (scoped) =>
        placeLegalHold(scoped.db, principal.tenantId, request.body, actorOf(principal)),
      )
    },
  )

  app.post(
    '/v1/archive/holds/:holdId/release',
    {
      config: { access: allow.staff('archive:manage') },
      schema: {
        summary: 'Release a legal hold (audited)',
        tags: ['archive'],
        params: Type.Object({ holdId: idOf('hld') }),
        response: { 200: LegalHold, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return releaseLegalHold(ctx.db, principal.tenantId, request.params.holdId, actorOf(principal))
    },
  )
}

/** Erasing a customer by crypto-shredding. */
async function erasureRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/archive/customers/:customerId/erase',
    {
      config: { access: allow.staff('archive:manage') },
      schema: {
        summary: 'Erase a customer from the archive by destroying their archive key (after retention, not under hold)',
        tags: ['archive'],
        params: Type.Object({ customerId: idOf('cus') }),
        response: {
          200: ArchiveErasure,
          ...problemResponses(400, 401, 403, 404, 409, 503),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return eraseCustomer(
        ctx.db,
        archiveKeysOf(ctx),
        principal.tenantId,
        request.params.customerId,
        actorOf(principal),
      )
    },
  )
}
