import { EventEmitter, once } from 'node:events'
import type { AddressInfo } from 'node:net'
import smpp, { type Pdu, type Session } from 'smpp'

/**
 * For tests: an SMSC, speaking SMPP 3.4 through the `smpp` package's server. It checks bind credentials, answers
 * enquire_link and unbind, records every submit_sm (answered by `answerSubmit`), and delivers deliver_sm to the ESME.
 */
export interface FakeSmsc extends EventEmitter<{ bind: [Pdu]; submit: [Pdu]; unbind: [Pdu]; enquire: [Pdu] }> {
  port: number
  binds: Pdu[]
  submits: Pdu[]
  /** How the next submit_sm is answered; by default accepted with ids msg-1, msg-2, … */
  answerSubmit: (pdu: Pdu) => { command_status: number; message_id?: string }
  /** Sends a deliver_sm on the bound session and resolves with the ESME's deliver_sm_resp. */
  deliver(fields: Record<string, unknown>): Promise<Pdu>
  /** Sends an enquire_link to the ESME and resolves with its answer. */
  enquireLink(): Promise<Pdu>
  /** Resolves once an ESME is bound (at once if one is). */
  bound(): Promise<Session>
  /** Cuts every connection, as a crashing SMSC or a broken network would. */
  dropAll(): void
  close(): Promise<void>
}

export async function startFakeSmsc(credentials: { systemId: string; password: string }): Promise<FakeSmsc> {
  const events = new EventEmitter() as FakeSmsc
  const bound = new Set<Session>()
  let submitted = 0
  events.binds = []
  events.submits = []
  events.answerSubmit = () => ({ command_status: 0, message_id: `msg-${++submitted}` })

  const server = smpp.createServer({}, (session) => {
    session.on('error', () => {})
    session.on('close', () => bound.delete(session))
    session.on('bind_transceiver', (pdu: Pdu) => {
      events.binds.push(pdu)
      const ok = pdu.system_id === credentials.systemId && pdu.password === credentials.password
      if (!ok) {
        session.send(pdu.response({ command_status: smpp.errors.ESME_RINVPASWD }))
        return
      }
      session.send(pdu.response({ system_id: 'FAKESMSC' }))
      bound.add(session)
      events.emit('bind', pdu)
    })
    session.on('submit_sm', (pdu: Pdu) => {
      if (!bound.has(session)) {
        session.send(pdu.response({ command_status: smpp.errors.ESME_RINVBNDSTS }))
        return
      }
      events.submits.push(pdu)
      session.send(pdu.response(events.answerSubmit(pdu)))
      events.emit('submit', pdu)
    })
    session.on('enquire_link', (pdu: Pdu) => {
      session.send(pdu.response())
      events.emit('enquire', pdu)
    })
    session.on('unbind', (pdu: Pdu) => {
      bound.delete(session)
      session.send(pdu.response())
      events.emit('unbind', pdu)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  events.port = (server.address() as AddressInfo).port

  events.bound = async () => {
    while (bound.size === 0) await once(events, 'bind')
    return [...bound].at(-1) as Session
  }
  const request = async (command: 'deliver_sm' | 'enquire_link', fields: Record<string, unknown>) => {
    const session = await events.bound()
    return new Promise<Pdu>((resolve, reject) => {
      if (!session[command](fields, resolve)) reject(new Error('the ESME connection is not writable'))
    })
  }
  events.deliver = (fields) => request('deliver_sm', fields)
  events.enquireLink = () => request('enquire_link', {})
  events.dropAll = () => {
    for (const session of server.sessions) session.destroy()
    bound.clear()
  }
  events.close = async () => {
    events.dropAll()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return events
}
