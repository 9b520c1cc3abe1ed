// One WebSocket to the chat backend, kept open: a state machine with typed
// state events, reconnects with backoff and full jitter, an early reconnect
// when the network or the page comes back, a ping well inside the server's
// 10-minute idle limit with a pong deadline, and a planned, overlapping
// reconnect before the server's 2-hour connection lifetime.
import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import type { GetToken } from "./rest.js";
import type { ServerEvent } from "./types.js";

/**
 * - `idle`: created, `connect()` not called yet
 * - `connecting`: a handshake is under way
 * - `connected`: a socket is open
 * - `reconnecting`: waiting `delayMs` before the next handshake
 * - `closed`: `close()` was called, or the server refused the user (see `error`)
 */
export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

export interface StateChange {
  from: ConnectionState;
  to: ConnectionState;
  /** Why, in words: `open`, `socket closed (1006)`, `pong timeout`, `online`, `unauthorized`… */
  reason: string;
  /** The retry's number (0-based) when `to` is `reconnecting`. */
  attempt?: number;
  /** When `to` is `reconnecting`: how long until the next handshake. */
  delayMs?: number;
  /** When `to` is `closed` because the server refused: why. */
  error?: ChatConnectionError;
}

export class ChatConnectionError extends Error {
  override readonly name = "ChatConnectionError";
  constructor(
    /** `unauthorized`: the token was refused twice; `forbidden`: the user has no profile (403). */
    readonly code: "unauthorized" | "forbidden" | "token_unavailable" | "websocket_unavailable",
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** What the client needs of a WebSocket; the browser's, Node's and the `ws` package's all have it. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
/** A WebSocket constructor: `globalThis.WebSocket`, or `WebSocket` from the `ws` package in Node.js. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => object;

/** Where "the network is back" and "the page is visible again" come from. */
export interface WakeSource {
  /** Calls `wake` on each such moment; returns the function that stops it. */
  subscribe(wake: (reason: "online" | "visible") => void): () => void;
}

/** The browser's `online` event and `visibilitychange` to visible; null outside a browser. */
export function browserWakeSource(): WakeSource | null {
  const w = globalThis as unknown as {
    addEventListener?: (t: string, f: () => void) => void;
    removeEventListener?: (t: string, f: () => void) => void;
    document?: { visibilityState?: string; addEventListener(t: string, f: () => void): void; removeEventListener(t: string, f: () => void): void };
  };
  if (typeof w.addEventListener !== "function" || !w.document) return null;
  const doc = w.document;
  return {
    subscribe(wake) {
      const online = () => wake("online");
      const visible = () => {
        if (doc.visibilityState === "visible") wake("visible");
      };
      w.addEventListener!("online", online);
      doc.addEventListener("visibilitychange", visible);
      return () => {
        w.removeEventListener!("online", online);
        doc.removeEventListener("visibilitychange", visible);
      };
    },
  };
}

export interface ConnectionOptions {
  /** The WebSocket API's URL, e.g. `ws://127.0.0.1:3001/dev`. */
  wsUrl: string;
  getToken: GetToken;
  /** Default `globalThis.WebSocket`; in Node.js 20 pass `WebSocket` from the `ws` package. */
  WebSocket?: WebSocketConstructor;
  backoff?: BackoffOptions;
  /** How often to ping (ms); the server closes a socket idle for 10 minutes. Default 2 minutes. */
  pingIntervalMs?: number;
  /** A socket whose pong takes longer than this (ms) is taken for dead. Default 10 s. */
  pongTimeoutMs?: number;
  /** A handshake taking longer (ms) is abandoned. Default 15 s. */
  connectTimeoutMs?: number;
  /** Replace the socket after this long (ms); the server closes every socket at 2 hours. Default 110 minutes. */
  maxConnectionAgeMs?: number;
  /** Default: the browser's `online` and `visibilitychange` (none in Node.js). */
  wake?: WakeSource | null;
  /**
   * A browser hides the status of a failed handshake. Asked then whether the
   * token itself is refused (the client asks the REST API with it).
   */
  isTokenRefused?: (token: string) => Promise<boolean>;
}

export interface ConnectionEvents {
  state: [StateChange];
  /** A socket opened; `rotation` when it replaced a live one. Time to catch up. */
  open: [{ rotation: boolean }];
  event: [ServerEvent];
  error: [Error];
}

export const CONNECTION_DEFAULTS = {
  pingIntervalMs: 2 * 60_000,
  pongTimeoutMs: 10_000,
  connectTimeoutMs: 15_000,
  maxConnectionAgeMs: 110 * 60_000,
  // The overlapping socket keeps delivering this long after its successor opened.
  rotationGraceMs: 2_000,
} as const;

const OPEN = 1;

export class Connection extends Emitter<ConnectionEvents> {
  private _state: ConnectionState = "idle";
  private socket: SocketLike | null = null;
  private dialing: SocketLike | null = null;
  private rotating: SocketLike | null = null;
  private attempt = 0;
  private authFailures = 0;
  private refreshToken = false;
  private stopped = true;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  private rotateTimer: ReturnType<typeof setTimeout> | undefined;
  private unsubscribeWake: (() => void) | undefined;
  private readonly o: Required<Omit<ConnectionOptions, "WebSocket" | "backoff" | "wake" | "isTokenRefused">> &
    Pick<ConnectionOptions, "backoff" | "isTokenRefused">;
  private readonly wakeSource: WakeSource | null;

  constructor(private readonly options: ConnectionOptions) {
    super();
    this.o = { ...CONNECTION_DEFAULTS, ...stripUndefined(options) } as Connection["o"];
    this.wakeSource = options.wake === undefined ? browserWakeSource() : options.wake;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** Opens the socket and keeps it open until `close()`. */
  connect(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    this.authFailures = 0;
    this.unsubscribeWake = this.wakeSource?.subscribe((reason) => this.wake(reason));
    void this.dial(false, "connect");
  }

  /** Closes the socket and stops reconnecting. */
  close(): void {
    if (this._state === "closed" && this.stopped) return;
    this.stop();
    this.setState("closed", { reason: "close()" });
  }

  /**
   * Opens a fresh socket now (with a fresh `getToken()`), e.g. after the auth
   * library refreshed the session; a live socket is replaced only once the new
   * one is open.
   */
  reconnect(): void {
    if (this.stopped) return;
    if (this._state === "connected") void this.dial(true, "reconnect");
    else if (this._state === "reconnecting") this.retryNow("reconnect");
  }

  /** Sends a frame on the open socket; false when there is none. */
  send(frame: { action: string } & Record<string, unknown>): boolean {
    const ws = this.socket;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  // ------------------------------------------------------------------ private

  private setState(to: ConnectionState, detail: Omit<StateChange, "from" | "to">): void {
    const from = this._state;
    if (from === to && to !== "reconnecting") return;
    this._state = to;
    this.emit("state", { from, to, ...detail });
  }

  private stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.clearLiveTimers();
    this.unsubscribeWake?.();
    this.unsubscribeWake = undefined;
    for (const ws of [this.socket, this.dialing, this.rotating]) if (ws) discard(ws, 1000, "closed by the client");
    this.socket = this.dialing = this.rotating = null;
  }

  private clearLiveTimers(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.rotateTimer);
    this.pongTimer = undefined;
  }

  private wake(reason: "online" | "visible"): void {
    if (this.stopped) return;
    if (this._state === "reconnecting") this.retryNow(reason);
    // The socket may have died silently while the device slept or switched networks.
    else if (this._state === "connected") this.ping();
  }

  private retryNow(reason: string): void {
    clearTimeout(this.retryTimer);
    void this.dial(false, reason);
  }

  private async dial(rotation: boolean, reason: string): Promise<void> {
    if (rotation ? this.rotating : this.dialing) return;
    if (!rotation) this.setState("connecting", { reason });
    const refresh = this.refreshToken;
    this.refreshToken = false;
    let token: string;
    try {
      token = await this.options.getToken({ refresh });
    } catch (cause) {
      this.emit("error", new ChatConnectionError("token_unavailable", "getToken() failed", cause));
      if (!rotation && !this.stopped) this.scheduleRetry("getToken() failed");
      return;
    }
    if (this.stopped) return;
    const WS = (this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket) as
      | (new (url: string, protocols: string[]) => SocketLike)
      | undefined;
    if (!WS) {
      this.fail(
        new ChatConnectionError(
          "websocket_unavailable",
          "no WebSocket here: pass the `WebSocket` option (in Node.js 20: `import WebSocket from \"ws\"`)",
        ),
      );
      return;
    }
    let ws: SocketLike;
    try {
      // The token travels as a subprotocol next to `chat`; the server answers `chat`.
      ws = new WS(this.options.wsUrl, ["chat", token]);
    } catch (cause) {
      this.emit("error", cause as Error);
      if (!rotation) this.scheduleRetry("WebSocket constructor failed");
      return;
    }
    if (rotation) this.rotating = ws;
    else this.dialing = ws;

    let opened = false;
    let errorText = "";
    const handshakeTimer = setTimeout(() => {
      discard(ws);
      void this.handshakeFailed(ws, rotation, token, undefined, "handshake timed out");
    }, this.o.connectTimeoutMs);
    ws.onopen = () => {
      opened = true;
      clearTimeout(handshakeTimer);
      this.opened(ws, rotation);
    };
    ws.onmessage = (ev) => this.received(ev.data);
    ws.onerror = (ev) => {
      const e = ev as { message?: string; error?: { message?: string } };
      errorText = e?.message ?? e?.error?.message ?? "";
    };
    ws.onclose = (ev) => {
      clearTimeout(handshakeTimer);
      if (!opened) void this.handshakeFailed(ws, rotation, token, handshakeStatus(errorText), `handshake failed (${ev.code})`);
      else this.closed(ws, ev.code);
    };
  }

  private opened(ws: SocketLike, rotation: boolean): void {
    if (rotation) {
      this.rotating = null;
      const old = this.socket;
      if (old) {
        // Let the old socket deliver what is in flight for a moment, without reconnecting when it closes.
        old.onclose = null;
        setTimeout(() => discard(old, 1000, "replaced"), CONNECTION_DEFAULTS.rotationGraceMs);
      }
    } else {
      this.dialing = null;
    }
    this.socket = ws;
    this.attempt = 0;
    this.authFailures = 0;
    this.clearLiveTimers();
    this.pingTimer = setInterval(() => this.ping(), this.o.pingIntervalMs);
    this.rotateTimer = setTimeout(() => void this.dial(true, "lifetime"), this.o.maxConnectionAgeMs);
    this.setState("connected", { reason: rotation ? "replaced" : "open" });
    this.emit("open", { rotation });
  }

  private received(data: unknown): void {
    let event: ServerEvent;
    try {
      event = JSON.parse(String(data)) as ServerEvent;
    } catch {
      this.emit("error", new Error(`the server sent a frame that is not JSON: ${String(data).slice(0, 200)}`));
      return;
    }
    if (event?.type === "pong") {
      clearTimeout(this.pongTimer);
      this.pongTimer = undefined;
    }
    this.emit("event", event);
  }

  private ping(): void {
    if (this.pongTimer !== undefined) return;
    if (!this.send({ action: "ping" })) return;
    this.pongTimer = setTimeout(() => {
      this.pongTimer = undefined;
      const ws = this.socket;
      if (!ws) return;
      // A socket that does not answer is dead even if the browser has not noticed.
      discard(ws, 4000, "pong timeout");
      this.lost("pong timeout");
    }, this.o.pongTimeoutMs);
  }

  private closed(ws: SocketLike, code: number): void {
    if (ws !== this.socket) return;
    this.lost(`socket closed (${code})`);
  }

  private lost(reason: string): void {
    this.socket = null;
    this.clearLiveTimers();
    if (this.rotating) {
      discard(this.rotating);
      this.rotating = null;
    }
    if (!this.stopped) this.scheduleRetry(reason);
  }

  private async handshakeFailed(
    ws: SocketLike,
    rotation: boolean,
    token: string,
    status: number | undefined,
    reason: string,
  ): Promise<void> {
    if (rotation) {
      if (this.rotating !== ws) return;
      this.rotating = null;
      // The live socket carries on; the next try (at the latest when it closes) takes a fresh token.
      if (status === 401) this.refreshToken = true;
      return;
    }
    if (this.dialing !== ws || this.stopped) return;
    this.dialing = null;
    if (status === undefined && this.options.isTokenRefused) {
      try {
        if (await this.options.isTokenRefused(token)) status = 401;
      } catch {
        // Unknown: treat as a network failure.
      }
      if (this.stopped) return;
    }
    if (status === 401) {
      this.authFailures += 1;
      if (this.authFailures >= 2) {
        this.fail(new ChatConnectionError("unauthorized", "the access token was refused, and so was a fresh one"));
        return;
      }
      // One more try at once, asking getToken() for a refreshed token.
      this.refreshToken = true;
      void this.dial(false, "token refused");
      return;
    }
    if (status === 403) {
      this.fail(new ChatConnectionError("forbidden", "the token is valid but its user has no profile (403)"));
      return;
    }
    this.scheduleRetry(status ? `${reason}: HTTP ${status}` : reason);
  }

  private scheduleRetry(reason: string): void {
    clearTimeout(this.retryTimer);
    const attempt = this.attempt++;
    const delayMs = backoffDelay(attempt, this.o.backoff);
    this.setState("reconnecting", { reason, attempt, delayMs });
    this.retryTimer = setTimeout(() => void this.dial(false, "retry"), delayMs);
  }

  private fail(error: ChatConnectionError): void {
    this.stop();
    this.setState("closed", { reason: error.code, error });
    this.emit("error", error);
  }
}

/**
 * The status of a refused handshake where the socket API tells it: only the
 * `ws` package does ("Unexpected server response: 401"); browsers and Node's
 * own WebSocket give none. Anchored to that message: other errors hold numbers
 * that are no status ("connect ECONNREFUSED 127.0.0.1:4010").
 */
export function handshakeStatus(errorText: string): number | undefined {
  const m = /Unexpected server response: (\d{3})(?!\d)/.exec(errorText);
  return m ? Number(m[1]) : undefined;
}

function discard(ws: SocketLike, code?: number, reason?: string): void {
  ws.onopen = ws.onmessage = ws.onclose = null;
  // Not null: the `ws` package throws an 'error' nobody listens to (closing during a handshake emits one).
  ws.onerror = () => {};
  try {
    // A socket still in its handshake can only be closed without a code in some runtimes.
    if (ws.readyState === OPEN) ws.close(code, reason);
    else ws.close();
  } catch {
    // Already closed.
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
