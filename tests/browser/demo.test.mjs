// The demo app in headless Chromium, as two people (alice and bob, each in a
// browser context of their own) against a local stack started here.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ARTIFACTS, api, connectionsOf, disconnect, launchBrowser, startDemo, startStack } from "./harness.mjs";

const WAIT = { timeout: 20_000 };
let stack, demo, browser;

before(async () => {
  stack = await startStack();
  demo = await startDemo(stack.readyFile);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  await stack?.stop();
});

/** A page signed in as `user`, its socket open. */
async function signIn(user) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(demo.url);
  await page.getByTestId(`signin-${user}`).click();
  await page.locator('[data-testid=connection-state][data-state=connected]').waitFor(WAIT);
  return { context, page, problems };
}

const row = (page, title) => page.locator(`[data-testid=conversation-item][data-title="${title}"]`);

async function openConversation(page, title) {
  await row(page, title).click();
  await page.locator(`[data-testid=conversation-header]`, { hasText: title }).waitFor(WAIT);
}

async function send(page, text) {
  await page.getByTestId("composer-input").fill(text);
  await page.getByTestId("composer-send").click();
}

/** The bodies shown, in order. */
const bodies = (page) => page.locator("[data-testid=message] [data-testid=message-body]").allTextContents();

/** A group of alice and bob with a name of its own, so tests do not see each other's messages. */
async function group(name) {
  const { conversation } = await api(stack, "alice", "POST", "/v1/conversations", {
    kind: "group",
    name,
    member_ids: [stack.users.bob.id],
  });
  return conversation;
}

const unique = (what) => `${what} ${Date.now().toString(36)}`;

describe("the demo in a browser", () => {
  let alice, bob;
  before(async () => {
    alice = await signIn("alice");
    bob = await signIn("bob");
  });
  after(async () => {
    await alice?.context.close();
    await bob?.context.close();
  });

  it("alice messages bob from a user search; bob's page shows it under her name, and alice sees bob read it", async () => {
    await alice.page.getByTestId("user-search").fill("bob");
    await alice.page.locator("[data-testid=user-result][data-username=bob] [data-testid=user-message]").click(WAIT);
    await alice.page.locator("[data-testid=conversation-header]", { hasText: "Bob" }).waitFor(WAIT);
    const text = unique("hello bob");
    await send(alice.page, text);
    await alice.page.locator("[data-testid=message][data-status=sent]", { hasText: text }).waitFor(WAIT);

    // The direct conversation is named after its counterpart in bob's list.
    await openConversation(bob.page, "Alice");
    const shown = bob.page.locator("[data-testid=message]", { hasText: text });
    await shown.waitFor(WAIT);
    assert.equal(await shown.getByTestId("message-sender").textContent(), "Alice");

    await alice.page.locator("[data-testid=message]", { hasText: text }).getByTestId("read-receipt").filter({ hasText: "Seen by Bob" }).waitFor(WAIT);
    assert.deepEqual([...alice.problems, ...bob.problems], []);
  });

  it("bob's socket is cut by the server while alice sends five messages; after the reconnect bob's page shows all five once, in order", async () => {
    const name = unique("Reconnect");
    await group(name);
    await openConversation(alice.page, name);
    await openConversation(bob.page, name);

    // Keep bob off the network: his page's next handshakes are refused
    // until he is back, so what alice sends must come from the replay.
    let offline = false;
    await bob.page.routeWebSocket(/.*/, (ws) => {
      if (offline) ws.close({ code: 4000, reason: "offline in the test" });
      else ws.connectToServer();
    });
    // Routing applies to sockets opened from now on: replace bob's socket with a routed one.
    await cutAndAwaitReconnect("bob", await connectionsOf(stack, "bob"));

    offline = true;
    const before = await connectionsOf(stack, "bob");
    assert.equal(before.length, 1, `bob has one socket: ${before}`);
    await disconnect(stack, before[0]);
    await bob.page.locator("[data-testid=connection-state]:not([data-state=connected])").waitFor(WAIT);

    const sent = [1, 2, 3, 4, 5].map((i) => `${name}: message ${i}`);
    for (const text of sent) await send(alice.page, text);
    await alice.page.locator("[data-testid=message][data-status=sent]", { hasText: sent[4] }).waitFor(WAIT);
    assert.equal(await bob.page.locator("[data-testid=message]", { hasText: name }).count(), 0, "bob got nothing while offline");

    offline = false;
    // The browser's `online` event: the client reconnects at once instead of waiting out its backoff.
    await bob.context.setOffline(true);
    await bob.context.setOffline(false);
    await bob.page.locator("[data-testid=connection-state][data-state=connected]").waitFor(WAIT);
    await bob.page.locator("[data-testid=message]", { hasText: sent[4] }).waitFor(WAIT);
    // Give duplicates a moment to show up, if they were to.
    await bob.page.waitForTimeout(1_500);
    assert.deepEqual(
      (await bodies(bob.page)).filter((b) => b.startsWith(name)),
      sent,
    );

    mkdirSync(ARTIFACTS, { recursive: true });
    await bob.page.screenshot({ path: path.join(ARTIFACTS, "demo.png") });
  });

  it("typing shows on the other page and goes away on its own", async () => {
    const name = unique("Typing");
    await group(name);
    await openConversation(alice.page, name);
    await openConversation(bob.page, name);

    await alice.page.getByTestId("composer-input").pressSequentially("hel", { delay: 50 });
    const indicator = bob.page.getByTestId("typing-indicator");
    await indicator.filter({ hasText: "Alice is typing" }).waitFor(WAIT);
    // Alice stops typing and sends nothing: the indicator clears without another keystroke.
    await indicator.waitFor({ state: "detached", timeout: 15_000 });
    assert.equal(await alice.page.getByTestId("typing-indicator").count(), 0, "nobody else is typing on alice's page");
  });

  it("the unread badge rises with each message and clears when bob opens the conversation", async () => {
    const elsewhere = unique("Elsewhere");
    const name = unique("Unread");
    await group(elsewhere);
    const conversation = await group(name);
    await openConversation(bob.page, elsewhere);
    const badge = row(bob.page, name).getByTestId("unread-badge");
    await row(bob.page, name).waitFor(WAIT);
    assert.equal(await badge.count(), 0);

    for (const [i, expected] of [[1, "1"], [2, "2"], [3, "3"]]) {
      await api(stack, "alice", "POST", `/v1/conversations/${conversation.id}/messages`, { body: `unread ${i}` });
      await badge.filter({ hasText: new RegExp(`^${expected}$`) }).waitFor(WAIT);
    }
    await row(bob.page, name).getByTestId("conversation-last-message").filter({ hasText: "Alice: unread 3" }).waitFor(WAIT);

    await openConversation(bob.page, name);
    await badge.waitFor({ state: "detached", ...WAIT });
    // Read on the server too: a fresh page shows no badge.
    await bob.page.reload();
    await bob.page.locator("[data-testid=connection-state][data-state=connected]").waitFor(WAIT);
    await row(bob.page, name).waitFor(WAIT);
    await bob.page.waitForTimeout(500);
    assert.equal(await badge.count(), 0);
  });
});

/** Closes these sockets from the server and waits until the user has a new one. */
async function cutAndAwaitReconnect(user, connectionIds) {
  for (const id of connectionIds) await disconnect(stack, id);
  const deadline = Date.now() + WAIT.timeout;
  for (;;) {
    const now = await connectionsOf(stack, user);
    if (now.length > 0 && now.every((id) => !connectionIds.includes(id))) return;
    if (Date.now() > deadline) throw new Error(`${user} did not reconnect: ${now}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
