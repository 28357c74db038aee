import { type Kysely, sql } from 'kysely'

/**
 * SMS-based factors: one-time codes sent by SMS (a second factor), and yes/no confirmations of a consent by SMS
 * reply. Codes are stored only as keyed hashes (HMAC with the tenant's index key, bound to the row id), never in
 * clear; each is used up by one conditional update. A confirmation's phone number is kept only as a blind index, to
 * find the confirmation a reply answers.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('sms_otp_codes')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('code_hash', 'bytea', (c) => c.notNull())
    .addColumn('failed_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute()
  await db.schema
    .createIndex('sms_otp_codes_customer_idx')
    .on('sms_otp_codes')
    .columns(['tenant_id', 'customer_id', 'created_at'])
    .execute()
  await db.schema
    .createTable('sms_confirmations')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('consent_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('phone_index', 'bytea', (c) => c.notNull())
    .addColumn('code_hash', 'bytea', (c) => c.notNull())
    .addColumn('failed_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('outcome', 'text', (c) => c.check(sql`outcome in ('approved', 'declined')`))
    .execute()
  await db.schema
    .createIndex('sms_confirmations_phone_idx')
    .on('sms_confirmations')
    .columns(['tenant_id', 'phone_index'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the SMS factors migration cannot be reverted')
}
