#!/usr/bin/env node
// Verifies a Strongroom consent receipt offline, as a bank or an auditor would: with the receipt (a JWS) and the JWKS
// published at /.well-known/jwks.json, nothing else. Two signatures are checked: the bank's over the receipt, and,
// for an approval by device key, the customer's own device signature over the exact RFC 8785 payload it was shown,
// with the device key the receipt names (its RFC 7638 thumbprint must match).
//
//   node scripts/verify-receipt.js receipt.jws jwks.json
//
// Prints the verified claims as JSON and exits 0, or names what failed and exits 1.
import { readFileSync } from 'node:fs'
import canonicalize from 'canonicalize'
import { calculateJwkThumbprint, compactVerify, createLocalJWKSet, importJWK, jwtVerify } from 'jose'

const [receiptFile, jwksFile] = process.argv.slice(2)
if (!receiptFile || !jwksFile) {
  console.error('usage: node scripts/verify-receipt.js RECEIPT_FILE JWKS_FILE')
  process.exit(2)
}

class DeviceSignatureError extends Error {
  code = 'ERR_DEVICE_SIGNATURE'
}

/** The customer's act: the device's JWS verifies with the named key and covers exactly what the bank's receipt says. */
async function verifyDeviceSignature(claims) {
  const { deviceKey, deviceSignature, keyThumbprint } = claims
  if (!deviceKey || typeof deviceSignature !== 'string') {
    throw new DeviceSignatureError('the receipt carries no device signature')
  }
  if ((await calculateJwkThumbprint(deviceKey)) !== keyThumbprint) {
    throw new DeviceSignatureError('the device key is not the one whose thumbprint the receipt names')
  }
  const algorithm = deviceKey.kty === 'OKP' ? 'EdDSA' : 'ES256'
  let payload
  try {
    ;({ payload } = await compactVerify(deviceSignature, await importJWK(deviceKey, algorithm), {
      algorithms: [algorithm],
    }))
  } catch {
    throw new DeviceSignatureError('the device signature does not verify with the device key')
  }
  const text = new TextDecoder().decode(payload)
  const signed = JSON.parse(text)
  const expected = canonicalize({
    type: 'strongroom-consent/v1',
    consentId: claims.sub,
    amount: claims.transaction.amount,
    payee: claims.transaction.payee,
    reference: claims.transaction.reference,
    challenge: claims.challenge,
    expiresAt: signed.expiresAt,
  })
  if (text !== expected) throw new DeviceSignatureError('the device signed another transaction than the receipt names')
}

try {
  const receipt = readFileSync(receiptFile, 'utf8').trim()
  const jwks = createLocalJWKSet(JSON.parse(readFileSync(jwksFile, 'utf8')))
  const { payload, protectedHeader } = await jwtVerify(receipt, jwks, {
    issuer: 'strongroom',
    typ: 'strongroom-receipt+jwt',
    algorithms: ['ES256'],
  })
  if (payload.factor === 'device-key') await verifyDeviceSignature(payload)
  console.log(JSON.stringify({ valid: true, kid: protectedHeader.kid, ...payload }, null, 2))
} catch (error) {
  console.error(`receipt not valid: ${error.code ?? ''} ${error.message}`.trim())
  process.exit(1)
}
