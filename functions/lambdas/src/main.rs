//! One executable for every function of the template. Each function runs it
//! with its own `Handler` (Lambda passes it as `_HANDLER`), which picks the
//! entry point; the rest of the code and every dependency are shared. One
//! binary is linked once instead of once per function, and every function
//! deploys the same artifact.

mod handlers;

use std::process::ExitCode;

use handlers::HANDLERS;

/// mimalloc instead of glibc's malloc: a fan-out allocates and frees a few
/// hundred small blocks per post, and glibc spent about a quarter of a post's
/// instructions on them (the chat crate's push_cost example, under callgrind).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `_HANDLER` on Lambda and in `sam local`; the first argument when run by hand.
    let name = std::env::var("_HANDLER").ok().or_else(|| std::env::args().nth(1));
    let Some(entry) = name.as_deref().and_then(find) else {
        let known: Vec<&str> = HANDLERS.iter().map(|(name, _)| *name).collect();
        eprintln!(
            "no function is called {:?} (set the function's Handler, or pass a name): {}",
            name.unwrap_or_default(),
            known.join(", ")
        );
        return ExitCode::from(2);
    };
    match entry() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain: a start-up failure is all the log will say.
            let mut cause: Option<&dyn std::error::Error> = Some(e.as_ref());
            while let Some(error) = cause {
                eprintln!("{error}");
                cause = error.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn find(name: &str) -> Option<handlers::Entry> {
    HANDLERS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, entry)| *entry)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The `Handler` of every function in template.yaml.
    fn template_handlers() -> Vec<String> {
        let template = include_str!("../../../template.yaml");
        template
            .lines()
            .filter_map(|line| line.trim().strip_prefix("Handler:"))
            .map(|value| value.trim().to_string())
            .collect()
    }

    #[test]
    fn every_handler_of_the_template_is_served_here_and_nothing_else() {
        let in_template: BTreeSet<String> = template_handlers().into_iter().collect();
        let served: BTreeSet<String> = HANDLERS.iter().map(|(name, _)| name.to_string()).collect();
        assert_eq!(in_template, served);
        assert_eq!(served.len(), HANDLERS.len(), "a handler name is listed twice");
    }

    #[test]
    fn names_are_found_exactly() {
        assert!(find("ws-send-message").is_some());
        assert!(find("ws-send").is_none());
        assert!(find("bootstrap").is_none());
    }
}
