/** The part of the `smpp` package (plain JavaScript, no types of its own) that Strongroom uses. */
declare module 'smpp' {
  import type { EventEmitter } from 'node:events'
  import type { Server as NetServer, Socket } from 'node:net'

  /** A PDU: its header, then its mandatory fields and TLVs by their SMPP 3.4 names. */
  export interface Pdu {
    command: string
    command_id: number
    command_status: number
    sequence_number: number
    [field: string]: unknown
    isResponse(): boolean
    response(options?: Record<string, unknown>): Pdu
  }

  type ResponseCallback = (pdu: Pdu) => void

  export interface Session extends EventEmitter {
    readonly socket: Socket
    send(pdu: Pdu, responseCallback?: ResponseCallback): boolean
    close(callback?: () => void): void
    destroy(callback?: () => void): void
    bind_transceiver(fields: Record<string, unknown>, responseCallback?: ResponseCallback): boolean
    submit_sm(fields: Record<string, unknown>, responseCallback?: ResponseCallback): boolean
    deliver_sm(fields: Record<string, unknown>, responseCallback?: ResponseCallback): boolean
    enquire_link(fields: Record<string, unknown>, responseCallback?: ResponseCallback): boolean
    unbind(fields: Record<string, unknown>, responseCallback?: ResponseCallback): boolean
  }

  export interface SmppServer extends NetServer {
    readonly sessions: Session[]
  }

  interface Smpp {
    connect(options: { host: string; port: number; tls?: boolean; servername?: string }): Session
    createServer(options: Record<string, never>, listener: (session: Session) => void): SmppServer
    PDU: new (command: string, fields?: Record<string, unknown>) => Pdu
    /** Command status names (ESME_ROK, ESME_RINVPASWD, ...) to their values. */
    errors: Record<string, number>
    /** GSM 03.38 default alphabet, one septet per octet (unpacked, as SMPP carries it). */
    gsmCoder: {
      encode(text: string, shiftTable: 0): Buffer
      decode(septets: Buffer, shiftTable: 0): string
      GSM: { charRegex: RegExp }
    }
  }

  const smpp: Smpp
  export default smpp
}
