/** QEMU's gdbstub of a `--gdb` lab: always on loopback, on a free port of its own. */
import { pickFreeLoopbackPort } from '../host/ports';

export const GDBSTUB_HOST = '127.0.0.1';

/** A free loopback port other than `sshPort` (the kernel may hand out the same free port twice). */
export async function pickGdbPort(sshPort: number): Promise<number> {
  for (;;) {
    const port = await pickFreeLoopbackPort();
    if (port !== sshPort) return port;
  }
}

/** The `target remote` address. */
export function gdbstubAddress(port: number): string {
  return `${GDBSTUB_HOST}:${port}`;
}
