// Messages waiting for their `message.ack`. Each has its `client_msg_id` from
// the moment the user sent it and keeps it on every retry, so a resend after a
// timeout or a reconnect never stores a second message.
//
// One `sendMessage` frame is in flight at a time: an `error` answer does not
// name the `client_msg_id` it refuses, so only with one frame in flight can
// it be told which message failed. It also keeps the user's order of messages.
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

interface Entry extends Outgoing {
  settle: { resolve(ack: Ack): void; reject(e: ChatSendError): void };
  tries: number;
}

export interface OutboxOptions {
  /** Sends a frame on the open socket; false when there is none (the message waits). */
  send(frame: { action: "sendMessage" } & Record<string, unknown>): boolean;
  changed(conversationId: string): void;
  /** Resend an unanswered frame after this long (ms). Default 10 s. */
  ackTimeoutMs?: number;
  random?: () => number;
}

const RETRYABLE = new Set(["internal_error", "service_unavailable", "token_expired", "unauthorized"]);

export class Outbox {
  private queue: Entry[] = [];
  private inFlight: Entry | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private paused = true;

  constructor(private readonly o: OutboxOptions) {}

  /** Queues a message; resolves with its acknowledgement, rejects when the server refuses it. */
  add(outgoing: Omit<Outgoing, "status" | "error">): Promise<Ack> {
    return new Promise<Ack>((resolve, reject) => {
      this.queue.push({ ...outgoing, status: "pending", settle: { resolve, reject }, tries: 0 });
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

  /** A socket is open: send what waits (an unanswered frame again, with the same id). */
  resume(): void {
    this.paused = false;
    this.inFlight = null;
    clearTimeout(this.timer);
    this.pump();
  }

  /** The socket is gone: whatever was in flight is sent again on the next one. */
  pause(): void {
    this.paused = true;
    this.inFlight = null;
    clearTimeout(this.timer);
  }

  /** A `message.ack`; returns the message it acknowledges, if it was ours. */
  acknowledged(ack: Ack): Outgoing | undefined {
    const i = this.queue.findIndex((e) => e.clientMsgId === ack.data.client_msg_id);
    if (i < 0) return undefined;
    const [entry] = this.queue.splice(i, 1);
    if (this.inFlight === entry) {
      this.inFlight = null;
      clearTimeout(this.timer);
    }
    entry.settle.resolve(ack);
    this.o.changed(entry.conversationId);
    this.pump();
    return entry;
  }

  /** An `error` event; true when it answered the frame in flight. */
  refused(error: ErrorData): boolean {
    if (error.action !== "sendMessage" || !this.inFlight) return false;
    const entry = this.inFlight;
    this.inFlight = null;
    clearTimeout(this.timer);
    if (RETRYABLE.has(error.code) || error.status >= 500) {
      // Safe to send again: the same client_msg_id never stores twice.
      this.timer = setTimeout(() => this.pump(), backoffDelay(entry.tries, { random: this.o.random }));
      return true;
    }
    entry.status = "failed";
    entry.error = new ChatSendError(error.code, error.message, error.status, entry.clientMsgId);
    entry.settle.reject(entry.error);
    this.o.changed(entry.conversationId);
    this.pump();
    return true;
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
      if (this.inFlight === entry) this.inFlight = null;
    }
    this.queue = this.queue.filter((e) => e.conversationId !== conversationId);
    this.o.changed(conversationId);
    this.pump();
  }

  dispose(): void {
    clearTimeout(this.timer);
  }

  private pump(): void {
    if (this.paused || this.inFlight) return;
    const entry = this.queue.find((e) => e.status === "pending");
    if (!entry) return;
    const sent = this.o.send({
      action: "sendMessage",
      conversation_id: entry.conversationId,
      client_msg_id: entry.clientMsgId,
      ...entry.draft,
    });
    if (!sent) return;
    entry.tries += 1;
    this.inFlight = entry;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // No answer: send it again (same id), on this socket or the next.
      if (this.inFlight === entry) this.inFlight = null;
      this.pump();
    }, this.o.ackTimeoutMs ?? 10_000);
  }
}
