//! Every input rule is decided in the chat functions' domain module
//! (`chat::domain`); the database repeats its checks for callers that reach it
//! directly (PostgREST with a service_role key). Here one table of boundary
//! cases per rule goes to both: the Rust validation and the SQL function the
//! API calls, as the role PostgREST would use. Both must accept the same inputs
//! (and store them alike) and refuse the others with the same error code.

use chat::domain::{
    ConversationKind, EditMessageInput, ListQuery, MessageDraft, NewConversation, SearchQuery, UserQuery,
    MAX_ATTACHMENT_BYTES, MAX_ATTACHMENT_NAME_CHARS, MAX_BODY_CHARS, MAX_CLIENT_MSG_ID_CHARS, MAX_MEMBERS_PER_REQUEST,
    MAX_MIME_PART_CHARS, MAX_NAME_CHARS, MAX_SEARCH_CHARS, MAX_URL_BYTES, MAX_USER_QUERY_CHARS,
};
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::helpers::stack;

/// What a layer decided: the value as it would be stored, or the error code.
type Decision = Result<Value, String>;

/// The code the API answers for a database error: the `api_error` code, or
/// `invalid_input` for a value the database cannot hold (SQLSTATE class 22 or
/// 23), as the store maps them.
fn sql_code(e: &tokio_postgres::Error) -> String {
    let db = e.as_db_error().unwrap_or_else(|| panic!("not a database error: {e}"));
    match db.code().code() {
        "P0001" => db.message().to_owned(),
        state if state.starts_with("22") || state.starts_with("23") => "invalid_input".to_owned(),
        state => panic!("unexpected SQLSTATE {state}: {}", db.message()),
    }
}

