import { Type } from '@sinclair/typebox'
import { principalOf } from '../access.ts'
import type { ServerContext } from '../platform/context.ts'
import type { App } from '../platform/http/fastify.ts'
import { idOf, oneOf, problemResponses } from '../platform/http/schemas.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { actorOf } from '../principal.ts'
import { archiveKeysOf } from './append.ts'
import { eraseCustomer } from './erasure.ts'
import { exportCase } from './export.ts'
import { listLegalHolds, placeLegalHold, releaseLegalHold } from './holds.ts'
import { archiveRecordView } from './open-records.ts'
import { retainedClasses, retentionPolicy, setRetentionPolicy } from './retention.ts'
import { SEARCH_SCAN_LIMIT, searchArchive } from './search.ts'

export const ArchiveRecordSchema = Type.Object({
  seq: Type.Union([Type.Integer(), Type.Null()], {
    description: 'Position in the tenant’s archive chain (null for the moment before it is linked)',
  }),
  recordClass: Type.String(),
  conversationId: Type.Union([Type.String(), Type.Null()]),
  conversationSeq: Type.Union([Type.Integer(), Type.Null()]),
  customerId: Type.Union([Type.String(), Type.Null()]),
  occurredAt: Type.String({ format: 'date-time' }),
  status: oneOf(['available', 'deleted', 'erased', 'none'] as const),
  content: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  hash: Type.Union([Type.String(), Type.Null()], {
    description: 'hex SHA-256 linking this record to the one before (null until linked)',
  }),
})

export const HoldSchema = Type.Object({
  id: Type.String(),
  scopeKind: oneOf(['customer', 'conversation'] as const),
  scopeId: Type.String(),
  reason: Type.String(),
  placedBy: Type.String(),
  placedAt: Type.String(),
  releasedBy: Type.Union([Type.String(), Type.Null()]),
  releasedAt: Type.Union([Type.String(), Type.Null()]),
})

export const RetentionSchema = Type.Object(
  Object.fromEntries(retainedClasses.map((c) => [c, Type.Integer({ minimum: 1, maximum: 36500 })])),
  { additionalProperties: false, description: 'Retention in days per record class' },
)

const CaseSchema = Type.Object(
  {
    conversationId: Type.Optional(idOf('cnv')),
    customerId: Type.Optional(idOf('cus')),
    from: Type.Optional(Type.String({ format: 'date-time' })),
    to: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
)

const date = (value: string | undefined) => (value === undefined ? undefined : new Date(value))

/** The compliance archive for compliance staff: search, export, retention, legal holds and erasure. */
export async function archiveRoutes(app: App, ctx: ServerContext, options: { signer: SigningKey }): Promise<void> {
  app.get(
    '/v1/archive/records',
    {
      schema: {
        summary: 'Search the archive by customer, conversation, time and text (decrypted for the caller; audited)',
        description: `Text search decrypts the candidates the other filters leave, at most ${SEARCH_SCAN_LIMIT} per request; follow \`next\` for more.`,
        tags: ['archive'],
        querystring: Type.Object(
          {
            customerId: Type.Optional(idOf('cus')),
            conversationId: Type.Optional(idOf('cnv')),
            from: Type.Optional(Type.String({ format: 'date-time' })),
            to: Type.Optional(Type.String({ format: 'date-time' })),
            text: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            after: Type.Optional(Type.Integer({ minimum: 0 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: SEARCH_SCAN_LIMIT })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            records: Type.Array(ArchiveRecordSchema),
            next: Type.Union([Type.Integer(), Type.Null()]),
            scanned: Type.Integer(),
          }),
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

  app.post(
    '/v1/archive/exports',
    {
      schema: {
        summary: 'Export a case as a signed bundle (JSON lines, the last one the signed manifest; audited)',
        tags: ['archive'],
        body: CaseSchema,
        response: { 200: Type.String(), ...problemResponses(400, 401, 403, 503) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const lines: string[] = []
      const { from, to, ...scope } = request.body
      await exportCase(
        ctx,
        options.signer,
        principal.tenantId,
        { ...scope, from: date(from), to: date(to) },
        actorOf(principal),
        (line) => void lines.push(line),
      )
      return reply.type('application/x-ndjson').send(lines.join(''))
    },
  )

  app.get(
    '/v1/archive/retention',
    {
      schema: {
        summary: 'Retention per record class, in days',
        tags: ['archive'],
        response: { 200: RetentionSchema, ...problemResponses(401, 403) },
      },
    },
    async (request) => retentionPolicy(ctx.db, principalOf(request).tenantId),
  )

  app.put(
    '/v1/archive/retention',
    {
      schema: {
        summary: 'Set retention for some record classes (audited)',
        tags: ['archive'],
        body: Type.Partial(RetentionSchema),
        response: { 200: RetentionSchema, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return setRetentionPolicy(ctx.db, principal.tenantId, request.body, actorOf(principal))
    },
  )

  app.get(
    '/v1/archive/holds',
    {
      schema: {
        summary: 'Legal holds, newest first',
        tags: ['archive'],
        response: { 200: Type.Object({ holds: Type.Array(HoldSchema) }), ...problemResponses(401, 403) },
      },
    },
    async (request) => ({ holds: await listLegalHolds(ctx.db, principalOf(request).tenantId) }),
  )

  app.post(
    '/v1/archive/holds',
    {
      schema: {
        summary: 'Place a legal hold on a customer or a conversation: their records stop expiring (audited)',
        tags: ['archive'],
        body: Type.Object(
          {
            scopeKind: oneOf(['customer', 'conversation'] as const),
            scopeId: Type.String({ minLength: 1, maxLength: 64 }),
            reason: Type.String({ minLength: 1, maxLength: 500 }),
          },
          { additionalProperties: false },
        ),
        response: { 201: HoldSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const hold = await placeLegalHold(ctx.db, principal.tenantId, request.body, actorOf(principal))
      return reply.status(201).send(hold)
    },
  )

  app.post(
    '/v1/archive/holds/:holdId/release',
    {
      schema: {
        summary: 'Release a legal hold (audited)',
        tags: ['archive'],
        params: Type.Object({ holdId: idOf('hld') }),
        response: { 200: HoldSchema, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return releaseLegalHold(ctx.db, principal.tenantId, request.params.holdId, actorOf(principal))
    },
  )

  app.post(
    '/v1/archive/customers/:customerId/erase',
    {
      schema: {
        summary: 'Erase a customer from the archive by destroying their archive key (after retention, not under hold)',
        tags: ['archive'],
        params: Type.Object({ customerId: idOf('cus') }),
        response: {
          200: Type.Object({ keyId: Type.Union([Type.String(), Type.Null()]), records: Type.Integer() }),
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
