/** One snapshot from the backend's telemetry socket (JSON lines, protocol in docs/telemetry.md). */
import { connect } from 'node:net';

const MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024;

export function readTelemetrySnapshot(socketPath: string, timeoutMs = 1500): Promise<Record<string, unknown> | null> {
  return new Promise((resolve) => {
    const socket = connect({ path: socketPath });
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (value: Record<string, unknown> | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    socket.once('error', () => finish(null));
    socket.once('close', () => finish(null));
    socket.once('connect', () => socket.write('{"type":"snapshot"}\n'));
    socket.on('data', (chunk: Buffer) => {
      const nl = chunk.indexOf(0x0a);
      chunks.push(nl >= 0 ? chunk.subarray(0, nl) : chunk);
      size += chunk.length;
      if (nl < 0 && size <= MAX_SNAPSHOT_BYTES) return;
      if (nl < 0) return finish(null);
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        finish(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null);
      } catch {
        finish(null);
      }
    });
  });
}
