import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import {
  type CiphersuiteImpl,
  type ClientState,
  type CryptoProvider,
  decodeMlsMessage,
  defaultCryptoProvider,
  getCiphersuiteImpl,
  joinGroup,
  type MLSMessage,
  makePskIndex,
  processMessage,
  type RatchetTree,
} from 'ts-mls'
import { getCiphersuiteFromId } from 'ts-mls/crypto/ciphersuite.js'
import { refhash } from 'ts-mls/crypto/hash.js'
import { decryptWithLabel } from 'ts-mls/crypto/hpke.js'
import { deriveSecret, deriveTreeSecret, expandWithLabel } from 'ts-mls/crypto/kdf.js'
import { signWithLabel, verifyWithLabel } from 'ts-mls/crypto/signature.js'
import { decodeGroupContext } from 'ts-mls/groupContext.js'
import { initializeEpoch, mlsExporter } from 'ts-mls/keySchedule.js'
import { unprotectPrivateMessage } from 'ts-mls/messageProtection.js'
import { decodeRatchetTree } from 'ts-mls/ratchetTree.js'
import { createSecretTree, ratchetToGeneration } from 'ts-mls/secretTree.js'
import type { SenderData } from 'ts-mls/sender.js'
import { KEY_RETENTION } from './group-config.ts'
import { nodeCryptoProvider } from './node-crypto-provider.ts'

// The official RFC 9420 interoperability vectors (the test-vectors folder of mlswg/mls-implementations), kept outside
// the project: MLS_VECTORS_DIR, else ../shared/vectors/mls beside the repository (the README's Testing section).
const VECTORS = `${process.env.MLS_VECTORS_DIR ?? fileURLToPath(new URL('../../../../../shared/vectors/mls', import.meta.url))}/`
const present = existsSync(VECTORS)
const skip = present ? false : `RFC 9420 test vectors not found at ${VECTORS} (MLS_VECTORS_DIR; see the README)`
// Under CI a missing copy fails rather than skips: the vectors are never silently left out.
if (skip && process.env.CI === 'true') throw new Error(`${skip}: under CI=true these tests must run, not skip`)

/** The suites Strongroom uses: X25519/AES-128-GCM/Ed25519 by default, P-256 for hardware that only does P-256. */
const SUITES = [1, 2] as const
const PROVIDERS: [string, CryptoProvider][] = [
  ['node', nodeCryptoProvider],
  ['webcrypto', defaultCryptoProvider],
]

// biome-ignore lint/suspicious/noExplicitAny: vector files are untyped JSON checked field by field below
type Vector = any
function vectors(name: string): Vector[] {
  if (!present) return []
  const all = JSON.parse(readFileSync(`${VECTORS}${name}.json`, 'utf8')) as Vector[]
  return all.filter((v) => (SUITES as readonly number[]).includes(v.cipher_suite))
}
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const impl = (provider: CryptoProvider, suite: number) =>
  getCiphersuiteImpl(getCiphersuiteFromId(suite as 1 | 2), provider)

