//! Brings a database to the project's schema: the local Supabase bootstrap
//! (only where Supabase's own objects are missing), the login role PostgREST
//! uses, the migrations (each once, recorded like the Supabase CLI does) and
//! the seed data.

use std::path::Path;

use tokio_postgres::Client;
use tracing::{info, warn};

use crate::error::{error_line, Context, Error, Result};
use crate::migrations::{self, Migration};

/// The role PostgREST logs in as, and how to get it ready.
pub struct ApiLogin {
    pub role: String,
    pub password: String,
    /// Supabase's `authenticator` already exists (the bootstrap makes it);
    /// a role of our own must be created and granted the API roles.
    pub create: bool,
}

/// Serializes concurrent runners preparing the same database.
const SCHEMA_LOCK_KEY: i64 = 0x6368_6174_6c6f_6361; // "chatloca"

pub async fn prepare(client: &Client, sql_dir: &Path, login: &ApiLogin) -> Result<()> {
    client
        .execute("select pg_advisory_lock($1)", &[&SCHEMA_LOCK_KEY])
        .await
        .context(|| "locking the database for migrations".into())?;
    let prepared = prepare_locked(client, sql_dir, login).await;
    let _ = client
        .execute("select pg_advisory_unlock($1)", &[&SCHEMA_LOCK_KEY])
        .await;
    prepared
}

async fn prepare_locked(client: &Client, sql_dir: &Path, login: &ApiLogin) -> Result<()> {
    if !has_supabase_auth(client).await? {
        let bootstrap = sql_dir.join("bootstrap/local_supabase.sql");
        info!(file = %bootstrap.display(), "no auth.users here: applying the local Supabase bootstrap");
        run_file_in_transaction(client, &bootstrap).await?;
    }
    prepare_login(client, login).await?;
    apply_migrations(client, &sql_dir.join("migrations")).await?;
    let seed = sql_dir.join("seed.sql");
    if seed.exists() {
        run_file_in_transaction(client, &seed).await?;
        info!("seed data applied");
    } else {
        warn!(file = %seed.display(), "no seed file; the seed users will not exist");
    }
    Ok(())
}

async fn has_supabase_auth(client: &Client) -> Result<bool> {
    let row = client
        .query_one("select to_regclass('auth.users') is not null", &[])
        .await
        .context(|| "checking for auth.users".into())?;
    Ok(row.get(0))
}

async fn prepare_login(client: &Client, login: &ApiLogin) -> Result<()> {
    let role = quote_ident(&login.role);
    let password = quote_literal(&login.password);
    let mut sql = String::new();
    if login.create {
        sql.push_str(&format!(
            "do $$ begin
               if not exists (select from pg_roles where rolname = {name}) then
                 create role {role} login noinherit;
               end if;
             end $$;
             grant anon, authenticated, service_role to {role};",
            name = quote_literal(&login.role),
        ));
    }
    sql.push_str(&format!(
        "alter role {role} with login noinherit password {password};"
    ));
    client
        .batch_execute(&sql)
        .await
        .context(|| format!("preparing the login role {}", login.role))
}

async fn apply_migrations(client: &Client, dir: &Path) -> Result<()> {
    let (migrations, skipped) = migrations::list(dir)?;
    for path in skipped {
        warn!(file = %path.display(), "skipped: migration names must be <digits>_<name>.sql");
    }
    client
        .batch_execute(
            "create schema if not exists supabase_migrations;
             create table if not exists supabase_migrations.schema_migrations (
               version text primary key,
               statements text[],
               name text
             );",
        )
        .await
        .context(|| "creating supabase_migrations.schema_migrations".into())?;
    let applied: Vec<String> = client
        .query(
            "select version from supabase_migrations.schema_migrations",
            &[],
        )
        .await
        .context(|| "reading applied migrations".into())?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let pending: Vec<&Migration> = migrations
        .iter()
        .filter(|migration| !applied.contains(&migration.version))
        .collect();
    for migration in &pending {
        apply_migration(client, migration).await?;
        info!(version = %migration.version, name = %migration.name, "migration applied");
    }
    info!(
        applied = pending.len(),
        already = migrations.len() - pending.len(),
        "migrations up to date"
    );
    Ok(())
}

async fn apply_migration(client: &Client, migration: &Migration) -> Result<()> {
    let sql = read(&migration.path)?;
    // One transaction: a failing migration leaves nothing behind and is not
    // recorded, so fixing the file and restarting retries it.
    client
        .batch_execute("begin")
        .await
        .context(|| "starting a transaction".into())?;
    let result = async {
        client.batch_execute(&sql).await?;
        // The CLI stores the statements one by one; the whole file as one
        // statement records the same SQL without parsing it here.
        client
            .execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements)
                 values ($1, $2, array[$3])",
                &[&migration.version, &migration.name, &sql],
            )
            .await?;
        client.batch_execute("commit").await
    }
    .await;
    if let Err(error) = result {
        // The session is still usable after a failed statement; a broken
        // connection makes this fail too, which changes nothing.
        let _ = client.batch_execute("rollback").await;
        return Err(sql_file_error(&migration.path, &sql, 0, error));
    }
    Ok(())
}

async fn run_file_in_transaction(client: &Client, path: &Path) -> Result<()> {
    let sql = read(path)?;
    let wrapped = format!("begin;\n{sql}\n;commit;");
    if let Err(error) = client.batch_execute(&wrapped).await {
        let _ = client.batch_execute("rollback").await;
        return Err(sql_file_error(path, &wrapped, 1, error));
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).context(|| format!("reading {}", path.display()))
}

/// `sent` is the text the server saw: the file after `lines_before` added lines.
fn sql_file_error(
    path: &Path,
    sent: &str,
    lines_before: usize,
    error: tokio_postgres::Error,
) -> Error {
    let place = match error_line(&error, sent) {
        Some(line) => format!("{}:{}", path.display(), line.saturating_sub(lines_before)),
        None => path.display().to_string(),
    };
    Error::Database {
        context: format!("applying {place}"),
        source: error,
    }
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_the_quote_characters() {
        assert_eq!(quote_ident("chat_x\"y"), "\"chat_x\"\"y\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
