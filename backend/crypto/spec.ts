/**
 * virtio-crypto constants (virtio 1.2 §5.9, include/uapi/linux/virtio_crypto.h) and the legacy
 * (no VIRTIO_CRYPTO_F_REVISION_1) 72-byte data request header that Linux 6.1 sends.
 */

/** Opcodes are (service << 8) | op. */
export const VIRTIO_CRYPTO_SERVICE_CIPHER = 0;
export const VIRTIO_CRYPTO_SERVICE_HASH = 1;
export const VIRTIO_CRYPTO_SERVICE_MAC = 2;
export const VIRTIO_CRYPTO_SERVICE_AEAD = 3;
export const VIRTIO_CRYPTO_SERVICE_AKCIPHER = 4;

export const VIRTIO_CRYPTO_CIPHER_ENCRYPT = 0x000;
export const VIRTIO_CRYPTO_CIPHER_DECRYPT = 0x001;
export const VIRTIO_CRYPTO_HASH = 0x100;
export const VIRTIO_CRYPTO_MAC = 0x200;
export const VIRTIO_CRYPTO_AEAD_ENCRYPT = 0x300;
export const VIRTIO_CRYPTO_AEAD_DECRYPT = 0x301;

/** Control opcode carried by the ≥ 8.1 session message. */
export const VIRTIO_CRYPTO_CIPHER_CREATE_SESSION = 0x02;

/** In a chain session: no cipher, only the hash/MAC part (hash-only and HMAC-only sessions). */
export const VIRTIO_CRYPTO_NO_CIPHER = 0;
export const VIRTIO_CRYPTO_CIPHER_AES_ECB = 2;
export const VIRTIO_CRYPTO_CIPHER_AES_CBC = 3;
export const VIRTIO_CRYPTO_CIPHER_AES_CTR = 4;
export const VIRTIO_CRYPTO_CIPHER_AES_XTS = 13;

/**
 * The spec lists no NULL cipher: ARC4 (1) is RC4, and NO_CIPHER (0) means "no cipher part" in a
 * chain session, so cryptodev-linux's CRYPTO_NULL has no virtio-crypto counterpart.
 */

/** Hash algorithms (§5.9.4.2), hash_alg of a chain session with hash_mode PLAIN. */
export const VIRTIO_CRYPTO_HASH_MD5 = 1;
export const VIRTIO_CRYPTO_HASH_SHA1 = 2;
export const VIRTIO_CRYPTO_HASH_SHA_224 = 3;
export const VIRTIO_CRYPTO_HASH_SHA_256 = 4;
export const VIRTIO_CRYPTO_HASH_SHA_384 = 5;
export const VIRTIO_CRYPTO_HASH_SHA_512 = 6;

/** MAC algorithms (§5.9.4.3), hash_alg of a chain session with hash_mode AUTH. */
export const VIRTIO_CRYPTO_MAC_HMAC_MD5 = 1;
export const VIRTIO_CRYPTO_MAC_HMAC_SHA1 = 2;
export const VIRTIO_CRYPTO_MAC_HMAC_SHA_224 = 3;
export const VIRTIO_CRYPTO_MAC_HMAC_SHA_256 = 4;
export const VIRTIO_CRYPTO_MAC_HMAC_SHA_384 = 5;
export const VIRTIO_CRYPTO_MAC_HMAC_SHA_512 = 6;

export const VIRTIO_CRYPTO_SYM_OP_NONE = 0;
export const VIRTIO_CRYPTO_SYM_OP_CIPHER = 1;
export const VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING = 2;

export const VIRTIO_CRYPTO_OP_ENCRYPT = 1;
export const VIRTIO_CRYPTO_OP_DECRYPT = 2;

export const VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN = 1;
export const VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH = 2;
export const VIRTIO_CRYPTO_SYM_HASH_MODE_NESTED = 3;

/**
 * Chain order. cryptodev-linux's cipher+MAC order maps as: encrypt (MAC the plaintext, then
 * encrypt) = HASH_THEN_CIPHER — the digest covers the request's input; decrypt (decrypt, then MAC
 * the plaintext) = CIPHER_THEN_HASH — the digest covers the output.
 */
export const VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER = 1;
export const VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_CIPHER_THEN_HASH = 2;

/** Status byte values (§5.9.7.1). */
export enum CryptoStatus {
  OK = 0,
  ERR = 1,
  BADMSG = 2,
  NOTSUPP = 3,
  INVSESS = 4,
  NOSPC = 5,
  KEY_REJECTED = 6,
}

/**
 * struct virtio_crypto_op_data_req without REVISION_1: op_header (24 B: le32 opcode, le32 algo,
 * le64 session_id, le32 flag, le32 padding) + a 48-byte union. For symmetric requests the union is
 * virtio_crypto_sym_data_req: a 40-byte para union, then le32 op_type @64.
 */
export const DATA_REQ_HEADER_SIZE = 72;
export const HDR_OPCODE = 0;
export const HDR_ALGO = 4;
export const HDR_SESSION_ID = 8;
export const HDR_FLAG = 16;
/** Offsets inside the 72-byte header of the sym para fields. */
export const SYM_IV_LEN = 24;
export const SYM_SRC_LEN = 28;
export const SYM_DST_LEN = 32;
/** Chain-only fields (virtio_crypto_alg_chain_data_para). */
export const CHAIN_CIPHER_START = 36;
export const CHAIN_LEN_TO_CIPHER = 40;
export const CHAIN_HASH_START = 44;
export const CHAIN_LEN_TO_HASH = 48;
export const CHAIN_AAD_LEN = 52;
export const CHAIN_HASH_RESULT_LEN = 56;
export const SYM_OP_TYPE = 64;

/** Largest IV any supported mode takes; larger iv_len is rejected before reading. */
export const MAX_IV_LEN = 16;
/**
 * Largest src_len / dst_len of one data request, in bytes: the device's max_size (virtio 1.2
 * §5.9.4, "the maximum size of each crypto request's content"). 1 MiB, the same bound as the lab's
 * guest driver (VC_MAX_DATA_LEN), so whatever that driver sends is served. Beyond it the request is
 * answered ERR before any byte is copied: descriptors aliasing the same guest RAM cannot make one
 * request cost more than a few times this much host memory.
 */
export const MAX_DATA_LEN = 1 << 20;

/** Largest AAD accepted (the session's add_len limit QEMU advertises is far lower in practice). */
export const MAX_AAD_LEN = 64 * 1024;

export function opcodeName(opcode: number): string {
  switch (opcode) {
    case VIRTIO_CRYPTO_CIPHER_ENCRYPT: return 'CIPHER_ENCRYPT';
    case VIRTIO_CRYPTO_CIPHER_DECRYPT: return 'CIPHER_DECRYPT';
    case VIRTIO_CRYPTO_HASH: return 'HASH';
    case VIRTIO_CRYPTO_MAC: return 'MAC';
    case VIRTIO_CRYPTO_AEAD_ENCRYPT: return 'AEAD_ENCRYPT';
    case VIRTIO_CRYPTO_AEAD_DECRYPT: return 'AEAD_DECRYPT';
    default: return `0x${opcode.toString(16)}`;
  }
}
