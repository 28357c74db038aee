import type { CustomerFactor, FactorProof } from './auth-protocol.ts'

export type { CustomerFactor, FactorProof }
