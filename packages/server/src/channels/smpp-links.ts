import { randomUUID } from 'node:crypto'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import {
  type ChannelConfig,
  findChannelByAddress,
  findTenantChannel,
  listChannelsOf,
  smppHostAllowed,
} from './channel-config.ts'
import type { Connector, WebhookEvents } from './connectors/connector.ts'
import type { TransportOptions } from './connectors/retry.ts'
import {
  type SmppInbound,
  SmppInboundRefusal,
  SmppLink,
  type SmppLinkState,
  type SmppTimings,
  smppConnector,
} from './connectors/smpp.ts'
import { applyReceipt } from './public-messages.ts'
import { receiptForPart, recordMessageParts } from './smpp-parts.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'bus' | 'config' | 'log'>

/** What the links need of the rest of channels: how to reach the SMSC, and the inbound path a webhook takes. */
export interface SmppLinkDeps {
  transport?: TransportOptions | undefined
  receive: (channel: ChannelConfig, events: WebhookEvents) => Promise<void>
}

/** Published when a tenant's SMPP channel changed, so that every node reopens its link with the new settings. */
const RELOAD_SUBJECT = 'channels.smpp.reload'

/**
 * The SMPP links of this server process, one per tenant with an SMPP channel: opened when the server starts, reopened
 * when the channel is configured again (on every node), closed (unbound) when the server closes. What a link receives
 * goes the way webhooks go: customer messages through the same inbound path (tenant from the destination number, DLP,
 * idempotency by the SMSC's id), receipts to the same delivery states.
 */
export class SmppLinks {
  readonly #links = new Map<string, SmppLink>()
  readonly #node = randomUUID()
  #unsubscribe: (() => void) | undefined
  #changes: Promise<void> = Promise.resolve()
  #closed = false

  constructor(
    private readonly ctx: Ctx,
    private readonly deps: SmppLinkDeps,
    private readonly timings: Partial<SmppTimings> = {},
  ) {}

  async start(): Promise<void> {
    this.#unsubscribe = this.ctx.bus.subscribe(RELOAD_SUBJECT, (_subject, payload) => {
      const { tenantId, node } = JSON.parse(Buffer.from(payload).toString('utf8')) as { tenantId: string; node: string }
      if (node !== this.#node) void this.reload(tenantId)
    })
    for (const channel of await listChannelsOf(this.ctx, 'smpp')) this.#open(channel)
  }

  /** After the tenant's SMPP channel was configured: its link reopens here now, and on the other nodes on the bus. */
  async configured(tenantId: string): Promise<void> {
    await this.reload(tenantId)
    this.ctx.bus.publish(RELOAD_SUBJECT, Buffer.from(JSON.stringify({ tenantId, node: this.#node })))
  }

  /** Closes the tenant's link and opens one with the channel's current settings. Changes are applied one at a time. */
  reload(tenantId: string): Promise<void> {
    this.#changes = this.#changes.then(async () => {
      await this.#links.get(tenantId)?.close()
      this.#links.delete(tenantId)
      if (this.#closed) return
      const channel = await findTenantChannel(this.ctx, tenantId, 'smpp')
      if (channel) this.#open(channel)
    })
    return this.#changes
  }

  /** Where the tenant's link is: bound, connecting, refused… (undefined without one on this node). */
  stateOf(tenantId: string): SmppLinkState | undefined {
    return this.#links.get(tenantId)?.state
  }

  /** Sends on the channel's link; the parts of a long message are recorded for their receipts. */
  connector(channel: ChannelConfig): Connector {
    const link = this.#links.get(channel.tenantId)
    if (!link) throw new Problem('channels/provider-unavailable')
    return smppConnector(link, this.deps.transport ?? {}, (ids) => recordMessageParts(this.ctx, channel.tenantId, ids))
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#unsubscribe?.()
    await this.#changes
    await Promise.all([...this.#links.values()].map((link) => link.close()))
    this.#links.clear()
  }

  #open(channel: ChannelConfig) {
    const { tenantId, settings } = channel
    // The operator may have withdrawn an SMSC since the channel was configured.
    if (!smppHostAllowed(this.ctx.config, settings.host ?? '', settings.port ?? 0)) {
      this.ctx.log.warn(
        { tenantId, connector: 'smpp' },
        'SMPP channel not opened: its SMSC is not in STRONGROOM_SMPP_HOSTS',
      )
      return
    }
    const link = new SmppLink(
      {
        host: settings.host ?? '',
        port: settings.port ?? 0,
        tls: settings.tls ?? false,
        systemId: settings.systemId ?? '',
        password: channel.secrets.password ?? '',
        systemType: settings.systemType,
        sourceAddress: channel.address,
      },
      this.#inbound(tenantId),
      this.timings,
      { log: (level, event, details) => this.ctx.log[level]({ tenantId, connector: 'smpp', ...details }, event) },
    )
    link.on('state', (state) => {
      if (state !== 'bind-refused') return
      recordAudit(this.ctx.db, {
        tenantId,
        actor: { kind: 'system', id: null },
        action: 'channels.smpp.bind',
        target: { kind: 'channel', id: 'smpp' },
        outcome: 'failure',
        reason: 'credentials refused by the SMSC',
      }).catch(() => this.ctx.log.warn({ tenantId }, 'SMPP bind refusal not audited'))
    })
    this.#links.set(tenantId, link)
    link.start()
  }

  #inbound(tenantId: string): SmppInbound {
    return {
      message: async (message) => {
        // The SMSC bound with this tenant's credentials may only deliver to this tenant's number.
        const channel = await findChannelByAddress(this.ctx, 'smpp', message.to)
        if (!channel || channel.tenantId !== tenantId) {
          this.ctx.log.warn({ tenantId, connector: 'smpp' }, 'SMPP deliver_sm for a number not of this link refused')
          throw new SmppInboundRefusal('ESME_RINVDSTADR')
        }
        await this.deps.receive(channel, { messages: [message], receipts: [], watermarks: [] })
      },
      receipt: async (receipt) => applyReceipt(this.ctx, tenantId, await receiptForPart(this.ctx, tenantId, receipt)),
    }
  }
}
