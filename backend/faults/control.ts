/**
 * The server side of fault injection over the telemetry/control socket (docs/fault-injection.md):
 * validates one control request and applies it to the back-end. The requests and replies are the
 * telemetry schema's (telemetry/schema.ts); Node clients send them with telemetry/client.ts.
 */
import type { FaultControlRequest, FaultReply, FaultsSnapshot } from '../telemetry/schema';
import { FaultRuleError, MAX_RULES, type FaultRuleView } from './plan';

/** What the handler needs from the back-end. */
export interface FaultTarget {
  addFaults(rules: readonly string[]): FaultRuleView[];
  clearFaults(id?: number): number[];
  faultsSnapshot(): FaultsSnapshot;
}

/** Validates and applies one control request (already JSON-parsed by the schema's parseRequest). */
export function handleFaultRequest(target: FaultTarget, req: FaultControlRequest['body']): FaultReply {
  const type: string = req.type;
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
