/** Typed telemetry snapshots shaped like the back-end's (every field, in its order), for the tests of the readers' users. */
import type { BackendSnapshot, QueueSnapshot, RecentRequest } from '../../../../backend/telemetry/schema';

export function recentRequest(over: Partial<RecentRequest> = {}): RecentRequest {
  return {
    id: 9, head: 0, opcode: 'CIPHER_ENCRYPT', sessionId: '7', srcLen: 64, dstLen: 64, status: 'OK', latencyUs: 120, atMs: 1,
    descriptors: 1, indirect: true, rejected: null, fault: null, ...over,
  };
}

export function queueSnapshot(over: Partial<QueueSnapshot> = {}): QueueSnapshot {
  return {
    index: 0, size: 8, ready: true, enabled: true, broken: null, availIdx: 3, usedIdx: 3, lastAvailIdx: 3, availFlags: 0, usedFlags: 0,
    usedEvent: 2, availEvent: 3, inFlight: 1, slots: '.adu.adu', recent: [recentRequest()], ...over,
  };
}

export function backendSnapshot(over: Partial<BackendSnapshot> = {}): BackendSnapshot {
  return {
    type: 'snapshot', schema: 2, pid: 1234, uptimeMs: 5000, socket: '/ws/.vlab/vhost-user.sock',
    frontend: { connected: true, owner: true, features: '0x40000000', protocolFeatures: '0x81', memoryRegions: 1 },
    engine: { name: 'openssl', reason: 'auto' },
    limits: { maxDataLen: 1048576, maxSessions: 1024, maxChainsPerPass: 64 },
    sessions: [{ id: '3', algorithm: 'AES-256-CBC', direction: 'encrypt', requests: 5, createdAtMs: 100 }],
    counters: {
      requests: 10, bytesIn: 4096, bytesOut: 4096, kicks: 7, interrupts: 6, rejectedChains: 0, unanswerable: 0,
      statusOk: 10, statusErr: 0, statusBadmsg: 0, statusNotsupp: 0, statusInvsess: 0,
      sessionsCreated: 1, sessionsClosed: 0, sessionCreateFailures: 0, sessionsRefusedAtLimit: 0, logLinesSuppressed: 0, peersRefused: 0,
    },
    queues: [queueSnapshot()],
    faults: {
      injected: 0, byAction: { status: 0, delay: 0, stall: 0, irq: 0, 'short-used': 0, 'flip-dst': 0 }, stalledBy: null, rules: [],
      heldRequests: 0, delayedInFlight: 0, interruptsWithheld: 0, interruptsDuplicated: 0,
    },
    ...over,
  };
}
