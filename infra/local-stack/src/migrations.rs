//! Which migration files there are and in what order they run, following the
//! Supabase CLI: `<version>_<name>.sql`, the version all digits (a timestamp),
//! applied in file-name order.

use std::path::{Path, PathBuf};

use crate::error::{Context, Result};

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
        let path = entry
            .context(|| format!("listing {}", dir.display()))?
            .path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "sql") {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut migrations = Vec::new();
    let mut skipped = Vec::new();
    for path in files {
        match parse_file_name(&path) {
            Some((version, name)) => migrations.push(Migration {
                version,
                name,
                path,
            }),
            None => skipped.push(path),
        }
    }
    Ok((migrations, skipped))
}

fn parse_file_name(path: &Path) -> Option<(String, String)> {
    let stem = path.file_stem()?.to_str()?;
    let (version, name) = stem.split_once('_')?;
    let valid =
        !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty();
    valid.then(|| (version.to_owned(), name.to_owned()))
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
            "notes.sql",
            "2024_.sql",
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
            ]
        );
        let skipped: Vec<_> = skipped
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(skipped, ["2024_.sql", "notes.sql"]);
    }

    #[test]
    fn a_missing_directory_has_no_migrations() {
        let (migrations, skipped) = list(Path::new("/nonexistent/sql/migrations")).unwrap();
        assert!(migrations.is_empty() && skipped.is_empty());
    }
}
