import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/** The Prometheus metrics of one server instance; each instance has its own registry so tests can run several. */
export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    httpRequests: new Counter({
      name: 'strongroom_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'strongroom_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    messagesCommitted: new Counter({
      name: 'strongroom_messages_committed_total',
      help: 'Messages durably committed to the message log',
      registers: [registry],
    }),
    messagesDelivered: new Counter({
      name: 'strongroom_messages_delivered_total',
      help: 'Messages written to client sockets',
      registers: [registry],
    }),
    commitBatchSize: new Histogram({
      name: 'strongroom_message_commit_batch_size',
      help: 'Messages per group commit',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers: [registry],
    }),
    commitDuration: new Histogram({
      name: 'strongroom_message_commit_duration_seconds',
      help: 'Duration of one group commit transaction',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: [registry],
    }),
    openSockets: new Gauge({
      name: 'strongroom_stream_open_sockets',
      help: 'Open realtime WebSocket connections',
      registers: [registry],
    }),
    slowConsumers: new Counter({
      name: 'strongroom_stream_slow_consumer_disconnects_total',
      help: 'Sockets closed because the client did not keep up',
      registers: [registry],
    }),
    archiveMemberRecords: new Counter({
      name: 'strongroom_archive_member_records_total',
      help: 'Secure-conversation messages and membership changes the archive member decrypted, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    archiveLag: new Histogram({
      name: 'strongroom_archive_lag_seconds',
      help: 'From a secure message committed to the log to its record stored in the archive (the archive member)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30],
      registers: [registry],
    }),
    archiveMemberFailures: new Counter({
      name: 'strongroom_archive_member_failures_total',
      help: 'Secure-conversation messages the archive member could not read, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    channelWebhookRefusals: new Counter({
      name: 'strongroom_channel_webhook_refusals_total',
      help: 'Public-channel webhooks refused (bad or missing signature, unknown receiver) by connector and reason',
      labelNames: ['connector', 'reason'] as const,
      registers: [registry],
    }),
    commitFailures: new Counter({
      name: 'strongroom_message_commit_failures_total',
      help: 'Group commits of the message log that failed (every append in the batch was refused)',
      registers: [registry],
    }),
    catchUps: new Counter({
      name: 'strongroom_stream_catch_ups_total',
      help: 'Times a socket read a conversation from the database (sign-in behind, a gap, a missed wake-up, a bus reconnect)',
      registers: [registry],
    }),
    missedWakeUps: new Counter({
      name: 'strongroom_stream_missed_wake_ups_total',
      help: 'Sockets found behind a conversation committed a sweep ago, caught up by the sweep (a wake-up the bus never carried)',
      registers: [registry],
    }),
    drains: new Counter({
      name: 'strongroom_drains_total',
      help: 'Shutdowns begun on this node (SIGTERM): readiness fails, sockets are told where to resume, queued messages commit',
      registers: [registry],
    }),
    busConnected: new Gauge({
      name: 'strongroom_bus_connected',
      help: '1 while this node is connected to the bus (always 1 for the in-memory bus), 0 while it reconnects',
      registers: [registry],
    }),
    busDisconnects: new Counter({
      name: 'strongroom_bus_disconnects_total',
      help: 'Times the connection to the bus was lost',
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'strongroom_rate_limited_total',
      help: 'Requests and stream messages refused with 429 (or closed), by what was counted and the limit it hit',
      labelNames: ['limit', 'key'] as const,
      registers: [registry],
    }),
    busReconnects: new Counter({
      name: 'strongroom_bus_reconnects_total',
      help: 'Times the connection to the bus came back',
      registers: [registry],
    }),
    databaseConnectionsLost: new Counter({
      name: 'strongroom_database_connections_lost_total',
      help: 'Connections to PostgreSQL that broke (server restart, backend ended, network); the pool opens fresh ones',
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'strongroom_auth_failures_total',
      help: 'Refused credentials by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
  }
}
export type Metrics = ReturnType<typeof createMetrics>
