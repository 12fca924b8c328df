/**
 * Recording a rings trace while the view runs: every frame that moves is written to a file (trace
 * format: backend/telemetry/trace.ts), the control queue with it, so that a replay shows the same
 * frames. Replaying one: a trace file read back into history entries (frames numbered from 1).
 */
import * as fs from 'node:fs';
import { TraceRecorder } from '../../../backend/telemetry/trace';
import { readTraceFile } from '../../../backend/telemetry/trace-file';
import { controlDevice, type ControlQueue } from './avail-poll';
import { frameFromSnapshot } from './frames';
import type { HistoryEntry } from './history';
import { readSnapshot } from '../../../backend/telemetry/readers';

export interface RecordingProgress {
  file: string;
  frames: number;
  bytes: number;
}

export class TraceRecording {
  private readonly rec: TraceRecorder;

  private constructor(readonly file: string, private readonly fd: number) {
    this.rec = new TraceRecorder((text) => fs.writeSync(fd, text), 'VS Code rings view');
  }

  /** Creates (or truncates) `file`, readable by its owner only. */
  static open(file: string): TraceRecording {
    return new TraceRecording(file, fs.openSync(file, 'w', 0o600));
  }

  /** Writes one kept frame (one from a backend snapshot: QMP-only frames are not recorded). */
  add(entry: HistoryEntry): void {
    if (!entry.snapshot) return;
    this.rec.add({ ...entry.snapshot }, entry.atMs, entry.control ? { control: entry.control } : undefined, true);
  }

  progress(): RecordingProgress {
    return { file: this.file, frames: this.rec.frames, bytes: this.rec.bytes };
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

export interface LoadedTrace {
  entries: HistoryEntry[];
  /** what the feed badge says while it replays */
  feedMessage: string;
}

/** Reads a trace file for replay (untrusted, capped: backend/telemetry/trace-file.ts); throws when it is not one. */
export function loadTrace(file: string): LoadedTrace {
  const parsed = readTraceFile(file);
  const entries = parsed.entries.map((e, i) => {
    const control = e.control as ControlQueue | undefined;
    const snapshot = readSnapshot(e.snapshot);
    const frame = frameFromSnapshot(snapshot, i + 1, e.t, controlDevice(control));
    return { frame, snapshot, control, atMs: e.t };
  });
  const feedMessage = `replaying ${file.split('/').pop() ?? file}: ${entries.length} frames${parsed.skipped ? `, ${parsed.skipped} lines skipped` : ''}${parsed.truncated ? `, only the first ${(parsed.bytesRead / 2 ** 20).toFixed(0)} MiB / ${parsed.entries.length} frames read (replay caps)` : ''}`;
  return { entries, feedMessage };
}
