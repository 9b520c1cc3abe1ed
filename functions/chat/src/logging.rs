//! The functions' log lines: Lambda's advanced logging controls
//! (`AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT`), else `RUST_LOG`.
//!
//! What `lambda_runtime`'s default subscriber does, filtered by target and
//! level (`Targets`) instead of `EnvFilter`, whose span and field matching
//! brings a regular-expression engine into every function for directives
//! nobody sets: half a megabyte of the executable.

use std::str::FromStr;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the process's subscriber, writing to stdout (CloudWatch Logs on
/// Lambda): JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`, else text. Every
/// line inside an invocation carries its request id (the runtime's span).
pub fn init() {
    let var = |name: &str| std::env::var(name).ok();
    let (filter, problem) = level_filter(var("AWS_LAMBDA_LOG_LEVEL").as_deref(), var("RUST_LOG").as_deref());
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    // Only a second call fails, and the first subscriber then stays.
    if subscriber(json, filter, std::io::stdout).try_init().is_ok() {
        if let Some(problem) = problem {
            tracing::warn!("{problem}");
        }
    }
}

/// Lines without time (CloudWatch stamps them) or target, and no colours.
fn subscriber<W>(json: bool, filter: Targets, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let text = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(writer);
    if json {
        Box::new(text.json().finish().with(filter))
    } else {
        Box::new(text.finish().with(filter))
    }
}

/// The filter from the two variables, and what was wrong with them, if
/// anything: a bad value is ignored (the function still starts, and says so).
///
/// `AWS_LAMBDA_LOG_LEVEL` is a level (Lambda's `FATAL` is `ERROR` here) and
/// is the default for every target; `RUST_LOG` is `level` or
/// `target=level,...`, and its targets keep their own levels. Without
/// either, `INFO`.
fn level_filter(aws_log_level: Option<&str>, rust_log: Option<&str>) -> (Targets, Option<String>) {
    let mut problems = Vec::new();
    let aws_level = aws_log_level.filter(|l| !l.trim().is_empty()).and_then(|level| {
        let level = level.trim();
        let parsed = if level.eq_ignore_ascii_case("fatal") {
            Ok(LevelFilter::ERROR)
        } else {
            LevelFilter::from_str(level)
        };
        parsed
            .inspect_err(|_| {
                problems.push(format!(
                    "AWS_LAMBDA_LOG_LEVEL={level:?} is not a level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL); ignored"
                ))
            })
            .ok()
    });
    let targets = rust_log
        .filter(|directives| !directives.trim().is_empty())
        .and_then(|directives| {
            Targets::from_str(directives)
                .inspect_err(|e| {
                    problems.push(format!(
                        "RUST_LOG={directives:?} is not `level` or `target=level,...` ({e}); ignored"
                    ))
                })
                .ok()
        })
        .unwrap_or_default();
    let default = aws_level.or(targets.default_level()).unwrap_or(LevelFilter::INFO);
    let problem = (!problems.is_empty()).then(|| problems.join("; "));
    (targets.with_default(default), problem)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing::Level;

    use super::*;

    fn enabled(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    /// What a subscriber wrote, line by line.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_an_invocation(json: bool) -> Vec<String> {
        let captured = Captured::default();
        let writer = captured.clone();
        let (filter, _) = level_filter(None, None);
        tracing::subscriber::with_default(subscriber(json, filter, move || writer.clone()), || {
            // The span lambda_runtime opens around each invocation.
            let span = tracing::info_span!("Lambda runtime invoke", requestId = "8f6e-request");
            let _entered = span.enter();
            tracing::info!(connection_id = "abc=", "posted");
            tracing::debug!("below the level");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn json_lines_carry_the_message_its_fields_and_the_request_id() {
        let lines = log_an_invocation(true);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["message"], "posted");
        assert_eq!(line["fields"]["connection_id"], "abc=");
        assert_eq!(line["span"]["requestId"], "8f6e-request");
        assert!(line.get("timestamp").is_none() && line.get("target").is_none());
    }

    #[test]
    fn text_lines_are_plain() {
        let lines = log_an_invocation(false);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert!(line.contains("INFO") && line.contains("requestId=\"8f6e-request\"") && line.contains("posted"));
        assert!(!line.contains('\u{1b}'), "no colour codes: {line:?}");
    }

    #[test]
    fn info_without_either_variable() {
        let (filter, problem) = level_filter(None, None);
        assert!(enabled(&filter, "chat", Level::INFO));
        assert!(!enabled(&filter, "chat", Level::DEBUG));
        assert_eq!(problem, None);
    }

    #[test]
    fn lambdas_level_is_the_default_and_fatal_means_error() {
        let (filter, _) = level_filter(Some("DEBUG"), None);
        assert!(enabled(&filter, "hyper", Level::DEBUG));
        assert!(!enabled(&filter, "hyper", Level::TRACE));
        let (filter, problem) = level_filter(Some("FATAL"), None);
        assert!(enabled(&filter, "chat", Level::ERROR));
        assert!(!enabled(&filter, "chat", Level::WARN));
        assert_eq!(problem, None);
    }

    #[test]
    fn rust_log_targets_keep_their_levels_over_the_default() {
        let (filter, _) = level_filter(None, Some("chat=debug"));
        assert!(enabled(&filter, "chat::store", Level::DEBUG));
        assert!(enabled(&filter, "hyper", Level::INFO));
        assert!(!enabled(&filter, "hyper", Level::DEBUG));

        let (filter, _) = level_filter(Some("warn"), Some("chat=trace,error"));
        assert!(enabled(&filter, "chat", Level::TRACE));
        assert!(
            enabled(&filter, "hyper", Level::WARN),
            "AWS_LAMBDA_LOG_LEVEL wins over RUST_LOG's default"
        );
        assert!(!enabled(&filter, "hyper", Level::INFO));

        let (filter, _) = level_filter(None, Some("error"));
        assert!(!enabled(&filter, "chat", Level::WARN));
    }

    #[test]
    fn a_bad_value_is_reported_and_logging_stays_at_info() {
        let (filter, problem) = level_filter(Some("loud"), None);
        assert!(enabled(&filter, "chat", Level::INFO));
        assert!(!enabled(&filter, "chat", Level::DEBUG));
        assert!(problem.unwrap().contains("AWS_LAMBDA_LOG_LEVEL=\"loud\""));

        let (filter, problem) = level_filter(None, Some("chat=[span]=debug"));
        assert!(enabled(&filter, "chat", Level::INFO));
        assert!(problem.unwrap().contains("RUST_LOG="));
    }
}
