//! Database round trips per operation, counted at Postgres by
//! `pg_stat_statements` (schema `extensions`, preloaded by the local stack):
//! reset before an operation runs N times, read after, divide by N. Only the
//! API's statements count — the benchmark's own connection is left out.

use serde::Serialize;

/// The RPCs of the notification function (sql/schemas/65_push.sql).
const HANDED_OFF_RPCS: [&str; 2] = ["notification_targets", "remove_push_subscriptions"];
/// Statement texts in the report are cut to this many characters.
const SHOWN_CHARS: usize = 90;

#[derive(Debug, Clone, Serialize)]
pub struct RoundTrips {
    pub operations: u64,
    /// Statements Postgres executed per operation (top-level; what runs
    /// inside a function is part of its call).
    pub per_operation: f64,
    /// Transactions (`BEGIN`) per operation: one per PostgREST request.
    pub transactions_per_operation: f64,
    /// Calls of the API's functions (`"public"."<rpc>"`) per operation: the
    /// work itself; the other statements are PostgREST's set-up around it.
    pub rpc_calls_per_operation: f64,
    /// Calls of the notification function's RPCs (`notification_targets`,
    /// `remove_push_subscriptions`) per operation, included in the counts
    /// above: the work a send hands off, done after it by another function,
    /// each call a transaction of its own.
    pub handed_off_rpc_calls_per_operation: f64,
    /// Each distinct statement with its calls per operation, most frequent first.
    pub statements: Vec<StatementShare>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementShare {
    pub statement: String,
    pub per_operation: f64,
}

pub struct StatementCounter<'a> {
    db: &'a tokio_postgres::Client,
}

impl<'a> StatementCounter<'a> {
    /// `None` when the database has no `pg_stat_statements` (e.g. a
    /// `DATABASE_URL` server that does not preload it).
    pub async fn new(db: &'a tokio_postgres::Client) -> Option<StatementCounter<'a>> {
        let row = db
            .query_one(
                "select exists (select 1 from pg_extension where extname = 'pg_stat_statements')",
                &[],
            )
            .await
            .ok()?;
        row.get::<_, bool>(0).then_some(StatementCounter { db })
    }

    pub async fn reset(&self) -> Result<(), String> {
        self.db
            .execute("select extensions.pg_stat_statements_reset()", &[])
            .await
            .map(|_| ())
            .map_err(|e| format!("resetting pg_stat_statements: {e}"))
    }

    /// What ran since the last reset, as round trips per one of `operations`.
    pub async fn read(&self, operations: u64) -> Result<RoundTrips, String> {
        let rows = self
            .db
            .query(
                "select s.query, sum(s.calls)::bigint as calls
                   from extensions.pg_stat_statements s
                  where s.dbid = (select oid from pg_database where datname = current_database())
                    and s.userid <> (select oid from pg_roles where rolname = current_user)
                  group by s.query
                  order by calls desc, s.query",
                &[],
            )
            .await
            .map_err(|e| format!("reading pg_stat_statements: {e}"))?;
        let per = |calls: i64| {
            let ratio = if operations == 0 {
                0.0
            } else {
                calls as f64 / operations as f64
            };
            (ratio * 1000.0).round() / 1000.0
        };
        let calls = |matching: &dyn Fn(&str) -> bool| -> i64 {
            rows.iter()
                .filter(|row| matching(row.get::<_, &str>(0)))
                .map(|row| row.get::<_, i64>(1))
                .sum()
        };
        let statements: Vec<StatementShare> = rows
            .iter()
            .map(|row| StatementShare {
                statement: shorten(row.get(0)),
                per_operation: per(row.get(1)),
            })
            .collect();
        Ok(RoundTrips {
            operations,
            per_operation: per(calls(&|_| true)),
            transactions_per_operation: per(calls(&is_begin)),
            rpc_calls_per_operation: per(calls(&is_rpc_call)),
            handed_off_rpc_calls_per_operation: per(calls(&is_handed_off_rpc_call)),
            statements,
        })
    }
}

fn is_begin(statement: &str) -> bool {
    let word = statement.split_whitespace().next().unwrap_or("");
    word.eq_ignore_ascii_case("begin") || word.eq_ignore_ascii_case("start")
}

/// PostgREST calls a function as `… FROM "public"."name"(…)`.
fn is_rpc_call(statement: &str) -> bool {
    statement.contains("\"public\".\"")
}

/// The notification function's calls: the RPCs only it makes.
fn is_handed_off_rpc_call(statement: &str) -> bool {
    HANDED_OFF_RPCS
        .iter()
        .any(|rpc| statement.contains(&format!("\"public\".\"{rpc}\"(")))
}

/// One line, whitespace collapsed, at most [`SHOWN_CHARS`] characters.
fn shorten(statement: &str) -> String {
    let line = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= SHOWN_CHARS {
        return line;
    }
    let cut: String = line.chars().take(SHOWN_CHARS - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_and_rpc_calls_are_told_apart() {
        assert!(is_begin("BEGIN") && is_begin("begin isolation level read committed"));
        assert!(!is_begin("COMMIT"));
        assert!(is_rpc_call(
            r#"SELECT * FROM "public"."send_message"("p_body" => $1::text)"#
        ));
        assert!(!is_rpc_call("SELECT set_config($1, $2, true)"));
        assert!(is_handed_off_rpc_call(
            r#"SELECT * FROM "public"."notification_targets"("p_message_id" => $1::uuid)"#
        ));
        assert!(is_handed_off_rpc_call(
            r#"SELECT * FROM "public"."remove_push_subscriptions"("p_endpoints" => $1)"#
        ));
        assert!(!is_handed_off_rpc_call(
            r#"SELECT * FROM "public"."send_message"("p_body" => $1::text)"#
        ));
    }

    #[test]
    fn statements_are_shown_on_one_short_line() {
        assert_eq!(shorten("select\n   1\tfrom x"), "select 1 from x");
        let long = "x ".repeat(100);
        let shown = shorten(&long);
        assert_eq!(shown.chars().count(), SHOWN_CHARS);
        assert!(shown.ends_with('…'));
    }
}
