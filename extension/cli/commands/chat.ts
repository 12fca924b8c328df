/** `vlab chat ...`: two-way chat, multi-client server, key files, host↔host/host↔guest pair, benchmark. */
import * as fs from 'node:fs';
import { type CliCommand, type CliIo, UsageError } from '../command';
import { integerIn, parseArgs } from '../args';
import { generatePsk, KeyFileError, type KeySource, passphraseSource, writeKeyFile } from '../../../chat/keys';
import { NICK_RE } from '../../../chat/messages';
import { acceptOne, connectTo, parseHostPort, runChatSession } from '../../../chat/peer';
import { ChatServer } from '../../../chat/server';
import { runPair } from '../../../chat/pair';
import { runChatBench } from '../../../chat/bench';
import { type ChatCrypto, CryptoSetupError, parseCryptoChoice, setupCrypto } from '../../../chat/setup';

const CRYPTO_HELP = `  --crypto none|cryptodev|software|auto
                     none: plain text (Z1). cryptodev: AES-256-CBC through /dev/crypto (Z2/Z3).
                     software: the same with node:crypto, byte-identical on the wire.
                     auto (default when a key is given): cryptodev if /dev/crypto opens, else software.
  --key-file F       pre-shared key (vlab chat keygen F); both sides need the same one`;

const cryptoOptions = {
  crypto: { type: 'string' },
  'key-file': { type: 'string' },
  nick: { type: 'string' },
} as const;

type OptionSpec = Record<string, { type: 'string' | 'boolean' }>;

function parse(args: readonly string[], options: OptionSpec, positionals = 0): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const parsed = parseArgs({ args: [...args], options, allowPositionals: positionals > 0, strict: true });
  if (parsed.positionals.length > positionals) throw new UsageError(`unexpected argument ${parsed.positionals[positionals]}`);
  return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
}

function cryptoFrom(values: Record<string, string | boolean | undefined>): ChatCrypto {
  try {
    return setupCrypto(parseCryptoChoice(values['crypto'] as string | undefined), values['key-file'] as string | undefined);
  } catch (err) {
    if (err instanceof CryptoSetupError) throw new UsageError(err.message);
    if (err instanceof KeyFileError) throw new UsageError(err.message);
    throw err;
  }
}

function nickFrom(values: Record<string, string | boolean | undefined>, fallback: string): string {
  const nick = (values['nick'] as string | undefined) ?? fallback;
  if (!NICK_RE.test(nick)) throw new UsageError('--nick must be 1-24 letters, digits, _ or -');
  return nick;
}

function portFrom(value: string | boolean | undefined, required: boolean): number {
  if (value === undefined) {
    if (required) throw new UsageError('--port is required (0 picks a free port)');
    return 0;
  }
  const port = typeof value === 'string' ? integerIn(value, 0, 65535) : undefined;
  if (port === undefined) throw new UsageError('--port must be 0..65535');
  return port;
}

function isTty(io: CliIo): boolean {
  return (io.stdin as NodeJS.ReadStream).isTTY === true && (io.stdout as NodeJS.WriteStream).isTTY === true;
}

const listen: CliCommand = {
  name: 'chat listen',
  summary: 'wait for one peer and chat with it (interactive or pipe)',
  usage: `usage: vlab chat listen --port P [--host 127.0.0.1] [--crypto ...] [--key-file F] [--nick NAME]
Waits for one peer (vlab chat connect), then chats: type lines; /quit or Ctrl-D ends both sides.
On a pipe, stdin lines are sent and received lines go to stdout ("[HH:MM:SS] <nick> text");
status lines (listening on, cipher, errors) go to stderr.
${CRYPTO_HELP}`,
  async run(args, io) {
    const { values } = parse(args, { ...cryptoOptions, host: { type: 'string' }, port: { type: 'string' } });
    const port = portFrom(values['port'], true);
    const host = (values['host'] as string | undefined) ?? '127.0.0.1';
    const nick = nickFrom(values, 'host');
    const c = cryptoFrom(values);
    try {
      io.stderr.write(`${c.startupLine}\n`);
      const socket = await acceptOne(host, port, (a) => io.stderr.write(`listening on ${a.address}:${a.port}\n`), io.signal);
      return await runChatSession(socket, { role: 'responder', mode: c.mode, ...psk(c), nick, as: 'peer' }, { ...io, interactive: isTty(io) });
    } finally {
      c.close();
    }
  },
};

function psk(c: ChatCrypto): { key?: KeySource; provider?: ChatCrypto['provider'] } {
  return { ...(c.key ? { key: c.key } : {}), ...(c.provider ? { provider: c.provider } : {}) };
}

