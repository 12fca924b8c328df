/**
 * The conformance oracle's rule table: every driver-side requirement of virtio 1.2 that this device
 * can observe on the split virtqueue, in vhost-user's view of initialisation and in virtio-crypto
 * requests (§5.9), plus the device's own limits (a request refused for them is not the driver's
 * fault). One row per rule, indexed by the numbers in {@link R}; docs/checking.md lists the same
 * rows. Pure data: no imports, so every room (the data path, telemetry, the CLI) may read it.
 *
 * Clause numbers are virtio 1.2's (OASIS, 2022): §2.7 split virtqueues, §5.9 the crypto device.
 */

/** `driver`: a requirement on the driver (a violation); `device`: this device's own limit (a refusal). */
export type RuleKind = 'driver' | 'device';

/** Where the oracle is told about it. */
export type RuleSite = 'init' | 'ring' | 'chain' | 'crypto';

export interface RuleInfo {
  /** Stable name, e.g. "chain.order" (telemetry, tests, docs/checking.md). */
  readonly id: string;
  /** "§2.7.4.2" — the virtio 1.2 clause (or the vhost-user message) the rule comes from. */
  readonly clause: string;
  readonly kind: RuleKind;
  readonly site: RuleSite;
  /** What a conforming driver does, in one line. */
  readonly text: string;
}

/** Rule numbers (index into RULES; 0 is "none"). Numbers, not strings: the data path stores them. */
export const R = {
  None: 0,
  // ---- initialisation (vhost-user messages) ------------------------------------------------
  InitFeatures: 1,
  InitProtocolFeatures: 2,
  RingAlignment: 3,
  UsedFlagsInit: 4,
  // ---- the available ring --------------------------------------------------------------------
  AvailDecrement: 5,
  AvailAhead: 6,
  AvailHeadRange: 7,
  AvailHeadInUse: 8,
  AvailFlags: 9,
  // ---- descriptor chains --------------------------------------------------------------------
  IndirectFeature: 10,
  IndirectNested: 11,
  IndirectNext: 12,
  IndirectLength: 13,
  DescNextRange: 14,
  DescAddress: 15,
  ChainLoop: 16,
  ChainBytes: 17,
  ChainOrder: 18,
  // ---- descriptor chains: this device's limits -------------------------------------------------
  IndirectNotFirst: 19,
  IndirectTableSize: 20,
  IndirectTableRegions: 21,
  // ---- virtio-crypto requests ------------------------------------------------------------------
  CryptoHeader: 22,
  CryptoStatusRoom: 23,
  CryptoOpcodeUnknown: 24,
  CryptoOpcodeSession: 25,
  CryptoSessionUnknown: 26,
  CryptoCloseUnknown: 27,
  CryptoOpType: 28,
  CryptoIvLength: 29,
  CryptoReadableLength: 30,
  CryptoWritableLength: 31,
  CryptoChainRanges: 32,
  // ---- virtio-crypto requests: this device's limits ----------------------------------------------
  CryptoMaxSize: 33,
  CryptoAadLimit: 34,
  CryptoIvLimit: 35,
  CryptoDstLength: 36,
  CryptoEmptySource: 37,
  CryptoHashLength: 38,
  CryptoNoCipherLength: 39,
  CryptoBlocks: 40,
} as const;

export type RuleNumber = (typeof R)[keyof typeof R];

const rule = (id: string, clause: string, kind: RuleKind, site: RuleSite, text: string): RuleInfo => ({ id, clause, kind, site, text });

