// Messages waiting for their `message.ack`. Each has its `client_msg_id` from
// the moment the user sent it and keeps it on every retry, so a resend after a
// timeout or a reconnect never stores a second message.
//
// Sends are pipelined across conversations, one frame in flight per
// conversation: every `error` answering a send names the `client_msg_id` it
// refuses, so any number may be out at once, but the server handles each frame
// in its own invocation, so two frames of one conversation could be stored in
// either order; one at a time keeps the user's order within a conversation
// (the only order a seq expresses).
import { backoffDelay } from "./backoff.js";
import type { Attachment, EventOf, MessageKind } from "./types.js";

export interface MessageDraft {
  body?: string;
  kind?: Exclude<MessageKind, "system">;
  attachment?: Attachment;
  reply_to_id?: string;
}

export type OutgoingStatus = "pending" | "failed";

export interface Outgoing {
  conversationId: string;
  clientMsgId: string;
  draft: MessageDraft;
  /** When the user sent it (ISO 8601), for showing it before the server's time is known. */
  createdAt: string;
  status: OutgoingStatus;
  error?: ChatSendError;
}

/** A message the server refused; `code` is the protocol's error code (`message_too_long`, `not_a_participant`…). */
export class ChatSendError extends Error {
  override readonly name = "ChatSendError";
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly clientMsgId: string,
  ) {
    super(message);
  }
}

type Ack = EventOf<"message.ack">;
type ErrorData = EventOf<"error">["data"];

export interface OutboxOptions {
  /** Sends a frame on the open socket; false when there is none (the message waits). */
  send(frame: { action: "sendMessage" } & Record<string, unknown>): boolean;
  changed(conversationId: string): void;
  /** Resend an unanswered frame after this long (ms). Default 10 s. */
  ackTimeoutMs?: number;
  random?: () => number;
}

const RETRYABLE = new Set(["internal_error", "service_unavailable", "token_expired", "unauthorized"]);

interface Entry extends Outgoing {
  settle: { resolve(ack: Ack): void; reject(e: ChatSendError): void };
  tries: number;
  /** Its frame is out, unanswered (until the ack timeout or the socket goes). */
  inFlight: boolean;
  /** Waiting to be sent again after a retryable refusal; its conversation waits too. */
  holding: boolean;
  timer?: ReturnType<typeof setTimeout>;
}

export class Outbox {
  private queue: Entry[] = [];
  private paused = true;

  constructor(private readonly o: OutboxOptions) {}

  /** Queues a message; resolves with its acknowledgement, rejects when the server refuses it. */
  add(outgoing: Omit<Outgoing, "status" | "error">): Promise<Ack> {
    return new Promise<Ack>((resolve, reject) => {
      this.queue.push({ ...outgoing, status: "pending", settle: { resolve, reject }, tries: 0, inFlight: false, holding: false });
      this.o.changed(outgoing.conversationId);
      this.pump();
    });
  }

  /** The messages of a conversation not acknowledged yet, in the order sent. */
  list(conversationId: string): Outgoing[] {
    return this.queue.filter((e) => e.conversationId === conversationId);
  }

  get size(): number {
    return this.queue.length;
  }

  /**
   * A socket is open: send what waits (unanswered frames again, with the same
   * ids). A message held after a refusal keeps waiting out its delay: a new
   * socket does not lift a rate limit.
   */
  resume(): void {
    this.paused = false;
    for (const e of this.queue) if (!e.holding) this.idle(e);
    this.pump();
  }

  /** The socket is gone: whatever was in flight is sent again on the next one; held messages keep their timers. */
  pause(): void {
    this.paused = true;
    for (const e of this.queue) if (!e.holding) this.idle(e);
  }

  /** A `message.ack`; returns the message it acknowledges, if it was ours. */
  acknowledged(ack: Ack): Outgoing | undefined {
    const i = this.queue.findIndex((e) => e.clientMsgId === ack.data.client_msg_id);
    if (i < 0) return undefined;
    const [entry] = this.queue.splice(i, 1);
    this.idle(entry);
    entry.settle.resolve(ack);
    this.o.changed(entry.conversationId);
    this.pump();
    return entry;
  }

