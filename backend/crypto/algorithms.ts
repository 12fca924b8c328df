/** The virtio-crypto algorithm numbers a session names (§5.9.7.2.1) as the engine's names (device.ts decodes sessions with them), and a session's algorithm as telemetry names it. */
import type { CipherMode, HashAlg } from './engine';
import * as S from './spec';

export const MODES: Readonly<Record<number, CipherMode>> = {
  [S.VIRTIO_CRYPTO_CIPHER_AES_CBC]: 'cbc',
  [S.VIRTIO_CRYPTO_CIPHER_AES_CTR]: 'ctr',
  [S.VIRTIO_CRYPTO_CIPHER_AES_ECB]: 'ecb',
  [S.VIRTIO_CRYPTO_CIPHER_AES_XTS]: 'xts',
};
/** hash_mode PLAIN: hash_alg is a VIRTIO_CRYPTO_HASH_* number. */
export const HASHES: Readonly<Record<number, HashAlg>> = {
  [S.VIRTIO_CRYPTO_HASH_MD5]: 'md5',
  [S.VIRTIO_CRYPTO_HASH_SHA1]: 'sha1',
  [S.VIRTIO_CRYPTO_HASH_SHA_224]: 'sha224',
  [S.VIRTIO_CRYPTO_HASH_SHA_256]: 'sha256',
  [S.VIRTIO_CRYPTO_HASH_SHA_384]: 'sha384',
  [S.VIRTIO_CRYPTO_HASH_SHA_512]: 'sha512',
};
/** hash_mode AUTH: hash_alg is a VIRTIO_CRYPTO_MAC_* number. */
export const HMACS: Readonly<Record<number, HashAlg>> = {
  [S.VIRTIO_CRYPTO_MAC_HMAC_MD5]: 'md5',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA1]: 'sha1',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_224]: 'sha224',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256]: 'sha256',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_384]: 'sha384',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_512]: 'sha512',
};

function hashName(chain: { readonly hash: HashAlg; readonly hashMode: number }): string {
  const h = chain.hash === 'md5' ? 'MD5' : chain.hash === 'sha1' ? 'SHA1' : `SHA-${chain.hash.slice(3)}`;
  return chain.hashMode === S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH ? `HMAC-${h}` : h;
}

/** e.g. "AES-256-CBC", "AES-128-CBC + HMAC-SHA-256 (hash then cipher)", "SHA-256". */
export function algorithmName(s: { readonly mode: CipherMode | null; readonly keyBits: number; readonly chain?: { readonly hash: HashAlg; readonly hashMode: number; readonly order: number } }): string {
  const cipher = s.mode ? `AES-${s.keyBits}-${s.mode.toUpperCase()}` : '';
  if (!s.chain) return cipher;
  if (!s.mode) return hashName(s.chain);
  return `${cipher} + ${hashName(s.chain)} (${s.chain.order === S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER ? 'hash then cipher' : 'cipher then hash'})`;
}
