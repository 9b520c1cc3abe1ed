import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Sequencer } from "../src/sequencer.js";
import type { DurableEvent, EventsPage } from "../src/types.js";
import { CONV, created } from "./fakes.js";

function stored(seq: number) {
  return { ...created(seq), actor_id: null, created_at: "2026-11-21T07:00:00Z" };
}

function setup(history: number, pageSize = 3) {
  const applied: number[] = [];
  const fetches: number[] = [];
  const seq = new Sequencer({
    fetchEvents: async (_id, after): Promise<EventsPage> => {
      fetches.push(after);
      const events = [];
      for (let s = after + 1; s <= Math.min(history, after + pageSize); s++) events.push(stored(s));
      return { events, has_more: after + pageSize < history, last_seq: history } as unknown as EventsPage;
    },
    apply: (e) => applied.push(e.seq),
    gapTimeoutMs: 1000,
  });
  return { seq, applied, fetches };
}

const ev = (n: number) => created(n) as DurableEvent;

describe("sequencer", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("applies each seq once: repeats and replays overlapping pushes are ignored", () => {
    const { seq, applied } = setup(0);
    seq.track(CONV, 4);
    for (const n of [5, 5, 6, 4, 2, 6, 7, 7]) seq.offer(ev(n));
    expect(applied).toEqual([5, 6, 7]);
    expect(seq.applied(CONV)).toBe(7);
  });

  it("waits for pushes that overtook each other, without a replay", async () => {
    const { seq, applied, fetches } = setup(0);
    seq.track(CONV, 0);
    seq.offer(ev(2));
    seq.offer(ev(3));
    expect(applied).toEqual([]);
    seq.offer(ev(1));
    expect(applied).toEqual([1, 2, 3]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(fetches).toEqual([]);
  });

  it("replays a gap page by page before releasing the newer events, in order", async () => {
    const { seq, applied, fetches } = setup(8, 3);
    seq.track(CONV, 1);
    seq.offer(ev(9)); // 2..8 are missing
    seq.offer(ev(10));
    await vi.advanceTimersByTimeAsync(999);
    expect(fetches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(fetches).toEqual([1, 4, 7]);
    expect(applied).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("buffers pushes that arrive during a replay and drops those the replay brought", async () => {
    let release!: () => void;
    const applied: number[] = [];
    const seq = new Sequencer({
      fetchEvents: async () => {
        await new Promise<void>((r) => (release = r));
        return { events: [stored(1), stored(2), stored(3)], has_more: false, last_seq: 3 } as unknown as EventsPage;
      },
      apply: (e) => applied.push(e.seq),
    });
    seq.track(CONV, 0);
    const replay = seq.catchUp(CONV);
    seq.offer(ev(3));
    seq.offer(ev(4));
    seq.offer(ev(1));
    expect(applied).toEqual([]);
    release();
    await replay;
    expect(applied).toEqual([1, 2, 3, 4]);
  });

  it("fetches nothing when the conversation is known to be up to date", async () => {
    const { seq, fetches } = setup(5);
    seq.track(CONV, 5);
    await seq.catchUp(CONV, 5);
    expect(fetches).toEqual([]);
    await seq.catchUp(CONV, 6);
    expect(fetches).toEqual([5]);
  });

  it("forgets a conversation whose replay says not_a_participant", async () => {
    const gone: string[] = [];
    const seq = new Sequencer({
      fetchEvents: async () => {
        throw Object.assign(new Error("no"), { code: "not_a_participant" });
      },
      apply: () => {},
      gone: (id) => gone.push(id),
    });
    seq.track(CONV, 3);
    await seq.catchUp(CONV);
    expect(gone).toEqual([CONV]);
    expect(seq.applied(CONV)).toBeUndefined();
  });

  it("retries a failed replay with backoff", async () => {
    let calls = 0;
    const applied: number[] = [];
    const seq = new Sequencer({
      fetchEvents: async () => {
        if (++calls === 1) throw new Error("503");
        return { events: [stored(1)], has_more: false, last_seq: 1 } as unknown as EventsPage;
      },
      apply: (e) => applied.push(e.seq),
      onError: () => {},
      random: () => 0,
    });
    seq.track(CONV, 0);
    await seq.catchUp(CONV);
    expect(applied).toEqual([]);
    await vi.advanceTimersByTimeAsync(300);
    expect(calls).toBe(2);
    expect(applied).toEqual([1]);
  });
});
