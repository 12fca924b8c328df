/**
 * Typed facade over the vhost-user plumbing in addon/src/vhost.cc: unix sockets with fd passing,
 * shared mappings, eventfds, memfds and libuv readiness callbacks. Every failing syscall throws a
 * {@link SyscallError} carrying errno, code and the syscall's name; bad argument types throw TypeError.
 */
import { nativeFunction } from './native';

export interface SyscallError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
}

export function isSyscallError(err: unknown): err is SyscallError {
  return err instanceof Error && typeof (err as Partial<SyscallError>).syscall === 'string';
}

export interface ReceivedMessage {
  /** Bytes read; empty means the peer closed the connection. */
  readonly bytes: Buffer;
  /** File descriptors that arrived with these bytes (the caller owns and must close them). */
  readonly fds: readonly number[];
  /** The kernel dropped fds that did not fit: the message must be rejected. */
  readonly truncatedFds: boolean;
}

/** What fdStatus() reports about an fd (fstat, F_GETFL, F_GET_SEALS, readlink of /proc/self/fd/N). */
export interface FdStatus {
  /** st_mode. */
  readonly mode: number;
  /** st_size. */
  readonly size: number;
  readonly nonBlocking: boolean;
  /** F_GET_SEALS; null when the file cannot carry seals (anything but shmem/memfd). */
  readonly seals: number | null;
  /** e.g. "anon_inode:[eventfd]", "pipe:[1234]", "/memfd:name (deleted)". */
  readonly target: string;
}

/** A unix socket peer's credentials as of its connect() (SO_PEERCRED). */
export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** File seals (linux/fcntl.h). */
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const F_SEAL_WRITE = 0x8;
/** readlink(/proc/self/fd/N) of an eventfd. */
export const EVENTFD_TARGET = 'anon_inode:[eventfd]';

/** Opaque handle of an fd watched by libuv. */
export interface PollHandle {
  readonly __pollHandle: unique symbol;
}

/** status < 0 is a libuv error code; count is the eventfd counter when draining, else 1. */
export type PollCallback = (status: number, count: number) => void;

interface VhostNative {
  vhostListenUnix(path: string, backlog: number): number;
  vhostConnectUnix(path: string): number;
  vhostAccept(listenFd: number): number | null;
  vhostPeerCred(fd: number): PeerCred;
  vhostRecvMsg(fd: number, maxBytes: number, maxFds: number): ReceivedMessage | null;
  vhostSendMsg(fd: number, bytes: Uint8Array, fds: readonly number[]): number;
  vhostMmap(fd: number, offset: number, length: number, writable: boolean): ArrayBuffer;
  vhostMunmap(buffer: ArrayBuffer): boolean;
  vhostMemfdCreate(name: string, size: number, seal: boolean): number;
  vhostFdStatus(fd: number): FdStatus;
  vhostEventfd(initial: number): number;
  vhostEventfdRead(fd: number): number;
  vhostEventfdWrite(fd: number, value: number): void;
  vhostClose(fd: number): void;
  vhostPollStart(fd: number, drainEventfd: boolean, callback: PollCallback): PollHandle;
  vhostPollStop(handle: PollHandle): void;
}

let native: VhostNative | undefined;

function load(): VhostNative {
  if (native) return native;
  const names: readonly (keyof VhostNative)[] = [
    'vhostListenUnix', 'vhostConnectUnix', 'vhostAccept', 'vhostPeerCred', 'vhostRecvMsg', 'vhostSendMsg', 'vhostMmap', 'vhostMunmap',
    'vhostMemfdCreate', 'vhostFdStatus', 'vhostEventfd', 'vhostEventfdRead', 'vhostEventfdWrite', 'vhostClose', 'vhostPollStart',
    'vhostPollStop',
  ];
  const table: Partial<Record<keyof VhostNative, unknown>> = {};
  for (const name of names) table[name] = nativeFunction(name);
  native = table as VhostNative;
  return native;
}

/** Creates a listening unix stream socket at `path` (which must not exist). Returns its fd. */
export function listenUnix(path: string, backlog = 1): number {
  return load().vhostListenUnix(path, backlog);
}

/** Connects to a unix stream socket; the returned fd is non-blocking. */
export function connectUnix(path: string): number {
  return load().vhostConnectUnix(path);
}

/** Accepts one pending connection, or returns null if none is pending. */
export function accept(listenFd: number): number | null {
  return load().vhostAccept(listenFd);
}

/** The peer's pid, uid and gid of a connected unix socket (SO_PEERCRED, as of its connect()). */
export function peerCred(fd: number): PeerCred {
  return load().vhostPeerCred(fd);
}

/** Reads up to maxBytes and up to maxFds passed fds; null when nothing is ready. */
export function recvMsg(fd: number, maxBytes: number, maxFds: number): ReceivedMessage | null {
  return load().vhostRecvMsg(fd, maxBytes, maxFds);
}

/** Sends bytes with optional fds; returns the byte count actually sent. */
export function sendMsg(fd: number, bytes: Uint8Array, fds: readonly number[] = []): number {
  return load().vhostSendMsg(fd, bytes, fds);
}

/** Maps [offset, offset+length) of fd shared; the buffer is valid until {@link munmap} or GC. */
export function mmap(fd: number, offset: number, length: number, writable = true): ArrayBuffer {
  return load().vhostMmap(fd, offset, length, writable);
}

/** Unmaps now; the buffer becomes detached (length 0). Returns false if it was not a live mapping. */
export function munmap(buffer: ArrayBuffer): boolean {
  return load().vhostMunmap(buffer);
}

/**
 * An anonymous shared file of `size` bytes. Sealed (F_SEAL_SHRINK | F_SEAL_GROW) by default, as
 * QEMU's memory-backend-memfd does; `seal: false` makes one a front-end could truncate.
 */
export function memfdCreate(name: string, size: number, opts: { seal?: boolean } = {}): number {
  return load().vhostMemfdCreate(name, size, opts.seal ?? true);
}

/** fstat + F_GETFL + F_GET_SEALS + readlink of an fd, for judging fds a front-end sends. */
export function fdStatus(fd: number): FdStatus {
  return load().vhostFdStatus(fd);
}

export function eventfdCreate(initial = 0): number {
  return load().vhostEventfd(initial);
}

/** Returns and resets the eventfd counter (0 if it was not signalled). */
export function eventfdRead(fd: number): number {
  return load().vhostEventfdRead(fd);
}

export function eventfdWrite(fd: number, value = 1): void {
  load().vhostEventfdWrite(fd, value);
}

export function closeFd(fd: number): void {
  load().vhostClose(fd);
}

/** Calls back on the JS thread whenever fd is readable. Stop it before closing the fd. */
export function pollStart(fd: number, callback: PollCallback, opts: { drainEventfd?: boolean } = {}): PollHandle {
  return load().vhostPollStart(fd, opts.drainEventfd ?? false, callback);
}

export function pollStop(handle: PollHandle): void {
  load().vhostPollStop(handle);
}
