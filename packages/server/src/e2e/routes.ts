import { Type } from '@sinclair/typebox'
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
  SecureGroup,
  WelcomeList,
} from '@strongroom/sdk/protocol'
import { isConversationMember } from '../conversations/conversations.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow, forBrowsers, inConversation } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf, principalMember } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { grantArchiveRemoval } from './archive-removal.ts'
import { credentialAuthorityKeys, issueMemberCredential } from './credential-authority.ts'
import { acceptCommit, currentGroupInfo, deleteWelcome, getGroup, pendingWelcomes, registerGroup } from './groups.ts'
import { claimKeyPackages, type KeyPackageOwner, keyPackageStock, storeKeyPackages } from './key-packages.ts'
import { requestReadd } from './readd-requests.ts'

const ConversationParams = Type.Object({ conversationId: idOf('cnv') })
/** Public signature keys: 32 bytes for Ed25519, 65 for an uncompressed P-256 point. */
const SIGNATURE_KEY_LENGTHS = [32, 65]

interface E2eDeps {
  credentialKey: SigningKey
  /** Gives the archive member key packages in this tenant before one is claimed (when it runs on this node). */
  prepareArchive: (tenantId: string) => Promise<void> | undefined
}

export async function e2eRoutes(app: App, ctx: ServerContext, deps: E2eDeps): Promise<void> {
  await credentialRoutes(app, ctx, deps)
  await keyPackageRoutes(app, ctx)
  await claimRoutes(app, ctx, deps)
  await groupRoutes(app, ctx)
  await commitRoutes(app, ctx)
  await archiveRemovalRoutes(app, ctx)
  await groupInfoRoutes(app, ctx)
  await welcomeRoutes(app, ctx)
}

