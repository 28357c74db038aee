import './presence.css'
import type { Presence, StaffClient, StaffMember, StaffPresence } from '@strongroom/sdk'
import { useState } from 'preact/hooks'

/** How presence reads in the console. */
export const presenceLabels: Record<Presence, string> = { available: 'Available', away: 'Away', offline: 'Offline' }

/**
 * The bank's staff and their presence, for supervisors (`conversations:assign`): read at sign-in and again whenever
 * the stream says a colleague's presence changed, or that a colleague was added or their role, name or activation
 * changed (the staff list then too). Empty for anyone else.
 */
export class StaffDirectory {
  readonly #client: StaffClient
  readonly #changed: () => void
  staff: StaffMember[] | undefined
  readonly presence = new Map<string, Presence>()
  #reading: Promise<void> | undefined
  /** A wake-up came while a read was under way: one more read follows it (what it read may predate the change). */
  #readAgain = false
  /** The staff list is to be read again, not only presence. */
  #staffChanged = false

  constructor(client: StaffClient, changed: () => void) {
    this.#client = client
    this.#changed = changed
  }

  /**
   * Reads presence now, and the staff list when `staffChanged` (a colleague added, or their role, name or activation
   * changed) or when presence names someone the list does not hold; wake-ups that come during a read are served by
   * one more read after it.
   */
  refresh(staffChanged = false): Promise<void> {
    if (staffChanged) this.#staffChanged = true
    if (this.#reading) {
      this.#readAgain = true
      return this.#reading
    }
    this.#reading = (async () => {
      try {
        do {
          this.#readAgain = false
          const presence = await this.#client.listStaffPresence()
          const known = new Set(this.staff?.map((s) => s.id))
          if (this.#staffChanged || presence.some((p) => !known.has(p.staffId))) {
            this.#staffChanged = false
            this.staff = await this.#client.listStaff()
          }
          this.#take(presence)
        } while (this.#readAgain)
      } finally {
        this.#reading = undefined
      }
    })()
    return this.#reading
  }

  #take(presence: StaffPresence[]): void {
    this.presence.clear()
    for (const p of presence) this.presence.set(p.staffId, p.presence)
    this.#changed()
  }

  nameOf(staffId: string): string | undefined {
    return this.staff?.find((s) => s.id === staffId)?.name
  }

  presenceOf(staffId: string): Presence {
    return this.presence.get(staffId) ?? 'offline'
  }
}

/** The staff member's own "Away": supervisors see it beside their name while it is ticked. */
export function AwayToggle(props: { client: StaffClient }) {
  const [away, setAway] = useState(false)
  const [busy, setBusy] = useState(false)
  return (
    <label class="away-toggle">
      <input
        type="checkbox"
        checked={away}
        disabled={busy}
        onChange={(event) => {
          // Ticked at once; untouched again if the server did not take it.
          const next = (event.target as HTMLInputElement).checked
          setAway(next)
          setBusy(true)
          props.client
            .setAway(next)
            .catch(() => setAway(!next))
            .finally(() => setBusy(false))
        }}
      />
      Away
    </label>
  )
}

/** A colleague's presence, as a small badge: a dot and the word (never colour alone). */
export function PresenceBadge(props: { presence: Presence }) {
  return (
    <span class={`presence presence-${props.presence}`}>
      <span class="dot" aria-hidden="true" />
      {presenceLabels[props.presence]}
    </span>
  )
}