/// Runs `call` in a transaction that is rolled back, as `role` (with `sub` as
/// the caller's JWT subject) or as the superuser for internal helpers, and
/// returns its jsonb answer or error code.
async fn sql_decides(
    db: &mut Client,
    role: Option<&str>,
    sub: Option<Uuid>,
    call: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Value, String> {
    let tx = db.transaction().await.unwrap();
    if let Some(role) = role {
        let exp = chrono::Utc::now().timestamp() + 3600;
        let claims = json!({"role": role, "sub": sub, "exp": exp}).to_string();
        tx.execute(
            "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
            &[&role, &claims],
        )
        .await
        .unwrap();
    }
    let answer = tx.query_one(call, params).await;
    tx.rollback().await.unwrap();
    answer.map(|row| row.get::<_, Value>(0)).map_err(|e| sql_code(&e))
}

fn assert_same(rule: &str, case: &str, rust: &Decision, sql: &Decision) {
    if case == "NUL" {
        // Postgres text cannot hold NUL: the database refuses it on arrival,
        // before any rule runs, so the API's own code is the functions'.
        assert_eq!(rust, &Err("invalid_body".to_owned()), "{rule}, {case}: the domain rule");
        assert_eq!(sql, &Err("invalid_input".to_owned()), "{rule}, {case}: SQL");
        return;
    }
    if rust != sql {
        // Bodies of 5000 characters make poor reading: the start says enough.
        let short = |d: &Decision| format!("{d:?}").chars().take(300).collect::<String>();
        panic!(
            "{rule}, {case}: the domain rule and SQL disagree\n  rule: {}\n  SQL:  {}",
            short(rust),
            short(sql)
        );
    }
}

fn attachment(url: &str, name: &str, mime_type: &str, size_bytes: u64) -> Value {
    json!({"url": url, "name": name, "mime_type": mime_type, "size_bytes": size_bytes})
}

#[tokio::test]
async fn message_rules_are_the_same_in_the_functions_and_the_database() {
    let stack = stack();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    let mut db = stack.db().await;

    let long = |n: usize| "x".repeat(n);
    let png = |mime: &str| attachment("https://cdn.example.com/a.png", "a.png", mime, 1);
    let image = |a: Value| json!({"kind": "image", "attachment": a});
    let file = |a: Value| json!({"kind": "file", "attachment": a});
    let url_of = |len: usize| {
        let prefix = "https://cdn.example.com/";
        format!("{prefix}{}", "u".repeat(len - prefix.len()))
    };
    let mime_of = |t: usize, s: usize| format!("{}/{}", "i".repeat(t), "s".repeat(s));
    let image_mime_of = |s: usize| format!("image/{}", "s".repeat(s));
    let cases: Vec<(&str, Value)> = vec![
        // Bodies: characters, not bytes; blank is nothing; a caption may be blank.
        ("5000 characters", json!({"body": "é".repeat(MAX_BODY_CHARS)})),
        ("5001 characters", json!({"body": "é".repeat(MAX_BODY_CHARS + 1)})),
        (
            "5001 four-byte characters",
            json!({"body": "😀".repeat(MAX_BODY_CHARS + 1)}),
        ),
        ("5001 blanks", json!({"body": " ".repeat(MAX_BODY_CHARS + 1)})),
        ("empty body", json!({"body": ""})),
        ("no body", json!({})),
        ("ASCII blanks", json!({"body": " \t\r\n"})),
        ("Unicode blanks", json!({"body": "\u{a0}\u{3000}\u{2003}"})),
        ("invisible characters", json!({"body": "\u{200b}\u{2060}\u{feff}"})),
        // Control characters: newline and tab are text, no other is.
        ("newline and tab", json!({"body": "a\n\tb"})),
        ("CR", json!({"body": "a\r\nb"})),
        ("BEL", json!({"body": "ding\u{7}"})),
        ("BS", json!({"body": "abc\u{8}\u{8}\u{8}xyz"})),
        ("ESC colour", json!({"body": "\u{1b}[31mred\u{1b}[0m"})),
        ("a file separator", json!({"body": "\u{1c}"})),
        ("DEL", json!({"body": "x\u{7f}"})),
        ("C1 NEL", json!({"body": "x\u{85}y"})),
        ("C1 CSI", json!({"body": "\u{9b}31m"})),
        (
            "control character in a caption",
            json!({"kind": "image", "body": "look\u{7}", "attachment": png("image/png")}),
        ),
        (
            "blank caption with CR",
            json!({"kind": "image", "body": " \r\n", "attachment": png("image/png")}),
        ),
        // Bidi: embeddings, overrides and isolates refused; marks are text.
        ("RLO override", json!({"body": "gpj.\u{202e}exe"})),
        ("LRE embedding", json!({"body": "\u{202a}x"})),
        ("PDF", json!({"body": "x\u{202c}"})),
        ("LRI isolate", json!({"body": "\u{2066}x\u{2069}"})),
        ("FSI isolate", json!({"body": "\u{2068}x"})),
        ("bidi marks", json!({"body": "\u{5d0}\u{200f} a\u{200e} \u{61c}"})),
        (
            "override over 5000 characters",
            json!({"body": format!("\u{202e}{}", long(MAX_BODY_CHARS))}),
        ),
        ("surrounding blanks kept", json!({"body": "  indented\n"})),
        ("NUL", json!({"body": "a\u{0}b"})),
        ("unknown kind", json!({"kind": "video", "body": "x"})),
        ("system kind", json!({"kind": "system", "body": "x"})),
        // client_msg_id.
        ("no client_msg_id", json!({"body": "x", "client_msg_id": null})),
        ("empty client_msg_id", json!({"body": "x", "client_msg_id": ""})),
        (
            "100-character client_msg_id",
            json!({"body": "x", "client_msg_id": long(MAX_CLIENT_MSG_ID_CHARS)}),
        ),
        (
            "101-character client_msg_id",
            json!({"body": "x", "client_msg_id": long(MAX_CLIENT_MSG_ID_CHARS + 1)}),
        ),
        (
            "client_msg_id with a space",
            json!({"body": "x", "client_msg_id": "a b"}),
        ),
        ("client_msg_id with é", json!({"body": "x", "client_msg_id": "café"})),
        (
            "client_msg_id of every allowed sign",
            json!({"body": "x", "client_msg_id": "aZ0-_.:"}),
        ),
        // Attachments.
        (
            "text with an attachment",
            json!({"body": "x", "attachment": png("image/png")}),
        ),
        ("image without an attachment", json!({"kind": "image"})),
        ("image", image(png("image/png"))),
        (
            "image with a blank caption",
            json!({"kind": "image", "body": " \n", "attachment": png("image/png")}),
        ),
        (
            "image with a caption",
            json!({"kind": "image", "body": "look", "attachment": png("image/png")}),
        ),
        (
            "image with a 5001-character caption",
            json!({"kind": "image", "body": long(MAX_BODY_CHARS + 1), "attachment": png("image/png")}),
        ),
        ("image with a non-image MIME type", image(png("application/pdf"))),
        ("file with a non-image MIME type", file(png("application/pdf"))),
        ("MIME type in capitals, padded", image(png(" Image/PNG "))),
        (
            "MIME type of 127/127",
            file(png(&mime_of(MAX_MIME_PART_CHARS, MAX_MIME_PART_CHARS))),
        ),
        (
            "MIME type of 128/127",
            file(png(&mime_of(MAX_MIME_PART_CHARS + 1, MAX_MIME_PART_CHARS))),
        ),
        (
            "image MIME subtype of 127",
            image(png(&image_mime_of(MAX_MIME_PART_CHARS))),
        ),
        (
            "image MIME subtype of 128",
            image(png(&image_mime_of(MAX_MIME_PART_CHARS + 1))),
        ),
        ("MIME type without a subtype", file(png("pdf"))),
        ("MIME type starting with a sign", file(png("+x/pdf"))),
        ("MIME type with a space", file(png("application/p df"))),
        (
            "MIME type with a non-ASCII letter",
            file(png("application/pdK\u{212a}")),
        ),
        (
            "size 1",
            file(attachment("https://cdn.example.com/f", "f", "application/pdf", 1)),
        ),
        (
            "size 0",
            file(attachment("https://cdn.example.com/f", "f", "application/pdf", 0)),
        ),
        (
            "size at the cap",
            file(attachment(
                "https://cdn.example.com/f",
                "f",
                "application/pdf",
                MAX_ATTACHMENT_BYTES,
            )),
        ),
        (
            "size over the cap",
            file(attachment(
                "https://cdn.example.com/f",
                "f",
                "application/pdf",
                MAX_ATTACHMENT_BYTES + 1,
            )),
        ),
        (
            "name with /",
            file(attachment(
                "https://cdn.example.com/f",
                "../etc/passwd",
                "text/plain",
                1,
            )),
        ),
        (
            "name with \\",
            file(attachment("https://cdn.example.com/f", "a\\b.txt", "text/plain", 1)),
        ),
        (
            "name with a tab inside",
            file(attachment("https://cdn.example.com/f", "a\tb.txt", "text/plain", 1)),
        ),
        (
            "name with C1 control",
            file(attachment("https://cdn.example.com/f", "a\u{85}b.txt", "text/plain", 1)),
        ),
        (
            "name padded with blanks",
            file(attachment(
                "https://cdn.example.com/f",
                "\u{3000} a.txt \t",
                "text/plain",
                1,
            )),
        ),
        (
            "blank name",
            file(attachment("https://cdn.example.com/f", " \u{200b} ", "text/plain", 1)),
        ),
        (
            "name of 255",
            file(attachment(
                "https://cdn.example.com/f",
                &"n".repeat(MAX_ATTACHMENT_NAME_CHARS),
                "text/plain",
                1,
            )),
        ),
        (
            "name of 256",
            file(attachment(
                "https://cdn.example.com/f",
                &"n".repeat(MAX_ATTACHMENT_NAME_CHARS + 1),
                "text/plain",
                1,
            )),
        ),
        (
            "URL of 2048 bytes",
            file(attachment(&url_of(MAX_URL_BYTES), "f", "text/plain", 1)),
        ),
        (
            "URL of 2049 bytes",
            file(attachment(&url_of(MAX_URL_BYTES + 1), "f", "text/plain", 1)),
        ),
        (
            "URL of 2048 bytes in fewer characters",
            file(attachment(
                &format!("https://cdn.example.com/{}", "é".repeat(1012)),
                "f",
                "text/plain",
                1,
            )),
        ),
        (
            "URL of 2050 bytes in fewer characters",
            file(attachment(
                &format!("https://cdn.example.com/{}", "é".repeat(1013)),
                "f",
                "text/plain",
                1,
            )),
        ),
        (
            "http URL",
            file(attachment("http://cdn.example.com/f", "f", "text/plain", 1)),
        ),
        (
            "HTTPS in capitals",
            file(attachment("HTTPS://cdn.example.com/f", "f", "text/plain", 1)),
        ),
        (
            "URL without a host",
            file(attachment("https:///f", "f", "text/plain", 1)),
        ),
        (
            "URL with a space",
            file(attachment("https://cdn.example.com/a b", "f", "text/plain", 1)),
        ),
        (
            "URL with a newline",
            file(attachment("https://cdn.example.com/a\n", "f", "text/plain", 1)),
        ),
        (
            "javascript URL",
            file(attachment("javascript:alert(1)", "f", "text/plain", 1)),
        ),
        (
            "URL with a query",
            file(attachment(
                "https://cdn.example.com/f?sig=a%20b#x",
                "f",
                "text/plain",
                1,
            )),
        ),
    ];
    let mut accepted = 0;
    for (i, (case, frame)) in cases.iter().enumerate() {
        let mut frame = frame.clone();
        if frame.get("client_msg_id").is_none() {
            frame["client_msg_id"] = json!(format!("rules-{i}"));
        }
        let draft: MessageDraft = serde_json::from_value(frame.clone()).unwrap();
        let rust: Decision = draft
            .validate(conversation, true)
            .map(|m| json!({"kind": m.kind.as_str(), "body": m.body, "attachment": m.attachment}))
            .map_err(|e| e.code.to_owned());
        let client_msg_id = frame["client_msg_id"].as_str();
        let kind = frame["kind"].as_str();
        let body = frame["body"].as_str();
        let attachment = frame.get("attachment").cloned();
        let sql: Decision = sql_decides(
            &mut db,
            Some("service_role"),
            None,
            "select public.send_message($1, $2, $3, $4, $5, $6, null)",
            &[&alice.id, &conversation, &client_msg_id, &kind, &body, &attachment],
        )
        .await
        .map(|answer| {
            let m = &answer["result"]["message"];
            json!({"kind": m["kind"], "body": m["body"], "attachment": m["attachment"]})
        });
        assert_same("sending", case, &rust, &sql);
        accepted += rust.is_ok() as usize;
    }
    assert!(
        accepted >= 10 && accepted < cases.len(),
        "the table has both outcomes: {accepted} accepted"
    );

    // Edits: the characters and the length; whether blank is allowed depends on
    // the message's kind, which only the database knows.
    for (case, body) in [
        ("5000 characters", "é".repeat(MAX_BODY_CHARS)),
        ("5001 characters", "é".repeat(MAX_BODY_CHARS + 1)),
        ("a new text", "fixed".to_owned()),
        ("NUL", "a\u{0}b".to_owned()),
        ("ESC in an edit", "\u{1b}[2Jcleared".to_owned()),
        ("an override in an edit", "a\u{202e}b".to_owned()),
        ("newline, tab and a mark in an edit", "a\n\tb\u{200f}".to_owned()),
    ] {
        let rust: Decision = EditMessageInput { body: body.clone() }
            .validate()
            .map(|e| json!(e.body))
            .map_err(|e| e.code.to_owned());
        let sql: Decision = sql_decides(
            &mut db,
            Some("service_role"),
            None,
            "select public.edit_message($1, \
               (public.send_message($1, $2, 'edit-me', 'text', 'first', null, null) -> 'result' -> 'message' ->> 'id')::uuid, $3) \
               -> 'result' -> 'message' -> 'body'",
            &[&alice.id, &conversation, &body],
        )
        .await;
        assert_same("editing", case, &rust, &sql);
    }
}

#[tokio::test]
async fn conversation_name_and_member_rules_are_the_same_in_the_functions_and_the_database() {
    let stack = stack();
    let owner = stack.new_user("owner").await;
    let mut db = stack.db().await;
    let new = |name: &str, member_ids: Vec<Uuid>| NewConversation {
        kind: ConversationKind::Group,
        name: name.to_owned(),
        member_ids,
    };
    let create = "select public.create_conversation($1, 'group', $2, $3) -> 'result' -> 'conversation'";

    let names = [
        ("200 characters", "é".repeat(MAX_NAME_CHARS)),
        ("201 characters", "é".repeat(MAX_NAME_CHARS + 1)),
        (
            "200 characters padded",
            format!("\t {} \u{3000}", "é".repeat(MAX_NAME_CHARS)),
        ),
        (
            "padded with every blank",
            "\u{a0}\u{85}\u{2003}\u{200b}\u{feff} Lima \n\r\u{2060}".to_owned(),
        ),
        ("empty", String::new()),
        ("blank", " \u{a0}\u{3000}".to_owned()),
        ("invisible", "\u{200b}\u{feff}".to_owned()),
        ("newline inside", "two\nlines".to_owned()),
        ("bell", "bell\u{7}".to_owned()),
        ("C1 control inside", "a\u{85}b".to_owned()),
        ("file separator", "a\u{1c}".to_owned()),
        ("zero-width space inside", "Li\u{200b}ma".to_owned()),
        ("word joiner inside", "Li\u{2060}ma".to_owned()),
        ("soft hyphen inside", "Li\u{ad}ma".to_owned()),
        ("right-to-left override", "Lima\u{202e}amiL".to_owned()),
        ("isolate", "\u{2066}Lima\u{2069}".to_owned()),
        ("right-to-left mark", "\u{200f}Lima".to_owned()),
        ("Hangul filler", "\u{3164}".to_owned()),
        ("blank braille pattern", "\u{2800}".to_owned()),
        ("braille blank inside", "Li\u{2800}ma".to_owned()),
        ("braille letters are fine", "\u{2807}\u{2815}".to_owned()),
        ("emoji with a variation selector", "Team \u{2764}\u{fe0f}".to_owned()),
        ("right-to-left script", "\u{5e9}\u{5dc}\u{5d5}\u{5dd}".to_owned()),
        ("slash is fine in a name", "Q3 / Q4".to_owned()),
    ];
    for (case, name) in names {
        let rust: Decision = new(&name, vec![])
            .validate(owner.id)
            .map(|c| json!(c.name))
            .map_err(|e| e.code.to_owned());
        let none: Vec<Uuid> = vec![];
        let sql = sql_decides(&mut db, Some("service_role"), None, create, &[&owner.id, &name, &none])
            .await
            .map(|c| c["name"].clone());
        assert_same("conversation names", case, &rust, &sql);
    }

    // Members: distinct ids besides the owner. The users exist, so SQL gets
    // past the count to its other checks.
    let mut users = Vec::new();
    for _ in 0..=MAX_MEMBERS_PER_REQUEST {
        users.push(Uuid::new_v4());
    }
    db.execute(
        "insert into auth.users (id, email) select u, u::text || '@example.test' from unnest($1::uuid[]) u",
        &[&users],
    )
    .await
    .unwrap();
    let limit = &users[..MAX_MEMBERS_PER_REQUEST];
    let member_cases = [
        ("100 members", limit.to_vec()),
        ("101 members", users.clone()),
        ("100 members and the owner", [limit, &[owner.id]].concat()),
        ("100 members, each twice", [limit, limit].concat()),
    ];
    for (case, ids) in member_cases {
        let rust: Decision = new("crowd", ids.clone())
            .validate(owner.id)
            .map(|c| json!(c.member_ids.len() + 1))
            .map_err(|e| e.code.to_owned());
        let sql = sql_decides(
            &mut db,
            Some("service_role"),
            None,
            create,
            &[&owner.id, &"crowd", &ids],
        )
        .await
        .map(|c| json!(c["participants"].as_array().unwrap().len()));
        assert_same("members per request", case, &rust, &sql);
    }
}

#[tokio::test]
async fn query_rules_are_the_same_in_the_functions_and_the_database() {
    let stack = stack();
    let me = stack.new_user("searcher").await;
    let mut db = stack.db().await;

    let texts = |max: usize| {
        [
            ("at the limit", "q".repeat(max)),
            ("over the limit", "q".repeat(max + 1)),
            ("at the limit, padded", format!(" \u{3000}{}\t", "q".repeat(max))),
            ("empty", String::new()),
            ("blank", " \u{a0}\t\u{200b}".to_owned()),
            ("control character", "a\u{7}b".to_owned()),
            ("C1 control character", "a\u{9f}b".to_owned()),
            ("words", "hola mundo".to_owned()),
        ]
    };
    for (case, q) in texts(MAX_SEARCH_CHARS) {
        let rust: Decision = SearchQuery::parse(Some(&q), None, None, None)
            .map(|_| Value::Null)
            .map_err(|e| e.code.to_owned());
        let sql = sql_decides(
            &mut db,
            Some("authenticated"),
            Some(me.id),
            "select public.search_messages($1)",
            &[&q],
        )
        .await
        .map(|_| Value::Null);
        assert_same("message search", case, &rust, &sql);
    }
    for (case, q) in texts(MAX_USER_QUERY_CHARS) {
        let rust: Decision = UserQuery::parse(Some(&q), None)
            .map(|_| Value::Null)
            .map_err(|e| e.code.to_owned());
        let sql = sql_decides(
            &mut db,
            Some("authenticated"),
            Some(me.id),
            "select public.search_users($1)",
            &[&q],
        )
        .await
        .map(|_| Value::Null);
        assert_same("user search", case, &rust, &sql);
    }

    // Cursors: the functions check the shape, the database also the content;
    // what the functions refuse the database refuses the same way, and a
    // cursor the database made passes both.
    let real: String = db
        .query_one("select public.encode_cursor(now(), gen_random_uuid())", &[])
        .await
        .unwrap()
        .get(0);
    for (case, cursor) in [
        ("a real cursor", real),
        ("200 characters", "A".repeat(200)),
        ("201 characters", "A".repeat(201)),
        ("quote", "a'; drop".to_owned()),
        ("padding", "YQ==".to_owned()),
        ("non-ASCII", "é".to_owned()),
    ] {
        let rust = ListQuery::parse(None, Some(&cursor), 50);
        let sql = sql_decides(
            &mut db,
            None,
            None,
            "select to_jsonb(public.decode_cursor($1))",
            &[&cursor],
        )
        .await;
        match rust {
            Err(e) => assert_same("cursors", case, &Err(e.code.to_owned()), &sql.map(|_| Value::Null)),
            Ok(_) if case == "a real cursor" => assert!(sql.is_ok(), "cursors, {case}: {sql:?}"),
            Ok(_) => {}
        }
    }
}
