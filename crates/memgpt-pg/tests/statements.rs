//! Every statement shape in PostgreSQL's dialect, compared with `tests/golden/statements.txt`
//! (`MEMGPT_BLESS=1 cargo test -p memgpt-pg --test statements` rewrites it).

use memgpt_core::backend::{check_golden, statement_shapes};
use memgpt_pg::PgStore;

#[test]
fn statement_shapes_match_the_golden_text() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/statements.txt");
    if let Err(e) = check_golden(&path, &statement_shapes::<PgStore>()) {
        panic!("{e}");
    }
}
