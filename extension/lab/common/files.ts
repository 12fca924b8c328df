/** Small bounded file helpers: logs written by the guest or by QEMU are never read whole. */
import { closeSync, fstatSync, openSync, readSync, unlinkSync } from 'node:fs';

/** The last `maxLines` lines of a file, reading at most `maxBytes` from its end. '' when missing. */
export function tailFile(path: string, maxLines = 30, maxBytes = 64 * 1024): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, maxBytes);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    // Terminal control sequences from the guest console would garble the user's terminal.
    const text = buf.toString('utf8').replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-maxLines).join('\n');
  } finally {
    closeSync(fd);
  }
}

export function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
