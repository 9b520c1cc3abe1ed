// Web Push in the demo, in headless Chromium against a local stack started here.
//
// Headless Chromium has no push service to subscribe with (its
// pushManager.subscribe answers "AbortError: Registration failed - permission
// denied"; Chrome's own needs Google's servers), so what a real push service
// would join is tested in two parts, each against the real stack:
//  1. the page's subscription: with the browser's own push service the page
//     says clearly why it cannot subscribe and saves nothing; with a
//     subscription made in the page (pushManager replaced by an init script,
//     its endpoint a push service stand-in in this process and its keys made
//     here), the page sends the server's VAPID key, saves the subscription
//     through POST /v1/push/subscriptions and removes it with DELETE;
//  2. the service worker's display of a pushed payload: what the notification
//     function pushed to that subscription for a message to alice while she
//     was offline (its VAPID token checked, its payload decrypted with the
//     subscription's keys) is delivered to the demo's real service worker
//     (CDP ServiceWorker.deliverPushMessage), which shows it.
// A click cannot be made on a notification in a headless browser: the test
// calls the click handler's openConversation in the service worker, with the
// notification's data, and the page opens the conversation.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { WAIT, api, connectionsOf, launchBrowser, rows, signIn, startDemo, startStack, until } from "./harness.mjs";
import { decrypt, startPushService, subscriberKeys, verifyVapid } from "./push-service.mjs";

let stack, demo, browser, pushService;

before(async () => {
  stack = await startStack();
  demo = await startDemo(stack.readyFile);
  browser = await launchBrowser();
  pushService = await startPushService();
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  await stack?.stop();
  await pushService?.stop();
});

/** The user's push subscriptions as the database holds them. */
const subscriptionsOf = (user) => rows(stack, "push_subscriptions", `user_id=eq.${stack.users[user].id}&select=endpoint,p256dh,auth`);

/** Notifications alice's service worker shows now. */
const shownOn = (page) =>
  page.evaluate(async () =>
    (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })),
  );

/**
 * Replaces the page's pushManager.subscribe with one that makes a
 * subscription with the given endpoint and keys, and records how it was
 * asked (in window.pushCalls); getSubscription answers it.
 */
function subscriptionMadeInThePage({ endpoint, p256dh, auth }) {
  const bytes = (text) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)).buffer;
  const calls = (window.pushCalls = []);
  let current = null;
  PushManager.prototype.subscribe = async function (options) {
    calls.push({ call: "subscribe", userVisibleOnly: options.userVisibleOnly, applicationServerKey: options.applicationServerKey });
    current = {
      endpoint,
      expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: bytes(options.applicationServerKey) },
      getKey: (name) => bytes(name === "p256dh" ? p256dh : auth),
      toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }),
      unsubscribe: async () => {
        calls.push({ call: "unsubscribe" });
        current = null;
        return true;
      },
    };
    return current;
  };
  PushManager.prototype.getSubscription = async function () {
    return current;
  };
}

