//! Input for conversations, membership, read state, search and users: request
//! bodies, WebSocket frames and query strings, each checked before storage.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::message::check_body_text;
use super::{has_control, is_invisible, parse_uuid, trim_blank};
use crate::error::ApiError;

pub const MAX_NAME_CHARS: usize = 200;
/// Members added in one request (creation or `…/members`): distinct user ids,
/// besides the owner of a new conversation.
pub const MAX_MEMBERS_PER_REQUEST: usize = 100;
/// Users asked about by id in one request (`GET /v1/presence`,
/// `GET /v1/users?ids=`). SQL: `public.check_user_ids`.
pub const MAX_USER_IDS: usize = 100;
pub const MAX_SEARCH_CHARS: usize = 200;
pub const MAX_USER_QUERY_CHARS: usize = 100;
/// An opaque paging cursor is short; anything longer is not one of ours.
const MAX_CURSOR_BYTES: usize = 200;
const MAX_SEARCH_OFFSET: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    Group,
    Room,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Group => "group",
            ConversationKind::Room => "room",
        }
    }
}

/// `POST /v1/conversations`. Direct conversations have their own endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    pub kind: ConversationKind,
    pub name: String,
    #[serde(default)]
    pub member_ids: Vec<Uuid>,
}

impl NewConversation {
    /// `owner` is the caller, who creates the conversation and is not one of
    /// the members being added (listing oneself changes nothing).
    pub fn validate(mut self, owner: Uuid) -> Result<Self, ApiError> {
        self.name = validate_name(&self.name)?;
        self.member_ids.retain(|id| *id != owner);
        dedup(&mut self.member_ids);
        check_member_count(self.member_ids.len())?;
        Ok(self)
    }
}

/// `PATCH /v1/conversations/{id}`: rename (owner), archive and mute (per user).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
    #[serde(default)]
    pub muted: Option<bool>,
}

impl ConversationPatch {
    pub fn validate(mut self) -> Result<Self, ApiError> {
        if self.name.is_none() && self.archived.is_none() && self.muted.is_none() {
            return Err(ApiError::bad_request(
                "invalid_argument",
                "give at least one of `name`, `archived`, `muted`",
            ));
        }
        self.name = self.name.as_deref().map(validate_name).transpose()?;
        Ok(self)
    }
}

/// `POST /v1/conversations/{id}/members`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMembersInput {
    pub user_ids: Vec<Uuid>,
}

impl AddMembersInput {
    pub fn validate(mut self) -> Result<Self, ApiError> {
        dedup(&mut self.user_ids);
        if self.user_ids.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_argument",
                "`user_ids` must not be empty",
            ));
        }
        check_member_count(self.user_ids.len())?;
        Ok(self)
    }
}

/// `POST /v1/conversations/{id}/read` body (optional: no body means "up to the latest").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkReadInput {
    #[serde(default)]
    pub seq: Option<i64>,
}

/// The `markRead` WebSocket frame.
#[derive(Debug, Clone, Deserialize)]
pub struct MarkReadFrame {
    pub conversation_id: Uuid,
    #[serde(default)]
    pub seq: Option<i64>,
}

/// The `markDelivered` WebSocket frame: what reached the device, up to `seq`
/// (a report always says how far).
#[derive(Debug, Clone, Deserialize)]
pub struct MarkDeliveredFrame {
    pub conversation_id: Uuid,
    pub seq: i64,
}

/// A watermark's `seq` (read or delivered): none, or not negative.
pub fn validate_read_seq(seq: Option<i64>) -> Result<Option<i64>, ApiError> {
    match seq {
        Some(n) if n < 0 => Err(ApiError::bad_request(
            "invalid_argument",
            "`seq` must be a non-negative integer",
        )),
        other => Ok(other),
    }
}

/// `PATCH /v1/messages/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditMessageInput {
    pub body: String,
}

impl EditMessageInput {
    /// The characters and length of a new body; whether it may be blank depends
    /// on the message's kind (a text needs words, a caption may be emptied),
    /// which only the database knows: SQL `public.validated_body` decides that.
    pub fn validate(self) -> Result<Self, ApiError> {
        check_body_text(&self.body)?;
        Ok(self)
    }
}

