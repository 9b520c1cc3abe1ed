//! Domain types and the rules for input from outside. Everything a client sends
//! is turned into one of these validated types before it reaches storage, so the
//! SQL checks are a second line, not the first.

mod conversation;
mod message;

pub use conversation::{
    parse_user_ids, validate_read_seq, AddMembersInput, ConversationKind, ConversationPatch, EditMessageInput,
    EventsQuery, ListQuery, MarkReadFrame, MarkReadInput, NewConversation, SearchQuery, UserQuery, MAX_EVENTS_PAGE,
    MAX_MEMBERS_PER_REQUEST, MAX_NAME_CHARS,
};
pub use message::{
    Attachment, HistoryQuery, MessageDraft, MessageKind, NewMessage, SendMessageInput, TypingInput, MAX_BODY_CHARS,
    MAX_PAGE,
};

use uuid::Uuid;

use crate::error::ApiError;

/// Parses a UUID from outside input, naming the field in the error.
pub fn parse_uuid(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| ApiError::bad_request("invalid_argument", format!("`{field}` must be a UUID")))
}

/// Parses a JSON request body into `T`, with an error that says what is wrong.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            "invalid_json"
        } else {
            "invalid_request"
        };
        ApiError::bad_request(code, format!("the request body is not valid: {e}"))
    })
}