const connect: CliCommand = {
  name: 'chat connect',
  summary: 'connect to a chat peer or server (interactive or pipe)',
  usage: `usage: vlab chat connect HOST:PORT [--crypto ...] [--key-file F] [--nick NAME]
Connects to vlab chat listen or vlab chat server. HOST is 127.0.0.1 (10.0.2.2 from the lab guest).
${CRYPTO_HELP}`,
  async run(args, io) {
    const { values, positionals } = parse(args, cryptoOptions, 1);
    if (positionals.length !== 1) throw new UsageError('HOST:PORT is required');
    let target;
    try {
      target = parseHostPort(positionals[0]!);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const nick = nickFrom(values, 'guest');
    const c = cryptoFrom(values);
    try {
      io.stderr.write(`${c.startupLine}\n`);
      let socket;
      try {
        socket = await connectTo(target.host, target.port);
      } catch (err) {
        io.stderr.write(`chat: ${(err as Error).message}\n`);
        return 1;
      }
      return await runChatSession(socket, { role: 'initiator', mode: c.mode, ...psk(c), nick, as: 'client' }, { ...io, interactive: isTty(io) });
    } finally {
      c.close();
    }
  },
};

const keygen: CliCommand = {
  name: 'chat keygen',
  summary: 'write a new pre-shared chat key file (mode 0600)',
  usage: `usage: vlab chat keygen FILE [--force] [--passphrase-stdin]
Writes a fresh random 256-bit key, or with --passphrase-stdin the first line of stdin as a
passphrase, so two machines can share a phrase instead of a file. Each server stretches the phrase
with scrypt under its own random salt, sent in the clear in its HELLO: someone who records a
handshake can test passphrase guesses offline at scrypt's cost, so use a long random phrase
(docs/chat-protocol.md). Refuses to overwrite an existing file unless --force.`,
  async run(args, io) {
    const { values, positionals } = parse(args, { force: { type: 'boolean' }, 'passphrase-stdin': { type: 'boolean' } }, 1);
    const file = positionals[0];
    if (!file) throw new UsageError('FILE is required');
    let key: Buffer | string;
    if (values['passphrase-stdin']) {
      key = (await readFirstLine(io.stdin)).replace(/\r$/, '');
      try {
        passphraseSource(key, Buffer.alloc(16)); // validates length and shape, derives nothing
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    } else key = generatePsk();
    try {
      writeKeyFile(file, key, values['force'] === true);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      io.stderr.write(`vlab chat keygen: ${e.code === 'EEXIST' ? `${file} exists (use --force to replace it)` : e.message}\n`);
      return 1;
    }
    io.stdout.write(`wrote ${file} (mode ${(fs.statSync(file).mode & 0o777).toString(8)})\n`);
    return 0;
  },
};

function readFirstLine(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const done = (): void => {
      stream.removeListener('data', onData);
      stream.removeListener('end', done);
      resolve(text.split('\n')[0] ?? '');
    };
    const onData = (chunk: Buffer | string): void => {
      text += chunk.toString();
      if (text.includes('\n') || text.length > 4096) done();
    };
    stream.on('data', onData);
    stream.once('end', done);
  });
}