/** Indexed by {@link R}; RULES[0] is a placeholder for "no rule". */
export const RULES: readonly RuleInfo[] = [
  rule('none', '', 'driver', 'ring', 'no rule'),
  rule('init.features', '§2.2.1', 'driver', 'init', 'SET_FEATURES acks only feature bits the device offered'),
  rule('init.protocol-features', 'vhost-user', 'driver', 'init', 'SET_PROTOCOL_FEATURES acks only protocol features the back-end offered (vhost-user protocol, not virtio)'),
  rule('ring.alignment', '§2.7.1', 'driver', 'init', 'descriptor table 16-, available ring 2-, used ring 4-byte aligned'),
  rule('ring.used-flags', '§2.7.10.1', 'driver', 'init', 'the used ring\'s flags are 0 when the ring is set up (the device alone writes the used ring)'),
  rule('avail.decrement', '§2.7.6.1', 'driver', 'ring', 'the available idx is never decremented'),
  rule('avail.ahead', '§2.7 + §2.7.13', 'driver', 'ring', 'at most Queue Size buffers outstanding: avail idx − used idx ≤ Queue Size'),
  rule('avail.head-range', '§2.7.6 + §2.7.5', 'driver', 'ring', 'an available ring entry names a descriptor of the table (< Queue Size)'),
  rule('avail.head-in-use', '§2.7.13 + §2.7.13.1', 'driver', 'ring', 'a chain goes into free descriptors: its head is not one the device still holds'),
  rule('avail.flags', '§2.7.7.1', 'driver', 'ring', 'avail flags are 0 or 1 (0 with VIRTIO_F_EVENT_IDX)'),
  rule('desc.indirect-feature', '§2.7.5.3.1', 'driver', 'chain', 'VIRTQ_DESC_F_INDIRECT only when VIRTIO_F_INDIRECT_DESC was negotiated'),
  rule('desc.indirect-nested', '§2.7.5.3.1', 'driver', 'chain', 'no VIRTQ_DESC_F_INDIRECT inside an indirect table'),
  rule('desc.indirect-next', '§2.7.5.3.1', 'driver', 'chain', 'never VIRTQ_DESC_F_INDIRECT and VIRTQ_DESC_F_NEXT together'),
  rule('desc.indirect-length', '§2.7.5.3', 'driver', 'chain', 'an indirect table is a non-empty array of 16-byte descriptors (len a multiple of 16)'),
  rule('desc.next-range', '§2.7.5 + §2.7.5.3', 'driver', 'chain', 'next names a descriptor of the same table'),
  rule('desc.address', '§2.7.5', 'driver', 'chain', 'addr + len is guest-physical memory'),
  rule('chain.loop', '§2.7.5.2 + §2.7.5.3.1', 'driver', 'chain', 'no loop: a chain is never longer than Queue Size descriptors'),
  rule('chain.bytes', '§2.7.5.2', 'driver', 'chain', 'a chain is at most 2^32 bytes in total'),
  rule('chain.order', '§2.7.4.2', 'driver', 'chain', 'device-writable descriptors after all device-readable ones'),
  rule('device.indirect-not-first', '§2.7.5.3.2', 'device', 'chain', 'this device takes an indirect table only as the first descriptor of a chain (a device requirement it does not meet)'),
  rule('device.indirect-table-size', '§2.7.4.1', 'device', 'chain', 'this device takes indirect tables of at most Queue Size entries'),
  rule('device.indirect-table-regions', '§2.7.5.3', 'device', 'chain', 'this device reads an indirect table from one memory region'),
  rule('crypto.header', '§5.9.7.3', 'driver', 'crypto', 'the device-readable part starts with the 72-byte request header (op_header + op_flf)'),
  rule('crypto.status-room', '§5.9.7.3', 'driver', 'crypto', 'the device-writable part ends with room for the status byte (virtio_crypto_inhdr)'),
  rule('crypto.opcode-unknown', '§5.9.7.3', 'driver', 'crypto', 'opcode is one of those virtio_crypto_op_header defines'),
  rule('crypto.opcode-session', '§5.9.7.6.1', 'driver', 'crypto', 'on a symmetric session the opcode is CIPHER_ENCRYPT or CIPHER_DECRYPT'),
  rule('crypto.session-unknown', '§5.9.7.6.1', 'driver', 'crypto', 'session_id is one the device assigned when the session was created, not destroyed since (§5.9.7.4.1, §5.9.7.5.1, §5.9.7.7.1, §5.9.7.8.1 alike for HASH, MAC, AEAD, AKCIPHER)'),
  rule('crypto.close-unknown', '§5.9.7.2.1.8', 'driver', 'crypto', 'a destroy request names a session the device created'),
  rule('crypto.op-type', '§5.9.7.6.1', 'driver', 'crypto', 'op_type (cipher or algorithm chaining) is the session\'s'),
  rule('crypto.iv-length', '§5.9.7.6', 'driver', 'crypto', 'iv_len is the IV length of the session\'s cipher (the block length for CBC/CTR, the 16-byte tweak for XTS)'),
  rule('crypto.readable-length', '§5.9.7.6', 'driver', 'crypto', 'iv, aad and src_data (iv_len, aad_len, src_data_len) lie in the device-readable part'),
  rule('crypto.writable-length', '§5.9.7.6', 'driver', 'crypto', 'dst_data and hash_result (dst_data_len, hash_result_len) lie in the device-writable part, before the status'),
  rule('crypto.chain-ranges', '§5.9.7.6', 'driver', 'crypto', 'the cipher and hash ranges of a chaining request lie inside src_data'),
  rule('device.max-size', '§5.9.5', 'device', 'crypto', 'src_data_len and dst_data_len within this device\'s max_size (the guest reads QEMU\'s max_size, not this)'),
  rule('device.aad-limit', '§5.9.7.6', 'device', 'crypto', 'aad_len within this device\'s limit'),
  rule('device.iv-limit', '§5.9.7.6', 'device', 'crypto', 'at most 16 bytes of IV for a mode without one (ECB, no cipher)'),
  rule('device.dst-length', '§5.9.7.6', 'device', 'crypto', 'dst_data_len is src_data_len (a cipher), or 0 (a digest only)'),
  rule('device.empty-source', '§5.9.7.6', 'device', 'crypto', 'a cipher request has src_data_len > 0'),
  rule('device.hash-length', '§5.9.7.6', 'device', 'crypto', 'hash_result_len is the session\'s'),
  rule('device.no-cipher-length', '§5.9.7.6', 'device', 'crypto', 'len_to_cipher is 0 on a session without a cipher'),
  rule('device.blocks', '§5.9.7.6', 'device', 'crypto', 'whole AES blocks for CBC/ECB, at least one block for XTS'),
];

/** "[§2.7.4.2 chain.order]": how a refusal names the rule it broke (logs, recent requests, telemetry). */
export function ruleTag(n: number): string {
  const r = RULES[n] ?? RULES[0];
  return r.kind === 'driver' ? `[${r.clause} ${r.id}]` : `[device limit ${r.id}, ${r.clause}]`;
}

/** `text` followed by the rule's tag. */
export function named(n: number, text: string): string {
  return `${text} ${ruleTag(n)}`;
}

/** The rule with this id (`vlab check --rule`, tests), or undefined. */
export function ruleById(id: string): RuleInfo | undefined {
  return RULES.find((r, i) => i > 0 && r.id === id);
}
