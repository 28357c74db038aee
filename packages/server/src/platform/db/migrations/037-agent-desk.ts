import { type Kysely, sql } from 'kysely'

/**
 * The agent's desk: each conversation is open, pending (waiting on the customer) or resolved, and a new message from
 * the customer reopens it; staff write internal notes on a conversation (sealed with the tenant data key, never sent
 * to the customer); a bank keeps canned replies that agents insert by their shortcut.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('conversations')
    .addColumn('status', 'text', (c) =>
      c.notNull().defaultTo('open').check(sql`status in ('open', 'pending', 'resolved')`),
    )
    .execute()
  await db.schema.alterTable('conversations').addColumn('status_changed_at', 'timestamptz').execute()
  await db.schema.createIndex('conversations_status_idx').on('conversations').columns(['tenant_id', 'status']).execute()

  await db.schema
    .createTable('conversation_notes')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id'))
    .addColumn('author_staff_id', 'text', (c) => c.notNull().references('staff.id'))
    .addColumn('body', 'bytea', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('conversation_notes_conversation_idx')
    .on('conversation_notes')
    .columns(['tenant_id', 'conversation_id', 'created_at'])
    .execute()

  await db.schema
    .createTable('canned_replies')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('shortcut', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('canned_replies_shortcut_uq', ['tenant_id', 'shortcut'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the agent desk migration cannot be reverted')
}