  /** An `error` event; true when it refused one of these messages (named by its `client_msg_id`). */
  refused(error: ErrorData): boolean {
    if (error.action !== "sendMessage" || error.client_msg_id === undefined) return false;
    const entry = this.queue.find((e) => e.clientMsgId === error.client_msg_id);
    if (!entry || entry.status !== "pending") return false;
    const retryAfterMs =
      error.code === "rate_limited"
        ? (error.retry_after_ms ?? backoffDelay(entry.tries, { random: this.o.random }))
        : RETRYABLE.has(error.code) || error.status >= 500
          ? backoffDelay(entry.tries, { random: this.o.random })
          : undefined;
    if (retryAfterMs !== undefined) {
      // Nothing was stored, or the same client_msg_id will find what was: safe to send again.
      this.idle(entry);
      entry.holding = true;
      entry.timer = setTimeout(() => {
        entry.holding = false;
        this.pump();
      }, retryAfterMs);
      return true;
    }
    this.idle(entry);
    entry.status = "failed";
    entry.error = new ChatSendError(error.code, error.message, error.status, entry.clientMsgId);
    entry.settle.reject(entry.error);
    this.o.changed(entry.conversationId);
    this.pump();
    return true;
  }

  /**
   * API Gateway's generic frame for a route whose function failed
   * (`{"message":"Internal server error","connectionId":…,"requestId":…}`: no
   * `type`, no `client_msg_id`). It does not say which frame failed, nor that
   * nothing was stored: the function may have died before the commit, after
   * it (the ack lost), or even after the ack. So it fails nothing: every
   * frame out and unanswered is sent again, with the same id, after a
   * backoff; the server answers a stored one with its ack (`duplicate: true`)
   * and re-delivers it to the members.
   */
  gatewayFailed(): void {
    let any = false;
    for (const entry of this.queue) {
      if (entry.status !== "pending" || !entry.inFlight) continue;
      any = true;
      this.idle(entry);
      entry.holding = true;
      entry.timer = setTimeout(() => {
        entry.holding = false;
        this.pump();
      }, backoffDelay(entry.tries, { random: this.o.random }));
    }
    if (any) this.pump();
  }

  /** Sends a failed message again, with its id; resolves like `add`. */
  retry(clientMsgId: string): Promise<Ack> {
    const entry = this.queue.find((e) => e.clientMsgId === clientMsgId);
    if (!entry || entry.status !== "failed") return Promise.reject(new Error(`no failed message ${clientMsgId}`));
    return new Promise<Ack>((resolve, reject) => {
      entry.status = "pending";
      entry.error = undefined;
      entry.settle = { resolve, reject };
      this.o.changed(entry.conversationId);
      this.pump();
    });
  }

  /** Drops a failed message. */
  discard(clientMsgId: string): void {
    const i = this.queue.findIndex((e) => e.clientMsgId === clientMsgId && e.status === "failed");
    if (i < 0) return;
    const [entry] = this.queue.splice(i, 1);
    this.o.changed(entry.conversationId);
  }

  /** Drops a conversation's messages (the user left it). */
  drop(conversationId: string, reason: ChatSendError): void {
    for (const entry of this.queue.filter((e) => e.conversationId === conversationId)) {
      if (entry.status === "pending") entry.settle.reject(reason);
      this.idle(entry);
    }
    this.queue = this.queue.filter((e) => e.conversationId !== conversationId);
    this.o.changed(conversationId);
    this.pump();
  }

  dispose(): void {
    for (const e of this.queue) this.idle(e);
  }

  /** Neither in flight nor holding: sendable again. */
  private idle(entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.inFlight = false;
    entry.holding = false;
  }

  /** Sends, for each conversation with nothing in flight or holding, its oldest pending message. */
  private pump(): void {
    if (this.paused) return;
    const busy = new Set(this.queue.filter((e) => e.inFlight || e.holding).map((e) => e.conversationId));
    for (const entry of this.queue) {
      if (entry.status !== "pending" || busy.has(entry.conversationId)) continue;
      busy.add(entry.conversationId);
      const sent = this.o.send({
        action: "sendMessage",
        conversation_id: entry.conversationId,
        client_msg_id: entry.clientMsgId,
        ...entry.draft,
      });
      if (!sent) return;
      entry.tries += 1;
      entry.inFlight = true;
      entry.timer = setTimeout(() => {
        // No answer: send it again (same id), on this socket or the next.
        entry.inFlight = false;
        entry.timer = undefined;
        this.pump();
      }, this.o.ackTimeoutMs ?? 10_000);
    }
  }
}
