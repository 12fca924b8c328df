/**
 * Which path encrypts a chat peer the extension launches, said in the terminal's header before the
 * peer prints its own "cipher:" line. Pure (no vscode import): unit-tested in plain Node.
 */
import type { GuestDriver } from '../lab/state';

export type ChatCrypto = 'auto' | 'none' | 'cryptodev' | 'software';

export interface ChatPath {
  /** short, for the terminal's name: "/dev/crypto", "software", "plain text" */
  short: string;
  /** one line for the terminal's header */
  header: string;
  /** true when this peer's cipher runs through the lab's virtio-crypto device */
  throughDevice: boolean;
}

const DEVICE_PATH = '/dev/crypto → lab driver (vlab_virtio_aes_cbc) → virtio-crypto → TypeScript backend';

export function guestChatPath(crypto: ChatCrypto, driver: GuestDriver | undefined): ChatPath {
  if (crypto === 'none') return { short: 'plain text', header: 'crypto: none — plain text on the wire', throughDevice: false };
  const hasDevCrypto = driver === 'lab';
  if (crypto === 'software') return { short: 'software', header: 'crypto: software (node:crypto in the guest), by setting vlab.chat.crypto', throughDevice: false };
  if (hasDevCrypto) return { short: '/dev/crypto', header: `crypto: ${DEVICE_PATH}`, throughDevice: true };
  if (crypto === 'cryptodev') return { short: '/dev/crypto (missing)', header: `crypto: /dev/crypto requested, but the guest driver is ${driver ?? 'unknown'}: the peer will refuse to start`, throughDevice: false };
  return { short: 'software', header: `crypto: software (node:crypto in the guest) — guest driver ${driver ?? 'unknown'} gives no /dev/crypto; set vlab.guestDriver to "lab" to chat through the device`, throughDevice: false };
}

export function hostChatPath(crypto: ChatCrypto): ChatPath {
  if (crypto === 'none') return { short: 'plain text', header: 'crypto: none — plain text on the wire', throughDevice: false };
  if (crypto === 'cryptodev') return { short: 'host /dev/crypto', header: "crypto: the host's /dev/crypto (cryptodev-linux)", throughDevice: false };
  return { short: 'host', header: "crypto: the host's /dev/crypto if it opens, else software (node:crypto) — the host side never uses the VM's device", throughDevice: false };
}
