/**
 * Reads a rings trace file for replay. The file is untrusted (one from a bug report) and may be
 * huge: it is read in 1 MiB chunks, never whole; a line longer than MAX_TRACE_LINE is counted and
 * dropped without being kept; reading stops at MAX_TRACE_FRAMES frames or MAX_TRACE_FILE_BYTES
 * bytes, whichever comes first, and the result says so (`truncated`).
 */
import * as fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { MAX_TRACE_LINE, type ParsedTrace, TraceParser } from './trace';

/** Bytes of a trace file read for a replay (20 000 frames of a busy lab are ~60 MiB). */
export const MAX_TRACE_FILE_BYTES = 128 << 20;
const CHUNK = 1 << 20;

export interface ReadTrace extends ParsedTrace {
  /** Bytes read from the file. */
  bytesRead: number;
  /** Reading stopped before the end of the file (a cap was reached). */
  truncated: boolean;
}

export function readTraceFile(file: string, maxBytes = MAX_TRACE_FILE_BYTES): ReadTrace {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`${file} is not a regular file`);
    const parser = new TraceParser();
    const text = new StringDecoder('utf8');
    const buf = Buffer.alloc(CHUNK);
    let pending = '';
    let overlong = false;
    let bytesRead = 0;
    let eof = false;
    const take = (s: string): void => {
      let from = 0;
      for (let nl = s.indexOf('\n'); nl >= 0 && !parser.full; nl = s.indexOf('\n', from)) {
        if (overlong) parser.skipLine();
        else parser.push(pending + s.slice(from, nl));
        pending = '';
        overlong = false;
        from = nl + 1;
      }
      if (parser.full) return;
      if (overlong) return;
      pending += s.slice(from);
      if (pending.length > MAX_TRACE_LINE) {
        pending = '';
        overlong = true;
      }
    };
    while (!parser.full && bytesRead < maxBytes) {
      const n = fs.readSync(fd, buf, 0, Math.min(CHUNK, maxBytes - bytesRead), null);
      if (n === 0) {
        eof = true;
        break;
      }
      bytesRead += n;
      take(text.write(buf.subarray(0, n)));
    }
    if (eof) {
      take(text.end());
      if (overlong) parser.skipLine();
      else if (pending) parser.push(pending);
    }
    return { ...parser.finish(), bytesRead, truncated: !eof };
  } finally {
    fs.closeSync(fd);
  }
}
