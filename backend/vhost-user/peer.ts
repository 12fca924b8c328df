/**
 * Who is on the other end of a unix socket: both of the back-end's sockets (vhost-user, telemetry)
 * serve only the back-end's own uid (review F6). SO_PEERCRED through the addon.
 */
import * as vhost from '../../addon/lib/vhost';

/** Why a connected unix socket's peer may not talk to us (another uid), or undefined if it may. */
export function peerUidProblem(fd: number): string | undefined {
  const own = process.geteuid?.() ?? -1;
  let uid: number;
  let pid: number;
  try {
    ({ uid, pid } = vhost.peerCred(fd));
  } catch (err) {
    return `no peer credentials (${(err as Error).message})`;
  }
  return uid === own ? undefined : `peer pid ${pid} runs as uid ${uid}, not ${own}`;
}
