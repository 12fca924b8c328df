/**
 * IRC-like multi-client chat server: nicknames, rooms, private messages, notices. Each client is a
 * ChatConnection (encrypted with the shared key, or plain). Writes never wait: every client has a
 * bounded output queue, and a client whose queue overflows (it stopped reading) is disconnected,
 * so one slow or broken client never holds up the others.
 *
 * Against hostile clients (docs/chat-protocol.md, "Limits"): pending handshakes are capped (a new
 * connection over the cap evicts the oldest pending one, silent ones first), the HELLO and the
 * handshake must each arrive within a deadline, an open client that sends nothing (no message, no
 * keepalive) is closed after an idle timeout, and each client's messages are rate limited, charged
 * by the records the server seals for them (room fan-out).
 */
import * as net from 'node:net';
import { ChatConnection } from './connection';
import type { KeySource } from './keys';
import { type ChatMessage, encodeMessage, MIN_KEEPALIVE_MS, NICK_RE, ROOM_RE } from './messages';
import { type ChatMode, encodeAlert } from './protocol';
import type { CryptoProvider } from './provider';
import { checkAllowedHost } from './peer';

export const DEFAULT_ROOM = '#lobby';
export const DEFAULT_MAX_QUEUED_BYTES = 1024 * 1024;
export const DEFAULT_MAX_CLIENTS = 256;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 600_000;
/** The peer's HELLO must arrive within this (capped by the handshake timeout). */
export const DEFAULT_HELLO_TIMEOUT_MS = 2_000;
export const DEFAULT_MAX_PENDING = 64;
/** One rate-limit token pays for up to this many records sealed for a client's line (fan-out). */
export const FANOUT_PER_TOKEN = 16;
export const DEFAULT_RATE_PER_SECOND = 20;
export const DEFAULT_RATE_BURST = 200;
const MAX_ROOMS_PER_CLIENT = 16;

export interface ServerOptions {
  readonly host?: string;
  readonly port: number;
  readonly mode: ChatMode;
  readonly psk?: Buffer;
  readonly key?: KeySource;
  readonly provider?: CryptoProvider;
  /** Unsent bytes allowed per client before it is dropped. */
  readonly maxQueuedBytes?: number;
  readonly maxClients?: number;
  /** A client's READY must verify within this (ms); 0 disables. */
  readonly handshakeTimeoutMs?: number;
  /** A client's HELLO must arrive within this (ms; default 2000, never above the handshake timeout); 0 disables. */
  readonly helloTimeoutMs?: number;
  /** An open client that sends no record for this long (ms) is closed; 0 disables. */
  readonly idleTimeoutMs?: number;
  /**
   * Connections still in the handshake at once. A new connection over the cap evicts the oldest
   * pending one that has not sent its HELLO (else the oldest pending one) with ALERT busy.
   */
  readonly maxPendingHandshakes?: number;
  /** Messages a client may send per second (sustained) and in one burst; 0 disables. */
  readonly ratePerSecond?: number;
  readonly rateBurst?: number;
  /** Server log lines (connects, drops, errors). */
  readonly log?: (line: string) => void;
}

interface Client {
  readonly id: number;
  readonly conn: ChatConnection;
  nick: string | undefined;
  readonly address: string;
  pending: boolean;
  readonly rooms: Set<string>;
  /** Room that plain text goes to (the one joined last). */
  current: string | undefined;
}

export interface ServerStats {
  readonly clients: number;
  readonly rooms: number;
  /** Messages accepted from clients (say lines that were not commands). */
  readonly received: number;
  /** Messages handed to client connections. */
  readonly delivered: number;
  /** Clients cut off because their output queue overflowed. */
  readonly droppedSlow: number;
  /** Largest unsent backlog seen on any client connection, in bytes. */
  readonly maxQueuedSeen: number;
  /** Connections still in the handshake now. */
  readonly pending: number;
  /** Connections refused at accept (server full). */
  readonly refused: number;
  /** Pending handshakes ended to make room for a newer connection. */
  readonly evicted: number;
  readonly handshakeTimeouts: number;
  readonly idleTimeouts: number;
  /** Clients whose handshake failed (wrong key, wrong version, malformed). */
  readonly handshakeFailures: number;
  /** Clients dropped because sealing toward them failed (e.g. /dev/crypto gone). */
  readonly sealFailures: number;
}

