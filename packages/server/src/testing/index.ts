/**
 * `@strongroom/server/testing`: what tests outside the server package (the web pages' browser tests) may use of it. A
 * real server on a fresh database, a bank with its staff, simulated phones and channels, and the few service
 * functions a test seeds or checks data with. Nothing else of the server is importable from another package.
 */
export {
  type RunningCluster,
  startCluster,
} from '../../cluster/local-cluster.ts'
export { archiveRecords } from '../archive/append.ts'
export { verifyBundle } from '../archive/bundle.ts'
export { startFakeSmsc } from '../channels/connectors/fake-smsc.ts'
export { createConversationIn } from '../conversations/conversations.ts'
export { createCustomer } from '../identity/customers.ts'
export type { Config } from '../platform/config.ts'
export { verificationKeys } from '../platform/keyring/signing-keys.ts'
export { configureSimulatedChannels } from '../seed.ts'
export { strongroomFromSource } from './cli.ts'
export { startFakeCarrier } from './fake-carrier.ts'
export {
  createTestBank,
  createTestDatabase,
  startTestServer,
  type TestBank,
  type TestDatabase,
  type TestServer,
} from './harness.ts'
export { needsPostgresAndNats, skipUnlessPresent } from './requirements.ts'
export { configureSimulatedSms, SimulatedPhone } from './simulated-phone.ts'
export { startTestIdp, type TestIdp } from './test-idp.ts'
