/** `vlab rings`: renders telemetry snapshots as text, live (redrawn in place) or once. */
import * as net from 'node:net';
import type { CliIo } from '../extension/cli/command';
import { formatFaults } from './fault-control';
import type { BackendSnapshot, QueueSnapshot } from './vhost-user-backend';

const STATE_CHAR: Readonly<Record<string, string>> = { idle: '.', 'in-flight': '*', done: 'o', rejected: 'x' };

export function renderQueue(q: QueueSnapshot, width = 64): string[] {
  const lines = [
    `queue ${q.index}: size ${q.size}  ${q.ready ? 'running' : 'stopped'}${q.broken ? `  BROKEN: ${q.broken}` : ''}`,
    `  avail.idx ${q.availIdx ?? '-'}  last_avail ${q.lastAvailIdx ?? '-'}  used.idx ${q.usedIdx ?? '-'}  used_event ${q.usedEvent ?? '-'}  in-flight ${q.inFlight}`,
  ];
  if (q.descriptors.length > 0) {
    lines.push('  descriptor heads (. idle, * in flight, o done, x rejected):');
    for (let i = 0; i < q.descriptors.length; i += width) {
      lines.push(`  ${String(i).padStart(5)} ${q.descriptors.slice(i, i + width).map((d) => STATE_CHAR[d.state] ?? '?').join('')}`);
    }
  }
  if (q.recent.length > 0) {
    lines.push('  recent requests (newest first):');
    lines.push('    head  opcode          session    src     dst  status    latency');
    for (const r of q.recent.slice(0, 8)) {
      const fault = r.faults?.length ? `  fault ${r.faults.map((id) => `#${id}`).join(',')}` : '';
      lines.push(`    ${String(r.head).padStart(4)}  ${r.opcode.padEnd(14)}  ${r.sessionId.padStart(7)}  ${String(r.srcLen).padStart(6)}  ${String(r.dstLen).padStart(6)}  ${r.status.padEnd(8)}  ${String(r.latencyUs).padStart(6)} µs${fault}`);
    }
  }
  return lines;
}

export function renderSnapshot(s: BackendSnapshot): string {
  const c = s.counters;
  const lines = [
    `backend pid ${s.pid}  up ${(s.uptimeMs / 1000).toFixed(1)} s  engine ${s.engine.name} (${s.engine.reason})`,
    `front-end ${s.frontend.connected ? 'connected' : 'not connected'}  features ${s.frontend.features}  protocol ${s.frontend.protocolFeatures}  memory regions ${s.frontend.memoryRegions}`,
    `requests ${c.requests}  in ${c.bytesIn} B  out ${c.bytesOut} B  kicks ${c.kicks}  interrupts ${c.interrupts}  rejected chains ${c.rejectedChains}`,
    `status OK ${c.statusOk}  ERR ${c.statusErr}  BADMSG ${c.statusBadmsg}  NOTSUPP ${c.statusNotsupp}  INVSESS ${c.statusInvsess}`,
    `sessions ${s.sessions.length} open (${c.sessionsCreated} created, ${c.sessionsClosed} closed, ${c.sessionCreateFailures} refused, ${c.sessionsRefusedAtLimit} at the limit)`,
    // A back-end older than the limits field (a lab left running across an upgrade) shows none.
    ...(s.limits ? [`limits: max_size ${s.limits.maxDataLen} B per request  ${s.limits.maxSessions} sessions  ${s.limits.maxChainsPerPass} chains per pass  log lines suppressed ${c.logLinesSuppressed}`] : []),
    ...s.sessions.slice(0, 8).map((x) => `  #${x.id} ${x.algorithm} ${x.direction}, ${x.requests} requests`),
    ...s.queues.flatMap((q) => renderQueue(q)),
    // Fault injection: shown once a rule exists or a fault was injected (older back-ends send none).
    ...(s.faults && (s.faults.rules.length > 0 || s.faults.injected > 0) ? formatFaults(s.faults).trimEnd().split('\n') : []),
  ];
  return `${lines.join('\n')}\n`;
}

export async function runRings(opts: { telemetryPath: string; intervalMs: number; once: boolean; json: boolean; io: CliIo }): Promise<number> {
  const { io } = opts;
  return new Promise<number>((resolve) => {
    const socket = net.createConnection(opts.telemetryPath);
    let buffered = '';
    let done = false;
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(code);
    };
    io.signal.addEventListener('abort', () => finish(0), { once: true });
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(opts.once ? { type: 'snapshot' } : { type: 'subscribe', intervalMs: opts.intervalMs })}\n`));
    socket.on('error', (err) => {
      io.stderr.write(`vlab rings: cannot reach the back-end telemetry at ${opts.telemetryPath}: ${err.message}\n(is the lab up with --backend ts, or \`vlab backend\` running?)\n`);
      finish(1);
    });
    socket.on('close', () => finish(0));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (opts.json) io.stdout.write(`${line}\n`);
        else {
          const snap = JSON.parse(line) as BackendSnapshot;
          // Clear screen and home the cursor for a live view.
          io.stdout.write(`${opts.once ? '' : '\x1b[H\x1b[2J'}${renderSnapshot(snap)}`);
        }
        if (opts.once) finish(0);
      }
    });
  });
}
