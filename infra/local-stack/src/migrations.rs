//! Migrations as the Supabase CLI handles them: files `<version>_<name>.sql`
//! (the version all digits, a timestamp) applied in file-name order, each in
//! one transaction, and recorded in `supabase_migrations.schema_migrations`
//! (version, name, and the statements split as the CLI splits them), so a
//! version already there is skipped. The local stack and `chat-local db-push`
//! both apply them through [`apply_pending`], which is why a database either
//! of them migrated can later be taken over by `supabase db push`.

use std::path::{Path, PathBuf};

use tokio_postgres::Client;
use tracing::{info, warn};

use crate::cli::DbPushOptions;
use crate::error::{error_line, Context, Error, Result};
use crate::workspace;

#[derive(Debug, PartialEq)]
pub struct Migration {
    pub version: String,
    pub name: String,
    pub path: PathBuf,
}

/// The migrations in `dir`, in file-name order, and the `.sql` files whose
/// names do not follow the pattern (the Supabase CLI skips those too; the
/// caller warns about them). A missing directory has no migrations.
pub fn list(dir: &Path) -> Result<(Vec<Migration>, Vec<PathBuf>)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(error) => return Err(error).context(|| format!("listing {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.context(|| format!("listing {}", dir.display()))?.path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "sql") {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut migrations = Vec::new();
    let mut skipped = Vec::new();
    for path in files {
        match parse_file_name(&path) {
            Some((version, name)) => migrations.push(Migration { version, name, path }),
            None => skipped.push(path),
        }
    }
    Ok((migrations, skipped))
}

/// The CLI's pattern, `^([0-9]+)_(.*)\.sql$`: the name may be empty.
fn parse_file_name(path: &Path) -> Option<(String, String)> {
    let stem = path.file_stem()?.to_str()?;
    let (version, name) = stem.split_once('_')?;
    let valid = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| (version.to_owned(), name.to_owned()))
}

/// The history table, created exactly as the Supabase CLI creates it (older
/// CLIs made only `version`; the columns are added if missing).
const CREATE_HISTORY: &str = "
    create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.schema_migrations (version text not null primary key);
    alter table supabase_migrations.schema_migrations add column if not exists statements text[];
    alter table supabase_migrations.schema_migrations add column if not exists name text;";

/// Serializes concurrent runners migrating the same database.
const LOCK_KEY: i64 = 0x6368_6174_6c6f_6361; // "chatloca"

