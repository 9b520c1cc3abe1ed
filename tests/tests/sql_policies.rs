//! Runs the SQL tests of the RLS policies and RPC grants (`sql/tests/*.sql`)
//! against the test stack's database, each file in a transaction that is
//! rolled back. A file fails by raising an exception.

use std::path::PathBuf;

use chat_e2e::stack;

fn sql_tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sql/tests")
}

#[tokio::test]
async fn every_sql_test_file_passes() {
    let dir = sql_tests_dir();
    let helpers = std::fs::read_to_string(dir.join("_helpers.sql")).unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("sql/tests exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "sql")
                && !path.file_name().unwrap().to_string_lossy().starts_with('_')
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no SQL tests found in {}", dir.display());

    let db = stack().db().await;
    let mut failures = Vec::new();
    for file in &files {
        let sql = std::fs::read_to_string(file).unwrap();
        let result = db.batch_execute(&format!("begin;\n{helpers}\n{sql}\n")).await;
        db.batch_execute("rollback").await.unwrap();
        if let Err(error) = result {
            let detail = error.as_db_error().map(|e| e.message().to_string()).unwrap_or(error.to_string());
            failures.push(format!("{}: {detail}", file.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(failures.is_empty(), "SQL tests failed:\n{}", failures.join("\n"));
    println!("{} SQL test files passed", files.len());
}
