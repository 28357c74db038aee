#!/usr/bin/env node
// Verifies a Strongroom consent receipt offline, as a bank would: with the receipt (a JWS) and the JWKS published at
// /.well-known/jwks.json, nothing else.
//
//   node scripts/verify-receipt.js receipt.jws jwks.json
//
// Prints the verified claims as JSON and exits 0, or names what failed and exits 1.
import { readFileSync } from 'node:fs'
import { createLocalJWKSet, jwtVerify } from 'jose'

const [receiptFile, jwksFile] = process.argv.slice(2)
if (!receiptFile || !jwksFile) {
  console.error('usage: node scripts/verify-receipt.js RECEIPT_FILE JWKS_FILE')
  process.exit(2)
}
try {
  const receipt = readFileSync(receiptFile, 'utf8').trim()
  const jwks = createLocalJWKSet(JSON.parse(readFileSync(jwksFile, 'utf8')))
  const { payload, protectedHeader } = await jwtVerify(receipt, jwks, {
    issuer: 'strongroom',
    typ: 'strongroom-receipt+jwt',
    algorithms: ['ES256'],
  })
  console.log(JSON.stringify({ valid: true, kid: protectedHeader.kid, ...payload }, null, 2))
} catch (error) {
  console.error(`receipt not valid: ${error.code ?? ''} ${error.message}`.trim())
  process.exit(1)
}
