/**
 * Starts a real VS Code (code-server's bundled VS Code server, installed by
 * scripts/install-code-server.sh) on 127.0.0.1 and opens its workbench in Debian's Chromium through
 * playwright-core. Shared by the extension-host suite (test:extension) and the UI suite (test:e2e).
 *
 * Everything the server, the extension host and the browser write goes to one temp dir (XDG_* and
 * HOME point there), removed by close(). The server runs in its own process group so close() can
 * end it and the extension host it spawned, by that group's id only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const repoRoot = resolve(__dirname, '..', '..', '..', '..');
export const serverMain = join(repoRoot, '.vlab-tools', 'code-server', 'node_modules', 'code-server', 'lib', 'vscode', 'out', 'server-main.js');
export const chromiumPath = process.env.VLAB_CHROMIUM ?? '/usr/bin/chromium';
// Flags measured to work headless on these machines (docs/extension.md "Testing").
export const chromiumFlags = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

export interface WorkbenchOptions {
  /** folder opened as the workspace */
  workspace: string;
  /** folder holding the extension's package.json (loaded as a development extension) */
  extensionDevelopmentPath?: string;
  /** compiled test entry exporting run(); with it the workbench exits through codeAutomationExit */
  extensionTestsPath?: string;
  /** extra environment for the server and so for the extension host */
  env?: Record<string, string>;
  /** writes server output here (it is noisy, so it goes to a file by default) */
  log?: (line: string) => void;
  viewport?: { width: number; height: number };
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function waitForHttp(url: string, timeoutMs: number, server: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`VS Code server exited early (code ${server.exitCode})`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status < 500) return;
      lastError = `HTTP ${res.status}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`VS Code server did not answer on ${url} within ${timeoutMs} ms (${lastError})`);
}

export class Workbench {
  readonly exitCode: Promise<number>;
  private exitResolve!: (code: number) => void;
  private closed = false;

  private constructor(
    readonly page: Page,
    readonly url: string,
    private readonly browser: Browser,
    private readonly server: ChildProcess,
    readonly tempDir: string,
  ) {
    this.exitCode = new Promise((r) => { this.exitResolve = r; });
  }

  static installed(): boolean {
    return existsSync(serverMain);
  }

  static async start(opts: WorkbenchOptions): Promise<Workbench> {
    if (!Workbench.installed()) {
      throw new Error(`code-server is not installed (${serverMain} missing): run bash scripts/install-code-server.sh`);
    }
    const tempDir = mkdtempSync(join(tmpdir(), 'vlab-vscode-'));
    const dirs = { home: join(tempDir, 'home'), config: join(tempDir, 'config'), data: join(tempDir, 'data'), cache: join(tempDir, 'cache'),
      user: join(tempDir, 'user-data'), server: join(tempDir, 'server-data'), exts: join(tempDir, 'extensions'), runtime: join(tempDir, 'runtime') };
    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true, mode: 0o700 });
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      HOME: dirs.home, XDG_CONFIG_HOME: dirs.config, XDG_DATA_HOME: dirs.data, XDG_CACHE_HOME: dirs.cache, XDG_RUNTIME_DIR: dirs.runtime,
      ...opts.env,
    };
    const port = await freePort();
    const server = spawn(process.execPath, [serverMain, '--host', '127.0.0.1', '--port', String(port), '--without-connection-token',
      '--accept-server-license-terms', '--enable-smoke-test-driver', '--disable-telemetry', '--disable-workspace-trust',
      '--server-data-dir', dirs.server, '--user-data-dir', dirs.user, '--extensions-dir', dirs.exts], {
      cwd: opts.workspace, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = opts.log ?? (() => undefined);
    for (const stream of [server.stdout, server.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => { for (const line of chunk.split('\n')) if (line) log(line); });
    }
    const base = `http://127.0.0.1:${port}`;
    let browser: Browser | undefined;
    try {
      await waitForHttp(`${base}/version`, 30_000, server);
      browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumFlags, env });
      const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1400, height: 900 } });
      const page = await context.newPage();
      const remote = (p: string): string => `vscode-remote://127.0.0.1:${port}${p}`;
      const payload: [string, string][] = [];
      if (opts.extensionDevelopmentPath) payload.push(['extensionDevelopmentPath', remote(resolve(opts.extensionDevelopmentPath))]);
      if (opts.extensionTestsPath) payload.push(['extensionTestsPath', remote(resolve(opts.extensionTestsPath))]);
      const query = new URLSearchParams({ folder: resolve(opts.workspace) });
      if (payload.length) query.set('payload', JSON.stringify(payload));
      const url = `${base}/?${query.toString()}`;
      const bench = new Workbench(page, url, browser, server, tempDir);
      // The workbench calls this when the extension tests finish (smoke-test driver contract).
      await page.exposeFunction('codeAutomationExit', (code: number) => bench.exitResolve(Number(code)));
      server.once('exit', (code) => bench.exitResolve(code === 0 ? 70 : (code ?? 70)));
      await page.goto(url);
      return bench;
    } catch (err) {
      await browser?.close().catch(() => undefined);
      killGroup(server);
      rmSync(tempDir, { recursive: true, force: true });
      throw err;
    }
  }

  async screenshot(path: string): Promise<void> {
    await this.page.screenshot({ path });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.browser.close().catch(() => undefined);
    await new Promise<void>((r) => {
      if (this.server.exitCode !== null || this.server.signalCode !== null) return r();
      const timer = setTimeout(() => { killGroup(this.server, 'SIGKILL'); r(); }, 10_000);
      this.server.once('exit', () => { clearTimeout(timer); r(); });
      killGroup(this.server);
    });
    rmSync(this.tempDir, { recursive: true, force: true });
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // the group we created with detached: true
  } catch {
    // already gone
  }
}
