export * from "./types.js";
export * from "./rest.js";
export * from "./backoff.js";
export * from "./connection.js";
export * from "./sequencer.js";
export * from "./outbox.js";
export * from "./typing.js";
export * from "./client.js";
export { Emitter } from "./emitter.js";
