//! Every statement shape in PostgreSQL's dialect, compared with `tests/golden/statements.txt`
//! (`UPDATE_EXPECT=1 cargo test -p memgpt-pg --test statements` rewrites it: expect-test).

use memgpt_conformance::statement_shapes;
use memgpt_pg::PgStore;

#[test]
fn statement_shapes_match_the_golden_text() {
    expect_test::expect_file!["golden/statements.txt"].assert_eq(&statement_shapes::<PgStore>());
}
