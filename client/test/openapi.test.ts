// The document and the client cannot drift: every operation of
// docs/openapi.yaml has its method here, at the same method and path, and
// nothing else. (The build checks the same against the generated types.)
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { OPERATIONS, PUBLIC_OPERATIONS, createRestClient } from "../src/rest.js";

const doc = parse(readFileSync(fileURLToPath(new URL("../../docs/openapi.yaml", import.meta.url)), "utf8"));
const METHODS = ["get", "put", "post", "patch", "delete", "head", "options", "trace"];

const documented: { op: string; method: string; path: string; public: boolean }[] = [];
for (const [path, item] of Object.entries<Record<string, { operationId?: string; security?: unknown[] }>>(doc.paths)) {
  for (const method of METHODS) {
    const operation = item[method];
    if (operation) {
      documented.push({ op: operation.operationId!, method, path, public: Array.isArray(operation.security) && operation.security.length === 0 });
    }
  }
}

describe("docs/openapi.yaml and the REST client", () => {
  it("documents operations, each with an operationId", () => {
    expect(documented.length).toBeGreaterThanOrEqual(23);
    for (const d of documented) expect(d.op, `${d.method} ${d.path}`).toBeTruthy();
  });

  it("has a client method for every operation, at the documented method and path, and no other", () => {
    const table = Object.fromEntries(Object.entries(OPERATIONS).map(([op, [method, path]]) => [op, `${method} ${path}`]));
    const fromDoc = Object.fromEntries(documented.map((d) => [d.op, `${d.method} ${d.path}`]));
    expect(table).toEqual(fromDoc);
    const rest = createRestClient({ httpUrl: "http://x", getToken: () => "t" }) as unknown as Record<string, unknown>;
    for (const d of documented) expect(typeof rest[d.op], d.op).toBe("function");
  });

  it("sends no token only to the operations the document makes public", () => {
    expect([...PUBLIC_OPERATIONS].sort()).toEqual(documented.filter((d) => d.public).map((d) => d.op).sort());
  });
});
