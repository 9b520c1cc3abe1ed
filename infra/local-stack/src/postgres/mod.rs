//! The stack's database: a private cluster run from the OS's PostgreSQL
//! binaries, or the server `DATABASE_URL` names.

mod binaries;
mod cluster;
mod external;
mod initdb;
mod layout;
mod os_user;
pub mod tls;

use std::path::Path;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::error::{Context, Result};
use crate::schema::ApiLogin;

/// Where the database is and who administers it.
#[derive(Clone, Debug)]
pub struct DatabaseTarget {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub superuser: String,
    pub superuser_password: Option<String>,
}

impl DatabaseTarget {
    /// The superuser's URL, password included (for test harnesses).
    pub fn superuser_url(&self) -> String {
        self.url_for(&self.superuser, self.superuser_password.as_deref())
    }

    /// The superuser's URL without its password (for printing).
    pub fn display_url(&self) -> String {
        self.url_for(&self.superuser, None)
    }

    pub fn url_for(&self, user: &str, password: Option<&str>) -> String {
        let credentials = match password {
            Some(password) => format!("{}:{}", percent_encode(user), percent_encode(password)),
            None => percent_encode(user),
        };
        format!(
            "postgres://{credentials}@{}:{}/{}",
            self.host,
            self.port,
            percent_encode(&self.database)
        )
    }

    pub fn with_database(&self, database: &str) -> Self {
        Self {
            database: database.to_owned(),
            ..self.clone()
        }
    }

    pub async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.superuser)
            .dbname(&self.database)
            .application_name("chat-local")
            .connect_timeout(Duration::from_secs(5));
        if let Some(password) = &self.superuser_password {
            config.password(password);
        }
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the server goes away; either
            // way the next query reports it.
            let _ = connection.await;
        });
        Ok(client)
    }
}

/// The running database, whichever kind.
pub enum Database {
    Private(cluster::Cluster),
    External(external::ExternalDatabase),
}

impl Database {
    /// `DATABASE_URL` when set, else a private cluster under `state_dir`.
    pub async fn start(state_dir: &Path, ephemeral: bool) -> Result<Self> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Ok(Self::External(external::ExternalDatabase::open(&url, ephemeral).await?)),
            _ => Ok(Self::Private(cluster::Cluster::start(state_dir, ephemeral).await?)),
        }
    }

    pub fn target(&self) -> &DatabaseTarget {
        match self {
            Self::Private(cluster) => cluster.target(),
            Self::External(external) => external.target(),
        }
    }

    /// The role PostgREST logs in as. On our own cluster that is Supabase's
    /// `authenticator`. On a server we share, changing `authenticator`'s
    /// password would break whatever else uses it (a Supabase instance's own
    /// PostgREST, another stack on the same server), so each database gets a
    /// login role of its own with the same powers.
    pub fn api_login(&self, password: &str) -> ApiLogin {
        match self {
            Self::Private(_) => ApiLogin {
                role: "authenticator".into(),
                password: password.into(),
                create: false,
            },
            Self::External(external) => ApiLogin {
                role: external.login_role(),
                password: password.into(),
                create: true,
            },
        }
    }

    /// Waits for the server to exit on its own (a crash, someone killing it).
    /// Never returns for a server we do not run.
    pub async fn exited(&mut self) -> String {
        match self {
            Self::Private(cluster) => cluster.exited().await,
            Self::External(_) => std::future::pending().await,
        }
    }

    /// Stops our cluster, or drops the database we created on a shared server.
    pub async fn stop(self) {
        match self {
            Self::Private(cluster) => cluster.stop().await,
            Self::External(external) => external.close().await,
        }
    }
}

/// RFC 3986 percent-encoding of a URL component (userinfo, path segment).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Connects to a server that may still be starting, until `deadline`.
async fn connect_with_retry(target: &DatabaseTarget, deadline: Duration) -> Result<Client> {
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        match target.connect().await {
            Ok(client) => return Ok(client),
            Err(error) if tokio::time::Instant::now() < give_up => {
                tracing::debug!("database not ready yet: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error).context(|| format!("connecting to {}", target.display_url())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> DatabaseTarget {
        DatabaseTarget {
            host: "127.0.0.1".into(),
            port: 5433,
            database: "chat_1".into(),
            superuser: "postgres".into(),
            superuser_password: Some("p@ss:/word".into()),
        }
    }

    #[test]
    fn urls_encode_credentials_and_hide_the_password_when_displayed() {
        let target = target();
        assert_eq!(
            target.superuser_url(),
            "postgres://postgres:p%40ss%3A%2Fword@127.0.0.1:5433/chat_1"
        );
        assert_eq!(target.display_url(), "postgres://postgres@127.0.0.1:5433/chat_1");
        assert_eq!(
            target.url_for("authenticator", Some("abc")),
            "postgres://authenticator:abc@127.0.0.1:5433/chat_1"
        );
        assert_eq!(target.with_database("other").database, "other");
    }
}
