import type { Kysely } from 'kysely'

/**
 * What the agent console looks up: the integrity policy's latest decision for each device (allow, limited or deny,
 * with its reason and the risk flags the evidence carried), so that staff see how far a customer's device is
 * trusted; and a conversation's consent requests, newest first.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('device_integrity_verdicts')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('decision', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('flags', 'text', (c) => c.notNull())
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('security_level', 'text', (c) => c.notNull())
    .addColumn('app_version', 'text', (c) => c.notNull())
    .addColumn('decided_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_integrity_verdicts_pk', ['tenant_id', 'device_id'])
    .execute()
  await db.schema
    .createIndex('consents_conversation_idx')
    .on('consents')
    .columns(['tenant_id', 'conversation_id', 'created_at'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the console lookups migration cannot be reverted')
}