/// `limit` and `cursor` of the cursor-paged lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl ListQuery {
    pub fn parse(limit: Option<&str>, cursor: Option<&str>, max: u32) -> Result<Self, ApiError> {
        let cursor = cursor.filter(|c| !c.is_empty()).map(str::to_owned);
        if let Some(c) = &cursor {
            let ours =
                c.len() <= MAX_CURSOR_BYTES && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ours {
                return Err(ApiError::bad_request(
                    "invalid_cursor",
                    "`cursor` is not a cursor this API returned",
                ));
            }
        }
        Ok(Self {
            limit: parse_limit(limit, max)?,
            cursor,
        })
    }
}

/// `GET …/events?after_seq=&limit=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventsQuery {
    pub after_seq: i64,
    pub limit: Option<u32>,
}

pub const MAX_EVENTS_PAGE: u32 = 500;

impl EventsQuery {
    pub fn parse(after_seq: Option<&str>, limit: Option<&str>) -> Result<Self, ApiError> {
        let after_seq = match after_seq {
            None => 0,
            Some(raw) => raw.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::bad_request("invalid_argument", "`after_seq` must be a non-negative integer")
            })?,
        };
        Ok(Self {
            after_seq,
            limit: parse_limit(limit, MAX_EVENTS_PAGE)?,
        })
    }
}

/// `GET /v1/messages/search?q=&conversation_id=&limit=&offset=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub q: String,
    pub conversation_id: Option<Uuid>,
    pub limit: Option<u32>,
    pub offset: u32,
}

pub const MAX_SEARCH_PAGE: u32 = 50;

impl SearchQuery {
    pub fn parse(
        q: Option<&str>,
        conversation_id: Option<&str>,
        limit: Option<&str>,
        offset: Option<&str>,
    ) -> Result<Self, ApiError> {
        let q = q.map(trim_blank).unwrap_or_default();
        if q.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`q` is required: the words to search for",
            ));
        }
        check_query_text("q", q, MAX_SEARCH_CHARS)?;
        let offset = match offset {
            None => 0,
            Some(raw) => raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_SEARCH_OFFSET)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_argument",
                        format!("`offset` must be an integer from 0 to {MAX_SEARCH_OFFSET}"),
                    )
                })?,
        };
        Ok(Self {
            q: q.to_owned(),
            conversation_id: conversation_id
                .map(|id| parse_uuid("conversation_id", id))
                .transpose()?,
            limit: parse_limit(limit, MAX_SEARCH_PAGE)?,
            offset,
        })
    }
}

/// `GET /v1/users?q=&limit=`: people to start a chat with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserQuery {
    pub q: Option<String>,
    pub limit: Option<u32>,
}

pub const MAX_USERS_PAGE: u32 = 50;

impl UserQuery {
    pub fn parse(q: Option<&str>, limit: Option<&str>) -> Result<Self, ApiError> {
        let q = q.map(trim_blank).filter(|q| !q.is_empty());
        if let Some(q) = q {
            check_query_text("q", q, MAX_USER_QUERY_CHARS)?;
        }
        Ok(Self {
            q: q.map(str::to_owned),
            limit: parse_limit(limit, MAX_USERS_PAGE)?,
        })
    }
}

/// `GET /v1/users`: people to start a chat with, found by name, or the
/// profiles of users a client holds ids of (`ids`, not combined with the
/// search's `q` and `limit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersRequest {
    Search(UserQuery),
    Ids(Vec<Uuid>),
}

impl UsersRequest {
    pub fn parse(q: Option<&str>, limit: Option<&str>, ids: Option<&str>) -> Result<Self, ApiError> {
        match ids {
            None => UserQuery::parse(q, limit).map(Self::Search),
            Some(_) if q.is_some() || limit.is_some() => Err(ApiError::bad_request(
                "invalid_argument",
                "`ids` cannot be combined with `q` or `limit`: either search by name or look up by id",
            )),
            Some(ids) => parse_user_ids("ids", Some(ids)).map(Self::Ids),
        }
    }
}

/// A comma-separated list of user ids in the query parameter `name`
/// (`GET /v1/presence?user_ids=a,b,c`, `GET /v1/users?ids=a,b,c`): at least
/// one, at most [`MAX_USER_IDS`].
pub fn parse_user_ids(name: &str, raw: Option<&str>) -> Result<Vec<Uuid>, ApiError> {
    let raw = raw.map(str::trim).filter(|r| !r.is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_argument",
            format!("`{name}` is required: comma-separated user ids"),
        )
    })?;
    let ids = raw
        .split(',')
        .map(|id| parse_uuid(name, id))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.len() > MAX_USER_IDS {
        return Err(ApiError::bad_request(
            "invalid_argument",
            format!("at most {MAX_USER_IDS} `{name}` at a time"),
        ));
    }
    Ok(ids)
}