describe("notifications in the demo", () => {
  it("with headless Chromium's own push service, turning notifications on says why it cannot, after asking for the server's key, and saves nothing", async () => {
    const alice = await signIn({ browser, demo, stack }, "alice", {
      prepare: (context) => context.grantPermissions(["notifications"], { origin: demo.url }),
    });
    try {
      const { page } = alice;
      await page.locator("[data-testid=push-state][data-state=off]").waitFor(WAIT);
      const keyAnswer = page.waitForResponse((r) => r.url() === `${stack.http_url}/v1/push/vapid-public-key`, WAIT);
      await page.getByTestId("push-toggle").click();
      const error = page.getByTestId("push-error");
      await error.waitFor(WAIT);
      assert.match(await error.textContent(), /^This browser could not subscribe with its push service \(AbortError: .+\)\. /);
      const answer = await keyAnswer;
      assert.equal(answer.status(), 200);
      assert.deepEqual(await answer.json(), { public_key: stack.vapid_public_key });

      await page.locator("[data-testid=push-state][data-state=off]").waitFor(WAIT);
      assert.deepEqual(await subscriptionsOf("alice"), []);
      // The service worker is registered all the same, for the whole app.
      const worker = await page.evaluate(async () => {
        const registration = await navigator.serviceWorker.ready;
        return { script: registration.active?.scriptURL, scope: registration.scope };
      });
      assert.deepEqual(worker, { script: `${demo.url}/sw.js`, scope: `${demo.url}/` });
      assert.deepEqual(alice.problems, []);
    } finally {
      await alice.context.close();
    }
  });

  it("a subscription made in the page is saved; bob's messages to alice while she is offline are pushed to it and her service worker shows them as one notification, which opens the conversation; turning off forgets it", async () => {
    const keys = subscriberKeys();
    const id = randomUUID();
    const subscription = { endpoint: pushService.endpoint(id), p256dh: keys.p256dh, auth: keys.authSecret };
    const alice = await signIn({ browser, demo, stack }, "alice", {
      prepare: async (context) => {
        await context.grantPermissions(["notifications"], { origin: demo.url });
        await context.addInitScript(subscriptionMadeInThePage, subscription);
      },
    });
    try {
      const { page, context } = alice;
      const { conversation } = await api(stack, "bob", "POST", "/v1/conversations/direct", { user_id: stack.users.alice.id });

      // On: the server's key is what the page subscribes with, and the subscription is saved for alice.
      await page.getByTestId("push-toggle").click();
      await page.locator("[data-testid=push-state][data-state=on]").waitFor(WAIT);
      assert.deepEqual(await page.evaluate(() => window.pushCalls), [
        { call: "subscribe", userVisibleOnly: true, applicationServerKey: stack.vapid_public_key },
      ]);
      assert.deepEqual(await subscriptionsOf("alice"), [subscription]);

      // Alice goes offline: the server holds no socket of hers, so bob's messages are pushed.
      await alice.net.down();
      await until("alice's connections are gone", async () => (await connectionsOf(stack, "alice")).length === 0);
      const texts = [`first ${id}`, `second ${id}`];
      for (const body of texts) {
        await api(stack, "bob", "POST", `/v1/conversations/${conversation.id}/messages`, { body });
      }
      const pushes = await pushService.waitForPushes(id, 2);
      const payloads = pushes
        .map((push) => {
          verifyVapid(push.headers.authorization, stack.vapid_public_key, pushService.origin);
          assert.equal(push.headers["content-encoding"], "aes128gcm");
          return decrypt(push.body, keys);
        })
        // Each message is its own asynchronous invocation: they may arrive in either order.
        .sort((a, b) => JSON.parse(a).message.seq - JSON.parse(b).message.seq);
      const [first, second] = payloads.map((p) => JSON.parse(p));
      assert.deepEqual(
        [first.message.body, second.message.body, first.type, first.conversation, first.sender.username],
        [...texts, "message.created", { id: conversation.id, kind: "direct", name: null }, "bob"],
      );
      // One topic per user and conversation: the push service keeps only the newest.
      assert.equal(pushes[0].headers.topic, pushes[1].headers.topic);

      // Delivered to the demo's service worker, as the browser would on receiving them.
      const cdp = await context.newCDPSession(page);
      const registrations = [];
      cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => registrations.push(...e.registrations));
      await cdp.send("ServiceWorker.enable");
      await until("the service worker's registration is reported", () => registrations.some((r) => r.scopeURL === `${demo.url}/` && !r.isDeleted));
      const { registrationId } = registrations.find((r) => r.scopeURL === `${demo.url}/` && !r.isDeleted);
      const expected = (body) => ({ title: "Bob", body, tag: `conversation:${conversation.id}` });
      const shownWithoutData = async () => (await shownOn(page)).map(({ title, body, tag }) => ({ title, body, tag }));

      await cdp.send("ServiceWorker.deliverPushMessage", { origin: demo.url, registrationId, data: payloads[0] });
      await until("the first notification is shown", async () => (await shownOn(page)).length === 1);
      assert.deepEqual(await shownWithoutData(), [expected(texts[0])]);
      // The second replaces the first: one notification per conversation.
      await cdp.send("ServiceWorker.deliverPushMessage", { origin: demo.url, registrationId, data: payloads[1] });
      await until("the second notification replaces the first", async () => (await shownOn(page))[0]?.body === texts[1]);
      const shown = await shownOn(page);
      assert.deepEqual(shown, [{ ...expected(texts[1]), data: { conversation_id: conversation.id, message_id: second.message.id, seq: second.message.seq } }]);

      // A click: the open page is told to open the conversation.
      await alice.net.up();
      await page.locator("[data-testid=connection-state][data-state=connected]").waitFor(WAIT);
      assert.equal(await page.getByTestId("conversation").count(), 0, "no conversation open before the click");
      const worker = context.serviceWorkers().find((w) => w.url() === `${demo.url}/sw.js`);
      assert.ok(worker, "the demo's service worker runs");
      await worker.evaluate(async () => {
        const [notification] = await self.registration.getNotifications();
        notification.close();
        // What the notificationclick listener does with the clicked notification.
        await openConversation(notification.data.conversation_id);
      });
      await page.locator(`[data-testid=conversation][data-conversation-id="${conversation.id}"]`).waitFor(WAIT);
      await page.locator("[data-testid=message]", { hasText: texts[1] }).waitFor(WAIT);
      assert.deepEqual(await shownOn(page), []);

      // Off: the server forgets the subscription, then the browser does.
      await page.getByTestId("push-toggle").click();
      await page.locator("[data-testid=push-state][data-state=off]").waitFor(WAIT);
      assert.deepEqual(await subscriptionsOf("alice"), []);
      assert.deepEqual((await page.evaluate(() => window.pushCalls)).at(-1), { call: "unsubscribe" });
      assert.deepEqual(alice.problems, []);
    } finally {
      await alice.context.close();
    }
  });
});
