//! Units of work: many connector calls on one connection inside one transaction.
//!
//! This module holds the rules every backend's unit of work follows, written once over any
//! connection type `C`; the backend supplies its transaction manager ([`TxHooks`]: diesel's,
//! which nests by depth, a savepoint at each level below the transaction):
//!
//! * **Exclusive by construction.** A [`UnitOfWork`] is neither `Send` nor `Sync`, nor is
//!   anything that refers to it (its `Tx`, its connectors): no other thread can reach it.
//!   On its own thread, the caller code that runs inside a call is an `insert_many`
//!   iterator, which must be `Send` (`StorageConnector::insert_many`), so it cannot refer
//!   to the unit of work either (diesel's instrumentation, a tracing subscriber and the
//!   panic hook run there too, but are `'static`: they cannot hold a unit of work). Two calls of one unit of work never run at once, and
//!   a call holds the connection from its start to its end.
//! * **Each call in its own savepoint.** Every connector call inside a unit of work runs
//!   one level deeper in the transaction manager (a savepoint). A call that fails is
//!   rolled back to its savepoint alone and its error is returned to the closure, which may
//!   ignore it: the rest of the unit of work still commits. Without this, PostgreSQL would
//!   abort the whole transaction on the first failed statement and answer the final
//!   `COMMIT` with a rollback that is not an error to the driver.
//! * **A transaction that is gone stays gone.** When rolling back to a savepoint fails (the
//!   server aborted the transaction, SQLite rolled it back by itself after `SQLITE_FULL`,
//!   an I/O error or an interrupt, or the connection was lost), the unit of work is marked
//!   failed: every later call fails at once, so no later write can commit on its own
//!   (SQLite would run it in autocommit mode), and [`run`] returns [`Error::Aborted`]
//!   instead of committing, even when the closure returns `Ok`.
//! * **Unwinding is failing.** A call through which a panic unwinds is rolled back to its
//!   savepoint before the panic goes on, so a closure that catches the panic and returns
//!   `Ok` commits the rest of the unit of work, never half of that call. A panic out of
//!   the closure rolls the transaction back, and the connection is dropped while the panic
//!   unwinds, which makes its pool close it rather than trust its state.
//! * **The closure's error wins.** When the closure fails and the rollback fails too, the
//!   closure's error is returned (the backend's rollback hook logs its own failure, and the
//!   connection, still inside a transaction, is discarded by its pool).

use std::cell::RefCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::error::{Error, Result};

/// The backend's transaction manager, by depth: one level deeper is a savepoint inside
/// the transaction; at the outermost level, commit and rollback end the transaction.
pub struct TxHooks<C> {
    /// Opens a savepoint, one level deeper.
    pub begin: fn(&mut C) -> Result<()>,
    /// Releases the innermost savepoint; at the outermost level, commits.
    pub commit: fn(&mut C) -> Result<()>,
    /// Rolls back to the innermost savepoint; at the outermost level, the transaction.
    pub rollback: fn(&mut C) -> Result<()>,
    /// The levels open now: 1 in the transaction, one more for each savepoint.
    pub depth: fn(&mut C) -> u32,
}

impl<C> Clone for TxHooks<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for TxHooks<C> {}

impl<C> std::fmt::Debug for TxHooks<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxHooks")
    }
}

/// A unit of work in progress: one connection inside one transaction, for the connectors
/// made for it on one thread. See the module documentation for its rules.
pub struct UnitOfWork<C> {
    conn: RefCell<C>,
    failure: RefCell<Option<String>>,
    hooks: TxHooks<C>,
}

impl<C> std::fmt::Debug for UnitOfWork<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitOfWork")
            .field("failure", &self.failure())
            .finish_non_exhaustive()
    }
}

