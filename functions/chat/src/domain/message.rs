use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;

/// The longest body a message may have, in characters (not bytes: "é" is one).
pub const MAX_BODY_CHARS: usize = 5000;
pub const MAX_CLIENT_MSG_ID_CHARS: usize = 100;
pub const MAX_ATTACHMENT_NAME_CHARS: usize = 255;
pub const MAX_URL_BYTES: usize = 2048;
/// A MIME type's type and subtype are each at most 127 characters (RFC 6838
/// section 4.2), so a whole one is at most 255.
pub const MAX_MIME_PART_CHARS: usize = 127;
/// Attachments are stored elsewhere (e.g. Supabase Storage); this caps the metadata.
pub const MAX_ATTACHMENT_BYTES: u64 = 100 * 1024 * 1024;
/// How many messages a history page holds at most.
pub const MAX_PAGE: u32 = 100;
pub const DEFAULT_PAGE: u32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Text,
    Image,
    File,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "image",
            MessageKind::File => "file",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub url: String,
    pub name: String,
    pub mime_type: String,
    pub size_bytes: u64,
}

/// What a client sends to post a message (REST body, or the WebSocket frame
/// without `action`/`conversation_id`).
#[derive(Debug, Default, Deserialize)]
pub struct MessageDraft {
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub attachment: Option<Attachment>,
    #[serde(default)]
    pub reply_to_id: Option<Uuid>,
    #[serde(default)]
    pub client_msg_id: Option<String>,
}

/// The `sendMessage` WebSocket frame.
#[derive(Debug, Deserialize)]
pub struct SendMessageInput {
    pub conversation_id: Uuid,
    #[serde(flatten)]
    pub draft: MessageDraft,
}

/// The `typing` WebSocket frame.
#[derive(Debug, Deserialize)]
pub struct TypingInput {
    pub conversation_id: Uuid,
    #[serde(default = "default_true")]
    pub is_typing: bool,
}

fn default_true() -> bool {
    true
}

/// A message that passed every rule and may be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub conversation_id: Uuid,
    pub client_msg_id: String,
    pub kind: MessageKind,
    pub body: Option<String>,
    pub attachment: Option<Attachment>,
    pub reply_to_id: Option<Uuid>,
}

impl MessageDraft {
    /// Validates the draft. `client_msg_id` is required where the transport
    /// retries on its own (WebSocket); REST callers may omit it and get one.
    pub fn validate(self, conversation_id: Uuid, require_client_msg_id: bool) -> Result<NewMessage, ApiError> {
        let kind = match self.kind.as_deref() {
            None | Some("text") => MessageKind::Text,
            Some("image") => MessageKind::Image,
            Some("file") => MessageKind::File,
            Some(_) => {
                return Err(ApiError::unprocessable(
                    "invalid_kind",
                    "`kind` must be one of text, image, file",
                ))
            }
        };
        let client_msg_id = match self.client_msg_id {
            Some(id) => validate_client_msg_id(id)?,
            None if require_client_msg_id => {
                return Err(ApiError::unprocessable(
                    "invalid_client_msg_id",
                    "`client_msg_id` is required: a unique id per message, reused on retries",
                ))
            }
            None => Uuid::new_v4().to_string(),
        };
        let body = validate_body(kind, self.body)?;
        let attachment = match (kind, self.attachment) {
            (MessageKind::Text, Some(_)) => {
                return Err(ApiError::unprocessable(
                    "invalid_attachment",
                    "a text message has no attachment; use kind image or file",
                ))
            }
            (MessageKind::Text, None) => None,
            (_, None) => {
                return Err(ApiError::unprocessable(
                    "invalid_attachment",
                    "image and file messages need an `attachment`",
                ))
            }
            (_, Some(a)) => Some(validate_attachment(kind, a)?),
        };
        Ok(NewMessage {
            conversation_id,
            client_msg_id,
            kind,
            body,
            attachment,
            reply_to_id: self.reply_to_id,
        })
    }
}

