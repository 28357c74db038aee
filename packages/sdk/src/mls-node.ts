/**
 * MLS for Node: everything in `@strongroom/sdk/mls` plus the Node crypto provider, for servers, the archive member
 * and Node apps. Browsers import `@strongroom/sdk/mls` and keep WebCrypto.
 */

export { AeadError, nodeCryptoProvider } from './mls/node-crypto-provider.ts'
export * from './mls.ts'