/// Runs `f` as one unit of work on `conn`, which the caller has put inside a transaction:
/// commits when `f` returns `Ok` and no call of the unit of work ended the transaction;
/// rolls back otherwise. A panic inside `f` rolls back and then continues.
///
/// # Errors
/// The error `f` returned; [`Error::Aborted`] when `f` returned `Ok` but the transaction
/// had ended under it; the database's error on commit.
pub fn run<C, T>(
    conn: C,
    hooks: TxHooks<C>,
    f: impl FnOnce(&UnitOfWork<C>) -> Result<T>,
) -> Result<T> {
    let mut conn = conn;
    let top = (hooks.depth)(&mut conn);
    let uow = UnitOfWork {
        conn: RefCell::new(conn),
        failure: RefCell::new(None),
        hooks,
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| f(&uow)));
    uow.expect_depth(&mut uow.conn.borrow_mut(), top);
    let failure = uow.failure();
    let mut conn = uow.conn.into_inner();
    match outcome {
        Ok(Ok(value)) => match failure {
            None => (hooks.commit)(&mut conn).map(|()| value),
            Some(message) => {
                // The transaction is gone already; this only tidies the connection.
                let _ = (hooks.rollback)(&mut conn);
                Err(Error::Aborted { message })
            }
        },
        Ok(Err(e)) => {
            // A failed rollback must not hide the closure's own error.
            let _ = (hooks.rollback)(&mut conn);
            Err(e)
        }
        Err(panic) => {
            let _ = (hooks.rollback)(&mut conn);
            // `conn` drops while the panic unwinds: its pool closes it.
            resume_unwind(panic)
        }
    }
}

impl<C> UnitOfWork<C> {
    /// Why the transaction can no longer commit, once a call has ended it.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Marks the unit of work failed unless the transaction is `depth` levels deep.
    fn expect_depth(&self, conn: &mut C, depth: u32) {
        let left = (self.hooks.depth)(conn);
        if left != depth {
            self.fail(format!(
                "a call left the transaction {left} levels deep instead of {depth}"
            ));
        }
    }

    fn fail(&self, why: String) {
        let mut f = self.failure.borrow_mut();
        if f.is_none() {
            *f = Some(why);
        }
    }

    /// Runs one connector call: `f` on the connection, one level deeper in the transaction
    /// (a savepoint), rolled back to it alone when `f` fails or unwinds. Whatever happens
    /// inside (a savepoint `f` left open, a panic in the transaction manager itself), the
    /// call ends at the depth it started at, or the unit of work can no longer commit.
    ///
    /// # Errors
    /// [`Error::Aborted`] when an earlier call ended the transaction; else `f`'s error, or
    /// the database's on the savepoint.
    pub(crate) fn call<T>(&self, f: impl FnOnce(&mut C) -> Result<T>) -> Result<T> {
        if let Some(message) = self.failure() {
            return Err(Error::Aborted { message });
        }
        // Exclusive by construction (see the module documentation): never borrowed here.
        let Ok(mut conn) = self.conn.try_borrow_mut() else {
            return Err(Error::database("the unit of work's connection is in use"));
        };
        let conn = &mut *conn;
        let base = (self.hooks.depth)(conn);
        let outcome = catch_unwind(AssertUnwindSafe(|| self.savepoint(conn, base, f)));
        self.expect_depth(conn, base);
        match outcome {
            Ok(result) => result,
            Err(panic) => resume_unwind(panic),
        }
    }

    /// `f` in a savepoint opened at depth `base`, released when `f` succeeds, rolled back
    /// to when it fails or unwinds.
    fn savepoint<T>(
        &self,
        conn: &mut C,
        base: u32,
        f: impl FnOnce(&mut C) -> Result<T>,
    ) -> Result<T> {
        (self.hooks.begin)(conn)
            .inspect_err(|e| self.fail(format!("starting a savepoint failed: {e}")))?;
        let outcome = catch_unwind(AssertUnwindSafe(|| f(conn)));
        // Savepoints `f` left open (a panic inside a nested transaction) are rolled back.
        while (self.hooks.depth)(conn) > base + 1 {
            if let Err(e) = (self.hooks.rollback)(conn) {
                self.fail(format!("rolling back a savepoint left open failed: {e}"));
                break;
            }
        }
        match outcome {
            Ok(Ok(value)) => {
                (self.hooks.commit)(conn)
                    .inspect_err(|e| self.fail(format!("releasing a savepoint failed: {e}")))?;
                Ok(value)
            }
            Ok(Err(e)) => {
                self.undo(conn, &e.to_string());
                Err(e)
            }
            Err(panic) => {
                self.undo(conn, "a panic unwound through the call");
                resume_unwind(panic)
            }
        }
    }

