/**
 * One vhost-user connection's byte stream: reads framed messages (header, then exactly `size`
 * payload bytes) with the fds that arrived alongside, and writes replies. Validation of the header
 * happens before any payload byte is read, so a hostile size never sizes a read. No protocol
 * semantics here.
 */
import * as vhost from '../../addon/lib/vhost';
import { FLAG_REPLY, FLAG_VERSION, HEADER_SIZE, type Header, MAX_MEM_REGIONS, WireError, decodeHeader, encodeMessage, validateFds, validateHeader } from './wire';

export interface Message {
  readonly header: Header;
  readonly payload: Buffer;
  /** Owned by the receiver of the message: close what is not kept. */
  readonly fds: number[];
}

export type ReadResult = { readonly kind: 'message'; readonly message: Message } | { readonly kind: 'wait' } | { readonly kind: 'closed' };

export class Connection {
  private header: Header | undefined;
  private chunks: Buffer[] = [];
  private have = 0;
  private fds: number[] = [];
  private closed = false;

  constructor(readonly fd: number) {}

  /**
   * Reads until one whole message is available, the socket would block or the peer closed.
   * Throws {@link WireError} for a malformed message (its fds are closed first).
   */
  read(): ReadResult {
    for (;;) {
      const need = (this.header ? this.header.size : HEADER_SIZE) - this.have;
      if (need === 0) {
        const done = this.complete();
        if (done) return { kind: 'message', message: done };
        continue;
      }
      const got = vhost.recvMsg(this.fd, need, MAX_MEM_REGIONS);
      if (!got) return { kind: 'wait' };
      this.fds.push(...got.fds);
      if (got.truncatedFds) {
        this.dropFds();
        throw new WireError(this.header?.request ?? 0, 'more fds than any message may carry (control data truncated)', this.header?.flags);
      }
      if (got.bytes.length === 0) {
        this.dropFds();
        return { kind: 'closed' };
      }
      this.chunks.push(got.bytes);
      this.have += got.bytes.length;
    }
  }

  /** Called when the current stage's bytes are all in. Returns a message or undefined (header done). */
  private complete(): Message | undefined {
    const bytes = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks = [];
    this.have = 0;
    if (!this.header) {
      const header = decodeHeader(bytes);
      try {
        validateHeader(header);
      } catch (err) {
        this.dropFds();
        throw err;
      }
      this.header = header;
      if (header.size > 0) return undefined;
    }
    const header = this.header;
    const payload = this.header.size > 0 ? bytes : Buffer.alloc(0);
    const fds = this.fds;
    this.header = undefined;
    this.fds = [];
    try {
      validateFds(header, payload, fds.length);
    } catch (err) {
      for (const fd of fds) vhost.closeFd(fd);
      throw err instanceof WireError ? err.withFlags(header.flags) : err;
    }
    return { header, payload, fds };
  }

  private dropFds(): void {
    for (const fd of this.fds) vhost.closeFd(fd);
    this.fds = [];
  }

  /** Sends a reply to `request`. Throws if the socket cannot take the whole message. */
  reply(request: number, payload: Uint8Array): void {
    this.send(encodeMessage(request, FLAG_VERSION | FLAG_REPLY, payload));
  }

  send(bytes: Uint8Array, fds: readonly number[] = []): void {
    const n = vhost.sendMsg(this.fd, bytes, fds);
    if (n !== bytes.length) throw new Error(`short write on the vhost-user socket (${n} of ${bytes.length} bytes)`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dropFds();
    vhost.closeFd(this.fd);
  }
}