const server: CliCommand = {
  name: 'chat server',
  summary: 'IRC-like multi-client chat server (nicks, rooms, /msg)',
  usage: `usage: vlab chat server --port P [--host 127.0.0.1] [--crypto ...] [--key-file F] [--max-queue BYTES] [limits]
Clients connect with vlab chat connect. Commands: /nick NAME, /join #room, /part [#room], /list,
/who [#room], /msg NICK text, /quit. Plain lines go to the room joined last (#lobby at first).
Each client has a bounded output queue (--max-queue, default 1 MiB); a client that stops reading is
disconnected instead of slowing the others. Ctrl-C stops the server.
Limits against hostile clients (docs/chat-protocol.md, "Limits"; 0 disables a timeout or the rate):
  --handshake-timeout S   a client must prove the key within S seconds (default 10)
  --hello-timeout S       ... and send its HELLO within S seconds (default 2, at most the above)
  --idle-timeout S        an open client that sends nothing (no line, no keepalive) for S seconds is
                          closed (default 600); clients are asked for a keepalive every S/3 seconds
  --max-clients N         connections at once, handshakes included (default 256)
  --max-pending N         handshakes in progress at once (default 64); a new connection over it
                          evicts the oldest (one that sent no HELLO first)
  --rate N                messages a client may send per second, sustained (default 20; a message
                          costs 1 plus 1 per KiB beyond the first, and 1 more per 16 records the
                          server seals for it past the first 16, e.g. a line to a big room); over it
                          the server stops reading that client until it is back within budget —
                          nothing is dropped
  --burst N               messages a client may send at once before --rate applies (default 200)
${CRYPTO_HELP}`,
  async run(args, io) {
    const limitNames = ['handshake-timeout', 'hello-timeout', 'idle-timeout', 'max-clients', 'max-pending', 'rate', 'burst'] as const;
    const limitOptions = Object.fromEntries(limitNames.map((n) => [n, { type: 'string' as const }]));
    const { values } = parse(args, { crypto: cryptoOptions.crypto, 'key-file': cryptoOptions['key-file'], host: { type: 'string' }, port: { type: 'string' }, 'max-queue': { type: 'string' }, 'max-pending-per-address': { type: 'string' }, ...limitOptions });
    const port = portFrom(values['port'], true);
    // Accepted so scripts written for the per-address cap keep working; it isolated nobody (every
    // client of a loopback server, the guest included, is 127.0.0.1) and is gone.
    if (values['max-pending-per-address'] !== undefined) io.stderr.write('vlab chat server: --max-pending-per-address is ignored: pending handshakes are capped by --max-pending, oldest evicted first\n');
    const num = (name: (typeof limitNames)[number], min: number, max: number): number | undefined => {
      const v = values[name];
      if (v === undefined) return undefined;
      const n = Number(v);
      if (typeof v !== 'string' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max}`);
      return n;
    };
    const seconds = (name: 'handshake-timeout' | 'hello-timeout' | 'idle-timeout'): number | undefined => {
      const s = num(name, 0, 86_400);
      return s === undefined ? undefined : Math.round(s * 1000);
    };
    const int = (name: 'max-clients' | 'max-pending' | 'burst', min: number, max: number): number | undefined => {
      const n = num(name, min, max);
      if (n !== undefined && !Number.isInteger(n)) throw new UsageError(`--${name} must be an integer`);
      return n;
    };
    const limits = {
      handshakeTimeoutMs: seconds('handshake-timeout'),
      helloTimeoutMs: seconds('hello-timeout'),
      idleTimeoutMs: seconds('idle-timeout'),
      maxClients: int('max-clients', 1, 100_000),
      maxPendingHandshakes: int('max-pending', 1, 100_000),
      ratePerSecond: num('rate', 0, 1_000_000),
      rateBurst: int('burst', 1, 1_000_000),
    };
    const definedLimits = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) as Partial<Record<keyof typeof limits, number>>;
    const maxQueue = values['max-queue'] === undefined ? undefined : Number(values['max-queue']);
    if (maxQueue !== undefined && (!Number.isInteger(maxQueue) || maxQueue < 65536)) throw new UsageError('--max-queue must be an integer ≥ 65536');
    const c = cryptoFrom(values);
    const srv = new ChatServer({
      host: (values['host'] as string | undefined) ?? '127.0.0.1',
      port,
      mode: c.mode,
      ...psk(c),
      ...(maxQueue !== undefined ? { maxQueuedBytes: maxQueue } : {}),
      ...definedLimits,
      log: (line) => io.stderr.write(`${new Date().toTimeString().slice(0, 8)} ${line}\n`),
    });
    try {
      io.stderr.write(`${c.startupLine}\n`);
      const addr = await srv.listen().catch((err: Error) => {
        throw new UsageError(`cannot listen: ${err.message}`);
      });
      io.stderr.write(`chat server listening on ${addr.address}:${addr.port}\n`);
      await new Promise<void>((resolve) => (io.signal.aborted ? resolve() : io.signal.addEventListener('abort', () => resolve(), { once: true })));
      io.stderr.write(`stopping; stats ${JSON.stringify(srv.getStats())}\n`);
      await srv.close();
      return 0;
    } finally {
      c.close();
    }
  },
};

const pair: CliCommand = {
  name: 'chat pair',
  summary: 'run a listen/connect pair (host↔host or host↔guest), optionally capture and check the wire',
  usage: `usage: vlab chat pair [--crypto ...] [--peer-crypto ...] [--key-file F] [--capture out.pcap] [--guest] [--sentence TEXT] [--json]
Starts a listener on 127.0.0.1 and a \`vlab chat connect\` process (on the host, or with --guest in the
running lab VM through vlab ssh, connecting to 10.0.2.2), sends one known sentence each way, ends
with Ctrl-D, and reports. With --capture the traffic is recorded (tcpdump on lo filtered to the
pair's port; with --guest, the lab's QEMU filter-dump) and scanned: with --crypto none the sentence
is visible, with encryption neither it nor any 8-byte run of it may appear.
Without --key-file a fresh key is made for the run. Default --crypto: auto. --peer-crypto sets the
connecting side's provider when it should differ (e.g. --crypto software --peer-crypto cryptodev --guest).
${CRYPTO_HELP}`,
  async run(args, io) {
    const { values } = parse(args, { ...cryptoOptions, 'peer-crypto': { type: 'string' }, capture: { type: 'string' }, guest: { type: 'boolean' }, sentence: { type: 'string' }, json: { type: 'boolean' } });
    let choice;
    let peerChoice;
    try {
      choice = parseCryptoChoice(values['crypto'] as string | undefined) ?? 'auto';
      peerChoice = parseCryptoChoice(values['peer-crypto'] as string | undefined);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const sentence = values['sentence'] as string | undefined;
    if (sentence !== undefined && (sentence.length < 8 || sentence.length > 1000 || /[\r\n]/.test(sentence))) throw new UsageError('--sentence must be one line of 8..1000 characters');
    const log = (line: string): void => void io.stderr.write(`${line}\n`);
    let result;
    try {
      result = await runPair({
        crypto: choice,
        ...(peerChoice ? { peerCrypto: peerChoice } : {}),
        ...(values['key-file'] ? { keyFile: values['key-file'] as string } : {}),
        ...(values['capture'] ? { capture: values['capture'] as string } : {}),
        ...(sentence ? { sentence } : {}),
        guest: values['guest'] === true,
        cwd: io.cwd,
        env: io.env,
        signal: io.signal,
        log,
      });
    } catch (err) {
      io.stderr.write(`vlab chat pair: ${(err as Error).message}\n`);
      return 1;
    }
    if (values['json']) {
      io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      const side = values['guest'] ? 'guest' : 'peer';
      io.stdout.write(
        [
          `host ${result.hostCipher}`,
          `${side} ${result.peerCipher}`,
          `host received: ${result.hostReceived.join(' | ')}`,
          `${side} received: ${result.peerReceived.join(' | ')}`,
          ...(result.capture
            ? [
                `capture: ${result.capture.file} (${result.capture.bytes} bytes)`,
                `  sentence visible on the wire: ${result.capture.sentenceVisible ? 'YES' : 'no'}; longest run of it found: ${result.capture.longestRun ? `${result.capture.longestRun} bytes` : 'none of 8+ bytes'}`,
              ]
            : []),
          `result: ${result.ok ? 'ok' : 'FAILED'}`,
          '',
        ].join('\n'),
      );
    }
    return result.ok ? 0 : 1;
  },
};

const bench: CliCommand = {
  name: 'chat bench',
  summary: 'messages/s through the chat server with N clients (plain vs encrypted)',
  usage: `usage: vlab chat bench [--clients 50] [--messages 100] [--json]
Starts \`vlab chat server\` (a separate process) twice, plain and encrypted (software provider), connects
N clients in one room, has each send M lines and waits until every client received every other
client's lines. Reports lines accepted/s and copies delivered/s, and encrypted/plain ratios.`,
  async run(args, io) {
    const { values } = parse(args, { clients: { type: 'string' }, messages: { type: 'string' }, json: { type: 'boolean' } });
    const clients = Number(values['clients'] ?? 50);
    const messages = Number(values['messages'] ?? 100);
    if (!Number.isInteger(clients) || clients < 2 || clients > 200) throw new UsageError('--clients must be 2..200');
    if (!Number.isInteger(messages) || messages < 1 || messages > 100000) throw new UsageError('--messages must be 1..100000');
    const rows = await runChatBench({ clients, messages, modes: ['none', 'sealed'] });
    if (values['json']) {
      io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return 0;
    }
    const plain = rows.find((r) => r.mode === 'none');
    io.stdout.write(`chat server, ${clients} clients in one room, ${messages} lines each (64 B), every line to ${clients - 1} others\n`);
    for (const r of rows) {
      const ratio = plain && r !== plain ? ` (${((r.sentPerSec / plain.sentPerSec) * 100).toFixed(0)}% of plain)` : '';
      io.stdout.write(
        `  ${r.mode === 'none' ? 'plain    ' : 'encrypted'}  ${r.sent} lines in ${r.seconds.toFixed(2)} s: ${Math.round(r.sentPerSec)} lines/s accepted, ${Math.round(r.deliveredPerSec)} copies/s delivered${ratio}\n`,
      );
    }
    return 0;
  },
};

export const chatCommands: readonly CliCommand[] = [listen, connect, keygen, server, pair, bench];