for (const [providerName, provider] of PROVIDERS) {
  describe(`RFC 9420 test vectors, ${providerName} crypto provider`, { skip }, () => {
    test('crypto-basics: RefHash, ExpandWithLabel, DeriveSecret, DeriveTreeSecret, SignWithLabel, EncryptWithLabel', async () => {
      for (const v of vectors('crypto-basics')) {
        const cs: CiphersuiteImpl = await impl(provider, v.cipher_suite)
        const r = v.ref_hash
        assert.equal(toHex(await refhash(r.label, hex(r.value), cs.hash)), r.out)
        const e = v.expand_with_label
        assert.equal(toHex(await expandWithLabel(hex(e.secret), e.label, hex(e.context), e.length, cs.kdf)), e.out)
        const d = v.derive_secret
        assert.equal(toHex(await deriveSecret(hex(d.secret), d.label, cs.kdf)), d.out)
        const t = v.derive_tree_secret
        assert.equal(
          toHex(await deriveTreeSecret(hex(t.secret), t.label, t.generation, t.length, cs.kdf)),
          t.out,
          `suite ${v.cipher_suite} derive_tree_secret`,
        )
        const s = v.sign_with_label
        assert.equal(await verifyWithLabel(hex(s.pub), s.label, hex(s.content), hex(s.signature), cs.signature), true)
        const ours = await signWithLabel(hex(s.priv), s.label, hex(s.content), cs.signature)
        assert.equal(await verifyWithLabel(hex(s.pub), s.label, hex(s.content), ours, cs.signature), true)
        // Ed25519 is deterministic: the same key and content give the vector's exact signature.
        if (v.cipher_suite === 1) assert.equal(toHex(ours), s.signature)
        const tampered = hex(s.content)
        tampered[0] = (tampered[0] as number) ^ 1
        assert.equal(await verifyWithLabel(hex(s.pub), s.label, tampered, hex(s.signature), cs.signature), false)
        const c = v.encrypt_with_label
        const privateKey = await cs.hpke.importPrivateKey(hex(c.priv))
        const plaintext = await decryptWithLabel(
          privateKey,
          c.label,
          hex(c.context),
          hex(c.kem_output),
          hex(c.ciphertext),
          cs.hpke,
        )
        assert.equal(toHex(plaintext), c.plaintext)
      }
    })

    test('secret-tree: sender-data keys and every leaf’s handshake and application keys by generation', async () => {
      for (const v of vectors('secret-tree')) {
        const cs = await impl(provider, v.cipher_suite)
        const sd = v.sender_data
        const sample = hex(sd.ciphertext).subarray(0, cs.kdf.size)
        assert.equal(
          toHex(await expandWithLabel(hex(sd.sender_data_secret), 'key', sample, cs.hpke.keyLength, cs.kdf)),
          sd.key,
        )
        assert.equal(
          toHex(await expandWithLabel(hex(sd.sender_data_secret), 'nonce', sample, cs.hpke.nonceLength, cs.kdf)),
          sd.nonce,
        )
        const tree = await createSecretTree(v.leaves.length, hex(v.encryption_secret), cs.kdf)
        const noGuard = new Uint8Array(4) as SenderData['reuseGuard']
        for (const [leafIndex, generations] of (v.leaves as Vector[][]).entries()) {
          for (const g of generations) {
            const senderData = { leafIndex, generation: g.generation, reuseGuard: noGuard }
            const config = { ...KEY_RETENTION, maximumForwardRatchetSteps: 1 << 20 }
            const app = await ratchetToGeneration(tree, senderData, 'application', config, cs)
            assert.equal(toHex(app.key), g.application_key)
            assert.equal(toHex(app.nonce), g.application_nonce)
            const handshake = await ratchetToGeneration(tree, senderData, 'commit', config, cs)
            assert.equal(toHex(handshake.key), g.handshake_key)
            assert.equal(toHex(handshake.nonce), g.handshake_nonce)
          }
        }
      }
    })

    test('key-schedule: every epoch’s secrets from the previous init secret, the commit secret and the context', async () => {
      for (const v of vectors('key-schedule')) {
        const cs = await impl(provider, v.cipher_suite)
        let initSecret: Uint8Array = hex(v.initial_init_secret)
        for (const epoch of v.epochs as Vector[]) {
          const decoded = decodeGroupContext(hex(epoch.group_context), 0)
          assert.ok(decoded, 'the group context decodes')
          const secrets = await initializeEpoch(
            initSecret,
            hex(epoch.commit_secret),
            decoded[0],
            hex(epoch.psk_secret),
            cs.kdf,
          )
          const schedule = secrets.keySchedule
          assert.equal(toHex(secrets.joinerSecret), epoch.joiner_secret)
          assert.equal(toHex(secrets.welcomeSecret), epoch.welcome_secret)
          assert.equal(toHex(schedule.senderDataSecret), epoch.sender_data_secret)
          assert.equal(toHex(secrets.encryptionSecret), epoch.encryption_secret)
          assert.equal(toHex(schedule.exporterSecret), epoch.exporter_secret)
          assert.equal(toHex(schedule.epochAuthenticator), epoch.epoch_authenticator)
          assert.equal(toHex(schedule.externalSecret), epoch.external_secret)
          assert.equal(toHex(schedule.confirmationKey), epoch.confirmation_key)
          assert.equal(toHex(schedule.membershipKey), epoch.membership_key)
          assert.equal(toHex(schedule.resumptionPsk), epoch.resumption_psk)
          assert.equal(toHex(schedule.initSecret), epoch.init_secret)
          const exported = await mlsExporter(
            schedule.exporterSecret,
            epoch.exporter.label,
            hex(epoch.exporter.context),
            epoch.exporter.length,
            cs,
          )
          assert.equal(toHex(exported), epoch.exporter.secret)
          initSecret = schedule.initSecret
        }
      }
    })

    test('message-protection: the vector’s private messages decrypt and verify; a flipped bit does not', async () => {
      for (const v of vectors('message-protection')) {
        const cs = await impl(provider, v.cipher_suite)
        const groupContext = {
          version: 'mls10' as const,
          cipherSuite: cs.name,
          groupId: hex(v.group_id),
          epoch: BigInt(v.epoch),
          treeHash: hex(v.tree_hash),
          confirmedTranscriptHash: hex(v.confirmed_transcript_hash),
          extensions: [],
        }
        // The vectors' sender is leaf 1 of a two-member group; only its leaf's presence is checked here.
        const ratchetTree = [undefined, undefined, { nodeType: 'leaf' }] as unknown as RatchetTree
        const open = async (wire: string) => {
          const decoded = decodeMlsMessage(hex(wire), 0)
          assert.ok(decoded && decoded[0].wireformat === 'mls_private_message')
          const secretTree = await createSecretTree(2, hex(v.encryption_secret), cs.kdf)
          return unprotectPrivateMessage(
            hex(v.sender_data_secret),
            decoded[0].privateMessage,
            secretTree,
            ratchetTree,
            groupContext,
            KEY_RETENTION,
            cs,
            hex(v.signature_pub),
          )
        }
        const application = await open(v.application_priv)
        assert.equal(application.content.content.contentType, 'application')
        if (application.content.content.contentType === 'application') {
          assert.equal(toHex(application.content.content.applicationData), v.application)
        }
        const commit = await open(v.commit_priv)
        assert.equal(commit.content.content.contentType, 'commit')
        const proposal = await open(v.proposal_priv)
        assert.equal(proposal.content.content.contentType, 'proposal')
        const tampered = hex(v.application_priv)
        tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1
        await assert.rejects(open(toHex(tampered)))
      }
    })

    test('passive clients: join by welcome (HPKE), follow every commit (path secrets, HPKE and derived keys), epoch authenticators match', async () => {
      const message = (bytes: string): MLSMessage => {
        const decoded = decodeMlsMessage(hex(bytes), 0)
        assert.ok(decoded, 'the vector holds an MLS message')
        return decoded[0]
      }
      let epochs = 0
      for (const file of ['passive-client-welcome', 'passive-client-handling-commit', 'passive-client-random']) {
        for (const v of vectors(file)) {
          const cs = await impl(provider, v.cipher_suite)
          const keyPackage = message(v.key_package)
          const welcome = message(v.welcome)
          assert.ok(keyPackage.wireformat === 'mls_key_package' && welcome.wireformat === 'mls_welcome')
          const psks = Object.fromEntries(
            (v.external_psks as { psk_id: string; psk: string }[]).map((p) => [
              Buffer.from(p.psk_id, 'hex').toString('base64'),
              hex(p.psk),
            ]),
          )
          const tree = v.ratchet_tree ? decodeRatchetTree(hex(v.ratchet_tree), 0)?.[0] : undefined
          let state: ClientState = await joinGroup(
            welcome.welcome,
            keyPackage.keyPackage,
            {
              initPrivateKey: hex(v.init_priv),
              hpkePrivateKey: hex(v.encryption_priv),
              signaturePrivateKey: hex(v.signature_priv),
            },
            makePskIndex(undefined, psks),
            cs,
            tree,
          )
          assert.equal(toHex(state.keySchedule.epochAuthenticator), v.initial_epoch_authenticator)
          for (const epoch of v.epochs) {
            for (const bytes of [...epoch.proposals, epoch.commit] as string[]) {
              const framed = message(bytes)
              assert.ok(framed.wireformat === 'mls_private_message' || framed.wireformat === 'mls_public_message')
              state = (await processMessage(framed, state, makePskIndex(state, psks), () => 'accept', cs)).newState
            }
            assert.equal(toHex(state.keySchedule.epochAuthenticator), epoch.epoch_authenticator)
            epochs++
          }
        }
      }
      if (present) assert.ok(epochs > 200, `followed ${epochs} epochs`)
    })
  })
}