/// The characters every body, caption or edit must respect: no control
/// characters but newline and tab (NUL cannot be stored; the others, BEL, BS,
/// ESC of a terminal colour, DEL, C1, would be obeyed by a terminal or a log
/// viewer), no [bidi controls](super::is_bidi_control), and at most
/// [`MAX_BODY_CHARS`] characters, counted as Postgres' `char_length` counts
/// them (code points). SQL: `public.validated_body`.
pub(super) fn check_body_text(body: &str) -> Result<(), ApiError> {
    if body.contains('\0') {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "`body` must not contain NUL characters",
        ));
    }
    if body
        .chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || super::is_bidi_control(c))
    {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "`body` must not contain control characters other than newline and tab, \
             nor bidirectional overrides or isolates (U+202A-U+202E, U+2066-U+2069)",
        ));
    }
    // Stop counting early: a megabyte of text need not be walked to the end.
    if body.chars().nth(MAX_BODY_CHARS).is_some() {
        return Err(ApiError::too_large(
            "message_too_long",
            format!("`body` may hold at most {MAX_BODY_CHARS} characters"),
        ));
    }
    Ok(())
}

/// The body of a new message as stored: a text message needs one that is not
/// blank; for an image or file it is an optional caption, and a blank caption
/// is no caption. SQL: `public.validated_body`.
pub fn validate_body(kind: MessageKind, body: Option<String>) -> Result<Option<String>, ApiError> {
    if kind == MessageKind::Text && body.as_deref().is_none_or(super::is_blank) {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "a text message needs a `body` that is not blank",
        ));
    }
    if let Some(b) = &body {
        check_body_text(b)?;
    }
    Ok(body.filter(|b| !super::is_blank(b)))
}

/// 1 to [`MAX_CLIENT_MSG_ID_CHARS`] of `A-Z a-z 0-9 - _ . :`, so that it can
/// travel in a header and a log line as it is. SQL: `public.send_message`.
pub fn validate_client_msg_id(id: String) -> Result<String, ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CLIENT_MSG_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(id)
    } else {
        Err(ApiError::unprocessable(
            "invalid_client_msg_id",
            format!("`client_msg_id` must be 1-{MAX_CLIENT_MSG_ID_CHARS} characters of A-Z a-z 0-9 - _ . :"),
        ))
    }
}

/// An attachment as stored: `name` trimmed, `mime_type` trimmed and lower-cased.
/// SQL: `public.validated_attachment`.
pub fn validate_attachment(kind: MessageKind, a: Attachment) -> Result<Attachment, ApiError> {
    let bad = |why: String| {
        Err(ApiError::unprocessable(
            "invalid_attachment",
            format!("`attachment`: {why}"),
        ))
    };
    // The URL is stored and shown as given, so the rule is on the text itself:
    // https, a host, no spaces or control characters anywhere.
    let url_ok = a.url.len() <= MAX_URL_BYTES
        && a.url.strip_prefix("https://").is_some_and(|rest| {
            let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            host_len > 0 && !rest.chars().any(|c| c == ' ' || c.is_control())
        });
    if !url_ok {
        return bad(format!("`url` must be an https URL of at most {MAX_URL_BYTES} bytes"));
    }
    let name = super::trim_blank(&a.name);
    if name.is_empty()
        || name.chars().nth(MAX_ATTACHMENT_NAME_CHARS).is_some()
        || name.contains(['/', '\\'])
        || super::has_control(name)
    {
        return bad(format!(
            "`name` must be a file name of 1-{MAX_ATTACHMENT_NAME_CHARS} characters without `/`, `\\` or control characters"
        ));
    }
    let mime_type = super::trim_blank(&a.mime_type).to_ascii_lowercase();
    // RFC 6838 restricted-name: a letter or digit, then up to 126 of these.
    let restricted_name = |part: &str| {
        part.len() <= MAX_MIME_PART_CHARS
            && part.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    if !mime_type
        .split_once('/')
        .is_some_and(|(t, s)| restricted_name(t) && restricted_name(s))
    {
        return bad(format!(
            "`mime_type` must be type/subtype, each 1-{MAX_MIME_PART_CHARS} characters"
        ));
    }
    if kind == MessageKind::Image && !mime_type.starts_with("image/") {
        return bad("an image message needs an image/* `mime_type`".into());
    }
    if a.size_bytes == 0 || a.size_bytes > MAX_ATTACHMENT_BYTES {
        return bad(format!("`size_bytes` must be between 1 and {MAX_ATTACHMENT_BYTES}"));
    }
    Ok(Attachment {
        url: a.url,
        name: name.to_owned(),
        mime_type,
        size_bytes: a.size_bytes,
    })
}

/// History paging: `before_seq` (older than) or `after_seq` (newer than), not both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryQuery {
    pub before_seq: Option<i64>,
    pub after_seq: Option<i64>,
    pub limit: u32,
}

