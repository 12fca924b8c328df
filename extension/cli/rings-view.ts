/** `vlab rings`: renders telemetry snapshots as text, live (redrawn in place) or once; records traces. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { ownSocketProblem } from '../../backend/telemetry/client';
import { parseReply } from '../../backend/telemetry/readers';
import { LineReader, MAX_REPLY_LINE, SLOT_CHAR, encodeRequest, type BackendSnapshot, type QueueSnapshot } from '../../backend/telemetry/schema';
import { TraceRecorder } from '../../backend/telemetry/trace';
import { formatConformance } from './conformance-view';
import { formatFaults } from './fault-view';

/** What `vlab rings` needs from its caller (the CLI passes its own I/O; tests pass buffers). */
export interface RingsIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly signal: AbortSignal;
}

export function renderQueue(q: QueueSnapshot, width = 64): string[] {
  const lines = [
    `queue ${q.index}: size ${q.size}  ${q.ready ? 'running' : 'stopped'}${q.broken ? `  BROKEN: ${q.broken}` : ''}`,
    `  avail.idx ${q.availIdx ?? '-'}  last_avail ${q.lastAvailIdx ?? '-'}  used.idx ${q.usedIdx ?? '-'}  used_event ${q.usedEvent ?? '-'}  avail_event ${q.availEvent ?? '-'}  in-flight ${q.inFlight}`,
  ];
  if (q.slots.length > 0) {
    lines.push(`  descriptor slots (${SLOT_CHAR.free} free, ${SLOT_CHAR.posted} posted not taken, ${SLOT_CHAR.device} held by the device, ${SLOT_CHAR.returned} returned not reclaimed):`);
    for (let i = 0; i < q.slots.length; i += width) lines.push(`  ${String(i).padStart(5)} ${q.slots.slice(i, i + width)}`);
  }
  if (q.recent.length > 0) {
    lines.push('  recent requests (newest first):');
    lines.push('    head  opcode          session    src     dst  status    latency');
    for (const r of q.recent.slice(0, 8)) {
      lines.push(`    ${String(r.head).padStart(4)}  ${r.opcode.padEnd(14)}  ${r.sessionId.padStart(7)}  ${String(r.srcLen).padStart(6)}  ${String(r.dstLen).padStart(6)}  ${r.status.padEnd(8)}  ${String(r.latencyUs).padStart(6)} µs${r.rejected ? `  rejected: ${r.rejected}` : ''}${r.fault ? `  fault: ${r.fault}` : ''}`);
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
    // A back-end older than the limits field (a lab left running across an upgrade) sends none: read as 0, shown as none.
    ...(s.limits.maxSessions > 0 ? [`limits: max_size ${s.limits.maxDataLen} B per request  ${s.limits.maxSessions} sessions  ${s.limits.maxChainsPerPass} chains per pass  log lines suppressed ${c.logLinesSuppressed}`] : []),
    ...s.sessions.slice(0, 8).map((x) => `  #${x.id} ${x.algorithm} ${x.direction}, ${x.requests} requests`),
    ...s.queues.flatMap((q) => renderQueue(q)),
    // Fault injection: shown once a rule exists or a fault was injected (older back-ends send none: read as empty).
    ...(s.faults.rules.length > 0 || s.faults.injected > 0 ? formatFaults(s.faults).trimEnd().split('\n') : []),
    // The conformance oracle (docs/checking.md): violations of the driver, newest first (`vlab check --watch` lists more).
    ...(s.conformance ? formatConformance(s.conformance, 5) : []),
  ];
  return `${lines.join('\n')}\n`;
}

export interface RingsOptions {
  telemetryPath: string;
  intervalMs: number;
  once: boolean;
  json: boolean;
  /** write a trace (JSON lines, backend/telemetry/trace.ts) to this file while running */
  record?: string;
  io: RingsIo;
}

export async function runRings(opts: RingsOptions): Promise<number> {
  const { io } = opts;
  let recorder: TraceRecorder | undefined;
  let fd: number | undefined;
  if (opts.record) {
    fd = fs.openSync(opts.record, 'w', 0o600);
    const out = fd;
    recorder = new TraceRecorder((text) => fs.writeSync(out, text), 'vlab rings --record');
  }
  const problem = ownSocketProblem(opts.telemetryPath);
  if (problem) {
    io.stderr.write(`vlab rings: ${opts.telemetryPath} ${problem}; not connecting\n`);
    if (fd !== undefined) fs.closeSync(fd);
    return 1;
  }
  const code = await new Promise<number>((resolve) => {
    const socket = net.createConnection(opts.telemetryPath);
    let done = false;
    const finish = (c: number): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(c);
    };
    io.signal.addEventListener('abort', () => finish(0), { once: true });
    const reader = new LineReader(MAX_REPLY_LINE, (line) => {
      const reply = parseReply(line);
      if (reply?.type !== 'snapshot') return;
      recorder?.add({ ...reply });
      if (opts.json) io.stdout.write(`${line}\n`);
      else if (!opts.record || opts.once) io.stdout.write(`${opts.once ? '' : '\x1b[H\x1b[2J'}${renderSnapshot(reply)}`);
      else io.stdout.write(`\rrecording to ${opts.record}: ${recorder!.frames} frames, ${recorder!.bytes} B (Ctrl-C stops)`);
      if (opts.once) finish(0);
    });
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(encodeRequest(opts.once ? { type: 'snapshot' } : { type: 'subscribe', intervalMs: opts.intervalMs })));
    socket.on('error', (err) => {
      io.stderr.write(`vlab rings: cannot reach the back-end telemetry at ${opts.telemetryPath}: ${err.message}\n(is the lab up with --backend ts, or \`vlab backend\` running?)\n`);
      finish(1);
    });
    socket.on('close', () => finish(0));
    socket.on('data', (chunk: string) => {
      if (!reader.push(chunk)) {
        io.stderr.write(`vlab rings: a telemetry line is longer than ${MAX_REPLY_LINE} bytes\n`);
        finish(1);
      }
    });
  });
  if (fd !== undefined) {
    fs.closeSync(fd);
    io.stderr.write(`\nvlab rings: trace ${opts.record}: ${recorder!.frames} frames, ${recorder!.bytes} B\n`);
  }
  return code;
}
