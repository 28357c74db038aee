/**
 * MLS for Node: everything in `@strongroom/sdk/mls` plus the Node crypto provider and a store in a file, for servers,
 * the archive member and Node apps. Browsers import `@strongroom/sdk/mls` and keep WebCrypto and IndexedDB.
 */

export { FileStore, type FileStoreOptions, openFileSecureStore } from './mls/file-store.ts'
export { AeadError, nodeCryptoProvider } from './mls/node-crypto-provider.ts'
export * from './mls.ts'
