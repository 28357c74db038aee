export type BusHandler = (subject: string, payload: Uint8Array) => void

/**
 * The wake-up bus between nodes. Publishing never throws and never waits: the database holds the truth, so a lost
 * publication delays a delivery but loses nothing. Subjects use NATS syntax (`*` one token, `>` the rest).
 */
export interface Bus {
  readonly kind: 'memory' | 'nats'
  publish(subject: string, payload: Uint8Array): void
  subscribe(subject: string, handler: BusHandler): () => void
  /** Called after the connection to the bus was lost and came back; nodes then re-read from the database. */
  onReconnect(handler: () => void): () => void
  ready(): Promise<boolean>
  close(): Promise<void>
}

/** Whether a concrete subject matches a subscription pattern with NATS wildcards. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.')
  const s = subject.split('.')
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false
  }
  return p.length === s.length
}