/// A conversation name as stored: trimmed, 1 to [`MAX_NAME_CHARS`] characters,
/// no control characters (names are shown in lists and notifications).
/// SQL: `public.validated_conversation_name`.
/// A conversation name as stored: trimmed of blank characters, 1 to
/// [`MAX_NAME_CHARS`], and nothing [invisible](is_invisible) inside, since
/// names are shown in lists and notifications and find rooms: a name must
/// neither look empty nor pose as another. SQL: `public.validated_conversation_name`.
fn validate_name(name: &str) -> Result<String, ApiError> {
    let name = trim_blank(name);
    if name.is_empty() || name.chars().nth(MAX_NAME_CHARS).is_some() || name.chars().any(is_invisible) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            format!(
                "`name` must be 1-{MAX_NAME_CHARS} characters without control, invisible or bidirectional formatting characters"
            ),
        ));
    }
    Ok(name.to_owned())
}

/// Keeps the first of each id, in the order given.
fn dedup(ids: &mut Vec<Uuid>) {
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
}

fn check_member_count(count: usize) -> Result<(), ApiError> {
    if count > MAX_MEMBERS_PER_REQUEST {
        return Err(ApiError::unprocessable(
            "too_many_members",
            format!("at most {MAX_MEMBERS_PER_REQUEST} members can be added at a time"),
        ));
    }
    Ok(())
}

/// Search text, already trimmed: at most `max_chars` characters, no control
/// characters. SQL: `public.validated_query_text`.
fn check_query_text(field: &str, text: &str, max_chars: usize) -> Result<(), ApiError> {
    if text.chars().nth(max_chars).is_some() || has_control(text) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`{field}` must be at most {max_chars} characters without control characters"),
        ));
    }
    Ok(())
}

