//! A server named by `DATABASE_URL`: used as is, or, for an ephemeral stack,
//! with a fresh database created for it and dropped afterwards.

use std::str::FromStr as _;
use std::time::Duration;

use tokio_postgres::config::Host;
use tracing::{info, warn};

use super::{connect_with_retry, DatabaseTarget};
use crate::error::{Context, Error, Result};
use crate::random;
use crate::schema::quote_ident;

pub struct ExternalDatabase {
    target: DatabaseTarget,
    /// The database we created (ephemeral), dropped on close.
    created: Option<String>,
    /// Where to connect to drop it: the database the URL named.
    maintenance: DatabaseTarget,
}

/// Identifiers are at most 63 bytes in PostgreSQL.
const MAX_IDENTIFIER: usize = 63;

impl ExternalDatabase {
    pub async fn open(url: &str, ephemeral: bool) -> Result<Self> {
        let maintenance = parse_target(url)?;
        let client = connect_with_retry(&maintenance, Duration::from_secs(10)).await?;
        if !ephemeral {
            info!(database = %maintenance.display_url(), "using DATABASE_URL");
            return Ok(Self {
                target: maintenance.clone(),
                created: None,
                maintenance,
            });
        }
        let name = format!("chat_{}", random::hex(6));
        client
            .batch_execute(&format!("create database {}", quote_ident(&name)))
            .await
            .context(|| format!("creating database {name} on {}", maintenance.display_url()))?;
        info!(database = %name, server = %maintenance.display_url(), "created an ephemeral database");
        Ok(Self {
            target: maintenance.with_database(&name),
            created: Some(name),
            maintenance,
        })
    }

    pub fn target(&self) -> &DatabaseTarget {
        &self.target
    }

    /// A login role for this database's PostgREST; see `Database::api_login`.
    pub fn login_role(&self) -> String {
        let mut role = format!("{}_authenticator", self.target.database);
        role.truncate(MAX_IDENTIFIER);
        role
    }

    pub async fn close(self) {
        let Some(name) = &self.created else { return };
        let role = self.login_role();
        let dropped = async {
            let client = self.maintenance.connect().await?;
            // FORCE (PostgreSQL 13+) ends sessions a crashed function left
            // open. Two calls: DROP DATABASE refuses to share a transaction.
            client
                .batch_execute(&format!("drop database if exists {} with (force)", quote_ident(name)))
                .await?;
            client
                .batch_execute(&format!("drop role if exists {}", quote_ident(&role)))
                .await
        }
        .await;
        match dropped {
            Ok(()) => info!(database = %name, "dropped the ephemeral database"),
            Err(error) => warn!(
                "could not drop database {name} and role {role}: {}",
                crate::error::describe_db_error(&error)
            ),
        }
    }
}

/// The parts of a connection string the stack needs. Only TCP servers: the
/// URL is also handed to PostgREST and printed for tests.
fn parse_target(url: &str) -> Result<DatabaseTarget> {
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|error| Error::Setup(format!("DATABASE_URL is not a valid connection string: {error}")))?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(_) => {
            return Err(Error::Setup(
                "DATABASE_URL must name a TCP host (e.g. 127.0.0.1), not a Unix socket".into(),
            ))
        }
        None => "localhost".into(),
    };
    let superuser = config
        .get_user()
        .map(str::to_owned)
        .ok_or_else(|| Error::Setup("DATABASE_URL must name a user".into()))?;
    let password = config
        .get_password()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
    Ok(DatabaseTarget {
        host,
        port: config.get_ports().first().copied().unwrap_or(5432),
        database: config.get_dbname().unwrap_or(&superuser).to_owned(),
        superuser,
        superuser_password: password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_key_value_strings_are_understood() {
        let target = parse_target("postgres://admin:secret@db.local:6543/app").unwrap();
        assert_eq!(
            (
                target.host.as_str(),
                target.port,
                target.database.as_str(),
                target.superuser.as_str()
            ),
            ("db.local", 6543, "app", "admin")
        );
        assert_eq!(target.superuser_password.as_deref(), Some("secret"));

        let target = parse_target("host=127.0.0.1 user=postgres").unwrap();
        assert_eq!((target.port, target.database.as_str()), (5432, "postgres"));
        assert_eq!(target.superuser_password, None);
    }

    #[test]
    fn unusable_urls_are_refused_clearly() {
        assert!(parse_target("postgres://127.0.0.1/app").is_err(), "no user");
        assert!(
            parse_target("host=/var/run/postgresql user=postgres").is_err(),
            "socket"
        );
        assert!(parse_target("not a url at all").is_err());
    }
}
