// The chat client: REST calls, one kept-open socket, and the state a chat
// screen shows (conversation list, messages, unread counts, read and delivery
// receipts, typing, presence, profiles), updated from events applied exactly
// once and in order. Subscribe with `subscribe()` and read snapshots, or listen to
// `event` for the events themselves.
import { Connection, browserWakeSource, type ConnectionOptions, type ConnectionState, type StateChange, type WakeSource } from "./connection.js";
import { Emitter } from "./emitter.js";
import { ChatSendError, Outbox, type MessageDraft, type Outgoing } from "./outbox.js";
import { ChatApiError, createRestClient, type GetToken, type RestClient } from "./rest.js";
import { Sequencer } from "./sequencer.js";
import { TypingSender, TypingTracker, type TypingSenderOptions } from "./typing.js";
import {
  isDurable,
  type Conversation,
  type ConversationSummary,
  type DurableEvent,
  type MeSettings,
  type Message,
  type Presence,
  type Profile,
  type PublicProfile,
  type ServerEvent,
} from "./types.js";

export interface ChatClientOptions extends Omit<ConnectionOptions, "wsUrl" | "getToken" | "wake" | "isTokenRefused"> {
  /** The HTTP API's base URL, e.g. `http://127.0.0.1:3000`. */
  httpUrl: string;
  /** The WebSocket API's URL, e.g. `ws://127.0.0.1:3001/dev`. */
  wsUrl: string;
  /** The current access token (a Supabase session's `access_token`); called at every connect and REST call. */
  getToken: GetToken;
  fetch?: typeof fetch;
  /** Default: the browser's `online` and `visibilitychange`; none in Node.js. */
  wake?: WakeSource | null;
  /** How long a seq gap may stay open before a replay (ms). Default 1500. */
  gapTimeoutMs?: number;
  /** How often to compare every conversation's `last_seq` with the client's (ms). Default 5 minutes. */
  resyncIntervalMs?: number;
  /** Resend a `sendMessage` that got no answer after this long (ms). Default 10 s. */
  ackTimeoutMs?: number;
  typing?: TypingSenderOptions;
  /** Messages per history page. Default 50. */
  pageSize?: number;
  /** Makes each message's `client_msg_id`. Default: a random UUID. */
  newClientMsgId?: () => string;
  /**
   * Others' messages that reach this device are reported (`markDelivered`) at
   * most once per conversation per this many ms, with the highest seq. Default
   * 500; `null` reports nothing (call `markDelivered` yourself).
   */
  deliveryReportMs?: number | null;
  random?: () => number;
}

export type MessageStatus = "pending" | "sent" | "failed";
/**
 * How far one of the user's stored messages got: `sent` (stored), `delivered`
 * (on a device of every other member), `read` (read by every other member).
 * The others are the members who were there when it was sent and whose
 * receipts the user may see (none in a room, none across a block): with no
 * such member it stays `sent`.
 */
export type ReceiptStatus = "sent" | "delivered" | "read";
/**
 * A message as shown: a stored one (`sent`), or one of the user's waiting for its ack (`pending`) or refused
 * (`failed`); the user's stored ones also say how far they got (`receipt`).
 */
export type ChatMessage = Message & { status: MessageStatus; error?: ChatSendError; receipt?: ReceiptStatus };

export interface ConversationListItem extends ConversationSummary {
  /** The name to show: the conversation's name, or the counterpart's display name or username. */
  title: string;
  /** For a direct conversation: the other user's profile, when known. */
  counterpartProfile: PublicProfile | null;
}

export interface ConversationView {
  id: string;
  /** Loaded by `open()`: the conversation with its participants (each with `last_read_seq` and `last_delivered_seq`, their receipts). */
  conversation: Conversation | null;
  me: MeSettings | null;
  summary: ConversationSummary | null;
  title: string;
  /** Ascending seq; the user's unacknowledged messages last. */
  messages: ChatMessage[];
  loading: boolean;
  loadingOlder: boolean;
  hasOlder: boolean;
  unreadCount: number;
  lastReadSeq: number;
  /** Users typing now (never the caller). */
  typingUserIds: string[];
  error: Error | null;
}

export interface ChatClientEvents {
  state: [StateChange];
  /** Every server event: durable ones exactly once and in seq order per conversation, transient ones as they come. */
  event: [ServerEvent];
  error: [Error];
  /** Something shown changed (snapshots were replaced). */
  change: [];
}

interface Conv {
  summary: ConversationSummary | null;
  conversation: Conversation | null;
  me: MeSettings | null;
  messages: Map<string, Message>;
  loaded: boolean;
  loading: Promise<void> | null;
  loadingOlder: boolean;
  hasOlder: boolean;
  error: Error | null;
  version: number;
  view?: { version: number; people: number; value: ConversationView };
}

export class ChatClient extends Emitter<ChatClientEvents> {
  readonly rest: RestClient;
  readonly connection: Connection;
  /** The signed-in user's id (the token's `sub`), known after the first token. */
  userId: string | null = null;

