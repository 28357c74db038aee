/**
 * Where key-encryption keys (KEKs) live. Strongroom never sees a KEK through this interface, only wrap and unwrap:
 * the local key file today, a PKCS#11 HSM later, behind the same three calls.
 */
export interface KeyProvider {
  readonly name: string
  currentKekId(): Promise<string>
  wrap(dataKey: Buffer, aad: Buffer): Promise<{ kekId: string; wrapped: Buffer }>
  unwrap(kekId: string, wrapped: Buffer, aad: Buffer): Promise<Buffer>
}
