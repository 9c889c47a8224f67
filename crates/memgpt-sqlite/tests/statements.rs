//! Every statement shape in SQLite's dialect, compared with `tests/golden/statements.txt`
//! (`MEMGPT_BLESS=1 cargo test -p memgpt-sqlite --test statements` rewrites it).

use memgpt_core::backend::{check_golden, statement_shapes};
use memgpt_sqlite::SqliteStore;

#[test]
fn statement_shapes_match_the_golden_text() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/statements.txt");
    if let Err(e) = check_golden(&path, &statement_shapes::<SqliteStore>()) {
        panic!("{e}");
    }
}
