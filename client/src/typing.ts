// Typing indicators both ways. Outgoing: one `typing` frame per throttle
// interval however fast the user types, and a stop frame once they pause.
// Incoming: each typist is shown until `expires_at`, at most 6 s after the
// event arrived (a device's clock may be off), until a stop, or until their
// message arrives.

export interface TypingSenderOptions {
  /** At most one `is_typing: true` frame per conversation this often (ms). Default 2500 (the server shows one for 6 s). */
  throttleMs?: number;
  /** Send `is_typing: false` after this long without `typing()` (ms). Default 4000. */
  idleMs?: number;
}

export class TypingSender {
  private active = new Map<string, { sentAt: number; idle: ReturnType<typeof setTimeout> }>();
  private readonly throttleMs: number;
  private readonly idleMs: number;

  constructor(
    private readonly sendFrame: (conversationId: string, isTyping: boolean) => void,
    options: TypingSenderOptions = {},
  ) {
    this.throttleMs = options.throttleMs ?? 2500;
    this.idleMs = options.idleMs ?? 4000;
  }

  /** Call on every keystroke. */
  typing(conversationId: string): void {
    const now = Date.now();
    const current = this.active.get(conversationId);
    if (current) clearTimeout(current.idle);
    let sentAt = current?.sentAt ?? -Infinity;
    if (now - sentAt >= this.throttleMs) {
      this.sendFrame(conversationId, true);
      sentAt = now;
    }
    const idle = setTimeout(() => this.stop(conversationId), this.idleMs);
    this.active.set(conversationId, { sentAt, idle });
  }

  /** The user stopped (sent the message, cleared the input): one stop frame if a start was sent. */
  stop(conversationId: string): void {
    const current = this.active.get(conversationId);
    if (!current) return;
    clearTimeout(current.idle);
    this.active.delete(conversationId);
    this.sendFrame(conversationId, false);
  }

  dispose(): void {
    for (const { idle } of this.active.values()) clearTimeout(idle);
    this.active.clear();
  }
}

/** Longest an indicator is shown after its event arrived (ms): the server's own lifetime of one. */
export const TYPING_MAX_MS = 6000;

export class TypingTracker {
  private typists = new Map<string, Map<string, ReturnType<typeof setTimeout>>>();

  constructor(private readonly changed: (conversationId: string) => void) {}

  /** A `typing` event. */
  update(conversationId: string, data: { user_id: string; is_typing: boolean; expires_at: string }): void {
    if (!data.is_typing) {
      this.remove(conversationId, data.user_id);
      return;
    }
    const now = Date.now();
    const expires = Date.parse(data.expires_at);
    const until = Math.min(Number.isFinite(expires) ? expires : Infinity, now + TYPING_MAX_MS);
    let users = this.typists.get(conversationId);
    if (!users) this.typists.set(conversationId, (users = new Map()));
    clearTimeout(users.get(data.user_id));
    if (until <= now) {
      this.remove(conversationId, data.user_id);
      return;
    }
    users.set(
      data.user_id,
      setTimeout(() => this.remove(conversationId, data.user_id), until - now),
    );
    this.changed(conversationId);
  }

  /** Who is typing in a conversation now. */
  users(conversationId: string): string[] {
    return [...(this.typists.get(conversationId)?.keys() ?? [])];
  }

  remove(conversationId: string, userId: string): void {
    const users = this.typists.get(conversationId);
    const timer = users?.get(userId);
    if (!users || timer === undefined) return;
    clearTimeout(timer);
    users.delete(userId);
    this.changed(conversationId);
  }

  /** Forget every indicator (after a reconnect: typing is not replayed). */
  clear(): void {
    for (const [conversationId, users] of this.typists) {
      for (const userId of [...users.keys()]) this.remove(conversationId, userId);
    }
  }
}