/** The credential authority and the credentials it issues to members. */
async function credentialRoutes(app: App, ctx: ServerContext, deps: E2eDeps): Promise<void> {
  app.get(
    '/v1/e2e/credential-authority',
    {
      config: { access: allow.anyone },
      schema: {
        summary:
          'The credential authority’s public keys: every member checks every other member’s credential with them',
        tags: ['e2e'],
        response: { 200: CredentialAuthority },
      },
    },
    async () => ({ keys: await credentialAuthorityKeys(ctx) }),
  )

  app.post(
    '/v1/e2e/credentials',
    {
      config: { access: forBrowsers('chat', allow.member('conversations:write')) },
      schema: {
        summary: 'Get a member credential binding the caller (device or staff) to its MLS signature public key',
        tags: ['e2e'],
        body: CredentialRequest,
        response: { 201: MemberCredential, ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const member = principalMember(principal)
      const signaturePublicKey = Buffer.from(request.body.signaturePublicKey, 'base64url')
      if (!SIGNATURE_KEY_LENGTHS.includes(signaturePublicKey.length)) {
        throw new Problem('request/invalid', 'the signature key is neither an Ed25519 nor a P-256 public key')
      }
      const credential = await issueMemberCredential(ctx, deps.credentialKey, {
        tenantId: principal.tenantId,
        member: principal.kind === 'device' ? { ...member, customerId: principal.customerId } : member,
        signaturePublicKey,
      })
      return reply.status(201).send({ credential })
    },
  )
}

/** Publishing and listing key packages. */
async function keyPackageRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/e2e/key-packages',
    {
      config: { access: forBrowsers('chat', allow.member('conversations:write')) },
      bodyLimit: 512 * 1024,
      schema: {
        summary: 'Upload key packages (and optionally a last-resort one) for others to add the caller to groups',
        tags: ['e2e'],
        body: KeyPackageUpload,
        response: { 200: KeyPackageStock, ...problemResponses(400, 401, 403, 409, 413) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return storeKeyPackages(ctx, principal.tenantId, principalMember(principal), {
        keyPackages: request.body.keyPackages.map((k) => Buffer.from(k, 'base64')),
        lastResort: request.body.lastResort === undefined ? undefined : Buffer.from(request.body.lastResort, 'base64'),
        replace: request.body.replace === true,
      })
    },
  )

  app.get(
    '/v1/e2e/key-packages',
    {
      config: { access: allow.member('conversations:write') },
      schema: {
        summary:
          'How many of the caller’s key packages (of one of its instances) are left; `low` says when to upload more',
        tags: ['e2e'],
        querystring: MemberInstanceQuery,
        response: { 200: KeyPackageStock, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return keyPackageStock(ctx, principal.tenantId, {
        ...principalMember(principal),
        instance: request.query.instance,
      })
    },
  )
}

/** Claiming the key packages of the members being added. */
async function claimRoutes(app: App, ctx: ServerContext, deps: E2eDeps): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/e2e/key-packages/claim',
    {
      config: { access: forBrowsers('chat', inConversation(allow.member('conversations:write'))) },
      schema: {
        summary: 'Claim one key package for each member to add to the conversation’s group (each is used up)',
        tags: ['e2e'],
        params: ConversationParams,
        body: KeyPackageClaim,
        response: {
          200: ClaimedKeyPackages,
          ...problemResponses(400, 401, 403, 404, 409),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { conversationId } = request.params
      const owners: KeyPackageOwner[] = request.body.members.map(({ kind, id, instance }) =>
        instance === undefined ? { kind, id } : { kind, id, instance },
      )
      for (const owner of owners) {
        // Only the archive and the conversation's own members can be added: nobody can pull in an outsider.
        const allowed =
          owner.kind === 'archive'
            ? owner.id === 'archive'
            : await isConversationMember(ctx, principal.tenantId, conversationId, { kind: owner.kind, id: owner.id })
        if (!allowed) throw new Problem('request/not-found', `${owner.kind} ${owner.id} is not in this conversation`)
      }
      if (owners.some((o) => o.kind === 'archive')) await deps.prepareArchive(principal.tenantId)
      const claimed = await claimKeyPackages(ctx, principal.tenantId, conversationId, owners)
      return {
        keyPackages: claimed.map((c) => ({
          kind: c.owner.kind,
          id: c.owner.id,
          ...(c.owner.instance === undefined ? {} : { instance: c.owner.instance }),
          ref: c.ref,
          keyPackage: Buffer.from(c.keyPackage).toString('base64'),
        })),
      }
    },
  )
}

/** The group a conversation has, as the delivery service knows it. */
async function groupRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.put(
    '/v1/conversations/:conversationId/e2e/group',
    {
      config: { access: forBrowsers('chat', allow.member('conversations:write')) },
      schema: {
        summary: 'Make the conversation end-to-end encrypted with the caller’s new MLS group (epoch 0)',
        tags: ['e2e'],
        params: ConversationParams,
        body: NewSecureGroup,
        response: { 201: SecureGroup, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const group = await registerGroup(ctx, principal, request.params.conversationId, {
        groupId: Buffer.from(request.body.groupId, 'base64'),
        cipherSuite: request.body.cipherSuite,
      })
      return reply.status(201).send(group)
    },
  )

  app.get(
    '/v1/conversations/:conversationId/e2e/group',
    {
      config: { access: allow.member('conversations:read') },
      schema: {
        summary: 'The conversation’s MLS group and its current epoch',
        tags: ['e2e'],
        params: ConversationParams,
        response: { 200: SecureGroup, ...problemResponses(401, 403, 404, 409) },
      },
    },
    async (request) => getGroup(ctx, principalOf(request), request.params.conversationId),
  )
}

/** Commits, ordered by epoch. */
async function commitRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/e2e/commits',
    {
      config: { access: forBrowsers('chat', allow.member('conversations:write')) },
      bodyLimit: 1024 * 1024,
      schema: {
        summary:
          'Submit a commit for the group’s current epoch (first wins; a late one gets 409 with currentEpoch) and the welcome for the members it adds',
        tags: ['e2e'],
        params: ConversationParams,
        body: CommitSubmission,
        response: {
          201: CommitAccepted,
          ...problemResponses(400, 401, 403, 404, 409, 413),
        },
      },
    },
    async (request, reply) => {
      const accepted = await acceptCommit(ctx, principalOf(request), request.params.conversationId, {
        clientMessageId: request.body.clientMessageId,
        commit: Buffer.from(request.body.commit, 'base64'),
        welcome: request.body.welcome === undefined ? undefined : Buffer.from(request.body.welcome, 'base64'),
        groupInfo: request.body.groupInfo === undefined ? undefined : Buffer.from(request.body.groupInfo, 'base64'),
      })
      return reply.status(201).send(accepted)
    },
  )
}

/** A compliance officer's exemption that lets one commit take the archive out of a conversation. */
async function archiveRemovalRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/e2e/archive-removal-exemptions',
    {
      config: { access: allow.staff('archive:manage') },
      schema: {
        summary:
          'Let one commit, within 15 minutes, take the archive out of this secure conversation (compliance only; audited)',
        description:
          'The archive is a member of every secure conversation and a commit removing it is refused; this is the one exception, for a conversation the bank may not record. Single use.',
        tags: ['e2e'],
        params: ConversationParams,
        body: ArchiveRemovalRequest,
        response: {
          201: ArchiveRemovalExemption,
          ...problemResponses(400, 401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { conversationId } = request.params
      const exemption = await grantArchiveRemoval(
        ctx,
        principal.tenantId,
        conversationId,
        request.body.reason,
        actorOf(principal),
      )
      return reply.status(201).send(exemption)
    },
  )
}

/** The group's current GroupInfo, for a member re-joining by external commit. */
async function groupInfoRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/conversations/:conversationId/e2e/group-info',
    {
      config: { access: allow.member('conversations:write') },
      schema: {
        summary:
          'The group’s signed GroupInfo for its current epoch, from which a member that lost its state re-joins by external commit',
        tags: ['e2e'],
        params: ConversationParams,
        response: {
          200: PublishedGroupInfo,
          ...problemResponses(401, 403, 404, 409),
        },
      },
    },
    async (request) => currentGroupInfo(ctx, principalOf(request), request.params.conversationId),
  )
}

/** Re-add requests and the welcomes waiting for a device. */
async function welcomeRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/e2e/readd-requests',
    {
      config: { access: forBrowsers('chat', allow.member('conversations:write')) },
      schema: {
        summary:
          'Ask to be re-added to the group after losing its state, when re-joining by external commit is not possible',
        tags: ['e2e'],
        params: ConversationParams,
        querystring: MemberInstanceQuery,
        response: { 202: Type.Null(), ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      await requestReadd(ctx, principalOf(request), request.params.conversationId, request.query.instance)
      return reply.status(202).send(null)
    },
  )

  app.get(
    '/v1/e2e/welcomes',
    {
      config: { access: allow.member('conversations:write') },
      schema: {
        summary:
          'Welcomes waiting for the caller (one of its instances): groups it was added to, where to start reading',
        tags: ['e2e'],
        querystring: MemberInstanceQuery,
        response: {
          200: WelcomeList,
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const recipient = { ...principalMember(principal), instance: request.query.instance }
      return { welcomes: await pendingWelcomes(ctx, principal.tenantId, recipient) }
    },
  )

  app.delete(
    '/v1/e2e/welcomes/:welcomeId',
    {
      config: { access: forBrowsers('chat', allow.member('conversations:write')) },
      schema: {
        summary: 'Discard a welcome once used',
        tags: ['e2e'],
        params: Type.Object({ welcomeId: idOf('wlc') }),
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (!(await deleteWelcome(ctx, principal.tenantId, principalMember(principal), request.params.welcomeId))) {
        throw new Problem('request/not-found', 'no such welcome')
      }
      return reply.status(204).send(null)
    },
  )
}