impl HistoryQuery {
    /// From raw query-string values. The limit is capped at [`MAX_PAGE`] rather than
    /// refused, so a client asking for "a lot" gets the most it may have.
    pub fn parse(before: Option<&str>, after: Option<&str>, limit: Option<&str>) -> Result<Self, ApiError> {
        let seq = |name: &str, raw: Option<&str>| -> Result<Option<i64>, ApiError> {
            raw.map(|v| {
                v.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::bad_request("invalid_argument", format!("`{name}` must be a non-negative integer"))
                })
            })
            .transpose()
        };
        let before_seq = seq("before_seq", before)?;
        let after_seq = seq("after_seq", after)?;
        if before_seq.is_some() && after_seq.is_some() {
            return Err(ApiError::bad_request(
                "invalid_argument",
                "give `before_seq` or `after_seq`, not both",
            ));
        }
        let limit = match limit {
            None => DEFAULT_PAGE,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(n) if n >= 1 => n.min(MAX_PAGE as u64) as u32,
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_argument",
                        format!("`limit` must be an integer from 1 to {MAX_PAGE}"),
                    ))
                }
            },
        };
        Ok(Self {
            before_seq,
            after_seq,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(body: &str) -> MessageDraft {
        MessageDraft {
            body: Some(body.into()),
            client_msg_id: Some("c-1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn body_limit_counts_characters_not_bytes() {
        let id = Uuid::new_v4();
        let at_limit = "é".repeat(MAX_BODY_CHARS); // 10000 bytes, 5000 characters
        assert!(draft(&at_limit).validate(id, true).is_ok());
        let over = "😀".repeat(MAX_BODY_CHARS + 1);
        assert_eq!(draft(&over).validate(id, true).unwrap_err().code, "message_too_long");
    }

    #[test]
    fn refuses_blank_bodies() {
        let id = Uuid::new_v4();
        for body in ["", "   ", "\n\t \u{3000}"] {
            assert_eq!(
                draft(body).validate(id, true).unwrap_err().code,
                "invalid_body",
                "{body:?}"
            );
        }
        assert_eq!(draft("a\0b").validate(id, true).unwrap_err().code, "invalid_body");
        assert!(draft("line one\nline\ttwo").validate(id, true).is_ok());
        assert_eq!(
            draft("\u{200b}\u{2060}\u{feff}").validate(id, true).unwrap_err().code,
            "invalid_body"
        );
        let mut no_body = draft("x");
        no_body.body = None;
        assert_eq!(no_body.validate(id, true).unwrap_err().code, "invalid_body");
    }

    #[test]
    fn a_blank_caption_is_no_caption_but_a_long_one_is_refused() {
        let id = Uuid::new_v4();
        let file = |body: &str| MessageDraft {
            kind: Some("file".into()),
            body: Some(body.into()),
            attachment: Some(Attachment {
                url: "https://cdn.example.com/r.pdf".into(),
                name: "r.pdf".into(),
                mime_type: "application/pdf".into(),
                size_bytes: 1,
            }),
            client_msg_id: Some("c".into()),
            ..Default::default()
        };
        assert_eq!(file(" \n ").validate(id, true).unwrap().body, None);
        assert_eq!(
            file("see p. 2").validate(id, true).unwrap().body.as_deref(),
            Some("see p. 2")
        );
        assert_eq!(
            file(&" ".repeat(MAX_BODY_CHARS + 1))
                .validate(id, true)
                .unwrap_err()
                .code,
            "message_too_long"
        );
    }

    #[test]
    fn client_msg_id_rules() {
        let id = Uuid::new_v4();
        let mut d = draft("hi");
        d.client_msg_id = None;
        assert_eq!(d.validate(id, true).unwrap_err().code, "invalid_client_msg_id");
        let mut d = draft("hi");
        d.client_msg_id = None;
        assert_eq!(d.validate(id, false).unwrap().client_msg_id.len(), 36);
        let mut d = draft("hi");
        d.client_msg_id = Some("has space".into());
        assert!(d.validate(id, true).is_err());
        let mut d = draft("hi");
        d.client_msg_id = Some("x".repeat(101));
        assert!(d.validate(id, true).is_err());
    }

    #[test]
    fn attachments_are_checked() {
        let id = Uuid::new_v4();
        let good = Attachment {
            url: "https://cdn.example.com/a.png".into(),
            name: "a.png".into(),
            mime_type: "image/png".into(),
            size_bytes: 1200,
        };
        let image = |a: Attachment| MessageDraft {
            kind: Some("image".into()),
            attachment: Some(a),
            client_msg_id: Some("c".into()),
            ..Default::default()
        };
        assert!(image(good.clone()).validate(id, true).is_ok());
        for bad in [
            Attachment {
                url: "http://cdn.example.com/a.png".into(),
                ..good.clone()
            },
            Attachment {
                url: "javascript:alert(1)".into(),
                ..good.clone()
            },
            Attachment {
                name: "../etc/passwd".into(),
                ..good.clone()
            },
            Attachment {
                mime_type: "png".into(),
                ..good.clone()
            },
            Attachment {
                size_bytes: 0,
                ..good.clone()
            },
        ] {
            assert_eq!(image(bad).validate(id, true).unwrap_err().code, "invalid_attachment");
        }
        let part = |n: usize| "a".repeat(n);
        let refused = [
            Attachment {
                url: "https:///a.png".into(),
                ..good.clone()
            },
            Attachment {
                url: "https://cdn.example.com/a b.png".into(),
                ..good.clone()
            },
            Attachment {
                url: format!("https://cdn.example.com/{}", part(MAX_URL_BYTES)),
                ..good.clone()
            },
            Attachment {
                name: "a\\b.png".into(),
                ..good.clone()
            },
            Attachment {
                name: "a\tb.png".into(),
                ..good.clone()
            },
            Attachment {
                name: " \u{3000} ".into(),
                ..good.clone()
            },
            Attachment {
                mime_type: format!("image/{}", part(MAX_MIME_PART_CHARS + 1)),
                ..good.clone()
            },
            Attachment {
                mime_type: "image/+png".into(),
                ..good.clone()
            },
            Attachment {
                mime_type: "application/pdf".into(),
                ..good.clone()
            },
            Attachment {
                size_bytes: MAX_ATTACHMENT_BYTES + 1,
                ..good.clone()
            },
        ];
        for bad in refused {
            let why = format!("{bad:?}");
            assert_eq!(
                image(bad).validate(id, true).unwrap_err().code,
                "invalid_attachment",
                "{why}"
            );
        }
        let edge = Attachment {
            name: format!("  {}  ", "n".repeat(MAX_ATTACHMENT_NAME_CHARS)),
            mime_type: format!(" Image/{}", part(MAX_MIME_PART_CHARS)),
            size_bytes: MAX_ATTACHMENT_BYTES,
            ..good.clone()
        };
        let stored = image(edge).validate(id, true).unwrap().attachment.unwrap();
        assert_eq!(stored.name, "n".repeat(MAX_ATTACHMENT_NAME_CHARS));
        assert_eq!(stored.mime_type, format!("image/{}", part(MAX_MIME_PART_CHARS)));
        let file = MessageDraft {
            kind: Some("file".into()),
            ..image(Attachment {
                mime_type: "application/pdf".into(),
                ..good.clone()
            })
        };
        assert!(file.validate(id, true).is_ok());
        let mut text_with_file = draft("hi");
        text_with_file.attachment = Some(good);
        assert!(text_with_file.validate(id, true).is_err());
        let mut unknown_kind = draft("hi");
        unknown_kind.kind = Some("video".into());
        assert_eq!(unknown_kind.validate(id, true).unwrap_err().code, "invalid_kind");
    }

    #[test]
    fn history_query_caps_limit_and_checks_numbers() {
        let q = HistoryQuery::parse(Some("10"), None, Some("1000")).unwrap();
        assert_eq!((q.before_seq, q.limit), (Some(10), MAX_PAGE));
        assert_eq!(HistoryQuery::parse(None, None, None).unwrap().limit, DEFAULT_PAGE);
        assert!(HistoryQuery::parse(Some("1"), Some("2"), None).is_err());
        assert!(HistoryQuery::parse(Some("-1"), None, None).is_err());
        assert!(HistoryQuery::parse(None, Some("abc"), None).is_err());
        assert!(HistoryQuery::parse(None, None, Some("0")).is_err());
    }
}