describe('node crypto provider: random bytes and X25519', () => {
  test('come in the lengths asked for, and no draw repeats another, across many refills of its block', async () => {
    const { rng } = await impl(nodeCryptoProvider, 1)
    // 4-byte reuse guards could collide by chance (1 in 2^32 per pair); 16-byte draws never should.
    const seen = new Set<string>()
    for (let i = 0; i < 20_000; i++) {
      const bytes = rng.randomBytes(16)
      assert.equal(bytes.length, 16)
      seen.add(toHex(bytes))
    }
    assert.equal(seen.size, 20_000)
    // Sizes that do not divide the block, and one larger than the block, are whole and not all zero.
    for (const length of [4, 7, 33, 600, 5000]) {
      const bytes = rng.randomBytes(length)
      assert.equal(bytes.length, length)
      assert.ok(bytes.some((b) => b !== 0))
    }
  })

  test('HPKE seals to an X25519 key and opens with its pair, and refuses a small-order key (all-zero agreement)', async () => {
    const { hpke } = await impl(nodeCryptoProvider, 1)
    const pair = await hpke.generateKeyPair()
    const info = new TextEncoder().encode('info')
    const sealed = await hpke.seal(pair.publicKey, new TextEncoder().encode('path secret'), info)
    assert.equal(new TextDecoder().decode(await hpke.open(pair.privateKey, sealed.enc, sealed.ct, info)), 'path secret')
    await assert.rejects(hpke.open(pair.privateKey, sealed.enc, sealed.ct, new TextEncoder().encode('other info')))
    // u = 0 and u = 1 are points of small order: every agreement with them is all zero (RFC 7748, section 6.1).
    for (const u of [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))]) {
      await assert.rejects(hpke.seal(await hpke.importPublicKey(u), new TextEncoder().encode('x'), info))
    }
  })
})