    /// Rolls the running call back to its savepoint after `why`; when that fails, the
    /// transaction is gone and the unit of work can no longer commit.
    fn undo(&self, conn: &mut C, why: &str) {
        if let Err(undo) = (self.hooks.rollback)(conn) {
            self.fail(format!(
                "{why}; the transaction did not survive it (rolling back to the call's \
                 savepoint failed: {undo})"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A connection that records what its transaction manager is asked; rolling back to a
    /// savepoint fails when `gone`.
    #[derive(Default)]
    struct Log {
        sql: Vec<String>,
        depth: usize,
        gone: bool,
    }

    std::thread_local! {
        /// Whether the transaction of this thread's last unit of work was committed.
        static COMMITTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    fn push(c: &mut Log, sql: &str) -> Result<()> {
        c.sql.push(sql.to_owned());
        Ok(())
    }

    fn hooks() -> TxHooks<Log> {
        TxHooks {
            begin: |c| {
                c.depth += 1;
                push(c, "SAVEPOINT")
            },
            commit: |c| {
                c.depth = c.depth.saturating_sub(1);
                if c.depth == 0 {
                    COMMITTED.with(|done| done.set(true));
                }
                push(c, if c.depth == 0 { "COMMIT" } else { "RELEASE" })
            },
            rollback: |c| {
                c.depth = c.depth.saturating_sub(1);
                c.sql.push("ROLLBACK".to_owned());
                if c.gone || c.depth == 0 {
                    return Err(Error::database("no such savepoint"));
                }
                Ok(())
            },
            depth: |c| u32::try_from(c.depth).unwrap_or(u32::MAX),
        }
    }

    /// A connection inside its transaction (depth 1).
    fn begun(gone: bool) -> Log {
        Log {
            depth: 1,
            gone,
            ..Log::default()
        }
    }

    #[test]
    fn a_failed_call_rolls_back_alone_and_the_rest_commits() {
        let out = run(begun(false), hooks(), |u| {
            let r: Result<()> = u.call(|_| Err(Error::database("boom")));
            assert!(r.is_err());
            u.call(|c| push(c, "INSERT"))?;
            Ok(7)
        });
        assert_eq!(out.unwrap(), 7);
    }

    #[test]
    fn a_lost_transaction_fails_every_later_call_and_the_commit() {
        let out = run(begun(true), hooks(), |u| {
            let _ = u.call(|_| -> Result<()> { Err(Error::database("disk full")) });
            let later = u.call(|c| push(c, "INSERT"));
            assert!(matches!(later.unwrap_err(), crate::Error::Aborted { .. }));
            Ok(())
        });
        let e = out.unwrap_err();
        assert!(matches!(e, crate::Error::Aborted { .. }));
        assert!(e.to_string().contains("disk full"), "{e}");
    }

    #[test]
    fn the_closures_error_survives_a_failed_rollback() {
        let out: Result<()> = run(begun(false), hooks(), |_| {
            Err(Error::invalid("text", "mine"))
        });
        assert_eq!(out.unwrap_err().to_string(), "invalid text: mine");
    }

    #[test]
    fn a_call_that_unwinds_is_rolled_back_to_its_savepoint() {
        let out = run(begun(false), hooks(), |u| {
            let caught = catch_unwind(AssertUnwindSafe(|| {
                u.call(|c| -> Result<()> {
                    push(c, "INSERT")?;
                    panic!("in the call")
                })
            }));
            assert!(caught.is_err());
            u.call(|c| push(c, "AFTER"))
        });
        assert!(out.is_ok());
    }

    #[test]
    fn a_savepoint_a_call_left_open_is_rolled_back_and_the_rest_commits() {
        COMMITTED.with(|done| done.set(false));
        let out = run(begun(false), hooks(), |u| {
            let caught = catch_unwind(AssertUnwindSafe(|| {
                u.call(|c| -> Result<()> {
                    // A nested transaction inside the call, which a panic leaves open.
                    c.depth += 1;
                    panic!("inside a nested transaction")
                })
            }));
            assert!(caught.is_err());
            u.call(|c| push(c, "AFTER"))
        });
        assert!(out.is_ok(), "{out:?}");
        assert!(
            COMMITTED.with(|done| done.get()),
            "Ok, but the transaction was not committed"
        );
    }

    #[test]
    fn a_call_that_cannot_get_back_to_its_depth_makes_the_unit_of_work_abort() {
        let mut broken = hooks();
        // A transaction manager that panics as it releases: the call's level stays open.
        broken.commit = |c| {
            if c.depth > 1 {
                panic!("in the transaction manager")
            }
            c.depth -= 1;
            push(c, "COMMIT")
        };
        let out = run(begun(false), broken, |u| {
            let caught = catch_unwind(AssertUnwindSafe(|| u.call(|c| push(c, "INSERT"))));
            assert!(caught.is_err());
            Ok(())
        });
        assert!(matches!(out, Err(Error::Aborted { .. })), "{out:?}");
    }
}
