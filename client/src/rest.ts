// Typed REST calls, one method per operation of docs/openapi.yaml.
//
// The table OPERATIONS names each operationId's method and path. It must cover
// exactly the operations of the generated types (`satisfies` below), and each
// entry must be the operation the document puts at that method and path
// (`_verified`), so `npm run build` fails when the document and this client
// disagree. test/openapi.test.ts checks the same table against the YAML itself.
import type { operations, paths } from "./generated/openapi.js";
import type { ApiErrorBody, ErrorCode } from "./types.js";

export type OperationId = keyof operations;
type HttpMethod = "get" | "post" | "patch" | "put" | "delete";

export const OPERATIONS = {
  getHealth: ["get", "/v1/health"],
  getMe: ["get", "/v1/me"],
  searchUsers: ["get", "/v1/users"],
  getPresence: ["get", "/v1/presence"],
  listBlocks: ["get", "/v1/blocks"],
  blockUser: ["post", "/v1/blocks"],
  unblockUser: ["delete", "/v1/blocks/{user_id}"],
  getVapidPublicKey: ["get", "/v1/push/vapid-public-key"],
  savePushSubscription: ["post", "/v1/push/subscriptions"],
  deletePushSubscription: ["delete", "/v1/push/subscriptions"],
  listRooms: ["get", "/v1/rooms"],
  listConversations: ["get", "/v1/conversations"],
  createConversation: ["post", "/v1/conversations"],
  openDirectConversation: ["post", "/v1/conversations/direct"],
  getConversation: ["get", "/v1/conversations/{id}"],
  updateConversation: ["patch", "/v1/conversations/{id}"],
  addMembers: ["post", "/v1/conversations/{id}/members"],
  joinRoom: ["post", "/v1/conversations/{id}/join"],
  leaveConversation: ["post", "/v1/conversations/{id}/leave"],
  listMessages: ["get", "/v1/conversations/{id}/messages"],
  sendMessage: ["post", "/v1/conversations/{id}/messages"],
  listEvents: ["get", "/v1/conversations/{id}/events"],
  markRead: ["post", "/v1/conversations/{id}/read"],
  getConversationStats: ["get", "/v1/conversations/{id}/stats"],
  getConversationConnections: ["get", "/v1/conversations/{id}/connections"],
  getUnreadCounts: ["get", "/v1/unread"],
  editMessage: ["patch", "/v1/messages/{id}"],
  deleteMessage: ["delete", "/v1/messages/{id}"],
  searchMessages: ["get", "/v1/messages/search"],
} as const satisfies { readonly [K in OperationId]: readonly [HttpMethod, keyof paths] };

/** Operations the document marks `security: []`: no token is fetched for them. */
export const PUBLIC_OPERATIONS: ReadonlySet<OperationId> = new Set<OperationId>(["getHealth"]);

type Entry<K extends OperationId> = (typeof OPERATIONS)[K];
type AtPath<K extends OperationId> = paths[Entry<K>[1]][Entry<K>[0] & keyof paths[Entry<K>[1]]];
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
// Compile-time proof that every table entry points at its own operation.
const _verified: { [K in OperationId]: Same<AtPath<K>, operations[K]> } = null as unknown as {
  [K in OperationId]: true;
};
void _verified;

// ---------------------------------------------------------------- arguments
type Op<K extends OperationId> = operations[K];
type IsNever<T> = [T] extends [never] ? true : false;
type DropNever<T> = { [P in keyof T as IsNever<NonNullable<T[P]>> extends true ? never : P]: T[P] };
type ParamArgs<K extends OperationId> = DropNever<Pick<Op<K>["parameters"], "path" | "query" | "header">>;
type JsonBody<R> = R extends { content: { "application/json": infer B } } ? B : never;
type BodyArgs<K extends OperationId> =
  IsNever<NonNullable<Op<K>["requestBody"]>> extends true
    ? unknown
    : undefined extends Op<K>["requestBody"]
      ? { body?: JsonBody<NonNullable<Op<K>["requestBody"]>> }
      : { body: JsonBody<Op<K>["requestBody"]> };

/** What a call takes: `path`, `query`, `header` and `body` as the document defines them for the operation. */
export type RequestArgs<K extends OperationId> = ParamArgs<K> & BodyArgs<K> & { signal?: AbortSignal };
type ArgList<K extends OperationId> = object extends RequestArgs<K> ? [args?: RequestArgs<K>] : [args: RequestArgs<K>];

