/** The algorithm of a signing key: Ed25519 (JWS `EdDSA`) or ECDSA on P-256 with SHA-256 (JWS `ES256`). */
export type SigningAlgorithm = 'ed25519' | 'p256'

/**
 * Signs a message with a private key the caller never holds: an Ed25519 signature (64 bytes) or an ES256 one as JWS
 * and IEEE P1363 lay it out (r | s, 64 bytes). Synchronous, so that checkpoint signing stays in its transaction.
 */
export type Signer = (message: Uint8Array) => Buffer

/** A signing key pair as the database stores it: the public half in clear, the private half as the provider says. */
export interface StoredSigningKey {
  kekId: string
  /** Wrapped by a KEK (local key file), or only a reference to the key inside the token (PKCS#11). */
  privateKey: Buffer
  /** SubjectPublicKeyInfo, DER. */
  publicKey: Buffer
}

/**
 * Where key-encryption keys (KEKs) and signing keys live. Strongroom never sees a KEK through this interface, only
 * wrap and unwrap; it never needs a private signing key either, only a signer. The local key file does both in this
 * process; a PKCS#11 token does both inside the token.
 */
export interface KeyProvider {
  readonly name: string
  currentKekId(): Promise<string>
  wrap(dataKey: Buffer, aad: Buffer): Promise<{ kekId: string; wrapped: Buffer }>
  unwrap(kekId: string, wrapped: Buffer, aad: Buffer): Promise<Buffer>
  /** Adds a new KEK and makes it current; returns its id. */
  rotate(): Promise<string>
  /** Makes a signing key pair; `aad` binds a wrapped private half to the key's id. */
  generateSigningKey(algorithm: SigningAlgorithm, aad: Buffer): Promise<StoredSigningKey>
  /** A signer for a stored key pair (unwrapped once, or found in the token once). */
  signer(algorithm: SigningAlgorithm, stored: StoredSigningKey, aad: Buffer): Promise<Signer>
  /**
   * The same key pair under the current KEK, or undefined when nothing is to re-wrap (it already is, or the private
   * half never left the token).
   */
  rewrapSigningKey(stored: StoredSigningKey, aad: Buffer): Promise<StoredSigningKey | undefined>
  /** Lets go of what the provider holds open (a token session); its signers stop working. */
  close(): Promise<void>
}
