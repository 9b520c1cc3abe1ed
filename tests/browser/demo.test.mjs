// The demo app in headless Chromium, as two people (alice and bob, each in a
// browser context of their own) against a local stack started here.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ARTIFACTS, ROOT, WAIT, api, connectionsOf, launchBrowser, signIn as signInAs, startDemo, startStack, until } from "./harness.mjs";

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
const signIn = (user, options) => signInAs({ browser, demo, stack }, user, options);

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

/** A group of alice's with a name of its own (bob by default), so tests do not see each other's messages. */
async function group(name, members = ["bob"]) {
  const { conversation } = await api(stack, "alice", "POST", "/v1/conversations", {
    kind: "group",
    name,
    member_ids: members.map((m) => stack.users[m].id),
  });
  return conversation;
}

const message = (page, text) => page.locator("[data-testid=message]", { hasText: text });

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

  it("presence: once both have written, bob's return is pushed to alice and his client asks for hers", async () => {
    // Contacts see each other's presence: people who have both written in a conversation.
    await send(bob.page, "hi alice");
    await message(alice.page, "hi alice").waitFor(WAIT);
    const bobOnAlicePage = alice.page.locator("[data-testid=member][data-username=bob] [data-testid=presence]");
    assert.equal(await bobOnAlicePage.getAttribute("data-online"), "false", "not contacts when alice opened it");

    // Bob goes away for good (the server holds no socket of his), then comes
    // back: his first socket is pushed to his contacts, and his client asks
    // for theirs. (A page reload would not do: its new socket may register
    // before the old one is gone, and then nobody is told anything.)
    await bob.net.down();
    await until("bob's connections are gone", async () => (await connectionsOf(stack, "bob")).length === 0);
    await bob.net.up();
    await bob.page.locator("[data-testid=connection-state][data-state=connected]").waitFor(WAIT);
    await row(bob.page, "Alice").locator("[data-testid=presence][data-online=true]").waitFor(WAIT);
    await alice.page
      .locator("[data-testid=member][data-username=bob] [data-testid=presence][data-online=true]")
      .waitFor(WAIT)
      .catch((error) => {
        const presence = alice.received.filter((frame) => frame.includes('"presence"'));
        throw new Error(`${error.message}\npresence events alice's page got:\n${presence.join("\n")}`);
      });
    assert.deepEqual([...alice.problems, ...bob.problems], []);
  });

  it("bob's socket is cut while alice sends five messages; after the reconnect bob's page shows all five once, in order", async () => {
    const name = unique("Reconnect");
    await group(name);
    await openConversation(alice.page, name);
    await openConversation(bob.page, name);

    await bob.net.down();
    await bob.page.locator("[data-testid=connection-state]:not([data-state=connected])").waitFor(WAIT);
    // The server saw the socket go: bob has no connection left.
    await until("bob's connections are gone", async () => (await connectionsOf(stack, "bob")).length === 0);

    const sent = [1, 2, 3, 4, 5].map((i) => `${name}: message ${i}`);
    for (const text of sent) await send(alice.page, text);
    await alice.page.locator("[data-testid=message][data-status=sent]", { hasText: sent[4] }).waitFor(WAIT);
    assert.equal(await bob.page.locator("[data-testid=message]", { hasText: name }).count(), 0, "bob got nothing while offline");

    // Back online: the client reconnects at once (not after its backoff) and replays what it missed.
    await bob.net.up();
    await bob.page.locator("[data-testid=connection-state][data-state=connected]").waitFor(WAIT);
    await message(bob.page, sent[4]).waitFor(WAIT);
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

describe("history, editing, replies and groups", () => {
  let alice, bob;
  before(async () => {
    alice = await signIn("alice");
    bob = await signIn("bob");
  });
  after(async () => {
    await alice?.context.close();
    await bob?.context.close();
  });

  it("older pages load as carol scrolls up, until the start of the conversation", async () => {
    const name = unique("History");
    const conversation = await group(name, ["carol"]);
    const sent = [];
    for (let i = 1; i <= 12; i++) {
      sent.push(`${name}: ${i}`);
      await api(stack, "alice", "POST", `/v1/conversations/${conversation.id}/messages`, { body: sent.at(-1) });
    }
    // Pages of five in a short window: the newest page overflows it, so the older ones wait for scrolling.
    const carol = await signIn("carol", { viewport: { width: 900, height: 360 }, query: "?page_size=5" });
    try {
      await openConversation(carol.page, name);
      await message(carol.page, sent[11]).waitFor(WAIT);
      assert.deepEqual(await bodies(carol.page), sent.slice(7));
      assert.equal(await carol.page.getByTestId("history-start").count(), 0);

      const list = carol.page.getByTestId("message-list");
      for (const shown of [10, 12]) {
        await list.evaluate((el) => el.scrollTo(0, 0));
        await carol.page.waitForFunction((n) => document.querySelectorAll("[data-testid=message]").length === n, shown, WAIT);
      }
      await carol.page.getByTestId("history-start").waitFor(WAIT);
      assert.deepEqual(await bodies(carol.page), sent);
      assert.deepEqual(carol.problems, []);
    } finally {
      await carol.context.close();
    }
  });

  it("bob replies to alice's message; alice edits it, then deletes it, and bob's page follows", async () => {
    const name = unique("Edits");
    await group(name);
    await openConversation(alice.page, name);
    await openConversation(bob.page, name);
    const original = `${name}: original`;
    await send(alice.page, original);

    await message(bob.page, original).hover();
    await message(bob.page, original).getByTestId("message-reply").click();
    await bob.page.getByTestId("replying-to").filter({ hasText: original }).waitFor(WAIT);
    await send(bob.page, "a reply");
    const reply = message(alice.page, "a reply");
    await reply.getByTestId("message-quote").filter({ hasText: `Alice: ${original}` }).waitFor(WAIT);
    assert.equal(await reply.getByTestId("message-sender").textContent(), "Bob");

    // Only one's own messages can be edited or deleted.
    await message(alice.page, "a reply").hover();
    assert.equal(await reply.getByTestId("message-edit").count(), 0);
    assert.equal(await reply.getByTestId("message-delete").count(), 0);

    const edited = `${name}: edited`;
    const mine = alice.page.locator("[data-testid=message][data-status=sent]").first();
    await mine.hover();
    await mine.getByTestId("message-edit").click();
    await mine.getByTestId("edit-input").fill(edited);
    await mine.getByTestId("edit-save").click();
    const seen = message(bob.page, edited).filter({ has: bob.page.getByTestId("message-edited") });
    await seen.waitFor(WAIT);
    await message(bob.page, "a reply").getByTestId("message-quote").filter({ hasText: `Alice: ${edited}` }).waitFor(WAIT);

    await mine.hover();
    await mine.getByTestId("message-delete").click();
    await bob.page.locator("[data-testid=message-body]", { hasText: "message deleted" }).waitFor(WAIT);
    await message(bob.page, "a reply").getByTestId("message-quote").filter({ hasText: "Alice: message deleted" }).waitFor(WAIT);
    assert.equal(await message(bob.page, edited).count(), 0);
  });

  it("bob creates a group with alice and carol from the user search; it appears in alice's list under its name", async () => {
    const name = unique("Group");
    await bob.page.getByTestId("user-search").fill("alice");
    await bob.page.locator("[data-testid=user-result][data-username=alice] [data-testid=user-pick]").check(WAIT);
    await bob.page.getByTestId("user-search").fill("carol");
    await bob.page.locator("[data-testid=user-result][data-username=carol] [data-testid=user-pick]").check(WAIT);
    await bob.page.getByTestId("group-name").fill(name);
    await bob.page.getByTestId("group-create").click();
    await bob.page.locator("[data-testid=conversation-header]", { hasText: name }).waitFor(WAIT);
    const members = await bob.page.locator("[data-testid=member]").evaluateAll((els) => els.map((e) => e.dataset.username).sort());
    assert.deepEqual(members, ["alice", "carol"]);

    await send(bob.page, `${name}: welcome`);
    await row(alice.page, name).getByTestId("conversation-last-message").filter({ hasText: `Bob: ${name}: welcome` }).waitFor(WAIT);
  });
});

describe("the API reference", () => {
  it("shows docs/openapi.yaml in Swagger UI", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${demo.url}/api.html`);
      const title = page.locator(".swagger-ui .info .title");
      await title.or(page.getByTestId("api-error")).waitFor(WAIT);
      assert.equal(await page.getByTestId("api-error").count(), 0, await page.getByTestId("api-error").textContent().catch(() => ""));
      const document = readFileSync(path.join(ROOT, "docs", "openapi.yaml"), "utf8");
      const expected = /^info:\n(?:  .*\n)*?  title: (.+)$/m.exec(document)?.[1];
      assert.ok(expected, "docs/openapi.yaml has an info.title");
      assert.ok((await title.textContent()).startsWith(expected.replace(/^['"]|['"]$/g, "")));
      await page.locator(".opblock-summary-path", { hasText: "/v1/conversations/{id}/messages" }).first().waitFor(WAIT);
    } finally {
      await context.close();
    }
  });
});
