//! The database side: the SQL tests of the policies and RPCs (`sql/tests/*.sql`),
//! the schema files and the migrations building the same database, the
//! Supabase advisors' lints, and `chat-local db-push`. All against the test
//! stack's Postgres; the databases made here are dropped again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::stack;
use tokio_postgres::Client;
use uuid::Uuid;

fn sql_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sql")
}

/// The `.sql` files of a directory of sql/, in file-name order.
fn sql_files(subdir: &str) -> Vec<PathBuf> {
    let dir = sql_dir().join(subdir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "sql")
                && !path.file_name().unwrap().to_string_lossy().starts_with('_')
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no SQL files in {}", dir.display());
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The migration versions, as the Supabase CLI reads them from file names.
fn migration_versions() -> Vec<String> {
    sql_files("migrations")
        .iter()
        .map(|path| file_name(path).split_once('_').unwrap().0.to_owned())
        .collect()
}

/// The SQL tests count what is in the database (every profile, every direct
/// conversation), while the other tests write to the stack's database at the
/// same time: they get a database of their own, made as the stack makes its
/// own (bootstrap, migrations, seed).
#[tokio::test]
async fn every_sql_test_file_passes() {
    let helpers = std::fs::read_to_string(sql_dir().join("tests/_helpers.sql")).unwrap_or_default();
    let files = sql_files("tests");
    let database = ScratchDatabase::create("sql_tests").await;
    database.bootstrap().await;
    let pushed = db_push(&database);
    assert!(
        pushed.status.success(),
        "db-push: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let db = database.connect().await;
    run_file(&db, &sql_dir().join("seed.sql")).await;
    let mut failures = Vec::new();
    for file in &files {
        let sql = std::fs::read_to_string(file).unwrap();
        let result = db.batch_execute(&format!("begin;\n{helpers}\n{sql}\n")).await;
        db.batch_execute("rollback").await.unwrap();
        if let Err(error) = result {
            let detail = error
                .as_db_error()
                .map(|e| e.message().to_string())
                .unwrap_or(error.to_string());
            failures.push(format!("{}: {detail}", file_name(file)));
        }
    }
    drop(db);
    database.drop_now().await;
    assert!(failures.is_empty(), "SQL tests failed:\n{}", failures.join("\n"));
    println!("{} SQL test files passed", files.len());
}

/// A fresh database on the stack's server, dropped by [`ScratchDatabase::drop_now`].
struct ScratchDatabase {
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create(label: &str) -> Self {
        let name = format!("chat_{label}_{}", Uuid::new_v4().simple());
        stack()
            .db()
            .await
            .batch_execute(&format!("create database {name}"))
            .await
            .unwrap();
        let (server, _) = stack().info.database_url.rsplit_once('/').unwrap();
        let url = format!("{server}/{name}");
        Self { name, url }
    }

    async fn connect(&self) -> Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// What a Supabase project has before any migration. One at a time: the
    /// bootstrap also (re)creates cluster-wide roles and their grants, which
    /// two concurrent runs would update at once ("tuple concurrently updated").
    async fn bootstrap(&self) {
        static CLUSTER_WIDE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = CLUSTER_WIDE.lock().await;
        run_file(&self.connect().await, &sql_dir().join("bootstrap/local_supabase.sql")).await;
    }

    async fn drop_now(self) {
        stack()
            .db()
            .await
            .batch_execute(&format!("drop database {} with (force)", self.name))
            .await
            .unwrap();
    }
}

/// A file in one transaction, as the runners apply them.
async fn run_file(client: &Client, path: &Path) {
    let sql = std::fs::read_to_string(path).unwrap();
    if let Err(error) = client.batch_execute(&format!("begin;\n{sql}\n;commit;")).await {
        let detail = error
            .as_db_error()
            .map(|e| e.message().to_string())
            .unwrap_or(error.to_string());
        panic!("{}: {detail}", path.display());
    }
}

fn chat_local(args: &[&str]) -> std::process::Output {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    Command::new(target.join("debug/chat-local"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run chat-local (cargo build --workspace --bins --examples first)")
}

fn db_push(database: &ScratchDatabase) -> std::process::Output {
    chat_local(&[
        "db-push",
        "--database-url",
        &database.url,
        "--sql-dir",
        sql_dir().to_str().unwrap(),
    ])
}

/// pg_dump of the same major version as the servers chat-local runs
/// (Debian keeps one per version), else the one on PATH.
fn pg_dump() -> PathBuf {
    let newest = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|entries| {
        entries
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let major: u32 = entry.file_name().to_str()?.parse().ok()?;
                let program = entry.path().join("bin/pg_dump");
                program.exists().then_some((major, program))
            })
            .max_by_key(|(major, _)| *major)
    });
    newest.map(|(_, program)| program).unwrap_or_else(|| "pg_dump".into())
}

/// The schema of a database as pg_dump writes it, without what differs
/// between two dumps of equal databases (the dump's comments, session
/// settings and its random \restrict key) and without the migration history.
fn schema_dump(database: &ScratchDatabase) -> String {
    let output = Command::new(pg_dump())
        .args([
            "--schema-only",
            "--no-owner",
            "--exclude-schema=supabase_migrations",
            "--dbname",
            &database.url,
        ])
        .output()
        .expect("run pg_dump");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            !(line.starts_with("--")
                || line.starts_with("SET ")
                || line.starts_with("SELECT pg_catalog.set_config")
                || line.starts_with("\\restrict")
                || line.starts_with("\\unrestrict"))
        })
        .collect();
    let mut normalized = kept.join("\n");
    while normalized.contains("\n\n\n") {
        normalized = normalized.replace("\n\n\n", "\n\n");
    }
    normalized
}

