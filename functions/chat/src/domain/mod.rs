//! Domain types and the rules for input from outside. Everything a client sends
//! is turned into one of these validated types before it reaches storage, so the
//! SQL checks are a second line, not the first.
//!
//! This module owns every input rule (its limits are the constants below and in
//! the submodules). The SQL functions repeat the checks as the database's own
//! defence against direct PostgREST and service_role callers; the end-to-end
//! test `rules` feeds one table of boundary cases to both layers and fails when
//! they decide differently or refuse with different codes.

mod conversation;
mod message;

pub use conversation::{
    parse_user_ids, validate_read_seq, AddMembersInput, ConversationKind, ConversationPatch, EditMessageInput,
    EventsQuery, ListQuery, MarkDeliveredFrame, MarkReadFrame, MarkReadInput, NewConversation, SearchQuery, UserQuery,
    UsersRequest, MAX_EVENTS_PAGE, MAX_MEMBERS_PER_REQUEST, MAX_NAME_CHARS, MAX_SEARCH_CHARS, MAX_USER_QUERY_CHARS,
};
pub use message::{
    Attachment, HistoryQuery, MessageDraft, MessageKind, NewMessage, SendMessageInput, TypingInput,
    MAX_ATTACHMENT_BYTES, MAX_ATTACHMENT_NAME_CHARS, MAX_BODY_CHARS, MAX_CLIENT_MSG_ID_CHARS, MAX_MIME_PART_CHARS,
    MAX_PAGE, MAX_URL_BYTES,
};

use uuid::Uuid;

use crate::error::ApiError;

/// Characters that say nothing on their own: Unicode `White_Space` plus the
/// invisible zero-width space, word joiner and byte-order mark. SQL's
/// `public.is_blank` and `public.trim_blank` use the same set.
pub fn is_blank_char(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200b}' | '\u{2060}' | '\u{feff}')
}

/// Empty, or only [blank characters](is_blank_char).
pub fn is_blank(text: &str) -> bool {
    text.chars().all(is_blank_char)
}

/// `text` without leading and trailing [blank characters](is_blank_char).
pub fn trim_blank(text: &str) -> &str {
    text.trim_matches(is_blank_char)
}

/// Control characters (Unicode Cc: U+0000–U+001F, U+007F–U+009F), which have
/// no place in names, file names or search text.
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069): they reorder what follows them, so a text shows other than
/// it reads ("txt.exe" as "exe.txt"). The marks (U+200E, U+200F, U+061C)
/// reorder nothing and right-to-left text needs them, so they are not among
/// these. SQL: `public.has_bidi_control`.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing, or change how the text around them shows,
/// so that a name could look empty or pose as another ("ali" U+200B "ce",
/// "alice" U+202E): control characters, bidi controls and marks, zero-width
/// and other invisible format characters, the soft hyphen, the Hangul fillers
/// and the blank braille pattern. Not variation selectors: emoji need them.
/// SQL: `public.strip_invisible` and `public.has_invisible`.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{34f}'
                | '\u{61c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

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
