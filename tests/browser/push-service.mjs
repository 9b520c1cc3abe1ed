// A Web Push service stand-in (RFC 8030) for the browser tests, and a
// subscriber's side of RFC 8291 and RFC 8292: the subscriber's keys are made
// here, so a test can check the VAPID token of what the notification
// function pushed and decrypt its payload, as a browser's push service and
// the browser would. Written from the RFCs with node:crypto, not with the
// code that encrypted the payload.
import { createECDH, createPublicKey, createDecipheriv, hkdfSync, randomBytes, verify } from "node:crypto";
import { createServer } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");

/** A push service on a free loopback port: every POST to /push/<id> is recorded and answered 201. */
export async function startPushService() {
  const received = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      const id = /^\/push\/([\w-]+)$/.exec(req.url ?? "")?.[1];
      if (req.method !== "POST" || !id) {
        res.writeHead(404).end();
        return;
      }
      received.push({ id, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(201, { location: `/message/${received.length}` }).end();
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    endpoint: (id) => `${origin}/push/${id}`,
    /** What was pushed to subscription `id` so far. */
    pushesTo: (id) => received.filter((push) => push.id === id),
    /** Waits until `count` pushes reached subscription `id`. */
    async waitForPushes(id, count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.filter((push) => push.id === id).length < count) {
        if (Date.now() > deadline) throw new Error(`${count} pushes to ${id}: not after ${timeoutMs / 1000} s`);
        await sleep(100);
      }
      return received.filter((push) => push.id === id);
    },
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** A browser's keys for one subscription: its P-256 key pair and its 16-byte auth secret. */
export function subscriberKeys() {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  const auth = randomBytes(16);
  return { ecdh, auth, p256dh: b64url(ecdh.getPublicKey()), authSecret: b64url(auth) };
}

/**
 * RFC 8292: `Authorization: vapid t=<JWT>, k=<key>`, the key the application
 * server's, the token ES256-signed by it, for the push service's origin,
 * expiring within 24 hours, with a contact. Returns the token's claims.
 */
export function verifyVapid(authorization, publicKey, audience) {
  const match = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(authorization ?? "");
  if (!match) throw new Error(`not a VAPID authorization: ${authorization}`);
  const [, token, key] = match;
  if (key !== publicKey) throw new Error(`signed with ${key}, not the stack's key ${publicKey}`);
  const point = Buffer.from(key, "base64url");
  const jwk = { kty: "EC", crv: "P-256", x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33, 65)) };
  const [header, claims, signature] = token.split(".");
  const signed = verify(
    "sha256",
    Buffer.from(`${header}.${claims}`),
    { key: createPublicKey({ key: jwk, format: "jwk" }), dsaEncoding: "ieee-p1363" },
    Buffer.from(signature, "base64url"),
  );
  if (!signed) throw new Error("the VAPID token's signature does not verify with its key");
  if (JSON.parse(Buffer.from(header, "base64url")).alg !== "ES256") throw new Error("the VAPID token is not ES256");
  const parsed = JSON.parse(Buffer.from(claims, "base64url"));
  const now = Date.now() / 1000;
  if (parsed.aud !== audience) throw new Error(`the VAPID token is for ${parsed.aud}, not ${audience}`);
  if (!(parsed.exp > now && parsed.exp <= now + 24 * 60 * 60)) throw new Error(`the VAPID token's exp ${parsed.exp} is not within 24 h`);
  if (!/^(mailto:|https:)/.test(parsed.sub ?? "")) throw new Error(`the VAPID token's sub ${parsed.sub} is no contact`);
  return parsed;
}

/** RFC 8291 (`aes128gcm`, RFC 8188): the plaintext of one push message, with the subscriber's keys. */
export function decrypt(body, { ecdh, auth }) {
  const salt = body.subarray(0, 16);
  const recordSize = body.readUInt32BE(16);
  const idLength = body[20];
  const serverKey = body.subarray(21, 21 + idLength);
  const record = body.subarray(21 + idLength);
  if (record.length > recordSize) throw new Error("more than one record: a push message is one");
  const secret = ecdh.computeSecret(serverKey);
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), ecdh.getPublicKey(), serverKey]);
  const ikm = Buffer.from(hkdfSync("sha256", secret, auth, keyInfo, 32));
  const key = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
  const decipher = createDecipheriv("aes-128-gcm", key, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  // The last record ends with the delimiter 2, then zero or more zeros of padding.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error("no last-record delimiter");
  return padded.subarray(0, end).toString("utf8");
}