/// A page size from the query string: 1 or more, capped at `max` rather than refused.
fn parse_limit(raw: Option<&str>, max: u32) -> Result<Option<u32>, ApiError> {
    raw.map(|raw| match raw.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n.min(max as u64) as u32),
        _ => Err(ApiError::bad_request(
            "invalid_argument",
            format!("`limit` must be an integer from 1 to {max}"),
        )),
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MAX_BODY_CHARS;

    #[test]
    fn names_are_trimmed_and_bounded() {
        let owner = Uuid::new_v4();
        let new = |name: &str| NewConversation {
            kind: ConversationKind::Group,
            name: name.into(),
            member_ids: vec![],
        };
        assert_eq!(new("  Trip to Lima ").validate(owner).unwrap().name, "Trip to Lima");
        // Trimmed of every blank character, the invisible ones too.
        assert_eq!(new("\t\u{3000}Lima\u{200b}\n").validate(owner).unwrap().name, "Lima");
        for bad in [
            "",
            "   ",
            "\u{200b}\u{feff}",
            "a\u{7}b",
            "a\u{85}b",
            &"x".repeat(MAX_NAME_CHARS + 1),
            // Invisible inside, or reordering: a name that poses as another.
            "Li\u{200b}ma",
            "Lima\u{202e}amiL",
            "\u{2066}Lima",
            "Li\u{ad}ma",
            "\u{200f}Lima",
            // Shows as nothing.
            "\u{2800}",
            "\u{3164}",
        ] {
            assert_eq!(new(bad).validate(owner).unwrap_err().code, "invalid_name", "{bad:?}");
        }
        assert!(new(&"é".repeat(MAX_NAME_CHARS)).validate(owner).is_ok());
        let crowd = NewConversation {
            member_ids: (0..=MAX_MEMBERS_PER_REQUEST).map(|_| Uuid::new_v4()).collect(),
            ..new("big")
        };
        assert_eq!(crowd.validate(owner).unwrap_err().code, "too_many_members");
        // The owner listed among the members is not one of them.
        let full = NewConversation {
            member_ids: (0..MAX_MEMBERS_PER_REQUEST)
                .map(|_| Uuid::new_v4())
                .chain([owner])
                .collect(),
            ..new("full")
        };
        assert_eq!(full.validate(owner).unwrap().member_ids.len(), MAX_MEMBERS_PER_REQUEST);
        let same = Uuid::new_v4();
        let repeated = NewConversation {
            member_ids: vec![same; MAX_MEMBERS_PER_REQUEST + 5],
            ..new("echo")
        };
        assert_eq!(repeated.validate(owner).unwrap().member_ids, vec![same]);
    }

    #[test]
    fn bodies_refuse_unknown_fields_and_empty_patches() {
        let parsed: Result<NewConversation, _> = serde_json::from_str(r#"{"kind":"group","name":"x","owner":"me"}"#);
        assert!(parsed.is_err());
        let parsed: Result<NewConversation, _> = serde_json::from_str(r#"{"kind":"direct","name":"x"}"#);
        assert!(parsed.is_err());
        assert_eq!(
            ConversationPatch::default().validate().unwrap_err().code,
            "invalid_argument"
        );
        let archive = ConversationPatch {
            archived: Some(true),
            ..Default::default()
        };
        assert!(archive.validate().is_ok());
        let empty = AddMembersInput { user_ids: vec![] };
        assert_eq!(empty.validate().unwrap_err().code, "invalid_argument");
    }

    #[test]
    fn query_strings_are_checked() {
        assert_eq!(ListQuery::parse(Some("500"), None, 100).unwrap().limit, Some(100));
        assert!(ListQuery::parse(Some("0"), None, 100).is_err());
        assert_eq!(
            ListQuery::parse(None, Some("a'; drop"), 100).unwrap_err().code,
            "invalid_cursor"
        );
        assert_eq!(EventsQuery::parse(None, None).unwrap().after_seq, 0);
        assert!(EventsQuery::parse(Some("-3"), None).is_err());
        assert_eq!(
            SearchQuery::parse(Some("  "), None, None, None).unwrap_err().code,
            "invalid_query"
        );
        assert_eq!(
            SearchQuery::parse(Some(&"q".repeat(MAX_SEARCH_CHARS + 1)), None, None, None)
                .unwrap_err()
                .code,
            "invalid_query"
        );
        assert!(SearchQuery::parse(Some("hola"), Some("nope"), None, None).is_err());
        assert!(SearchQuery::parse(Some("hola"), None, None, Some("10001")).is_err());
        assert_eq!(UserQuery::parse(Some(" "), None).unwrap().q, None);
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_eq!(
            parse_user_ids("user_ids", Some(&format!("{a}, {b}"))).unwrap(),
            vec![a, b]
        );
        assert!(parse_user_ids("user_ids", None).is_err());
        assert!(parse_user_ids("user_ids", Some("x")).is_err());
        let ids = |n: usize| (0..n).map(|_| Uuid::new_v4().to_string()).collect::<Vec<_>>().join(",");
        assert_eq!(
            parse_user_ids("user_ids", Some(&ids(MAX_USER_IDS))).unwrap().len(),
            MAX_USER_IDS
        );
        assert!(parse_user_ids("user_ids", Some(&ids(MAX_USER_IDS + 1))).is_err());
        assert_eq!(validate_read_seq(Some(-1)).unwrap_err().code, "invalid_argument");
    }

    #[test]
    fn edits_follow_the_body_rules() {
        let edit = |body: &str| EditMessageInput { body: body.into() }.validate();
        assert!(edit("fixed typo").is_ok());
        assert_eq!(edit("a\0").unwrap_err().code, "invalid_body");
        assert_eq!(
            edit(&"x".repeat(MAX_BODY_CHARS + 1)).unwrap_err().code,
            "message_too_long"
        );
        assert_eq!(edit(&"x".repeat(MAX_BODY_CHARS + 1)).unwrap_err().status, 413);
        // Blank is for the database to judge: a caption may be emptied, a text may not.
        assert!(edit("  ").is_ok());
    }

    #[test]
    fn users_are_searched_by_name_or_looked_up_by_id() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            UsersRequest::parse(Some("al"), Some("5"), None).unwrap(),
            UsersRequest::Search(UserQuery {
                q: Some("al".into()),
                limit: Some(5)
            })
        );
        assert_eq!(
            UsersRequest::parse(None, None, Some(&format!("{a},{b}"))).unwrap(),
            UsersRequest::Ids(vec![a, b])
        );
        for (q, limit, ids) in [
            (Some("al"), None, Some(a.to_string())),
            (None, Some("5"), Some(a.to_string())),
            (None, None, Some(String::new())),
            (None, None, Some("nope".into())),
        ] {
            let error = UsersRequest::parse(q, limit, ids.as_deref()).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (400, "invalid_argument"),
                "{q:?} {limit:?} {ids:?}"
            );
        }
    }
}
