import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { test } from 'node:test'
import {
  APPLE_APP_ATTESTATION_ROOT_CA_PEM,
  GOOGLE_HARDWARE_ATTESTATION_ROOT_RSA_PEM,
  GOOGLE_KEY_ATTESTATION_CA1_PEM,
} from './trust-roots.ts'

// SHA-256 fingerprints of the published certificates; an edited PEM fails here before it fails in production.
const pinned = [
  {
    pem: APPLE_APP_ATTESTATION_ROOT_CA_PEM,
    subject: 'CN=Apple App Attestation Root CA\nO=Apple Inc.\nST=California',
    fingerprint: '1C:B9:82:3B:A2:8B:A6:AD:2D:33:A0:06:94:1D:E2:AE:4F:51:3E:F1:D4:E8:31:B9:F7:E0:FA:7B:62:42:C9:32',
  },
  {
    pem: GOOGLE_HARDWARE_ATTESTATION_ROOT_RSA_PEM,
    subject: 'serialNumber=f92009e853b6b045',
    fingerprint: 'CE:DB:1C:B6:DC:89:6A:E5:EC:79:73:48:BC:E9:28:67:53:C2:B3:8E:E7:1C:E0:FB:E3:4A:9A:12:48:80:0D:FC',
  },
  {
    pem: GOOGLE_KEY_ATTESTATION_CA1_PEM,
    subject: 'CN=Key Attestation CA1\nOU=Android\nO=Google LLC\nC=US',
    fingerprint: '6D:9D:B4:CE:6C:5C:0B:29:31:66:D0:89:86:E0:57:74:A8:77:6C:EB:52:5D:9E:43:29:52:0D:E1:2B:A4:BC:C0',
  },
]

test('the pinned production roots are the published, self-signed CA certificates', () => {
  for (const { pem, subject, fingerprint } of pinned) {
    const root = new X509Certificate(pem)
    assert.equal(root.subject, subject)
    assert.equal(root.fingerprint256, fingerprint)
    assert.ok(root.ca)
    assert.ok(root.verify(root.publicKey))
  }
})
