import { type Kysely, sql } from 'kysely'

/**
 * Public channels (SMS through Twilio, WhatsApp, Messenger) and the pivot into the secure channel: each tenant's
 * channel configuration (secrets sealed with the tenant data key), the customers' addresses on those channels (one
 * public conversation each), the delivery state of public messages, and single-use pivot links (stored hashed).
 * Customers gain an encrypted phone number with a blind index, and a conversation may exist before its customer is
 * known (an unidentified sender on a public channel, linked by an agent later).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('customers').addColumn('phone_number', 'bytea').execute()
  await db.schema.alterTable('customers').addColumn('phone_number_index', 'bytea').execute()
  await db.schema
    .createIndex('customers_phone_number_idx')
    .on('customers')
    .columns(['tenant_id', 'phone_number_index'])
    .execute()
  await db.schema
    .alterTable('conversations')
    .alterColumn('customer_id', (c) => c.dropNotNull())
    .execute()

  await db.schema
    .createTable('channel_configs')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('connector', 'text', (c) => c.notNull().check(sql`connector in ('twilio', 'whatsapp', 'messenger')`))
    // The bank's own public number, WhatsApp phone-number id or page id: how a webhook finds its tenant.
    .addColumn('receiving_address', 'text', (c) => c.notNull())
    .addColumn('settings', 'text', (c) => c.notNull())
    .addColumn('secrets', 'bytea', (c) => c.notNull())
    // SHA-256 of Meta's verify token, to find the configuration a subscription handshake is for.
    .addColumn('verify_token_hash', 'bytea')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('channel_configs_pk', ['tenant_id', 'connector'])
    .addUniqueConstraint('channel_configs_address_uq', ['connector', 'receiving_address'])
    .execute()

  await db.schema
    .createTable('channel_identities')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('connector', 'text', (c) => c.notNull())
    .addColumn('address_index', 'bytea', (c) => c.notNull())
    .addColumn('address', 'bytea', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.references('customers.id'))
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id'))
    .addColumn('secure_conversation_id', 'text', (c) => c.references('conversations.id'))
    // How far the public history has been imported into the secure conversation (pivots after the first add the rest).
    .addColumn('imported_through_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('last_inbound_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('channel_identities_address_uq', ['tenant_id', 'connector', 'address_index'])
    .addUniqueConstraint('channel_identities_conversation_uq', ['conversation_id'])
    .execute()

  await db.schema
    .createTable('channel_messages')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('identity_id', 'text', (c) => c.notNull().references('channel_identities.id'))
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id'))
    .addColumn('connector', 'text', (c) => c.notNull())
    .addColumn('direction', 'text', (c) => c.notNull().check(sql`direction in ('inbound', 'outbound')`))
    .addColumn('client_message_id', 'text', (c) => c.notNull())
    // The message in the log, once appended.
    .addColumn('message_id', 'text')
    .addColumn('seq', 'bigint')
    .addColumn('provider_message_id', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('error_code', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('channel_messages_provider_uq', ['tenant_id', 'connector', 'provider_message_id'])
    .addUniqueConstraint('channel_messages_client_uq', ['conversation_id', 'direction', 'client_message_id'])
    .execute()

  await db.schema
    .createTable('pivot_links')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token_hash', 'bytea', (c) => c.notNull().unique())
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id'))
    .addColumn('identity_id', 'text', (c) => c.notNull().references('channel_identities.id'))
    .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
    .addColumn('created_by_kind', 'text', (c) => c.notNull())
    .addColumn('created_by_id', 'text')
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('opened_at', 'timestamptz')
    .addColumn('completed_at', 'timestamptz')
    .addColumn('device_id', 'text')
    .addColumn('secure_conversation_id', 'text', (c) => c.references('conversations.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('pivot_links_conversation_idx')
    .on('pivot_links')
    .columns(['tenant_id', 'conversation_id'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the channels migration cannot be reverted')
}