type SuccessStatus = 200 | 201 | 202 | 204;
/** What a call resolves to: the JSON body of its 2xx answers. */
export type ResponseOf<K extends OperationId> = {
  [S in keyof Op<K>["responses"]]: S extends SuccessStatus ? JsonBody<Op<K>["responses"][S]> : never;
}[keyof Op<K>["responses"]];

export type RestMethods = { [K in OperationId]: (...args: ArgList<K>) => Promise<ResponseOf<K>> };

// ------------------------------------------------------------------ errors

/** An error answer of the API (its `{error: {code, message, request_id}}`), or a network failure (`status` 0). */
export class ChatApiError extends Error {
  override readonly name = "ChatApiError";
  constructor(
    readonly status: number,
    readonly code: ErrorCode | "network_error" | "http_error",
    message: string,
    readonly requestId: string | null = null,
    readonly operation?: string,
  ) {
    super(message);
  }
  /** Retrying the same request later may succeed. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

// -------------------------------------------------------------------- client

export interface TokenContext {
  /** True when the previous token was refused (401): return a refreshed one. */
  refresh: boolean;
}
/** Returns the current access token; called before every connect and every REST call. */
export type GetToken = (ctx: TokenContext) => string | Promise<string>;

export interface RestOptions {
  /** The HTTP API's base URL, e.g. `http://127.0.0.1:3000`. */
  httpUrl: string;
  getToken: GetToken;
  fetch?: typeof fetch;
}

export interface RestClient extends RestMethods {
  /** Calls an operation by its operationId. */
  call<K extends OperationId>(op: K, ...args: ArgList<K>): Promise<ResponseOf<K>>;
}

export function createRestClient(options: RestOptions): RestClient {
  const base = options.httpUrl.replace(/\/+$/, "");
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);

  async function call(op: OperationId, args: Record<string, unknown> = {}): Promise<unknown> {
    const [method, template] = OPERATIONS[op];
    const path = (args.path ?? {}) as Record<string, string | number>;
    let url =
      base +
      template.replace(/\{(\w+)\}/g, (_, name: string) => {
        const value = path[name];
        if (value === undefined || value === "") throw new TypeError(`${op}: path parameter \`${name}\` is required`);
        return encodeURIComponent(String(value));
      });
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries((args.query ?? {}) as Record<string, unknown>)) {
      if (value === undefined || value === null) continue;
      // `style: form, explode: false`: arrays are comma-separated.
      query.set(key, Array.isArray(value) ? value.join(",") : String(value));
    }
    if ([...query].length) url += `?${query}`;
    const headers: Record<string, string> = { accept: "application/json" };
    for (const [key, value] of Object.entries((args.header ?? {}) as Record<string, unknown>)) {
      if (value !== undefined && value !== null) headers[key] = String(value);
    }
    let body: string | undefined;
    if (args.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(args.body);
    }

    const attempt = async (refresh: boolean): Promise<Response> => {
      const h = { ...headers };
      if (!PUBLIC_OPERATIONS.has(op)) h.authorization = `Bearer ${await options.getToken({ refresh })}`;
      try {
        return await doFetch(url, { method: method.toUpperCase(), headers: h, body, signal: args.signal as AbortSignal });
      } catch (e) {
        if ((e as Error)?.name === "AbortError") throw e;
        throw new ChatApiError(0, "network_error", `${op}: ${(e as Error)?.message ?? e}`, null, op);
      }
    };
    let response = await attempt(false);
    // A refused token is fetched once more (a session refreshed meanwhile), then the error surfaces.
    if (response.status === 401 && !PUBLIC_OPERATIONS.has(op)) response = await attempt(true);

    const text = await response.text();
    let json: unknown = undefined;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (response.ok) return json;
    const error = (json as ApiErrorBody | undefined)?.error;
    if (error?.code) throw new ChatApiError(response.status, error.code, error.message, error.request_id ?? null, op);
    // API Gateway's own answers (429, 502, 504) are `{"message": "..."}`.
    const message = (json as { message?: string } | undefined)?.message ?? (text || response.statusText);
    throw new ChatApiError(response.status, "http_error", `${op}: HTTP ${response.status} ${message}`, null, op);
  }

  const client = { call } as unknown as Record<string, unknown>;
  for (const op of Object.keys(OPERATIONS) as OperationId[]) {
    client[op] = (args?: Record<string, unknown>) => call(op, args);
  }
  return client as unknown as RestClient;
}
