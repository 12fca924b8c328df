/** The newest output of a terminal, bounded, with ANSI escapes removed (for tests and summaries). */
const MAX_CHARS = 64 * 1024;
// CSI sequences, OSC sequences (BEL or ST terminated) and single-character escapes.
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

export class Transcript {
  private text = '';

  append(chunk: string): void {
    this.text += chunk;
    if (this.text.length > MAX_CHARS) this.text = this.text.slice(-MAX_CHARS);
  }

  /** plain text (escapes removed, CR dropped) */
  plain(): string {
    return this.text.replace(ANSI, '').replace(/\r/g, '');
  }
}
