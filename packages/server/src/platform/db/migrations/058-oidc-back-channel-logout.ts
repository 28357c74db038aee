import type { Kysely } from 'kysely'

/**
 * OpenID Connect Back-Channel Logout: each sign-in keeps the provider's subject and session id from its ID token (a
 * logout token names them), and the logout tokens' ids are kept until they expire, so that each is used once.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('staff_sign_ins')
    .addColumn('idp_subject', 'text')
    .addColumn('idp_session', 'text')
    .execute()
  await db.schema
    .createIndex('staff_sign_ins_idp_subject_idx')
    .on('staff_sign_ins')
    .columns(['tenant_id', 'idp_subject'])
    .execute()
  await db.schema
    .createIndex('staff_sign_ins_idp_session_idx')
    .on('staff_sign_ins')
    .columns(['tenant_id', 'idp_session'])
    .execute()
  await db.schema
    .createTable('staff_logout_token_jtis')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('jti', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('staff_logout_token_jtis_pkey', ['tenant_id', 'jti'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('staff_logout_token_jtis').execute()
  await db.schema.dropIndex('staff_sign_ins_idp_session_idx').execute()
  await db.schema.dropIndex('staff_sign_ins_idp_subject_idx').execute()
  await db.schema.alterTable('staff_sign_ins').dropColumn('idp_subject').dropColumn('idp_session').execute()
}
