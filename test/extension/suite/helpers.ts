/** Shared helpers for the extension-host suites (run inside VS Code's extension host). */
import * as vscode from 'vscode';
import type { VlabApi } from '../../../extension/vscode/extension';
import { report } from './index';

export const EXTENSION_ID = 'virtio-crypto-lab.virtio-crypto-lab';

export async function api(): Promise<VlabApi> {
  const ext = vscode.extensions.getExtension<VlabApi>(EXTENSION_ID);
  if (!ext) throw new Error(`${EXTENSION_ID} is not loaded`);
  return ext.isActive ? ext.exports : ext.activate();
}

/** Polls until cond() is truthy; fails with what it was waiting for. */
export async function waitFor<T>(what: string, cond: () => T | Promise<T>, timeoutMs: number, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await cond();
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A measurement line in the runner's output (numbers for the closing report). */
export function measured(text: string): void {
  report({ kind: 'log', text: `measured: ${text}` });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
