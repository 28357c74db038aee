import { Type } from '@sinclair/typebox'
import { AttachmentCiphertext, AttachmentUpload, StoredAttachment } from '@strongroom/sdk/protocol'
import type { ServerContext } from '../platform/context.ts'
import { allow, forBrowsers, inConversation } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { principalMember } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import { attachmentCiphertextLimit, fetchAttachment, storeAttachment } from './attachments.ts'

const AttachmentParams = Type.Object({ conversationId: idOf('cnv'), attachmentId: idOf('att') })

/**
 * Encrypted attachments of secure conversations: members upload ciphertext and download it again; the key, the name
 * and the type of the file travel in an MLS message the server cannot read.
 */
export async function attachmentRoutes(
  app: App,
  ctx: ServerContext,
  deps: { secureRetentionDays: (tenantId: string) => Promise<number> },
): Promise<void> {
  // base64 makes a body about 4/3 of the ciphertext; the rest is room for the JSON around it.
  const bodyLimit = Math.ceil((attachmentCiphertextLimit(ctx.config.maxAttachmentBytes) * 4) / 3) + 1024
  app.post(
    '/v1/conversations/:conversationId/attachments',
    {
      bodyLimit,
      config: { access: forBrowsers('chat', inConversation(allow.member('conversations:write'))) },
      schema: {
        summary:
          'Upload an encrypted attachment (AES-256-GCM ciphertext, encrypted on the sender’s device); its key goes ' +
          'to the other members in an MLS message, never here',
        tags: ['conversations'],
        params: Type.Object({ conversationId: idOf('cnv') }),
        body: AttachmentUpload,
        response: { 201: StoredAttachment, ...problemResponses(400, 401, 403, 404, 413) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const expiresAt = request.body.expiresAt === undefined ? null : new Date(request.body.expiresAt)
      if (expiresAt && expiresAt.getTime() <= Date.now()) {
        throw new Problem('request/invalid', 'expiresAt must be a time in the future')
      }
      const stored = await storeAttachment(ctx, {
        tenantId: principal.tenantId,
        conversationId: request.params.conversationId,
        uploader: principalMember(principal),
        ciphertext: Buffer.from(request.body.ciphertext, 'base64'),
        expiresAt,
        retentionDays: await deps.secureRetentionDays(principal.tenantId),
      })
      return reply.status(201).send(stored)
    },
  )

  app.get(
    '/v1/conversations/:conversationId/attachments/:attachmentId',
    {
      config: { access: forBrowsers('chat', inConversation(allow.member('conversations:read'))) },
      schema: {
        summary: 'Download an encrypted attachment (members of its conversation only, until it expires)',
        tags: ['conversations'],
        params: AttachmentParams,
        response: { 200: AttachmentCiphertext, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { conversationId, attachmentId } = request.params
      const ciphertext = await fetchAttachment(ctx, principal.tenantId, conversationId, attachmentId)
      return { ciphertext: ciphertext.toString('base64') }
    },
  )
}