  private convs = new Map<string, Conv>();
  private listLoaded = false;
  private listLoading: Promise<void> | null = null;
  private listCursor: string | null = null;
  private listVersion = 0;
  private listSnapshot?: { version: number; people: number; value: ConversationListItem[] };
  private people = 0;
  private profiles = new Map<string, PublicProfile & Partial<Profile>>();
  private presence = new Map<string, Presence>();
  private readonly sequencer: Sequencer;
  private readonly outbox: Outbox;
  private readonly typingOut: TypingSender;
  private readonly typingIn: TypingTracker;
  private resyncTimer: ReturnType<typeof setInterval> | undefined;
  private unsubscribeWake: (() => void) | undefined;
  private readonly wake: WakeSource | null;
  private unreadTimer: ReturnType<typeof setTimeout> | undefined;
  /** Delivery reports waiting for their window (or for the socket): conversation → highest seq. */
  private deliveryPending = new Map<string, number>();
  /** The highest seq reported delivered per conversation (or that the server says is). */
  private deliveryReported = new Map<string, number>();
  private deliveryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly newClientMsgId: () => string;
  /** Open `batch` calls: while any is, `change` waits for the outermost to end. */
  private batching = 0;
  private changePending = false;

  constructor(private readonly options: ChatClientOptions) {
    super();
    const getToken: GetToken = async (ctx) => {
      const token = await options.getToken(ctx);
      this.userId ??= subjectOf(token);
      return token;
    };
    this.rest = createRestClient({ httpUrl: options.httpUrl, getToken, fetch: options.fetch });
    const doFetch = options.fetch ?? globalThis.fetch?.bind(globalThis);
    const base = options.httpUrl.replace(/\/+$/, "");
    this.wake = options.wake === undefined ? browserWakeSource() : options.wake;
    this.connection = new Connection({
      ...options,
      getToken,
      wake: this.wake,
      // Browsers hide a refused handshake's status: ask the REST API whether the token itself is refused.
      isTokenRefused: async (token) =>
        (await doFetch(`${base}/v1/me`, { headers: { authorization: `Bearer ${token}` } })).status === 401,
    });
    this.newClientMsgId = options.newClientMsgId ?? randomId;
    this.sequencer = new Sequencer({
      fetchEvents: (id, afterSeq) => this.rest.listEvents({ path: { id }, query: { after_seq: afterSeq, limit: 500 } }),
      apply: (event) => this.applyDurable(event),
      gone: (id) => this.removeConversation(id),
      onError: (error) => this.emit("error", error as Error),
      gapTimeoutMs: options.gapTimeoutMs,
      random: options.random,
    });
    this.outbox = new Outbox({
      send: (frame) => this.connection.send(frame),
      changed: (id) => this.touch(id),
      ackTimeoutMs: options.ackTimeoutMs,
      random: options.random,
    });
    this.typingOut = new TypingSender(
      (id, isTyping) => void this.connection.send({ action: "typing", conversation_id: id, is_typing: isTyping }),
      options.typing,
    );
    this.typingIn = new TypingTracker((id) => this.touch(id));
    this.connection.on("state", (change) => {
      if (change.to !== "connected") this.outbox.pause();
      this.emit("state", change);
      this.changed();
    });
    this.connection.on("error", (e) => this.emit("error", e));
    this.connection.on("open", () => void this.resync("open"));
    this.connection.on("event", (event) => this.received(event));
  }

  get state(): ConnectionState {
    return this.connection.state;
  }

  /** Opens the socket (and keeps it open), loads the conversation list, and catches up periodically. */
  connect(): void {
    if (this.connection.state !== "idle" && this.connection.state !== "closed") return;
    this.connection.connect();
    clearInterval(this.resyncTimer);
    this.resyncTimer = setInterval(() => void this.resync("interval"), this.options.resyncIntervalMs ?? 5 * 60_000);
    this.unsubscribeWake = this.wake?.subscribe((reason) => {
      if (reason === "visible" && this.connection.state === "connected") void this.resync("visible");
    });
  }

  /** Closes the socket and stops every timer; `connect()` starts again. */
  close(): void {
    this.connection.close();
    clearInterval(this.resyncTimer);
    clearTimeout(this.unreadTimer);
    clearTimeout(this.deliveryTimer);
    this.deliveryTimer = undefined;
    this.unsubscribeWake?.();
    this.sequencer.dispose();
    this.outbox.dispose();
    this.typingOut.dispose();
    this.typingIn.clear();
  }

  /** Opens a fresh socket now with a fresh token (e.g. on Supabase's `TOKEN_REFRESHED`). */
  reconnect(): void {
    this.connection.reconnect();
  }

  // ------------------------------------------------------------- snapshots

  /** Calls `listener` on every change; returns the function that stops it. */
  subscribe(listener: () => void): () => void {
    return this.on("change", listener);
  }

