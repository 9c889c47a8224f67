//! Every statement shape in SQLite's dialect, compared with `tests/golden/statements.txt`
//! (`UPDATE_EXPECT=1 cargo test -p memgpt-sqlite --test statements` rewrites it: expect-test; the shapes come from `memgpt_conformance::statement_shapes`).

use memgpt_conformance::statement_shapes;
use memgpt_sqlite::SqliteStore;

#[test]
fn statement_shapes_match_the_golden_text() {
    expect_test::expect_file!["golden/statements.txt"]
        .assert_eq(&statement_shapes::<SqliteStore>());
}
