import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TypingSender, TypingTracker } from "../src/typing.js";
import { BOB, CONV } from "./fakes.js";

describe("typing", () => {
  beforeEach(() => vi.useFakeTimers({ now: Date.UTC(2026, 10, 21, 7, 0, 0) }));
  afterEach(() => vi.useRealTimers());

  it("sends one start frame per 2.5 s however fast the user types, and a stop 4 s after the last key", async () => {
    const frames: [number, boolean][] = [];
    const t0 = Date.now();
    const sender = new TypingSender((_, isTyping) => frames.push([Date.now() - t0, isTyping]));
    for (let ms = 0; ms <= 6000; ms += 100) {
      sender.typing(CONV);
      await vi.advanceTimersByTimeAsync(100);
    }
    await vi.advanceTimersByTimeAsync(10_000);
    expect(frames).toEqual([
      [0, true],
      [2500, true],
      [5000, true],
      [6000 + 4000, false], // the last key at 6000
    ]);
  });

  it("stops at once when asked (the message was sent), and only once", () => {
    const frames: boolean[] = [];
    const sender = new TypingSender((_, isTyping) => frames.push(isTyping));
    sender.typing(CONV);
    sender.stop(CONV);
    sender.stop(CONV);
    vi.advanceTimersByTime(10_000);
    expect(frames).toEqual([true, false]);
  });

  it("shows another user's typing until expires_at", () => {
    const tracker = new TypingTracker(() => {});
    tracker.update(CONV, { user_id: BOB, is_typing: true, expires_at: new Date(Date.now() + 4000).toISOString() });
    expect(tracker.users(CONV)).toEqual([BOB]);
    vi.advanceTimersByTime(3999);
    expect(tracker.users(CONV)).toEqual([BOB]);
    vi.advanceTimersByTime(1);
    expect(tracker.users(CONV)).toEqual([]);
  });

  it("never longer than 6 s after the event, whatever the sender's clock says", () => {
    const tracker = new TypingTracker(() => {});
    tracker.update(CONV, { user_id: BOB, is_typing: true, expires_at: new Date(Date.now() + 60_000).toISOString() });
    vi.advanceTimersByTime(6000);
    expect(tracker.users(CONV)).toEqual([]);
  });

  it("a renewal extends it; a stop or the user's message ends it at once", () => {
    const changes: string[] = [];
    const tracker = new TypingTracker((id) => changes.push(id));
    const typing = (on: boolean) =>
      tracker.update(CONV, { user_id: BOB, is_typing: on, expires_at: new Date(Date.now() + (on ? 6000 : 0)).toISOString() });
    typing(true);
    vi.advanceTimersByTime(5000);
    typing(true);
    vi.advanceTimersByTime(5000);
    expect(tracker.users(CONV)).toEqual([BOB]);
    typing(false);
    expect(tracker.users(CONV)).toEqual([]);
    typing(true);
    tracker.remove(CONV, BOB);
    expect(tracker.users(CONV)).toEqual([]);
    expect(changes.length).toBe(5);
  });
});
