import type { Kysely } from 'kysely'

/**
 * Encrypted attachments of secure conversations: the sender's device encrypts the file with a key of its own and
 * uploads the ciphertext here; the key travels in an MLS message, so the server stores what it cannot read.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('attachments')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id'))
    .addColumn('uploader_kind', 'text', (c) => c.notNull())
    .addColumn('uploader_id', 'text', (c) => c.notNull())
    .addColumn('sha256', 'bytea', (c) => c.notNull())
    .addColumn('ciphertext', 'bytea', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz')
    .addColumn('retain_until', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('attachments_expiry_idx')
    .on('attachments')
    .columns(['expires_at'])
    .where('expires_at', 'is not', null)
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('attachments').execute()
}