export class ChatServer {
  private readonly server = net.createServer();
  private readonly clients = new Map<number, Client>();
  private readonly rooms = new Map<string, Set<Client>>();
  private nextId = 1;
  private readonly stats = { received: 0, delivered: 0, droppedSlow: 0, maxQueuedSeen: 0, refused: 0, evicted: 0, handshakeTimeouts: 0, idleTimeouts: 0, handshakeFailures: 0, sealFailures: 0 };
  /** Clients in their handshake, oldest first (Map keeps insertion order). */
  private readonly pendingClients = new Map<number, Client>();
  private readonly log: (line: string) => void;
  readonly maxQueuedBytes: number;

  constructor(private readonly opts: ServerOptions) {
    checkAllowedHost(opts.host ?? '127.0.0.1');
    this.log = opts.log ?? (() => undefined);
    this.maxQueuedBytes = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    // A passphrase is stretched once for this server's salt, now, not in the first client's turn.
    if (opts.mode === 'sealed' && opts.key?.kind === 'passphrase') opts.key.pskFor(opts.key.salt);
    this.server.on('connection', (socket) => this.accept(socket));
  }

  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host ?? '127.0.0.1', () => {
        this.server.removeListener('error', reject);
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  getStats(): ServerStats {
    return { clients: this.clients.size, rooms: this.rooms.size, pending: this.pendingClients.size, ...this.stats };
  }

  /** Stops accepting, says goodbye to everyone, resolves when every socket is closed. */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.clients.values()) c.conn.quit();
    return closed;
  }

  private refuse(socket: net.Socket, why: string): void {
    this.stats.refused++;
    this.log(`refusing ${socket.remoteAddress}:${socket.remotePort}: ${why}`);
    socket.on('error', () => undefined);
    // One small plain ALERT so a real client says why; nothing else is allocated for this peer.
    socket.end(encodeAlert('busy', `server busy: ${why}`));
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private accept(socket: net.Socket): void {
    const address = socket.remoteAddress ?? '?';
    const o = this.opts;
    const maxPending = o.maxPendingHandshakes ?? DEFAULT_MAX_PENDING;
    // Over the pending cap, the oldest pending handshake makes room (review F5): the source address
    // isolates nobody (every host client and the guest via slirp is 127.0.0.1), so refusing the
    // newcomer would let anyone holding the slots lock everyone out.
    if (this.pendingClients.size >= maxPending) {
      // A handshake that already ended (timed out, failed) while its socket lingers holds no slot.
      // (Still `pending` for the stats at its end.)
      for (const c of [...this.pendingClients.values()]) if (c.conn.over) this.pendingClients.delete(c.id);
    }
    while (this.pendingClients.size >= maxPending) this.evictOldest(maxPending);
    if (this.clients.size - this.evicting >= (o.maxClients ?? DEFAULT_MAX_CLIENTS)) return this.refuse(socket, 'server full');
    const handshakeMs = o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    const helloDefault = handshakeMs > 0 ? Math.min(DEFAULT_HELLO_TIMEOUT_MS, handshakeMs) : DEFAULT_HELLO_TIMEOUT_MS;
    const helloMs = o.helloTimeoutMs === undefined ? helloDefault : handshakeMs > 0 ? Math.min(o.helloTimeoutMs, handshakeMs) : o.helloTimeoutMs;
    const idleMs = o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    const perSecond = o.ratePerSecond ?? DEFAULT_RATE_PER_SECOND;
    const id = this.nextId++;
    const client: Client = {
      id,
      nick: undefined,
      address,
      pending: true,
      rooms: new Set(),
      current: undefined,
      conn: new ChatConnection(
        socket,
        {
          role: 'responder',
          mode: o.mode,
          ...(o.psk ? { psk: o.psk } : {}),
          ...(o.key ? { key: o.key } : {}),
          ...(o.provider ? { provider: o.provider } : {}),
          // With an idle timeout, ask for a keepalive three times per timeout.
          hello: { nick: 'server', role: 'server', ...(idleMs > 0 ? { keepaliveMs: Math.max(MIN_KEEPALIVE_MS, Math.floor(idleMs / 3)) } : {}) },
          maxQueuedBytes: this.maxQueuedBytes,
          ...(handshakeMs > 0 ? { handshakeTimeoutMs: handshakeMs } : {}),
          ...(helloMs > 0 ? { helloTimeoutMs: helloMs } : {}),
          ...(idleMs > 0 ? { idleTimeoutMs: idleMs } : {}),
          ...(perSecond > 0 ? { rate: { perSecond, burst: Math.max(1, o.rateBurst ?? DEFAULT_RATE_BURST) } } : {}),
        },
        {
          onReady: (peer) => {
            this.settle(client);
            this.welcome(client, peer.nick);
          },
          onMessage: (m) => this.onMessage(client, m),
          onEnd: (outcome) => {
            const why = outcome.kind === 'error' ? outcome.error.message : outcome.kind === 'bye' ? 'quit' : 'server closing';
            if (outcome.kind === 'error' && /output queue/.test(why)) this.stats.droppedSlow++;
            if (outcome.kind === 'error' && /cannot encrypt toward/.test(why)) this.stats.sealFailures++;
            if (client.conn.limitHit === 'evicted') {
              this.evicting--;
              this.stats.evicted++;
            } else if (client.conn.limitHit === 'handshake timeout') this.stats.handshakeTimeouts++;
            else if (client.conn.limitHit === 'idle timeout') this.stats.idleTimeouts++;
            else if (client.pending) this.stats.handshakeFailures++;
            this.settle(client);
            this.log(`client ${id} (${client.nick ?? 'no nick'}) gone: ${why}`);
            this.remove(client, why);
          },
        },
      ),
    };
    this.clients.set(id, client);
    this.pendingClients.set(id, client);
    this.log(`client ${id} connected from ${address}:${socket.remotePort}`);
  }

  /** Evicted clients whose socket has not closed yet (they do not count as connected). */
  private evicting = 0;

  private evictOldest(maxPending: number): void {
    let victim: Client | undefined;
    for (const c of this.pendingClients.values()) {
      if (c.conn.awaitingHello) {
        victim = c;
        break;
      }
      victim ??= c;
    }
    if (!victim) return;
    this.settle(victim);
    if (!victim.conn.evict(`server busy: evicted as the oldest of ${maxPending} pending handshakes`)) return;
    this.evicting++;
    this.log(`client ${victim.id} evicted: ${maxPending} handshakes pending`);
  }

  /** The client left the handshake (verified, or gone): release its pending slot once. */
  private settle(client: Client): void {
    if (!client.pending) return;
    client.pending = false;
    this.pendingClients.delete(client.id);
  }

  private welcome(client: Client, wanted: string): void {
    client.nick = this.uniqueNick(wanted);
    this.send(client, { t: 'notice', text: `welcome ${client.nick}; commands: /nick /join /part /list /who /msg /quit` });
    this.join(client, DEFAULT_ROOM);
  }

  private uniqueNick(wanted: string): string {
    const taken = (n: string): boolean => [...this.clients.values()].some((c) => c.nick?.toLowerCase() === n.toLowerCase());
    if (!taken(wanted)) return wanted;
    for (let i = 2; ; i++) {
      const candidate = `${wanted.slice(0, 20)}${i}`;
      if (!taken(candidate)) return candidate;
    }
  }

  /**
   * One client line. What it costs the server is the records sealed for it: past the first
   * FANOUT_PER_TOKEN, each started FANOUT_PER_TOKEN costs the sender one more token (review F13:
   * a line to a room of 255 is 16 tokens, not 1).
   */
  private onMessage(client: Client, m: ChatMessage): void {
    const before = this.stats.delivered;
    this.handleMessage(client, m);
    const sealed = this.stats.delivered - before;
    if (sealed > FANOUT_PER_TOKEN) client.conn.chargeExtra(Math.ceil(sealed / FANOUT_PER_TOKEN) - 1);
  }

  private handleMessage(client: Client, m: ChatMessage): void {
    if (!client.nick) return;
    if (m.t !== 'say') {
      this.send(client, { t: 'error', text: `clients send text, not "${m.t}" messages` });
      return;
    }
    const text = m.text;
    if (!text.startsWith('/')) {
      if (!client.current) {
        this.send(client, { t: 'error', text: 'you are in no room: /join #room first' });
        return;
      }
      this.stats.received++;
      this.toRoom(client.current, { t: 'msg', from: client.nick, to: client.current, text }, client);
      return;
    }
    const [cmd, ...rest] = text.trim().split(/\s+/);
    const arg = rest[0];
    switch (cmd) {
      case '/nick':
        return this.rename(client, arg);
      case '/join':
        if (!arg || !ROOM_RE.test(arg)) return this.send(client, { t: 'error', text: 'usage: /join #room (letters, digits, _ and -)' });
        return this.join(client, arg);
      case '/part':
        return this.part(client, arg ?? client.current);
      case '/list':
        return this.send(client, {
          t: 'notice',
          text: this.rooms.size === 0 ? 'no rooms' : `rooms: ${[...this.rooms].map(([r, m]) => `${r} (${m.size})`).sort().join(', ')}`,
        });
      case '/who': {
        const room = arg ?? client.current;
        const members = room ? this.rooms.get(room) : undefined;
        if (!room || !members) return this.send(client, { t: 'error', text: `no such room ${room ?? ''}`.trim() });
        return this.send(client, { t: 'notice', text: `${room}: ${[...members].map((c) => c.nick).sort().join(' ')}` });
      }
      case '/msg': {
        const target = [...this.clients.values()].find((c) => c.nick !== undefined && c.nick.toLowerCase() === arg?.toLowerCase());
        const body = text.trim().split(/\s+/).slice(2).join(' ');
        if (!arg || !body) return this.send(client, { t: 'error', text: 'usage: /msg NICK text' });
        if (!target) return this.send(client, { t: 'error', text: `no such nick ${arg}` });
        this.stats.received++;
        return this.send(target, { t: 'msg', from: client.nick, to: target.nick!, text: body });
      }
      default:
        return this.send(client, { t: 'error', text: `unknown command ${cmd}` });
    }
  }

  private rename(client: Client, nick: string | undefined): void {
    if (!nick || !NICK_RE.test(nick)) return this.send(client, { t: 'error', text: 'usage: /nick NAME (1-24 letters, digits, _ or -)' });
    const clash = [...this.clients.values()].some((c) => c !== client && c.nick?.toLowerCase() === nick.toLowerCase());
    if (clash) return this.send(client, { t: 'error', text: `nick ${nick} is taken` });
    const old = client.nick!;
    client.nick = nick;
    const told = new Set<Client>([client]);
    for (const room of client.rooms) for (const c of this.rooms.get(room) ?? []) told.add(c);
    for (const c of told) this.send(c, { t: 'notice', text: `${old} is now known as ${nick}` });
  }

  private join(client: Client, room: string): void {
    if (client.rooms.has(room)) {
      client.current = room;
      return this.send(client, { t: 'notice', text: `now talking in ${room}` });
    }
    if (client.rooms.size >= MAX_ROOMS_PER_CLIENT) return this.send(client, { t: 'error', text: `at most ${MAX_ROOMS_PER_CLIENT} rooms per client` });
    let members = this.rooms.get(room);
    if (!members) this.rooms.set(room, (members = new Set()));
    members.add(client);
    client.rooms.add(room);
    client.current = room;
    this.toRoom(room, { t: 'notice', text: `${client.nick} joined ${room}` });
  }

  private part(client: Client, room: string | undefined): void {
    if (!room || !client.rooms.has(room)) return this.send(client, { t: 'error', text: `you are not in ${room ?? 'a room'}` });
    this.toRoom(room, { t: 'notice', text: `${client.nick} left ${room}` });
    this.leaveRoom(client, room);
    client.current = [...client.rooms].pop();
  }

  private leaveRoom(client: Client, room: string): void {
    client.rooms.delete(room);
    const members = this.rooms.get(room);
    members?.delete(client);
    if (members && members.size === 0) this.rooms.delete(room);
  }

  private remove(client: Client, why: string): void {
    if (!this.clients.delete(client.id)) return;
    for (const room of [...client.rooms]) {
      this.leaveRoom(client, room);
      if (client.nick) this.toRoom(room, { t: 'notice', text: `${client.nick} left ${room} (${why})` });
    }
  }

  private toRoom(room: string, m: ChatMessage, except?: Client): void {
    const encoded = encodeMessage(m);
    for (const c of [...(this.rooms.get(room) ?? [])]) if (c !== except) this.send(c, m, encoded);
  }

  /** Never waits: the connection queues and drops itself when its queue is full. */
  private send(client: Client, m: ChatMessage, encoded: Buffer = encodeMessage(m)): void {
    if (!this.clients.has(client.id)) return;
    if (client.conn.sendEncoded(encoded)) this.stats.delivered++;
    const queued = client.conn.queuedBytes;
    if (queued > this.stats.maxQueuedSeen) this.stats.maxQueuedSeen = queued;
  }
}
