//! Brings a database to the project's schema: the local Supabase bootstrap
//! (only where Supabase's own objects are missing), the login role PostgREST
//! uses, the migrations (each once, recorded like the Supabase CLI does) and
//! the seed data.

use std::path::Path;

use tokio_postgres::Client;
use tracing::{info, warn};

use crate::error::{Context, Result};
use crate::migrations::{self, read, sql_file_error};

/// The role PostgREST logs in as, and how to get it ready.
pub struct ApiLogin {
    pub role: String,
    pub password: String,
    /// Supabase's `authenticator` already exists (the bootstrap makes it);
    /// a role of our own must be created and granted the API roles.
    pub create: bool,
}

pub async fn prepare(client: &Client, sql_dir: &Path, login: &ApiLogin) -> Result<()> {
    migrations::lock(client).await?;
    let prepared = prepare_locked(client, sql_dir, login).await;
    migrations::unlock(client).await;
    prepared
}

async fn prepare_locked(client: &Client, sql_dir: &Path, login: &ApiLogin) -> Result<()> {
    if !migrations::has_supabase_auth(client).await? {
        let bootstrap = sql_dir.join("bootstrap/local_supabase.sql");
        info!(file = %bootstrap.display(), "no auth.users here: applying the local Supabase bootstrap");
        run_file_in_transaction(client, &bootstrap).await?;
    }
    prepare_login(client, login).await?;
    migrations::apply_pending(client, &sql_dir.join("migrations")).await?;
    let seed = sql_dir.join("seed.sql");
    if seed.exists() {
        run_file_in_transaction(client, &seed).await?;
        info!("seed data applied");
    } else {
        warn!(file = %seed.display(), "no seed file; the seed users will not exist");
    }
    Ok(())
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
    sql.push_str(&format!("alter role {role} with login noinherit password {password};"));
    // The local push service stand-ins are plain http on loopback, which the
    // database refuses as a push endpoint unless told (65_push.sql).
    sql.push_str(&format!(
        "alter role {role} set app.allow_loopback_push_endpoints = 'on';"
    ));
    client
        .batch_execute(&sql)
        .await
        .context(|| format!("preparing the login role {}", login.role))
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
