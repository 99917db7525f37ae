import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto"

/**
 * Ed25519 over raw 32-byte keys in hex, the form keys take in events. Signing is deterministic
 * (RFC 8032), so the same key and message always give the same signature.
 */
const b64url = (hex: string) => Buffer.from(hex, "hex").toString("base64url")

/**
 * Key objects by their hex, memoised: building one costs more than a signature, and a node signs,
 * and a router verifies, with the same few keys thousands of times. Bounded: cleared when full.
 */
const memo = <V>(make: (hex: string) => V) => {
  const cache = new Map<string, V>()
  return (hex: string): V => {
    let v = cache.get(hex)
    if (v === undefined) {
      if (cache.size >= 4096) cache.clear()
      v = make(hex)
      cache.set(hex, v)
    }
    return v
  }
}

export const publicKeyFromHex: (hex: string) => KeyObject = memo((hex) => createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64url(hex) }, format: "jwk" }))

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex")

/** A private key from its 32-byte seed. */
export const privateKeyFromSeed: (seedHex: string) => KeyObject = memo((seedHex) =>
  createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, Buffer.from(seedHex, "hex")]), format: "der", type: "pkcs8" })
)

export const derivePublicHex = (seedHex: string): string => {
  const jwk = createPublicKey(privateKeyFromSeed(seedHex)).export({ format: "jwk" })
  return Buffer.from(String(jwk.x), "base64url").toString("hex")
}

export type KeyPair = { readonly publicKey: string; readonly seed: string }

export const keyPairFromSeed = (seedHex: string): KeyPair => ({ publicKey: derivePublicHex(seedHex), seed: seedHex })

export const signHex = (seedHex: string, messageHex: string): string =>
  sign(null, Buffer.from(messageHex, "hex"), privateKeyFromSeed(seedHex)).toString("hex")

export const verifyHex = (publicKeyHex: string, messageHex: string, signatureHex: string): boolean => {
  try {
    return verify(null, Buffer.from(messageHex, "hex"), publicKeyFromHex(publicKeyHex), Buffer.from(signatureHex, "hex"))
  } catch {
    return false
  }
}
