import { type ConversationChannel, channelNames, type PublicChannelConnector } from '@strongroom/sdk'
import './public-channel.css'
import type { PublicDetails } from './public-channels.ts'
import type { ConsoleSession } from './session.ts'

/** The channel a conversation is on, as the inbox filters and labels it. */
export type ChannelKey = PublicChannelConnector | 'secure'

export const channelKeyLabels: Record<ChannelKey, string> = { ...channelNames, secure: 'Secure' }

/** Public conversations by their channel; everything else (the bank's app, a pivot's continuation) is secure. */
export function channelKeyOf(session: ConsoleSession, conversationId: string): ChannelKey {
  const channel = session.publicChannels.of(conversationId)
  return channel?.kind === 'public' ? channel.connector : 'secure'
}

const riskNames: Record<string, string> = {
  'lookalike-link': 'lookalike link',
  'link-shortener': 'link shortener',
  'spoofed-sender': 'spoofed sender',
}

/** Smishing and spoofing flags, in words for the agent. */
export function RiskBadge(props: { risk: readonly string[] }) {
  if (props.risk.length === 0) return null
  return <span class="badge risk">Suspicious: {props.risk.map((flag) => riskNames[flag] ?? flag).join(', ')}</span>
}

const windowNames: Record<string, string> = {
  open: 'Window open',
  'human-agent': 'Human agent replies only',
  template: 'Templates only',
  closed: 'Window closed',
}

/** WhatsApp's and Messenger's messaging window: what the agent may send now, and why. */
function WindowBadge(props: { window: ConversationChannel['window'] }) {
  const { kind, closesAt, reason } = props.window
  if (kind === 'none') return null
  const until = closesAt ? ` until ${new Date(closesAt).toLocaleString()}` : ''
  return (
    <span class={`badge window window-${kind}`} title={reason}>
      {windowNames[kind] ?? kind}
      {until}
    </span>
  )
}

export function ChannelBadge(props: { session: ConsoleSession; conversationId: string }) {
  const key = channelKeyOf(props.session, props.conversationId)
  const channel = props.session.publicChannels.of(props.conversationId)
  return (
    <>
      <span class={`channel-badge channel-${key}`}>{channelKeyLabels[key]}</span>
      {channel?.kind === 'public' && channel.verifiedSender && (
        <span class="badge verified" title="The sender name Google verified for the bank's RCS agent">
          Sent as {channel.verifiedSender} (verified)
        </span>
      )}
      {channel?.kind === 'public' && <WindowBadge window={channel.window} />}
      {channel?.kind === 'public' && <RiskBadge risk={channel.risk} />}
    </>
  )
}

/** Next to the conversation's name: where it came from, for a secure conversation a pivot made. */
export function ChannelOrigin(props: { session: ConsoleSession; conversationId: string }) {
  const channel = props.session.publicChannels.of(props.conversationId)
  if (channel?.kind !== 'secure') return null
  return <span class="channel-origin">moved from {channelNames[channel.connector]}</span>
}

/** The composer's label: where the reply goes. */
export function replyLabel(session: ConsoleSession, conversationId: string): string {
  const channel = session.publicChannels.of(conversationId)
  if (channel?.kind !== 'public') return 'Reply'
  return channel.connector === 'twilio' ? 'Reply by SMS' : `Reply on ${channelNames[channel.connector]}`
}

export function channelNameOf(session: ConsoleSession, conversationId: string): string | undefined {
  const channel = session.publicChannels.of(conversationId)
  return channel?.kind === 'public' ? channelNames[channel.connector] : undefined
}

const maskedNames: Record<string, string> = {
  'card-number': 'card number',
  cvv: 'CVV',
  iban: 'IBAN',
  custom: 'account data',
}

const deliveryLabels: Record<string, string> = {
  pending: 'Sending',
  queued: 'Sent to the provider',
  sent: 'Sent',
  delivered: 'Delivered',
  read: 'Read',
  failed: 'Not delivered',
}

/** Channels that show a link as a button with a label; on SMS the customer gets the bare link in the text. */
const BUTTON_CHANNELS = new Set(['whatsapp', 'messenger', 'rbm'])

const channelName = (channel: string) => channelNames[channel as PublicChannelConnector] ?? channel

/** Under a public message's text: what DLP masked, the invitation's button, attachments left behind, delivery. */
export function PublicMessageDetails(props: { details: PublicDetails }) {
  const { details } = props
  return (
    <p class="public-details">
      {details.imported && <span class="badge history">{channelName(details.channel)} history</span>}
      <RiskBadge risk={details.risk} />
      {details.masked.length > 0 && (
        <span class="badge masked">
          Masked by DLP: {[...new Set(details.masked.map((kind) => maskedNames[kind] ?? kind))].join(', ')}
        </span>
      )}
      {details.maskedLater && (
        <span class="badge masked-later" role="note">
          Masked after a later message completed a card number
        </span>
      )}
      {details.linkLabel && (
        <span class="badge link">
          {BUTTON_CHANNELS.has(details.channel) ? `Button: ${details.linkLabel}` : 'Secure link (single use)'}
        </span>
      )}
      {details.mediaCount > 0 && (
        <span class="badge media">
          {details.mediaCount === 1 ? 'An attachment was' : `${details.mediaCount} attachments were`} not carried across
        </span>
      )}
      {details.delivery && !details.imported && (
        <span class={`delivery delivery-${details.delivery.status}`}>
          {deliveryLabels[details.delivery.status] ?? details.delivery.status}
          {details.delivery.errorCode ? ` (${details.delivery.errorCode})` : ''}
        </span>
      )}
    </p>
  )
}

export function SecureDivider() {
  return (
    <li class="secure-divider">
      <span>Secure channel: end-to-end encrypted from here. Above, the public history.</span>
    </li>
  )
}
