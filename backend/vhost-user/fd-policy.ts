/**
 * What the back-end accepts as fds from a front-end, judged before it maps or polls anything:
 *
 * - Guest memory must be a memfd sealed against shrinking (F_SEAL_SHRINK) and at least as large as
 *   the region. Touching a shared mapping beyond the end of its file raises SIGBUS, which no code
 *   in a Node process can catch — the back-end (and with it the VM, QEMU 7.2 cannot reconnect)
 *   would die. Checking the size once at SET_MEM_TABLE is not enough on its own: the front-end
 *   could ftruncate the file afterwards. A seal can never be removed, so "sealed, then large
 *   enough" stays true for the mapping's whole life. QEMU's memory-backend-memfd seals by default
 *   (seal=on: F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL, measured on QEMU 7.2); memory-backend-file or
 *   seal=off is refused with a message saying so.
 * - Kick, call and err fds must be eventfds in non-blocking mode. A pipe, socket or blocking eventfd
 *   could block the event loop in read/write (a full pipe as call fd froze it at the first
 *   interrupt). The back-end does not set O_NONBLOCK itself: the flag belongs to the open file
 *   description it shares with the front-end, so setting it would change the front-end's own I/O
 *   behind its back. QEMU's event notifiers are EFD_NONBLOCK eventfds.
 */
import { EVENTFD_TARGET, F_SEAL_SHRINK, fdStatus } from '../../addon/lib/vhost';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** Why fd cannot back [offset, offset+length) of guest memory, or undefined if it can. */
export function guestMemoryFdProblem(fd: number, offset: number, length: number): string | undefined {
  const st = fdStatus(fd);
  if ((st.mode & S_IFMT) !== S_IFREG || st.seals === null) {
    return `fd is ${st.target}, not a memfd (guest memory must be a memfd sealed with F_SEAL_SHRINK, e.g. QEMU's memory-backend-memfd)`;
  }
  if ((st.seals & F_SEAL_SHRINK) === 0) {
    return `memfd is not sealed with F_SEAL_SHRINK (seals 0x${st.seals.toString(16)}): the front-end could truncate it under the mapping (SIGBUS); use memory-backend-memfd with seal=on`;
  }
  if (offset + length > st.size) return `region [${offset}, +${length}) extends past the end of the ${st.size}-byte memfd`;
  return undefined;
}

/** Why fd cannot serve as a vring kick/call/err notifier, or undefined if it can. */
export function notifierFdProblem(fd: number): string | undefined {
  const st = fdStatus(fd);
  if (st.target !== EVENTFD_TARGET) return `fd is ${st.target}, not an eventfd`;
  if (!st.nonBlocking) return 'eventfd is in blocking mode (O_NONBLOCK not set); a read or write could block the back-end';
  return undefined;
}
