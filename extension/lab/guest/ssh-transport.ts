/**
 * What an SshSession (ssh.ts) runs its channels over: one ssh2 connection of its own (sshTransport), or
 * the lab's SSH mux (extension/lab/mux/client.ts), which holds one connection for every vlab command.
 */
import type { Duplex, Readable } from 'node:stream';
import type { Client } from 'ssh2';

/** One exec or shell channel: stdout is the readable side, stdin the writable side (ssh2's ClientChannel has this shape). */
export interface GuestChannel extends Duplex {
  readonly stderr: Readable;
  close(): void;
  setWindow(rows: number, cols: number, height: number, width: number): void;
}

/** Called once: with an error, or with the open channel. */
export type ChannelCallback = (err: Error | undefined, channel?: GuestChannel) => void;

export interface TransportPty {
  readonly cols: number;
  readonly rows: number;
  readonly term: string;
}

export interface SessionTransport {
  exec(command: string, pty: TransportPty | undefined, cb: ChannelCallback): void;
  shell(pty: TransportPty, cb: ChannelCallback): void;
  end(): void;
  /** Called once when the transport is gone. */
  onClose(listener: () => void): void;
}

/** The transport over one ssh2 connection. */
export function sshTransport(client: Client): SessionTransport {
  client.on('error', () => undefined); // surfaced through 'close' and failing calls
  return {
    exec(command, pty, cb) {
      client.exec(command, pty ? { pty: { ...pty } } : {}, (err, ch) => cb(err, ch));
    },
    shell(pty, cb) {
      client.shell({ ...pty }, (err, ch) => cb(err, ch));
    },
    end: () => client.end(),
    onClose: (listener) => client.once('close', listener),
  };
}