/// `diff -u` of two texts, for a failure message.
fn unified_diff(left_label: &str, left: &str, right_label: &str, right: &str) -> String {
    let dir = std::env::temp_dir().join(format!("chat-schema-diff-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join(left_label), dir.join(right_label));
    std::fs::write(&a, left).unwrap();
    std::fs::write(&b, right).unwrap();
    let output = Command::new("diff").arg("-u").arg(&a).arg(&b).output();
    let _ = std::fs::remove_dir_all(&dir);
    match output {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(_) => {
            let line = left.lines().zip(right.lines()).position(|(l, r)| l != r).unwrap_or(0);
            format!("(no diff program) first difference at line {}", line + 1)
        }
    }
}

/// sql/schemas/ says what the database is; the migrations are how a project
/// gets there. Applied to two fresh databases, they must give the same one.
#[tokio::test]
async fn the_schema_files_and_the_migrations_build_the_same_database() {
    let from_schemas = ScratchDatabase::create("from_schemas").await;
    from_schemas.bootstrap().await;
    let client = from_schemas.connect().await;
    for file in sql_files("schemas") {
        run_file(&client, &file).await;
    }
    drop(client);

    let from_migrations = ScratchDatabase::create("from_migrations").await;
    from_migrations.bootstrap().await;
    let pushed = db_push(&from_migrations);
    assert!(
        pushed.status.success(),
        "db-push: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    let (schemas, migrations) = (schema_dump(&from_schemas), schema_dump(&from_migrations));
    from_schemas.drop_now().await;
    from_migrations.drop_now().await;
    assert!(
        schemas.contains("CREATE TABLE public.messages"),
        "the dump shows the schema:\n{schemas}"
    );
    assert!(
        schemas == migrations,
        "sql/schemas/ and sql/migrations/ give different databases: change both (see sql/README.md)\n{}",
        unified_diff("from-schemas.sql", &schemas, "from-migrations.sql", &migrations)
    );
}

async fn recorded_migrations(client: &Client) -> Vec<(String, String, Vec<String>)> {
    client
        .query(
            "select version, name, statements from supabase_migrations.schema_migrations order by version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

/// `chat-local db-push` on what a new Supabase project is: every migration
/// applied and recorded where the Supabase CLI records them, no seed data; a
/// second push applies nothing and changes no record.
#[tokio::test]
async fn db_push_applies_each_migration_once_and_records_it_as_the_supabase_cli_does() {
    let project = ScratchDatabase::create("push").await;
    project.bootstrap().await;
    let versions = migration_versions();

    let first = db_push(&project);
    assert!(
        first.status.success(),
        "db-push: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains(&format!("{} migration(s) applied", versions.len())),
        "{stdout}"
    );

    let client = project.connect().await;
    let recorded = recorded_migrations(&client).await;
    let recorded_versions: Vec<String> = recorded.iter().map(|(version, _, _)| version.clone()).collect();
    assert_eq!(recorded_versions, versions);
    for ((_, name, statements), file) in recorded.iter().zip(sql_files("migrations")) {
        assert!(
            file_name(&file).ends_with(&format!("_{name}.sql")),
            "{name} recorded for {}",
            file.display()
        );
        assert!(!statements.is_empty() && statements.iter().all(|s| !s.trim().is_empty() && !s.ends_with(';')));
    }
    let baseline = &recorded[0].2;
    // Split per statement, comments kept with the statement they precede, as the CLI splits.
    let messages = baseline
        .iter()
        .find(|s| s.contains("create table public.messages ("))
        .expect("messages table");
    assert!(
        !messages.contains("create table public.conversation_events"),
        "one statement per table"
    );
    let users: i64 = client
        .query_one("select count(*) from auth.users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0, "db-push must not apply the seed");
    let tables: i64 = client
        .query_one("select count(*) from pg_tables where schemaname = 'public'", &[])
        .await
        .unwrap()
        .get(0);
    // Every table the migrations create, and only those.
    let created = recorded
        .iter()
        .flat_map(|(_, _, statements)| statements)
        .filter(|s| s.contains("create table public."))
        .count();
    assert_eq!(tables as usize, created);

    let second = db_push(&project);
    assert!(
        second.status.success(),
        "db-push again: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("0 migration(s) applied"), "{stdout}");
    assert_eq!(recorded_migrations(&client).await, recorded);
    drop(client);
    project.drop_now().await;
}

/// A database without Supabase Auth is not a Supabase project: db-push
/// refuses before changing anything.
#[tokio::test]
async fn db_push_refuses_a_database_that_is_not_a_supabase_project() {
    let plain = ScratchDatabase::create("plain").await;
    let pushed = db_push(&plain);
    let stderr = String::from_utf8_lossy(&pushed.stderr).into_owned();
    let client = plain.connect().await;
    let history: bool = client
        .query_one(
            "select to_regclass('supabase_migrations.schema_migrations') is not null",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    drop(client);
    plain.drop_now().await;
    assert!(!pushed.status.success());
    assert!(stderr.contains("auth.users"), "{stderr}");
    assert!(!history, "nothing recorded");
}

/// db-push sends nothing in clear where TLS is asked for: the test server has
/// no TLS, so `sslmode=require` and `verify-full` stop before logging in and
/// say why, while `sslmode=disable` (as this machine's default, which the
/// tests above use) logs in and reaches the check for Supabase Auth.
#[tokio::test]
async fn db_push_refuses_a_server_without_tls_when_tls_is_asked_for() {
    let plain = ScratchDatabase::create("tls").await;
    let push = |sslmode: &str| {
        let pushed = chat_local(&[
            "db-push",
            "--database-url",
            &format!("{}?sslmode={sslmode}", plain.url),
            "--sql-dir",
            sql_dir().to_str().unwrap(),
        ]);
        (
            pushed.status.success(),
            String::from_utf8_lossy(&pushed.stderr).into_owned(),
        )
    };
    let outcomes = [push("require"), push("verify-full"), push("disable")];
    plain.drop_now().await;
    for (pushed, stderr) in &outcomes[..2] {
        assert!(!pushed);
        assert!(stderr.contains("server does not support TLS"), "{stderr}");
        assert!(
            stderr.contains("add sslmode=disable to the connection string only"),
            "{stderr}"
        );
        assert!(!stderr.contains("auth.users"), "refused before logging in: {stderr}");
    }
    let (pushed, stderr) = &outcomes[2];
    assert!(!pushed);
    assert!(stderr.contains("auth.users"), "{stderr}");
}

/// The stack migrates its database the same way: every migration recorded once.
#[tokio::test]
async fn the_local_stack_records_its_migrations() {
    let recorded = recorded_migrations(&stack().db().await).await;
    let versions: Vec<String> = recorded.iter().map(|(version, _, _)| version.clone()).collect();
    assert_eq!(versions, migration_versions());
    assert!(recorded.iter().all(|(_, _, statements)| !statements.is_empty()));
}

/// One advisor finding: `name object` is how sql/lints/allow.txt names it.
struct Finding {
    name: String,
    level: String,
    object: String,
    detail: String,
}

impl Finding {
    fn key(&self) -> String {
        format!("{} {}", self.name, self.object)
    }
}

/// The allow-list: `<lint name> <object>: <reason>` per line.
fn allowed_warnings() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(sql_dir().join("lints/allow.txt")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, reason) = line
                .rsplit_once(": ")
                .unwrap_or_else(|| panic!("no reason given: {line}"));
            assert!(!reason.trim().is_empty(), "no reason given: {line}");
            (key.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

/// The Supabase advisors' lints on the migrated database, with the schemas
/// PostgREST exposes: no ERROR, and every WARN either fixed or allowed with a
/// reason. An allow-list line that matches nothing fails too, so the list
/// never outlives what it excuses.
#[tokio::test]
async fn the_supabase_advisors_find_no_error_and_only_allowed_warnings() {
    let db = stack().db().await;
    db.batch_execute("set pgrst.db_schemas = 'public'").await.unwrap();
    let query = std::fs::read_to_string(sql_dir().join("lints/advisors.sql")).unwrap();
    let findings: Vec<Finding> = db
        .query(&query, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| Finding {
            name: row.get(0),
            level: row.get(1),
            object: row.get(2),
            detail: row.get(3),
        })
        .collect();
    for finding in &findings {
        println!("{:5} {}: {}", finding.level, finding.key(), finding.detail);
    }

    let errors: Vec<String> = findings
        .iter()
        .filter(|f| f.level == "ERROR")
        .map(Finding::key)
        .collect();
    assert!(errors.is_empty(), "advisor errors:\n{}", errors.join("\n"));

    let allowed = allowed_warnings();
    let allowed_keys: BTreeSet<&str> = allowed.iter().map(|(key, _)| key.as_str()).collect();
    let warnings: BTreeSet<String> = findings
        .iter()
        .filter(|f| f.level == "WARN")
        .map(Finding::key)
        .collect();
    let unexplained: Vec<&String> = warnings
        .iter()
        .filter(|key| !allowed_keys.contains(key.as_str()))
        .collect();
    assert!(
        unexplained.is_empty(),
        "advisor warnings neither fixed nor in sql/lints/allow.txt:\n{}",
        unexplained.iter().map(|k| k.as_str()).collect::<Vec<_>>().join("\n")
    );
    let stale: Vec<&&str> = allowed_keys.iter().filter(|key| !warnings.contains(**key)).collect();
    assert!(
        stale.is_empty(),
        "sql/lints/allow.txt lists warnings the advisors no longer report: {stale:?}"
    );
}

/// The advisors' query finds what it is written to find: a table the API can
/// read without RLS is an ERROR, and a second permissive policy a WARN.
#[tokio::test]
async fn the_advisors_report_an_exposed_table_and_overlapping_policies() {
    let db = stack().db().await;
    let query = std::fs::read_to_string(sql_dir().join("lints/advisors.sql")).unwrap();
    db.batch_execute(
        "begin;
         set local pgrst.db_schemas = 'public';
         create table public.lint_probe (id int primary key, password text);
         grant select on public.lint_probe to authenticated;",
    )
    .await
    .unwrap();
    let exposed: Vec<(String, String)> = db
        .query(&query, &[])
        .await
        .unwrap()
        .iter()
        .filter(|row| row.get::<_, String>(2) == "public.lint_probe")
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    db.batch_execute(
        "alter table public.lint_probe enable row level security;
         create policy a on public.lint_probe for select to authenticated using (id > 0);
         create policy b on public.lint_probe for select to authenticated using (id < 0);",
    )
    .await
    .unwrap();
    let overlapping: Vec<(String, String)> = db
        .query(&query, &[])
        .await
        .unwrap()
        .iter()
        .filter(|row| row.get::<_, String>(2).starts_with("public.lint_probe"))
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    db.batch_execute("rollback").await.unwrap();
    for lint in ["rls_disabled_in_public", "sensitive_columns_exposed"] {
        assert!(
            exposed.contains(&(lint.into(), "ERROR".into())),
            "{lint} not reported: {exposed:?}"
        );
    }
    assert_eq!(
        overlapping,
        [("multiple_permissive_policies".to_string(), "WARN".to_string())]
    );
}
