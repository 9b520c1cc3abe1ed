//! What a running stack tells people (a banner) and programs (the ready file).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::files;

/// The ready file. Test harnesses parse it; keep the field names stable.
#[derive(Serialize)]
pub struct ReadyInfo {
    pub http_url: String,
    pub websocket_url: String,
    pub management_url: String,
    pub postgrest_url: String,
    /// The superuser's URL, password included: tests set up data with it.
    pub database_url: String,
    pub jwt_secret: String,
    pub anon_key: String,
    pub service_role_key: String,
    /// The functions' AWS key and region: `@connections` accepts only
    /// requests signed with them (SigV4, service `execute-api`).
    pub aws_region: String,
    pub aws_access_key_id: String,
    pub aws_secret_access_key: String,
    pub aws_session_token: Option<String>,
    /// The Web Push application server key pair (VAPID), base64url.
    pub vapid_public_key: String,
    pub vapid_private_key: String,
    pub users: BTreeMap<String, UserInfo>,
    pub state_dir: String,
    pub pid: u32,
}

#[derive(Serialize)]
pub struct UserInfo {
    pub id: String,
    pub token: String,
}

impl ReadyInfo {
    /// Written whole or not at all (temp file + rename), mode 0600: it holds secrets.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("ready info serializes");
        files::write_private_atomically(path, &json)
    }

    /// For people: where everything is and how to try it. `database_display`
    /// is the database URL without its password.
    pub fn banner(&self, database_display: &str, postgres_log: Option<&Path>) -> String {
        let mut lines = vec![
            String::new(),
            "chat-local is up".to_owned(),
            format!("  HTTP API     {}", self.http_url),
            format!("  WebSocket    {}", self.websocket_url),
            format!(
                "  @connections {} (SigV4 only, with the functions' AWS key {}, kept in the state dir)",
                self.management_url, self.aws_access_key_id
            ),
            format!("  PostgREST    {}", self.postgrest_url),
            format!("  Database     {database_display}"),
            format!("  State        {}", self.state_dir),
        ];
        if let Some(log) = postgres_log {
            lines.push(format!("  Postgres log {}", log.display()));
        }
        for name in ["alice", "bob"] {
            let Some(user) = self.users.get(name) else {
                continue;
            };
            lines.push(String::new());
            lines.push(format!("  {name} ({}), token valid 24 h:", user.id));
            lines.push(format!("    {}", user.token));
            lines.push(format!("    websocat \"{}?token={}\"", self.websocket_url, user.token));
        }
        lines.push(String::new());
        lines.push("  More tokens: make token USER=carol   Stop: Ctrl-C".to_owned());
        lines.push(String::new());
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReadyInfo {
        let mut users = BTreeMap::new();
        users.insert(
            "alice".to_owned(),
            UserInfo {
                id: "00000000-0000-4000-8000-00000000a11c".into(),
                token: "aaa.bbb.ccc".into(),
            },
        );
        ReadyInfo {
            http_url: "http://127.0.0.1:3000".into(),
            websocket_url: "ws://127.0.0.1:3001/dev".into(),
            management_url: "http://127.0.0.1:3001/dev".into(),
            postgrest_url: "http://127.0.0.1:3002".into(),
            database_url: "postgres://postgres:pw@127.0.0.1:5999/postgres".into(),
            jwt_secret: "secret".into(),
            anon_key: "anon".into(),
            service_role_key: "service".into(),
            aws_region: "us-east-1".into(),
            aws_access_key_id: "ASIAEXAMPLE".into(),
            aws_secret_access_key: "aws-private-value".into(),
            aws_session_token: Some("session".into()),
            vapid_public_key: "BPublic".into(),
            vapid_private_key: "vapid-private-value".into(),
            users,
            state_dir: "/tmp/s".into(),
            pid: 1,
        }
    }

    #[test]
    fn the_ready_file_has_the_documented_shape() {
        let dir = crate::files::TestDir::new("ready");
        let path = dir.path().join("ready.json");
        sample().write(&path).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for key in [
            "http_url",
            "websocket_url",
            "management_url",
            "postgrest_url",
            "database_url",
            "jwt_secret",
            "anon_key",
            "service_role_key",
            "aws_region",
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            "vapid_public_key",
            "vapid_private_key",
        ] {
            assert!(json[key].is_string(), "{key}");
        }
        assert_eq!(json["users"]["alice"]["id"], "00000000-0000-4000-8000-00000000a11c");
        assert_eq!(json["users"]["alice"]["token"], "aaa.bbb.ccc");
    }

    #[test]
    fn the_banner_shows_a_websocat_line_and_no_password() {
        let info = sample();
        let banner = info.banner("postgres://postgres@127.0.0.1:5999/postgres", None);
        assert!(banner.contains("websocat \"ws://127.0.0.1:3001/dev?token=aaa.bbb.ccc\""));
        assert!(!banner.contains(":pw@"));
        assert!(!banner.contains("secret"));
        assert!(banner.contains("ASIAEXAMPLE") && !banner.contains("aws-private-value"));
        assert!(!banner.contains("vapid-private-value"));
    }
}
