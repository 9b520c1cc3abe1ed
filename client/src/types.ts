// Names for the shapes of docs/openapi.yaml. Everything here is an alias of the
// generated file (src/generated/openapi.ts, made from the document by
// `npm run generate`), so a change to the document changes these types.
import type { components } from "./generated/openapi.js";

type Schemas = components["schemas"];

export type Message = Schemas["Message"];
export type MessageKind = Schemas["MessageKind"];
export type Attachment = Schemas["Attachment"];
export type Conversation = Schemas["Conversation"];
export type ConversationKind = Schemas["ConversationKind"];
export type ConversationSummary = Schemas["ConversationSummary"];
export type ConversationDetails = Schemas["ConversationDetails"];
export type MeSettings = Schemas["MeSettings"];
export type Participant = Schemas["Participant"];
export type Profile = Schemas["Profile"];
/** Who a user is (no presence), as embedded in each participant and as a direct conversation's `counterpart`. */
export type PublicProfile = Schemas["PublicProfile"];
export type Presence = Schemas["Presence"];
export type ErrorCode = Schemas["ErrorCode"];
export type ApiErrorBody = Schemas["Error"];
export type SendMessageRequest = Schemas["SendMessageRequest"];
export type UnreadCounts = Schemas["UnreadCounts"];
export type EventsPage = Schemas["EventsPage"];
/** A durable event replayed by `GET /v1/conversations/{id}/events`: typed by `type` like the pushed one, plus `actor_id` and `created_at`. */
export type StoredEvent = Schemas["StoredEvent"];

/** Every server → client WebSocket event, discriminated by `type`. */
export type ServerEvent = Schemas["ServerEvent"];
export type ServerEventType = ServerEvent["type"];
export type EventOf<T extends ServerEventType> = Extract<ServerEvent, { type: T }>;

export type DurableEventType = Schemas["DurableEventType"];
/**
 * An event with a place in its conversation's sequence: pushed with `seq`, or
 * replayed from `GET /v1/conversations/{id}/events`.
 */
export type DurableEvent = Extract<ServerEvent, { type: DurableEventType }> & { seq: number; conversation_id: string };
/** Events without a seq: never replayed, delivered as they arrive. */
export type TransientEvent = Exclude<ServerEvent, { type: DurableEventType }> | (EventOf<"conversation.created"> & { seq?: undefined });


/** The protocol's rule: the `seq` key alone tells a durable event from a transient one. */
export function isDurable(event: ServerEvent): event is DurableEvent {
  return typeof (event as { seq?: unknown }).seq === "number";
}