  /** The conversation list, newest activity first (a new array after each change, the same one otherwise). */
  getConversationList(): ConversationListItem[] {
    const s = this.listSnapshot;
    if (s && s.version === this.listVersion && s.people === this.people) return s.value;
    const value = [...this.convs.entries()]
      .filter(([, c]) => c.summary)
      .map(([, c]) => this.listItem(c.summary!))
      .sort((a, b) => (a.last_activity_at < b.last_activity_at ? 1 : a.last_activity_at > b.last_activity_at ? -1 : 0));
    this.listSnapshot = { version: this.listVersion, people: this.people, value };
    return value;
  }

  get conversationListLoaded(): boolean {
    return this.listLoaded;
  }

  get hasMoreConversations(): boolean {
    return this.listCursor !== null;
  }

  /** Total unread messages over the listed conversations. */
  getUnreadTotal(): number {
    let total = 0;
    for (const c of this.convs.values()) total += c.summary?.unread_count ?? 0;
    return total;
  }

  /** One conversation as shown (a new object after each change of it, the same one otherwise). */
  getConversationView(id: string): ConversationView {
    const c = this.conv(id);
    if (c.view && c.view.version === c.version && c.view.people === this.people) return c.view.value;
    const stored: ChatMessage[] = [...c.messages.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((m) => {
        const receipt = this.receiptOf(c, m);
        return receipt ? { ...m, status: "sent" as const, receipt } : { ...m, status: "sent" as const };
      });
    const waiting: ChatMessage[] = this.outbox.list(id).map((o) => this.optimistic(o));
    const summary = c.summary;
    const value: ConversationView = {
      id,
      conversation: c.conversation,
      me: c.me,
      summary,
      title: this.titleOf(id),
      messages: stored.concat(waiting),
      loading: c.loading !== null,
      loadingOlder: c.loadingOlder,
      hasOlder: c.hasOlder,
      unreadCount: summary?.unread_count ?? c.me?.unread_count ?? 0,
      lastReadSeq: Math.max(summary?.last_read_seq ?? 0, c.me?.last_read_seq ?? 0),
      typingUserIds: this.typingIn.users(id),
      error: c.error,
    };
    c.view = { version: c.version, people: this.people, value };
    return value;
  }

  /** A profile from the cache (filled from conversations, participants, searches and `loadProfiles`). */
  getProfile(userId: string): (PublicProfile & Partial<Profile>) | undefined {
    return this.profiles.get(userId);
  }

  getPresence(userId: string): Presence | undefined {
    return this.presence.get(userId);
  }

  /** The name to show for a user. */
  displayName(userId: string | null | undefined): string {
    if (!userId) return "system";
    const p = this.profiles.get(userId);
    return p?.display_name || p?.username || "unknown user";
  }

  // -------------------------------------------------------------- loading

  /** Loads (or reloads) the first page of the conversation list. */
  loadConversations(): Promise<void> {
    this.listLoading ??= this.fetchConversationPage(undefined)
      .then(() => undefined)
      .finally(() => {
        this.listLoading = null;
      });
    return this.listLoading;
  }

  /** Loads the next page of the conversation list. */
  async loadMoreConversations(): Promise<void> {
    if (this.listCursor) await this.fetchConversationPage(this.listCursor);
  }

  /** Loads a conversation's details and newest messages, and tracks its events. */
  open(id: string): Promise<void> {
    const c = this.conv(id);
    if (c.loaded) return Promise.resolve();
    c.loading ??= (async (): Promise<void> => {
      try {
        const details = await this.rest.getConversation({ path: { id } });
        this.setDetails(details.conversation, details.me);
        this.sequencer.track(id, details.conversation.last_seq);
        const page = await this.rest.listMessages({ path: { id }, query: { limit: this.options.pageSize ?? 50 } });
        for (const m of page.messages) c.messages.set(m.id, m);
        c.hasOlder = page.has_more;
        c.loaded = true;
        c.error = null;
        await this.sequencer.catchUp(id, details.conversation.last_seq);
      } catch (error) {
        c.error = error as Error;
        throw error;
      } finally {
        c.loading = null;
        this.touch(id);
      }
    })();
    const loading = c.loading;
    this.touch(id);
    return loading;
  }

  /** Loads the page of messages before the oldest one loaded. */
  async loadOlder(id: string): Promise<void> {
    const c = this.conv(id);
    if (!c.loaded || !c.hasOlder || c.loadingOlder || c.messages.size === 0) return;
    const oldest = Math.min(...[...c.messages.values()].map((m) => m.seq));
    c.loadingOlder = true;
    this.touch(id);
    try {
      const page = await this.rest.listMessages({
        path: { id },
        query: { before_seq: oldest, limit: this.options.pageSize ?? 50 },
      });
      for (const m of page.messages) if (!c.messages.has(m.id)) c.messages.set(m.id, m);
      c.hasOlder = page.has_more;
    } finally {
      c.loadingOlder = false;
      this.touch(id);
    }
  }

  /** Fetches the profiles of these users that are not cached yet. */
  async loadProfiles(userIds: readonly string[]): Promise<void> {
    const missing = [...new Set(userIds)].filter((id) => !this.profiles.has(id));
    for (let i = 0; i < missing.length; i += 100) {
      const { users } = await this.rest.searchUsers({ query: { ids: missing.slice(i, i + 100) } });
      this.putProfiles(users);
    }
  }

  /** Asks for the presence of these users (those sharing a conversation with the caller are answered). */
  async loadPresence(userIds: readonly string[]): Promise<void> {
    const ids = [...new Set(userIds)];
    for (let i = 0; i < ids.length; i += 100) {
      const { presence } = await this.rest.getPresence({ query: { user_ids: ids.slice(i, i + 100) } });
      for (const p of presence) this.presence.set(p.user_id, p);
    }
    this.people++;
    this.changed();
  }

  /** Searches users to start a conversation with (and caches their profiles). */
  async searchUsers(q: string, limit = 20): Promise<Profile[]> {
    const { users } = await this.rest.searchUsers({ query: { q, limit } });
    this.putProfiles(users);
    return users;
  }

  // -------------------------------------------------------------- actions

  /**
   * Sends a message over the socket. It shows at once as `pending`; the promise
   * resolves with the stored message when the server acknowledges it and rejects
   * (the message turns `failed`) when the server refuses it. Until then it is
   * resent with the same `client_msg_id` after timeouts and reconnects.
   */
  async send(conversationId: string, draft: string | MessageDraft): Promise<Message> {
    const d: MessageDraft = typeof draft === "string" ? { body: draft } : draft;
    const clientMsgId = this.newClientMsgId();
    this.typingOut.stop(conversationId);
    const outgoing = { conversationId, clientMsgId, draft: d, createdAt: new Date().toISOString() };
    const ack = await this.outbox.add(outgoing);
    return ack.data.message;
  }

  /** Sends a failed message again (same `client_msg_id`). */
  async retry(conversationId: string, clientMsgId: string): Promise<Message> {
    const outgoing = this.outbox.list(conversationId).find((o) => o.clientMsgId === clientMsgId);
    if (!outgoing) throw new Error(`no failed message ${clientMsgId} in ${conversationId}`);
    const ack = await this.outbox.retry(clientMsgId);
    return ack.data.message;
  }

  /** Drops a failed message. */
  discard(clientMsgId: string): void {
    this.outbox.discard(clientMsgId);
  }

  /** Call on every keystroke: at most one typing frame per few seconds, and a stop once the user pauses. */
  typing(conversationId: string): void {
    if (this.connection.state === "connected") this.typingOut.typing(conversationId);
  }

  stopTyping(conversationId: string): void {
    this.typingOut.stop(conversationId);
  }

  /** Marks read up to `seq` (default: everything); unread counts drop at once. */
  async markRead(conversationId: string, seq?: number): Promise<void> {
    const c = this.conv(conversationId);
    const last = c.summary?.last_seq ?? c.conversation?.last_seq ?? 0;
    const current = Math.max(c.summary?.last_read_seq ?? 0, c.me?.last_read_seq ?? 0);
    const target = seq ?? last;
    if (target <= current && (c.summary?.unread_count ?? 0) === 0) return;
    this.setOwnRead(conversationId, Math.max(current, target));
    const frame: { action: string; conversation_id: string; seq?: number } = { action: "markRead", conversation_id: conversationId };
    if (seq !== undefined) frame.seq = seq;
    if (!this.connection.send(frame)) {
      const state = await this.rest.markRead({ path: { id: conversationId }, body: seq === undefined ? {} : { seq } });
      this.setOwnRead(conversationId, state.last_read_seq, state.unread_count);
    }
  }

  /**
   * Reports that this device has every message of the conversation up to
   * `seq`: the senders see them as delivered. Messages that arrive on the
   * socket or in a replay are reported without this (`deliveryReportMs`); call
   * it for ones that reached the device some other way. Sent when the socket
   * is open; a lower seq than already reported sends nothing.
   */
  markDelivered(conversationId: string, seq: number): void {
    this.queueDelivered(conversationId, seq);
    this.flushDelivered();
  }

  /** Edits one of the user's messages. */
  async edit(messageId: string, body: string): Promise<Message> {
    const { message } = await this.rest.editMessage({ path: { id: messageId }, body: { body } });
    this.putMessage(message);
    return message;
  }

  /** Deletes one of the user's messages (it stays as a tombstone). */
  async remove(messageId: string): Promise<Message> {
    const { message } = await this.rest.deleteMessage({ path: { id: messageId } });
    this.putMessage(message);
    return message;
  }

  /** Finds or creates the direct conversation with a user. */
  async openDirect(userId: string): Promise<Conversation> {
    const { conversation } = await this.rest.openDirectConversation({ body: { user_id: userId } });
    this.addConversation(conversation);
    return conversation;
  }

  /** Creates a group (or a room) with these members. */
  async createGroup(name: string, memberIds: string[], kind: "group" | "room" = "group"): Promise<Conversation> {
    const { conversation } = await this.rest.createConversation({ body: { kind, name, member_ids: memberIds } });
    this.addConversation(conversation);
    return conversation;
  }

  // ---------------------------------------------------------------- events

  private received(event: ServerEvent): void {
    this.batch(() => this.receivedNow(event));
  }

  private receivedNow(event: ServerEvent): void {
    if (typeof (event as { type?: unknown })?.type !== "string") {
      // Not ours: API Gateway's own frame (`{"message":"Internal server error",
      // "connectionId":…,"requestId":…}` when a route's function failed). Not
      // proof that a send failed: the unacknowledged ones go again, same ids.
      this.outbox.gatewayFailed();
      this.emit("event", event);
      return;
    }
    if (isDurable(event)) {
      this.sequencer.offer(event);
      return;
    }
    switch (event.type) {
      case "message.ack": {
        // The ack stands for the `message.created` this socket does not get, and carries the message as
        // stored (normalised by the server, so not the draft). A duplicate's seq may be applied already:
        // the sequencer ignores it then.
        if (this.outbox.acknowledged(event)) {
          const message = event.data.message;
          this.sequencer.offer({ type: "message.created", conversation_id: message.conversation_id, seq: message.seq, data: message });
        }
        break;
      }
      case "typing":
        this.typingIn.update(event.conversation_id, event.data);
        break;
      case "read":
        if (event.data.user_id === this.userId) this.setOwnRead(event.conversation_id, event.data.last_read_seq);
        else this.setReceipt(event.conversation_id, event.data.user_id, { read: event.data.last_read_seq });
        break;
      case "delivered": {
        const { user_id, last_delivered_seq } = event.data;
        if (user_id === this.userId) {
          const reported = this.deliveryReported.get(event.conversation_id) ?? 0;
          this.deliveryReported.set(event.conversation_id, Math.max(reported, last_delivered_seq));
        } else this.setReceipt(event.conversation_id, user_id, { delivered: last_delivered_seq });
        break;
      }
      case "presence":
        this.presence.set(event.data.user_id, event.data);
        this.people++;
        this.changed();
        break;
      case "conversation.created":
        // Added to an existing conversation: a snapshot; its seq is tracked from there.
        this.addConversation(event.data);
        break;
      case "error":
        // A refused send settles its message (named by client_msg_id); anything else is the app's to hear.
        if (!this.outbox.refused(event.data)) this.emit("error", new ChatApiError(event.data.status, event.data.code, event.data.message, event.data.request_id, event.data.action ?? undefined));
        break;
    }
    this.emit("event", event);
  }

  private applyDurable(event: DurableEvent): void {
    this.batch(() => this.applyDurableNow(event));
  }

  private applyDurableNow(event: DurableEvent): void {
    const id = event.conversation_id;
    const c = this.conv(id);
    const s = c.summary;
    // A snapshot (list entry, details) already holds every event up to its last_seq.
    const newForSummary = s !== null && event.seq > s.last_seq;
    const newForDetails = c.conversation !== null && event.seq > c.conversation.last_seq;
    switch (event.type) {
      case "message.created": {
        const m = event.data;
        c.messages.set(m.id, m);
        if (m.sender_id) this.typingIn.remove(id, m.sender_id);
        // It reached this device: the sender hears so (not in a room, where nobody sees receipts).
        const kind = s?.kind ?? c.conversation?.kind;
        if (m.sender_id && m.sender_id !== this.userId && kind !== "room" && this.options.deliveryReportMs !== null) {
          this.queueDelivered(id, m.seq);
          this.scheduleDelivered();
        }
        if (s && newForSummary) {
          s.last_message = m;
          s.last_activity_at = m.created_at;
          if (m.sender_id !== this.userId && m.kind !== "system" && !m.deleted_at && m.seq > s.last_read_seq) s.unread_count += 1;
        }
        break;
      }
      case "message.updated":
      case "message.deleted": {
        const m = event.data;
        const before = c.messages.get(m.id);
        if (before || c.loaded) c.messages.set(m.id, m);
        if (s && newForSummary) {
          if (s.last_message?.id === m.id) s.last_message = m;
          s.last_activity_at = event.type === "message.deleted" ? (m.deleted_at ?? s.last_activity_at) : (m.edited_at ?? s.last_activity_at);
          if (event.type === "message.deleted" && m.sender_id !== this.userId && m.seq > s.last_read_seq && s.unread_count > 0) s.unread_count -= 1;
        }
        break;
      }
      case "member.joined": {
        const { user_id, role, joined_at, profile } = event.data;
        // The event carries who joined: no reload. A replay older than the snapshots already held does not
        // overwrite a cached profile with the one stored at joining.
        if (newForDetails || newForSummary || !this.profiles.has(user_id)) this.putProfiles([profile]);
        if (c.conversation && newForDetails) {
          const participants = c.conversation.participants.filter((p) => p.user_id !== user_id);
          // A newcomer has read nothing, nor had anything delivered; in a room nobody's receipt is shown.
          const none = c.conversation.kind === "room" ? null : 0;
          participants.push({ user_id, role, joined_at, last_read_seq: none, last_delivered_seq: none, profile });
          c.conversation = { ...c.conversation, participants };
        }
        if (s && newForSummary) s.member_count += 1;
        if (!s) void this.loadConversations().catch(() => {});
        break;
      }
      case "member.left": {
        if (event.data.user_id === this.userId) {
          this.removeConversation(id);
          this.emit("event", event);
          return;
        }
        if (c.conversation && newForDetails) {
          const participants = c.conversation.participants
            .filter((p) => p.user_id !== event.data.user_id)
            .map((p) => (p.user_id === event.data.new_owner_id ? { ...p, role: "owner" as const } : p));
          c.conversation = { ...c.conversation, participants };
        }
        if (s && newForSummary) s.member_count = Math.max(0, s.member_count - 1);
        break;
      }
      case "conversation.created":
        this.addConversation(event.data);
        break;
      case "conversation.updated":
        if (s && newForSummary) s.name = event.data.name;
        if (c.conversation && newForDetails) c.conversation = { ...c.conversation, name: event.data.name };
        break;
    }
    if (s && newForSummary) {
      s.last_seq = event.seq;
      c.summary = { ...s };
      this.listVersion++;
    }
    if (c.conversation && newForDetails) c.conversation = { ...c.conversation, last_seq: event.seq };
    this.touch(id);
    this.emit("event", event);
  }

  // ------------------------------------------------------------ catching up

  /**
   * After a (re)connect, every few minutes and when the page is visible again:
   * compare each conversation's `last_seq` with what was applied and replay
   * the difference, so a push lost in a quiet conversation still arrives;
   * refresh unread counts and presence; forget stale typing.
   */
  private async resync(reason: "open" | "interval" | "visible"): Promise<void> {
    if (reason === "open") {
      this.typingIn.clear();
      this.outbox.resume();
      // What waited for a socket goes with what the catch-up replays, in one window.
      this.scheduleDelivered();
    }
    try {
      const listed = await this.fetchConversationPage(undefined);
      const replays: Promise<void>[] = [];
      for (const id of this.sequencer.tracked()) {
        const last = listed.get(id);
        // A conversation off the first page: ask it directly.
        replays.push(this.sequencer.catchUp(id, last));
      }
      await Promise.all(replays);
      await this.refreshUnread();
      if (reason === "open") {
        const contacts = new Set<string>();
        for (const c of this.convs.values()) {
          if (c.summary?.other_user_id) contacts.add(c.summary.other_user_id);
          for (const p of c.conversation?.participants ?? []) if (p.user_id !== this.userId) contacts.add(p.user_id);
        }
        if (contacts.size) await this.loadPresence([...contacts].slice(0, 100));
      }
    } catch (error) {
      this.emit("error", error as Error);
    }
  }

  /** Loads a page of the list; returns each listed conversation's last_seq. */
  private async fetchConversationPage(cursor: string | undefined): Promise<Map<string, number>> {
    const page = await this.rest.listConversations({ query: { limit: 100, ...(cursor ? { cursor } : {}) } });
    return this.batch(() => this.putConversationPage(page, cursor));
  }

  private putConversationPage(page: Awaited<ReturnType<RestClient["listConversations"]>>, cursor: string | undefined): Map<string, number> {
    const listed = new Map<string, number>();
    for (const summary of page.conversations) {
      listed.set(summary.id, summary.last_seq);
      const c = this.conv(summary.id);
      const applied = this.sequencer.applied(summary.id);
      // Take the server's entry when it is at least as new as what events built; otherwise events are ahead.
      if (!c.summary || summary.last_seq >= c.summary.last_seq) c.summary = { ...summary };
      if (applied === undefined) this.sequencer.track(summary.id, summary.last_seq);
      this.putEmbeddedProfiles(summary);
      this.touch(summary.id);
    }
    if (!cursor) {
      this.listLoaded = true;
      this.listCursor = page.next_cursor;
    } else {
      this.listCursor = page.next_cursor;
    }
    this.listVersion++;
    this.changed();
    return listed;
  }

  /** Unread counts from `GET /v1/unread` replace the ones counted from events. */
  private async refreshUnread(): Promise<void> {
    const { conversations } = await this.rest.getUnreadCounts();
    const counts = new Map(conversations.map((u) => [u.conversation_id, u.unread_count]));
    this.batch(() => {
      for (const [id, c] of this.convs) {
        if (!c.summary) continue;
        const n = counts.get(id) ?? 0;
        if (c.summary.unread_count !== n) {
          c.summary = { ...c.summary, unread_count: n };
          this.touch(id);
        }
      }
    });
  }

  // ---------------------------------------------------------------- state

  private conv(id: string): Conv {
    let c = this.convs.get(id);
    if (!c) {
      c = {
        summary: null,
        conversation: null,
        me: null,
        messages: new Map(),
        loaded: false,
        loading: null,
        loadingOlder: false,
        hasOlder: false,
        error: null,
        version: 0,
      };
      this.convs.set(id, c);
    }
    return c;
  }

  private touch(id: string): void {
    const c = this.convs.get(id);
    if (c) c.version++;
    this.listVersion++;
    this.changed();
  }

  /** Something shown changed: `change` now, or once at the end of the running batch. */
  private changed(): void {
    if (this.batching > 0) this.changePending = true;
    else this.emit("change");
  }

  /**
   * Runs `update` with `change` held back until it (and any batch it opens)
   * ends, then emits it once: one event, one render, however many parts of
   * the state it touched (an own read moves the summary and the receipt; a
   * join caches a profile and adds a participant; an ack settles the outbox
   * and stores the message).
   */
  private batch<T>(update: () => T): T {
    this.batching++;
    try {
      return update();
    } finally {
      if (--this.batching === 0 && this.changePending) {
        this.changePending = false;
        this.emit("change");
      }
    }
  }

  private setDetails(conversation: Conversation, me: MeSettings): void {
    const c = this.conv(conversation.id);
    if (!c.conversation || conversation.last_seq >= c.conversation.last_seq) c.conversation = conversation;
    c.me = me;
    this.putEmbeddedProfiles(conversation);
    if (c.summary) {
      c.summary = { ...c.summary, last_read_seq: Math.max(c.summary.last_read_seq, me.last_read_seq) };
      if (conversation.last_seq >= c.summary.last_seq) c.summary.unread_count = me.unread_count;
    }
  }

  private addConversation(conversation: Conversation): void {
    const c = this.conv(conversation.id);
    this.putEmbeddedProfiles(conversation);
    if (!c.conversation || conversation.last_seq >= c.conversation.last_seq) c.conversation = conversation;
    this.sequencer.track(conversation.id, conversation.last_seq);
    if (!c.summary) {
      const mine = conversation.participants.find((p) => p.user_id === this.userId);
      const other = conversation.kind === "direct" ? conversation.participants.find((p) => p.user_id !== this.userId) : undefined;
      c.summary = {
        id: conversation.id,
        kind: conversation.kind,
        name: conversation.name,
        context_type: conversation.context_type,
        context_id: conversation.context_id,
        created_at: conversation.created_at,
        last_seq: conversation.last_seq,
        last_activity_at: conversation.created_at,
        member_count: conversation.participants.length,
        other_user_id: other?.user_id ?? null,
        last_message: null,
        unread_count: 0,
        last_read_seq: mine?.last_read_seq ?? 0,
        archived: false,
        muted: false,
        role: mine?.role ?? "member",
        counterpart: other?.profile ?? null,
      };
    }
    this.touch(conversation.id);
  }

  private removeConversation(id: string): void {
    this.sequencer.forget(id);
    this.outbox.drop(id, new ChatSendError("not_a_participant", "you are no longer in this conversation", 403, ""));
    this.convs.delete(id);
    this.listVersion++;
    this.changed();
  }

  private putMessage(m: Message): void {
    const c = this.conv(m.conversation_id);
    if (c.messages.has(m.id) || c.loaded) c.messages.set(m.id, m);
    if (c.summary?.last_message?.id === m.id) c.summary = { ...c.summary, last_message: m };
    this.touch(m.conversation_id);
  }

  private setOwnRead(id: string, lastReadSeq: number, unread?: number): void {
    this.batch(() => this.setOwnReadNow(id, lastReadSeq, unread));
  }

  private setOwnReadNow(id: string, lastReadSeq: number, unread?: number): void {
    const c = this.conv(id);
    if (c.summary) {
      const s = { ...c.summary, last_read_seq: Math.max(c.summary.last_read_seq, lastReadSeq) };
      if (unread !== undefined) s.unread_count = unread;
      else if (s.last_read_seq >= s.last_seq) s.unread_count = 0;
      else this.scheduleUnreadRefresh(); // Part read: only the server can count what is left.
      c.summary = s;
    }
    if (c.me) c.me = { ...c.me, last_read_seq: Math.max(c.me.last_read_seq, lastReadSeq) };
    if (this.userId) this.setReceipt(id, this.userId, { read: lastReadSeq });
    this.touch(id);
  }

  /** Moves a participant's receipts forward: what was read was delivered too. */
  private setReceipt(id: string, userId: string, moved: { read?: number; delivered?: number }): void {
    const c = this.conv(id);
    if (!c.conversation) return;
    const read = moved.read ?? 0;
    c.conversation = {
      ...c.conversation,
      participants: c.conversation.participants.map((p) =>
        // null in a room and across a block: those receipts are not shown (your own is `me.last_read_seq`).
        p.user_id === userId && p.last_read_seq !== null
          ? {
              ...p,
              last_read_seq: Math.max(p.last_read_seq, read),
              last_delivered_seq: Math.max(p.last_delivered_seq ?? 0, p.last_read_seq, read, moved.delivered ?? 0),
            }
          : p,
      ),
    };
    this.touch(id);
  }

  /** How far one of the user's stored messages got, by the other members' receipts; none for others' messages. */
  private receiptOf(c: Conv, m: Message): ReceiptStatus | undefined {
    if (!this.userId || m.sender_id !== this.userId) return undefined;
    const sentAt = Date.parse(m.created_at);
    const others = (c.conversation?.participants ?? []).filter(
      (p) => p.user_id !== this.userId && p.last_read_seq !== null && !(Date.parse(p.joined_at) > sentAt),
    );
    if (others.length === 0) return "sent";
    if (others.every((p) => (p.last_read_seq ?? 0) >= m.seq)) return "read";
    if (others.every((p) => Math.max(p.last_delivered_seq ?? 0, p.last_read_seq ?? 0) >= m.seq)) return "delivered";
    return "sent";
  }

  /** Keeps the highest seq to report for a conversation, unless it is reported (or read) already. */
  private queueDelivered(id: string, seq: number): void {
    if (seq > Math.max(this.deliveredOrRead(id), this.deliveryPending.get(id) ?? 0)) this.deliveryPending.set(id, seq);
  }

  /** How far this user's delivery is known to the server already: reported, or read (which counts as delivered). */
  private deliveredOrRead(id: string): number {
    const c = this.convs.get(id);
    return Math.max(this.deliveryReported.get(id) ?? 0, c?.summary?.last_read_seq ?? 0, c?.me?.last_read_seq ?? 0);
  }

  private scheduleDelivered(): void {
    if (this.deliveryPending.size === 0) return;
    // Without automatic reports only markDelivered's wait here: they go as soon as they can.
    if (this.options.deliveryReportMs === null) this.flushDelivered();
    else this.deliveryTimer ??= setTimeout(() => this.flushDelivered(), this.options.deliveryReportMs ?? 500);
  }

  /** Sends the waiting delivery reports, one frame per conversation; what the socket cannot take waits for it to open. */
  private flushDelivered(): void {
    clearTimeout(this.deliveryTimer);
    this.deliveryTimer = undefined;
    for (const [id, seq] of this.deliveryPending) {
      if (seq <= this.deliveredOrRead(id)) {
        this.deliveryPending.delete(id); // read meanwhile
        continue;
      }
      if (!this.connection.send({ action: "markDelivered", conversation_id: id, seq })) return;
      this.deliveryPending.delete(id);
      this.deliveryReported.set(id, Math.max(this.deliveryReported.get(id) ?? 0, seq));
    }
  }

  private scheduleUnreadRefresh(): void {
    clearTimeout(this.unreadTimer);
    this.unreadTimer = setTimeout(() => void this.refreshUnread().catch((e) => this.emit("error", e)), 1000);
  }

  private putProfiles(profiles: readonly (PublicProfile & Partial<Profile>)[]): void {
    for (const p of profiles) {
      this.profiles.set(p.id, { ...this.profiles.get(p.id), ...p });
      if (typeof p.online === "boolean") {
        this.presence.set(p.id, { user_id: p.id, online: p.online, last_seen_at: p.last_seen_at ?? null });
      }
    }
    this.people++;
    this.changed();
  }

  /** Profiles the API embeds: a list entry's `counterpart`, each participant's `profile`. */
  private putEmbeddedProfiles(x: ConversationSummary | Conversation): void {
    const found: PublicProfile[] = [];
    if ("counterpart" in x && x.counterpart) found.push(x.counterpart);
    if ("participants" in x) for (const p of x.participants) found.push(p.profile);
    if (found.length) this.putProfiles(found);
  }

  private listItem(s: ConversationSummary): ConversationListItem {
    const counterpartProfile = s.counterpart ?? (s.other_user_id ? (this.profiles.get(s.other_user_id) ?? null) : null);
    return { ...s, title: this.titleOf(s.id), counterpartProfile };
  }

  private titleOf(id: string): string {
    const c = this.convs.get(id);
    const name = c?.summary?.name ?? c?.conversation?.name;
    if (name) return name;
    const others =
      c?.conversation?.participants.map((p) => p.user_id).filter((u) => u !== this.userId) ??
      (c?.summary?.other_user_id ? [c.summary.other_user_id] : []);
    const counterpart = c?.summary?.counterpart;
    if (counterpart) return counterpart.display_name || counterpart.username;
    if (others.length) return others.map((u) => this.displayName(u)).join(", ");
    return "(no one else)";
  }

  private optimistic(o: Outgoing): ChatMessage {
    return {
      id: `local:${o.clientMsgId}`,
      conversation_id: o.conversationId,
      seq: 0,
      sender_id: this.userId,
      client_msg_id: o.clientMsgId,
      kind: o.draft.kind ?? "text",
      body: o.draft.body ?? null,
      attachment: o.draft.attachment ?? null,
      reply_to_id: o.draft.reply_to_id ?? null,
      created_at: o.createdAt,
      edited_at: null,
      deleted_at: null,
      status: o.status === "failed" ? "failed" : "pending",
      error: o.error,
    };
  }
}

/** The `sub` of a JWT, read without checking it (the server checks it). */
export function subjectOf(token: string): string | null {
  try {
    const payload = token.split(".")[1];
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "="));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === "string" ? sub : null;
  } catch {
    return null;
  }
}

/** A UUID: fits `client_msg_id`'s 1–100 of `A-Z a-z 0-9 - _ . :`. */
function randomId(): string {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  // crypto.randomUUID exists only in secure contexts; getRandomValues everywhere.
  const b = c.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}
