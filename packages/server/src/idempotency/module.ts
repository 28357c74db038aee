import type { Module } from '../platform/module.ts'
import { idempotencyEncryptedColumns, purgeExpiredIdempotencyKeys } from './idempotency.ts'

/** Idempotency keys for creates that clients retry; the routes of other capabilities call `idempotent`. */
export const idempotencyModule: Module = {
  name: 'idempotency',
  housekeeping: (ctx) => purgeExpiredIdempotencyKeys(ctx),
  encryptedColumns: idempotencyEncryptedColumns,
}
