export type BusHandler = (subject: string, payload: Uint8Array) => void

/**
 * The wake-up bus. A publication reaches this process's subscribers directly, whatever the state of the connection
 * between nodes, and the other nodes through that connection. Publishing never throws and never waits: the database
 * holds the truth, so a lost publication delays a delivery on another node but loses nothing. Subjects use NATS syntax
 * (`*` one token, `>` the rest).
 */
export interface Bus {
  readonly kind: 'memory' | 'nats'
  publish(subject: string, payload: Uint8Array): void
  subscribe(subject: string, handler: BusHandler): () => void
  /** Called when the connection to the other nodes is lost; wake-ups from them stop until it comes back. */
  onDisconnect(handler: () => void): () => void
  /** Called after the connection to the bus was lost and came back; nodes then re-read from the database. */
  onReconnect(handler: () => void): () => void
  /** Whether this node is connected to the other nodes now (always, for the bus of a single node). */
  connected(): boolean
  close(): Promise<void>
}

/**
 * Whether a concrete subject matches a subscription pattern with NATS wildcards, both already split at their dots (the
 * pattern once when subscribing, the subject once per publication).
 */
export function subjectMatches(p: readonly string[], s: readonly string[]): boolean {
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false
  }
  return p.length === s.length
}
