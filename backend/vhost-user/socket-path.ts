/**
 * Claiming a unix socket path before listening on it, for the vhost-user socket and the telemetry
 * socket alike: nothing there, or a stale socket file (its listener died), is fine (the stale file
 * is removed); a live socket (another back-end accepts on it) or any other kind of file is left
 * alone and the claim fails.
 */
import * as fs from 'node:fs';
import * as vhost from '../../addon/lib/vhost';

/** True when something accepts connections on `path` now (ECONNREFUSED and the like: stale). */
export function acceptsConnections(path: string): boolean {
  try {
    vhost.closeFd(vhost.connectUnix(path));
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes `path` free for a new listening socket. Throws `liveError` when another listener holds it,
 * and refuses to replace anything that is not a socket.
 */
export function claimSocketPath(path: string, liveError: string, isLive: (path: string) => boolean = acceptsConnections): void {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!stat) return;
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket; not replacing it`);
  if (isLive(path)) throw new Error(liveError);
  fs.unlinkSync(path);
}
