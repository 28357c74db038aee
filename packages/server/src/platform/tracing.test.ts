import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { bytesToBase64, enrolDevice, type Message, type MessageStream, StaffClient, StaffToken } from '@strongroom/sdk'
import WebSocket from 'ws'
import { createTestBank, startTestServer } from '../testing/harness.ts'
import { createLogger } from './logging.ts'

interface ReceivedSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
}

/** An OTLP/HTTP collector in this process: what the server exports lands in `spans` (OTLP's JSON encoding). */
async function startCollector() {
  const spans: ReceivedSpan[] = []
  const requests: string[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk) => chunks.push(chunk))
    request.on('end', () => {
      requests.push(`${request.method} ${request.url} ${request.headers['content-type']}`)
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: { scopeSpans: { spans: ReceivedSpan[] }[] }[]
      }
      for (const resource of body.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans)
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    spans,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

test('with tracing on, a request, its commit and its delivery export as one trace, and its log lines carry the trace id', async () => {
  const collector = await startCollector()
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    },
  })
  // The exporter reads the standard variable itself, as it does in production.
  process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = collector.url
  const server = await startTestServer({ tracing: 'otlp' }, undefined, { logger: createLogger('info', sink) })
  let stopped = false
  let stream: MessageStream | undefined
  try {
    const bank = await createTestBank(server)
    const phone = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'phone',
      WebSocket: WebSocket as never,
    })
    const agentHeaders = { authorization: `Bearer ${bank.agentToken}`, 'content-type': 'application/json' }
    const agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const conversation = await agent.createConversation({ customerId: bank.customerId })
    let onMessage: (message: Message) => void = () => {}
    const received = new Promise<Message>((resolve) => {
      onMessage = resolve
    })
    stream = phone.client.stream({ onMessage: (message) => onMessage(message) })
    await stream.ready()

    // The bank's caller started the trace: its traceparent is continued.
    const traceId = randomBytes(16).toString('hex')
    const callerSpan = randomBytes(8).toString('hex')
    const sent = await fetch(`${server.url}/v1/conversations/${conversation.id}/messages`, {
      method: 'POST',
      headers: { ...agentHeaders, traceparent: `00-${traceId}-${callerSpan}-01` },
      body: JSON.stringify({
        clientMessageId: 'traced-1',
        contentType: 'text/plain',
        ciphertext: bytesToBase64(new TextEncoder().encode('hi')),
      }),
    })
    assert.equal(sent.status, 201)
    assert.equal((await received).contentType, 'text/plain')

    // A webhook refused in its own trace: the warning it logs names that trace.
    const webhookTrace = randomBytes(16).toString('hex')
    const refused = await fetch(`${server.url}/v1/channels/twilio/webhook`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        traceparent: `00-${webhookTrace}-${randomBytes(8).toString('hex')}-01`,
      },
      body: 'From=%2B447700900123&To=%2B15005550006&Body=hello',
    })
    assert.ok(refused.status >= 400)

    stream.close()
    await server.stop()
    stopped = true
    const ofTrace = collector.spans.filter((s) => s.traceId === traceId)
    const names = ofTrace.map((s) => s.name)
    assert.ok(names.includes('POST /v1/conversations/:conversationId/messages'), names.join(', '))
    assert.ok(names.includes('message commit'), names.join(', '))
    assert.ok(names.includes('message deliver'), names.join(', '))
    const request = ofTrace.find((s) => s.name.startsWith('POST '))
    assert.equal(request?.parentSpanId, callerSpan)
    const commit = ofTrace.find((s) => s.name === 'message commit')
    assert.equal(commit?.parentSpanId, request?.spanId)
    assert.equal(ofTrace.find((s) => s.name === 'message deliver')?.parentSpanId, commit?.spanId)
    assert.ok(collector.requests.every((r) => r.startsWith('POST /v1/traces application/json')))

    const warning = lines.find((l) => l.msg === 'channel webhook refused')
    assert.equal(warning?.trace_id, webhookTrace)
    assert.match(String(warning?.span_id), /^[0-9a-f]{16}$/)
    // Nothing secret rides along: the log line has no phone number, the spans no message body.
    assert.ok(!JSON.stringify(lines).includes('447700900123'))
  } finally {
    stream?.close()
    if (!stopped) await server.stop()
    delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    await collector.close()
  }
})

test('with tracing off (the default), no span is made and log lines carry no trace id', async () => {
  const collector = await startCollector()
  process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = collector.url
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    },
  })
  const server = await startTestServer({}, undefined, { logger: createLogger('info', sink) })
  try {
    const refused = await fetch(`${server.url}/v1/channels/twilio/webhook`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`,
      },
      body: 'From=%2B447700900123&To=%2B15005550006&Body=hello',
    })
    assert.ok(refused.status >= 400)
  } finally {
    await server.stop()
    delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    await collector.close()
  }
  const warning = lines.find((l) => l.msg === 'channel webhook refused')
  assert.ok(warning)
  assert.equal(warning.trace_id, undefined)
  assert.equal(collector.requests.length, 0)
})
