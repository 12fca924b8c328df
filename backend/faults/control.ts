/**
 * Fault injection over the telemetry/control socket (docs/fault-injection.md): the request and reply
 * types, the server-side handler that validates a request and applies it, and a Node client.
 */
import * as net from 'node:net';
import { ownSocketProblem } from '../telemetry/client';
import { FaultRuleError, MAX_RULES, type FaultRuleView } from './plan';
import type { FaultsSnapshot } from '../vhost-user-backend';

export type FaultRequest =
  | { readonly type: 'fault-set'; readonly rules: readonly string[] }
  | { readonly type: 'fault-list' }
  | { readonly type: 'fault-clear'; readonly id?: number };

export type FaultReply =
  | { readonly type: 'fault-set'; readonly ok: true; readonly added: readonly FaultRuleView[]; readonly faults: FaultsSnapshot }
  | { readonly type: 'fault-list'; readonly ok: true; readonly faults: FaultsSnapshot }
  | { readonly type: 'fault-clear'; readonly ok: true; readonly cleared: readonly number[]; readonly faults: FaultsSnapshot }
  | { readonly type: 'error'; readonly request: string; readonly message: string };

/** What the handler needs from the back-end. */
export interface FaultTarget {
  addFaults(rules: readonly string[]): FaultRuleView[];
  clearFaults(id?: number): number[];
  faultsSnapshot(): FaultsSnapshot;
}

/** Validates and applies one control request (already JSON-parsed; its type is one of the schema's FAULT_REQUEST_TYPES). */
export function handleFaultRequest(target: FaultTarget, req: Readonly<Record<string, unknown>>): FaultReply {
  const type = String(req.type);
  const fail = (message: string): FaultReply => ({ type: 'error', request: type, message });
  try {
    if (type === 'fault-set') {
      const rules = req.rules;
      if (!Array.isArray(rules) || rules.length === 0) return fail('"rules" must be a non-empty array of rule strings');
      if (rules.length > MAX_RULES) return fail(`at most ${MAX_RULES} rules`);
      const bad = rules.findIndex((r) => typeof r !== 'string');
      if (bad >= 0) return fail(`rule ${bad + 1} is not a string`);
      const added = target.addFaults(rules as string[]);
      return { type: 'fault-set', ok: true, added, faults: target.faultsSnapshot() };
    }
    if (type === 'fault-list') return { type: 'fault-list', ok: true, faults: target.faultsSnapshot() };
    if (type === 'fault-clear') {
      const id = req.id;
      if (id !== undefined && id !== null && !(typeof id === 'number' && Number.isSafeInteger(id) && id > 0)) return fail('"id" must be a positive integer (or absent to clear all)');
      const cleared = target.clearFaults(typeof id === 'number' ? id : undefined);
      return { type: 'fault-clear', ok: true, cleared, faults: target.faultsSnapshot() };
    }
    return fail(`unknown request type "${type}"`);
  } catch (err) {
    if (err instanceof FaultRuleError) return fail(err.message);
    throw err;
  }
}

/** Sends one control request and resolves with its reply line (rejects on no socket or timeout). */
export function sendFaultRequest(socketPath: string, request: FaultRequest, timeoutMs = 3000): Promise<FaultReply> {
  return new Promise((resolve, reject) => {
    const problem = ownSocketProblem(socketPath);
    if (problem) {
      reject(new Error(`control socket ${socketPath} ${problem}; not connecting`));
      return;
    }
    const socket = net.createConnection(socketPath);
    let buffered = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`control socket ${socketPath}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      socket.destroy();
      try {
        resolve(JSON.parse(buffered.slice(0, nl)) as FaultReply);
      } catch (err) {
        reject(err as Error);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Text view of the plan (`vlab fault list`, `vlab rings`). */
export function formatFaults(f: FaultsSnapshot): string {
  const by = Object.entries(f.byAction).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
  const lines = [`faults injected: ${f.injected}${by ? ` (${by})` : ''}`];
  if (f.stalledBy !== null) lines.push(`queue STALLED by rule #${f.stalledBy}: ${f.heldRequests} request(s) held on the ring (vlab fault clear ${f.stalledBy} serves them)`);
  if (f.delayedInFlight > 0) lines.push(`delayed completions pending: ${f.delayedInFlight}`);
  if (f.interruptsWithheld || f.interruptsDuplicated) lines.push(`interrupts withheld ${f.interruptsWithheld}, duplicated ${f.interruptsDuplicated}`);
  if (f.rules.length === 0) lines.push('no rules set');
  else {
    lines.push('   id    hits    seen  rule');
    for (const r of f.rules) lines.push(`${String(r.id).padStart(5)}  ${String(r.hits).padStart(6)}  ${String(r.seen).padStart(6)}  ${r.rule}${r.retired ? '  (retired: count reached)' : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
