/** The fault-injection plan as text (`vlab fault list`, the plan part of `vlab rings`). */
import type { FaultsSnapshot } from '../../backend/telemetry/schema';

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
