import { type Kysely, sql } from 'kysely'

/** RCS Business Messaging (Google's RBM) becomes a channel connector; its receiving address is the RBM agent's id. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table channel_configs drop constraint channel_configs_connector_check`.execute(db)
  await sql`alter table channel_configs add constraint channel_configs_connector_check
    check (connector in ('twilio', 'whatsapp', 'messenger', 'smpp', 'rbm'))`.execute(db)
}

export async function down(): Promise<void> {
  throw new Error('the RBM migration cannot be reverted')
}
