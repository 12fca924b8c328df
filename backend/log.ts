/**
 * Back-end logging a guest cannot flood: a per-reason rate limit in front of the log sink, and a
 * log file with a size cap.
 *
 * Rate limit: for each reason (rejected chain, engine error, refused session, …) the first `burst`
 * lines of a window are written; the rest are only counted, and when the window ends one summary
 * line says how many were suppressed ("… 99995 more suppressed in the last 10 s"). The counters in
 * stats.ts keep the exact totals either way.
 *
 * Log file: lines are appended with one synchronous write each; when the next line would take the
 * file past `maxBytes`, its content moves to `<path>.1` (replacing the previous one) and the file
 * starts empty again, so the two files together never exceed 2 × maxBytes.
 */
import * as fs from 'node:fs';

export type LogSink = (line: string) => void;

export interface RateLimitOptions {
  /** Lines written per reason per window. Default 5. */
  readonly burst?: number;
  /** Window length. Default 10 s. */
  readonly windowMs?: number;
  /** Clock (tests inject one). */
  readonly now?: () => number;
  /** Called for every suppressed line (the back-end counts them in its counters). */
  readonly onSuppressed?: () => void;
}

export const LOG_BURST = 5;
export const LOG_WINDOW_MS = 10_000;

interface ReasonState {
  windowStart: number;
  written: number;
  suppressed: number;
}

export class RateLimitedLog {
  private readonly reasons = new Map<string, ReasonState>();
  private readonly burst: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly onSuppressed: () => void;
  private timer: NodeJS.Timeout | undefined;
  /** Lines suppressed since this log was made. */
  suppressedTotal = 0;

  constructor(
    private readonly sink: LogSink,
    opts: RateLimitOptions = {},
  ) {
    this.burst = opts.burst ?? LOG_BURST;
    this.windowMs = opts.windowMs ?? LOG_WINDOW_MS;
    this.now = opts.now ?? (() => performance.now());
    this.onSuppressed = opts.onSuppressed ?? (() => undefined);
  }

  /** Writes `text` unless `reason` has used up its lines in this window. */
  line(reason: string, text: string): void {
    const t = this.now();
    let s = this.reasons.get(reason);
    if (!s) {
      s = { windowStart: t, written: 0, suppressed: 0 };
      this.reasons.set(reason, s);
    } else if (t - s.windowStart >= this.windowMs) {
      this.summarise(reason, s);
      s.windowStart = t;
      s.written = 0;
    }
    if (s.written < this.burst) {
      s.written++;
      this.sink(text);
      return;
    }
    s.suppressed++;
    this.suppressedTotal++;
    this.onSuppressed();
  }

  /** Writes the summary of every reason whose window has ended (all of them with `force`). */
  flush(force = false): void {
    const t = this.now();
    for (const [reason, s] of this.reasons) {
      if (force || t - s.windowStart >= this.windowMs) {
        this.summarise(reason, s);
        if (!force) this.reasons.delete(reason);
      }
    }
  }

  /** Flushes ended windows on a timer that does not keep the process alive. */
  startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.flush(), this.windowMs);
    this.timer.unref();
  }

  /** Stops the timer and writes every pending summary. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush(true);
  }

  private summarise(reason: string, s: ReasonState): void {
    if (s.suppressed === 0) return;
    const seconds = Math.max(1, Math.round((this.now() - s.windowStart) / 1000));
    this.sink(`${reason}: ${s.suppressed} more suppressed in the last ${seconds} s (the counters have every one)`);
    s.suppressed = 0;
  }
}

/** Default cap of the back-end's log file (the lab passes it explicitly). */
export const DEFAULT_LOG_MAX_BYTES = 8 << 20;

/** An append-only log file with a size cap (see the top of this file). */
export class CappedLogFile {
  private fd: number;
  private size: number;
  rotations = 0;

  /**
   * Opens (or creates) `path` for appending. The state folder can be written by the guest, so a
   * symlink at `path` is refused rather than followed.
   */
  constructor(
    readonly path: string,
    readonly maxBytes: number = DEFAULT_LOG_MAX_BYTES,
  ) {
    if (!Number.isInteger(maxBytes) || maxBytes < 4096) throw new RangeError(`log cap ${maxBytes} must be an integer ≥ 4096 bytes`);
    this.fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o644);
    this.size = fs.fstatSync(this.fd).size;
    if (this.size > maxBytes) this.rotate();
  }

  write(line: string): void {
    if (this.fd < 0) return;
    let bytes = Buffer.from(line.endsWith('\n') ? line : `${line}\n`);
    // One line never exceeds the cap on its own.
    if (bytes.length > this.maxBytes) bytes = Buffer.concat([bytes.subarray(0, this.maxBytes - 16), Buffer.from(' [truncated]\n')]);
    // Other writers may append to the same file (stderr of a crash): the size is asked, not assumed.
    this.size = fs.fstatSync(this.fd).size;
    if (this.size + bytes.length > this.maxBytes) this.rotate();
    fs.writeSync(this.fd, bytes);
    this.size += bytes.length;
  }

  /**
   * Moves the content to `<path>.1` through our own descriptor (never through paths that could
   * have been swapped), then empties the file in place: every writer appending to the same file
   * (O_APPEND, e.g. the stderr the lab redirects there) carries on at its new end.
   */
  private rotate(): void {
    const old = `${this.path}.1`;
    fs.rmSync(old, { force: true });
    const out = fs.openSync(old, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
    try {
      const size = Math.min(fs.fstatSync(this.fd).size, this.maxBytes * 2);
      const chunk = Buffer.allocUnsafe(Math.min(size, 1 << 20));
      for (let pos = 0; pos < size; ) {
        const n = fs.readSync(this.fd, chunk, 0, Math.min(chunk.length, size - pos), pos);
        if (n <= 0) break;
        fs.writeSync(out, chunk, 0, n);
        pos += n;
      }
    } finally {
      fs.closeSync(out);
    }
    fs.ftruncateSync(this.fd, 0);
    this.size = 0;
    this.rotations++;
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}
