// Exactly-once, in-order application of durable events, per conversation, as
// docs/websocket-protocol.md ("Recovering after a reconnect or a gap") asks:
// keep the highest seq applied with every earlier one applied too; ignore what
// is at or below it; apply the next one and whatever buffered events follow;
// buffer what is beyond a gap and, if the gap is not filled within a moment,
// replay `GET /v1/conversations/{id}/events?after_seq=` page by page before
// releasing the buffered events.
import { backoffDelay } from "./backoff.js";
import type { DurableEvent, EventsPage } from "./types.js";

export interface SequencerOptions {
  /** One page of a conversation's events after `afterSeq`. */
  fetchEvents(conversationId: string, afterSeq: number): Promise<EventsPage>;
  /** Called once per event, in seq order per conversation. */
  apply(event: DurableEvent): void;
  /** A replay was refused because the user is no longer in the conversation (403). */
  gone?(conversationId: string): void;
  /** A replay failed (it is retried with backoff). */
  onError?(error: unknown, conversationId: string): void;
  /** How long a gap may stay open before a replay (ms); pushes of concurrent writes overtake each other. Default 1500. */
  gapTimeoutMs?: number;
  random?: () => number;
}

interface Track {
  applied: number;
  buffer: Map<number, DurableEvent>;
  replay: Promise<void> | null;
  gapTimer: ReturnType<typeof setTimeout> | undefined;
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  failures: number;
}

export class Sequencer {
  private tracks = new Map<string, Track>();

  constructor(private readonly o: SequencerOptions) {}

  /** The highest seq applied in order, or undefined for an untracked conversation. */
  applied(conversationId: string): number | undefined {
    return this.tracks.get(conversationId)?.applied;
  }

  tracked(): string[] {
    return [...this.tracks.keys()];
  }

  /**
   * Starts tracking a conversation whose state is known up to `seq` (e.g. its
   * `last_seq` from a snapshot). A conversation already tracked keeps its own
   * position: jumping ahead would skip events.
   */
  track(conversationId: string, seq: number): void {
    if (!this.tracks.has(conversationId)) this.tracks.set(conversationId, newTrack(seq));
  }

  forget(conversationId: string): void {
    const t = this.tracks.get(conversationId);
    if (t) {
      clearTimeout(t.gapTimer);
      clearTimeout(t.retryTimer);
    }
    this.tracks.delete(conversationId);
  }

  /** A durable event from the socket (or a send's acknowledgement standing in for its `message.created`). */
  offer(event: DurableEvent): void {
    let t = this.tracks.get(event.conversation_id);
    if (!t) {
      // First news of a conversation: its history before this event is the
      // history API's business; from here on nothing is skipped.
      t = newTrack(event.seq - 1);
      this.tracks.set(event.conversation_id, t);
    }
    if (event.seq <= t.applied) return;
    if (t.replay || event.seq !== t.applied + 1) {
      t.buffer.set(event.seq, event);
      if (!t.replay) this.armGap(event.conversation_id, t);
      return;
    }
    this.applyOne(t, event);
    this.drain(event.conversation_id, t);
  }

  /**
   * Replays everything after the applied seq (all pages); events arriving
   * meanwhile wait in the buffer. Concurrent calls share one replay. With
   * `upTo`, nothing is fetched when the conversation is known to be there.
   */
  catchUp(conversationId: string, upTo?: number): Promise<void> {
    let t = this.tracks.get(conversationId);
    if (!t) {
      t = newTrack(0);
      this.tracks.set(conversationId, t);
    }
    if (t.replay) return t.replay;
    if (upTo !== undefined && upTo <= t.applied) return Promise.resolve();
    clearTimeout(t.gapTimer);
    clearTimeout(t.retryTimer);
    t.gapTimer = t.retryTimer = undefined;
    const track = t;
    track.replay = (async () => {
      try {
        for (;;) {
          const page = await this.o.fetchEvents(conversationId, track.applied);
          if (this.tracks.get(conversationId) !== track) return;
          for (const stored of page.events) {
            // A replayed event is the pushed one plus who caused it and when.
            const event: DurableEvent = stored;
            if (event.seq === track.applied + 1) this.applyOne(track, event);
            else if (event.seq > track.applied) track.buffer.set(event.seq, event);
          }
          if (!page.has_more || page.events.length === 0) break;
        }
        track.failures = 0;
      } catch (error) {
        if ((error as { code?: string })?.code === "not_a_participant") {
          this.forget(conversationId);
          this.o.gone?.(conversationId);
          return;
        }
        this.o.onError?.(error, conversationId);
        track.failures += 1;
        if (this.tracks.get(conversationId) === track) {
          clearTimeout(track.retryTimer);
          track.retryTimer = setTimeout(
            () => void this.catchUp(conversationId),
            backoffDelay(track.failures, { random: this.o.random }) + 250,
          );
        }
      } finally {
        track.replay = null;
      }
      if (this.tracks.get(conversationId) === track) this.drain(conversationId, track);
    })();
    return track.replay;
  }

  /** Stops every timer (the client is closing). */
  dispose(): void {
    for (const t of this.tracks.values()) {
      clearTimeout(t.gapTimer);
      clearTimeout(t.retryTimer);
      t.gapTimer = t.retryTimer = undefined;
    }
  }

  private applyOne(t: Track, event: DurableEvent): void {
    t.applied = event.seq;
    this.o.apply(event);
  }

  private drain(conversationId: string, t: Track): void {
    for (;;) {
      const next = t.buffer.get(t.applied + 1);
      if (!next) break;
      t.buffer.delete(next.seq);
      this.applyOne(t, next);
    }
    for (const seq of t.buffer.keys()) if (seq <= t.applied) t.buffer.delete(seq);
    if (t.buffer.size === 0) {
      clearTimeout(t.gapTimer);
      t.gapTimer = undefined;
    } else if (!t.replay) {
      this.armGap(conversationId, t);
    }
  }

  private armGap(conversationId: string, t: Track): void {
    if (t.gapTimer !== undefined) return;
    t.gapTimer = setTimeout(() => {
      t.gapTimer = undefined;
      void this.catchUp(conversationId);
    }, this.o.gapTimeoutMs ?? 1500);
  }
}

function newTrack(applied: number): Track {
  return { applied, buffer: new Map(), replay: null, gapTimer: undefined, retryTimer: undefined, failures: 0 };
}
