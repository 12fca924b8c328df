/**
 * "Capture Traffic": records the guest's network traffic to a pcap (the core's QMP filter-dump on
 * the guest's netdev) while a marker line goes through a chat, then says whether that line's
 * plaintext is visible in the captured bytes.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Chat } from './chat-manager';
import type { LabController } from './lab-controller';

export interface CaptureResult {
  file: string;
  bytes: number;
  marker: string;
  delivered: boolean;
  plaintextOnWire: boolean;
}

/** Largest capture we scan for the marker (the capture runs for a few seconds). */
const MAX_SCAN = 64 * 1024 * 1024;

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

export async function captureChat(lab: LabController, chat: Chat): Promise<CaptureResult> {
  const sender = chat.ends[0];
  const receiver = chat.ends.find((e) => e.side === 'guest') ?? chat.ends[1];
  if (!sender || !receiver) throw new Error(`${chat.label} has no peer to send to`);
  const file = join(lab.lab.paths.stateDir, `capture-${new Date().toISOString().replace(/[:.]/g, '-')}.pcap`);
  const marker = `vlab-capture-marker-${randomBytes(6).toString('hex')}`;
  await lab.lab.captureStart(file);
  let delivered = false;
  try {
    sender.pty.handleInput(`${marker}\r`);
    delivered = await waitFor(() => receiver.pty.transcript.plain().includes(marker), 15_000);
  } finally {
    await lab.lab.captureStop();
  }
  const size = statSync(file).size;
  const data = readFileSync(file).subarray(0, MAX_SCAN);
  return { file, bytes: size, marker, delivered, plaintextOnWire: data.includes(Buffer.from(marker, 'utf8')) };
}
