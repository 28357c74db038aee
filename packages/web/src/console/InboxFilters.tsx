import type { ConversationStatus } from '@strongroom/sdk'
import { type ChannelKey, channelKeyLabels, channelKeyOf } from './PublicChannel.tsx'
import type { ConsoleSession, InboxEntry } from './session.ts'

export interface InboxFilter {
  channel: ChannelKey | 'all'
  unreadOnly: boolean
  mineOnly: boolean
  /** Every conversation of the bank, not only this staff member's (for holders of conversations:all). */
  team: boolean
  status: ConversationStatus | 'all'
}

export const noFilter: InboxFilter = { channel: 'all', unreadOnly: false, mineOnly: false, team: false, status: 'all' }

/** Whether an inbox line passes the filter. The open conversation stays listed, though reading it cleared its count. */
export function passesFilter(session: ConsoleSession, entry: InboxEntry, filter: InboxFilter): boolean {
  const id = entry.conversation.id
  if (filter.channel !== 'all' && channelKeyOf(session, id) !== filter.channel) return false
  if (filter.status !== 'all' && entry.conversation.status !== filter.status && session.openId !== id) return false
  if (filter.unreadOnly && entry.unread === 0 && session.openId !== id) return false
  if (filter.mineOnly && entry.conversation.assignedStaffId !== session.me.staffId) return false
  if (!filter.team && !session.isMember(entry) && session.openId !== id) return false
  return true
}

export function InboxFilters(props: {
  filter: InboxFilter
  onChange: (filter: InboxFilter) => void
  /** Whether to offer the whole team's conversations (staff holding conversations:all). */
  canSeeTeam: boolean
}) {
  const { filter, onChange } = props
  return (
    <fieldset class="inbox-filters">
      <legend class="visually-hidden">Filter the inbox</legend>
      <div class="filter-channel">
        <label for="channel-filter">Channel</label>
        <select
          id="channel-filter"
          value={filter.channel}
          onChange={(event) =>
            onChange({ ...filter, channel: (event.target as HTMLSelectElement).value as InboxFilter['channel'] })
          }
        >
          <option value="all">All channels</option>
          {(Object.keys(channelKeyLabels) as ChannelKey[]).map((key) => (
            <option key={key} value={key}>
              {channelKeyLabels[key]}
            </option>
          ))}
        </select>
      </div>
      <div class="filter-status">
        <label for="status-filter">Status</label>
        <select
          id="status-filter"
          value={filter.status}
          onChange={(event) =>
            onChange({ ...filter, status: (event.target as HTMLSelectElement).value as InboxFilter['status'] })
          }
        >
          <option value="all">Any status</option>
          <option value="open">Open</option>
          <option value="pending">Pending</option>
          <option value="resolved">Resolved</option>
        </select>
      </div>
      <FilterCheck
        label="Unread"
        checked={filter.unreadOnly}
        onChange={(unreadOnly) => onChange({ ...filter, unreadOnly })}
      />
      <FilterCheck
        label="Assigned to me"
        checked={filter.mineOnly}
        onChange={(mineOnly) => onChange({ ...filter, mineOnly })}
      />
      {props.canSeeTeam && (
        <FilterCheck label="Whole team" checked={filter.team} onChange={(team) => onChange({ ...filter, team })} />
      )}
    </fieldset>
  )
}

function FilterCheck(props: { label: string; checked: boolean; onChange: (checked: boolean) => void }) {
  return (
    <label class="check">
      <input
        type="checkbox"
        checked={props.checked}
        onChange={(event) => props.onChange((event.target as HTMLInputElement).checked)}
      />
      {props.label}
    </label>
  )
}
