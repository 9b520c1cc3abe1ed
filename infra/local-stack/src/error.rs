//! One error type for the runner: every variant says what was being done, so
//! the message printed on exit is enough to act on without a backtrace.

use std::fmt::Write as _;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },

    #[error("{context}: {}", describe_db_error(.source))]
    Database {
        context: String,
        source: tokio_postgres::Error,
    },

    /// A step of bringing the stack up failed; the message explains why and
    /// usually what to do about it.
    #[error("{0}")]
    Setup(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches "what we were doing" to lower-level errors.
pub trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, tokio_postgres::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Database {
            context: context(),
            source,
        })
    }
}

/// tokio-postgres prints a server error as just "db error"; the useful parts
/// (message, detail, hint, where) live in the `DbError` behind it.
pub fn describe_db_error(error: &tokio_postgres::Error) -> String {
    let Some(db) = error.as_db_error() else {
        return error.to_string();
    };
    let mut text = format!("{} ({})", db.message(), db.code().code());
    if let Some(detail) = db.detail() {
        let _ = write!(text, "\n  detail: {detail}");
    }
    if let Some(hint) = db.hint() {
        let _ = write!(text, "\n  hint: {hint}");
    }
    if let Some(place) = db.where_() {
        let _ = write!(text, "\n  where: {place}");
    }
    text
}

/// Where in a SQL text a server error points, as "line N", when it says.
pub fn error_line(error: &tokio_postgres::Error, sql: &str) -> Option<usize> {
    use tokio_postgres::error::ErrorPosition;
    let position = match error.as_db_error()?.position()? {
        ErrorPosition::Original(position) => *position as usize,
        ErrorPosition::Internal { .. } => return None,
    };
    // The server counts characters from 1.
    let before: String = sql.chars().take(position.saturating_sub(1)).collect();
    Some(before.matches('\n').count() + 1)
}