/// Takes the migration lock until [`unlock`] or the end of the session.
pub async fn lock(client: &Client) -> Result<()> {
    client
        .execute("select pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .context(|| "locking the database for migrations".into())?;
    Ok(())
}

pub async fn unlock(client: &Client) {
    // A broken connection releases the lock by itself.
    let _ = client.execute("select pg_advisory_unlock($1)", &[&LOCK_KEY]).await;
}

/// Applies the migrations of `dir` that the history does not list, in order,
/// and returns them. The caller holds [`lock`].
pub async fn apply_pending(client: &Client, dir: &Path) -> Result<Vec<Migration>> {
    let (migrations, skipped) = list(dir)?;
    for path in skipped {
        warn!(file = %path.display(), "skipped: migration names must be <digits>_<name>.sql");
    }
    client
        .batch_execute(CREATE_HISTORY)
        .await
        .context(|| "creating supabase_migrations.schema_migrations".into())?;
    let applied: Vec<String> = client
        .query("select version from supabase_migrations.schema_migrations", &[])
        .await
        .context(|| "reading applied migrations".into())?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let total = migrations.len();
    let pending: Vec<Migration> = migrations
        .into_iter()
        .filter(|migration| !applied.contains(&migration.version))
        .collect();
    for migration in &pending {
        apply(client, migration).await?;
        info!(version = %migration.version, name = %migration.name, "migration applied");
    }
    info!(
        applied = pending.len(),
        already = total - pending.len(),
        "migrations up to date"
    );
    Ok(pending)
}

async fn apply(client: &Client, migration: &Migration) -> Result<()> {
    let sql = read(&migration.path)?;
    let statements = split_statements(&sql);
    // One transaction: a failing migration leaves nothing behind and is not
    // recorded, so fixing the file and running again retries it.
    client
        .batch_execute("begin")
        .await
        .context(|| "starting a transaction".into())?;
    let result = async {
        client.batch_execute(&sql).await?;
        client
            .execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, $2, $3)",
                &[&migration.version, &migration.name, &statements],
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

/// The statements of a SQL text as the Supabase CLI records them: split at
/// each `;` that is not inside a quoted string or identifier, a dollar-quoted
/// body, a comment, parentheses or a `BEGIN ATOMIC … END` body; each keeps
/// its comments, loses its trailing `;` and surrounding white space, and
/// empty ones are dropped.
pub fn split_statements(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut parens = 0usize;
    let mut previous_word = String::new();
    // Inside BEGIN ATOMIC: how many CASE … END are open.
    let mut atomic: Option<usize> = None;
    let push = |from: usize, to: usize, statements: &mut Vec<String>| {
        let text = sql[from..to].trim_end_matches(';').trim();
        if !text.is_empty() {
            statements.push(text.to_owned());
        }
    };
    while i < bytes.len() {
        let rest = &bytes[i..];
        match bytes[i] {
            b'-' if rest.starts_with(b"--") => {
                i += rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |end| end + 1);
            }
            b'/' if rest.starts_with(b"/*") => {
                let mut depth = 0usize;
                while i < bytes.len() {
                    if bytes[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            quote @ (b'\'' | b'"') => {
                // A doubled quote stands for itself and keeps the string open.
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                let tag_len = rest[1..]
                    .iter()
                    .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_')
                    .count();
                if rest.get(tag_len + 1) == Some(&b'$') {
                    let tag = &rest[..tag_len + 2];
                    let body = &rest[tag.len()..];
                    let close = body.windows(tag.len()).position(|window| window == tag);
                    i += tag.len() + close.map_or(body.len(), |at| at + tag.len());
                } else {
                    i += 1;
                }
            }
            b'\\' => i += 2,
            b'(' => {
                parens += 1;
                i += 1;
            }
            b')' => {
                parens = parens.saturating_sub(1);
                i += 1;
            }
            b';' => {
                i += 1;
                if parens == 0 && atomic.is_none() {
                    push(start, i, &mut statements);
                    start = i;
                }
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let len = rest
                    .iter()
                    .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_')
                    .count();
                let word = sql[i..i + len].to_ascii_lowercase();
                atomic = match (atomic, word.as_str()) {
                    (None, "atomic") if previous_word == "begin" => Some(0),
                    (Some(open), "case") => Some(open + 1),
                    (Some(0), "end") => None,
                    (Some(open), "end") => Some(open - 1),
                    (state, _) => state,
                };
                previous_word = word;
                i += len;
            }
            _ => i += 1,
        }
    }
    push(start, sql.len(), &mut statements);
    statements
}

pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).context(|| format!("reading {}", path.display()))
}

/// `sent` is the text the server saw: the file after `lines_before` added lines.
pub fn sql_file_error(path: &Path, sent: &str, lines_before: usize, error: tokio_postgres::Error) -> Error {
    let place = match error_line(&error, sent) {
        Some(line) => format!("{}:{}", path.display(), line.saturating_sub(lines_before)),
        None => path.display().to_string(),
    };
    Error::Database {
        context: format!("applying {place}"),
        source: error,
    }
}

/// `chat-local db-push`, with the URL from the command line or DATABASE_URL
/// and the workspace's sql/ unless told otherwise.
pub async fn push_command(options: DbPushOptions) -> Result<()> {
    let database_url = match options.database_url.or_else(|| std::env::var("DATABASE_URL").ok()) {
        Some(url) if !url.is_empty() => url,
        _ => {
            return Err(Error::Setup(
                "no database to push to: give --database-url or set DATABASE_URL (the project's connection string)"
                    .into(),
            ))
        }
    };
    let sql_dir = options
        .sql_dir
        .unwrap_or_else(|| workspace::default_sql_dir(&workspace::root()));
    push(&database_url, &sql_dir).await
}

/// Applies the pending migrations of `sql_dir` to the
/// Supabase project's database at `database_url`, nothing else (no local
/// bootstrap, no seed). Safe to run again: recorded versions are skipped.
pub async fn push(database_url: &str, sql_dir: &Path) -> Result<()> {
    // A project's database is across the internet: TLS as libpq's sslmode says, `require` by default.
    let client = crate::postgres::tls::connect(database_url).await?;
    if !has_supabase_auth(&client).await? {
        return Err(Error::Setup(
            "this database has no auth.users, so it is not a Supabase project's: the migrations build on \
             Supabase Auth (a plain Postgres needs sql/bootstrap/local_supabase.sql first, as `chat-local up` does)"
                .into(),
        ));
    }
    lock(&client).await?;
    let applied = apply_pending(&client, &sql_dir.join("migrations")).await;
    unlock(&client).await;
    let applied = applied?;
    for migration in &applied {
        println!("applied {}_{}", migration.version, migration.name);
    }
    println!("{} migration(s) applied; the database is up to date", applied.len());
    Ok(())
}

/// Whether Supabase Auth's objects, which the migrations build on, are there.
pub async fn has_supabase_auth(client: &Client) -> Result<bool> {
    let row = client
        .query_one("select to_regclass('auth.users') is not null", &[])
        .await
        .context(|| "checking for auth.users".into())?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::TestDir;

    #[test]
    fn migrations_run_in_file_name_order_and_odd_names_are_skipped() {
        let dir = TestDir::new("migrations");
        for name in [
            "20240301000000_messages.sql",
            "20240101000000_init.sql",
            "20240201000000_add_rls_policies.sql",
            "2024_.sql",
            "notes.sql",
            "v2_x.sql",
            "README.md",
        ] {
            std::fs::write(dir.path().join(name), "select 1;").unwrap();
        }
        let (migrations, skipped) = list(dir.path()).unwrap();
        let order: Vec<(&str, &str)> = migrations
            .iter()
            .map(|m| (m.version.as_str(), m.name.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("20240101000000", "init"),
                ("20240201000000", "add_rls_policies"),
                ("20240301000000", "messages"),
                ("2024", ""),
            ]
        );
        let skipped: Vec<_> = skipped.iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        assert_eq!(skipped, ["notes.sql", "v2_x.sql"]);
    }

    #[test]
    fn a_missing_directory_has_no_migrations() {
        let (migrations, skipped) = list(Path::new("/nonexistent/sql/migrations")).unwrap();
        assert!(migrations.is_empty() && skipped.is_empty());
    }

    #[test]
    fn statements_split_at_semicolons_outside_quotes_bodies_and_comments() {
        let sql = "-- header; still a comment\ncreate table t (a text default ';');\n\
                   create function f() returns int language plpgsql as $body$ begin return 1; end; $body$;;\n\
                   /* a /* nested; */ block; */ select \"odd;name\", 'it''s; fine', $$x;y$$ from t;\n\
                   create function g() returns int language sql begin atomic select case when true then 1 end; \
                   select 2; end;\n\
                   select (1;2);\n-- trailing comment";
        assert_eq!(
            split_statements(sql),
            [
                "-- header; still a comment\ncreate table t (a text default ';')",
                "create function f() returns int language plpgsql as $body$ begin return 1; end; $body$",
                "/* a /* nested; */ block; */ select \"odd;name\", 'it''s; fine', $$x;y$$ from t",
                "create function g() returns int language sql begin atomic select case when true then 1 end; \
                 select 2; end",
                "select (1;2)",
                "-- trailing comment",
            ]
        );
    }

    #[test]
    fn the_migrations_split_into_statements_that_each_end_where_sql_does() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql/migrations");
        let (migrations, _) = list(&dir).unwrap();
        assert_eq!(migrations.first().map(|m| m.name.as_str()), Some("baseline"));
        for migration in &migrations {
            let statements = split_statements(&read(&migration.path).unwrap());
            // No statement ends inside a function body: each has its $$ in pairs.
            for statement in &statements {
                assert_eq!(statement.matches("$$").count() % 2, 0, "{statement}");
            }
        }
        let baseline = split_statements(&read(&migrations[0].path).unwrap());
        assert!(baseline.iter().any(|s| s.contains("create table public.messages")));
    }
}
