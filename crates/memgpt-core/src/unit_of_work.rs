//! Units of work: many connector calls on one connection inside one transaction.
//!
//! This module holds the rules every backend's unit of work follows, written once over any
//! connection type `C`; the backend supplies the few SQL hooks ([`TxHooks`]):
//!
//! * **Each call in its own savepoint.** Every connector call inside a unit of work runs
//!   between `SAVEPOINT memgpt_call` and `RELEASE`. A call that fails is rolled back to its
//!   savepoint alone and its error is returned to the closure, which may ignore it: the
//!   rest of the unit of work still commits. Without this, PostgreSQL would abort the whole
//!   transaction on the first failed statement and answer the final `COMMIT` with a
//!   rollback that is not an error to the driver.
//! * **A transaction that is gone stays gone.** When rolling back to a savepoint fails (the
//!   server aborted the transaction, SQLite rolled it back by itself after `SQLITE_FULL`,
//!   an I/O error or an interrupt, or the connection was lost), the unit of work is marked
//!   failed: every later call fails at once, so no later write can commit on its own
//!   (SQLite would run it in autocommit mode), and [`run`] returns [`Error::Aborted`]
//!   instead of committing, even when the closure returns `Ok`.
//! * **Re-entrant on one thread for reads, exclusive across threads.** A call may run a
//!   reading call of the same unit of work on the same thread (an iterator that reads the
//!   unit of work, handed to `insert_many` of the same unit of work); the inner call nests
//!   its savepoint inside the outer one. A write never starts inside another write
//!   ([`Error::NestedWrite`]): a bulk write stages its records and decides what it wrote
//!   only at its end, which another write on the same connection would falsify.
//! * **Unwinding is failing.** A call through which a panic unwinds is rolled back to its
//!   savepoint before the panic goes on, so a closure that catches the panic and returns
//!   `Ok` commits the rest of the unit of work, never half of that call. (A panic inside a
//!   database round itself, in the backend's code, leaves the connection's state unknown:
//!   the unit of work then ends with [`Error::Aborted`] and commits nothing.)
//! * **Threads inside a write wait.** A call from another thread waits for the running
//!   call, so code in an `insert_many` iterator that hands a call of the same unit of work
//!   to another thread and joins it waits forever: copy page by page instead. Calls from other threads wait for the running call to finish,
//!   so one thread's rollback never undoes another thread's write. The connection itself
//!   is borrowed only for one database round ([`UnitOfWork::with`]), never while caller
//!   code runs.
//! * **The closure's error wins.** When the closure fails and the rollback fails too, the
//!   closure's error is returned (the backend's rollback hook logs its own failure, and the
//!   connection, still inside a transaction, is discarded by its pool).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::ThreadId;

use crate::error::{Error, Result};

/// The backend's SQL hooks of a unit of work.
pub struct TxHooks<C> {
    /// Runs SQL that returns no rows (`SAVEPOINT`, `RELEASE`, `ROLLBACK TO`).
    pub execute: fn(&mut C, &str) -> Result<()>,
    /// Commits the transaction.
    pub commit: fn(&mut C) -> Result<()>,
    /// Rolls the transaction back.
    pub rollback: fn(&mut C) -> Result<()>,
    /// Marks the connection so that its pool closes it rather than hand it out again
    /// (after a panic inside the unit of work: its state is not trusted).
    pub discard: fn(&mut C),
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

/// Which thread runs calls of the unit of work now, how deeply nested, and whether one of
/// the calls running is a write (which may be pulling records from caller code).
#[derive(Debug, Default)]
struct Turn {
    owner: Option<ThreadId>,
    depth: usize,
    writing: bool,
}

/// A unit of work in progress: one connection inside one transaction, shared by the
/// connectors made for it. See the module documentation for its rules.
pub struct UnitOfWork<C> {
    conn: Mutex<C>,
    turn: Mutex<Turn>,
    turn_free: Condvar,
    failure: Mutex<Option<String>>,
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
    let uow = UnitOfWork {
        conn: Mutex::new(conn),
        turn: Mutex::new(Turn::default()),
        turn_free: Condvar::new(),
        failure: Mutex::new(None),
        hooks,
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| f(&uow)));
    let failure = uow.failure();
    let mut conn = uow
        .conn
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
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
            (hooks.discard)(&mut conn);
            drop(conn);
            resume_unwind(panic)
        }
    }
}

/// Leaves the turn when a call ends (and the write, when the call was the write).
struct TurnGuard<'u, C> {
    uow: &'u UnitOfWork<C>,
    wrote: bool,
}

impl<C> Drop for TurnGuard<'_, C> {
    fn drop(&mut self) {
        let mut turn = self.uow.turn.lock().unwrap_or_else(PoisonError::into_inner);
        if self.wrote {
            turn.writing = false;
        }
        turn.depth = turn.depth.saturating_sub(1);
        if turn.depth == 0 {
            turn.owner = None;
            self.uow.turn_free.notify_all();
        }
    }
}

impl<C> UnitOfWork<C> {
    /// Why the transaction can no longer commit, once a call has ended it.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn fail(&self, why: String) {
        let mut f = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        if f.is_none() {
            *f = Some(why);
        }
    }

    fn aborted(&self) -> Result<()> {
        match self.failure() {
            Some(message) => Err(Error::Aborted { message }),
            None => Ok(()),
        }
    }

    /// Waits until no other thread runs a call, then takes the turn (again, when this
    /// thread holds it already). A write may not start inside another write of this thread:
    /// [`Error::NestedWrite`].
    fn enter(&self, write: bool) -> Result<TurnGuard<'_, C>> {
        let me = std::thread::current().id();
        let mut turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        while turn.owner.is_some_and(|o| o != me) {
            turn = self
                .turn_free
                .wait(turn)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if write && turn.writing {
            return Err(Error::NestedWrite);
        }
        turn.owner = Some(me);
        turn.depth += 1;
        turn.writing |= write;
        Ok(TurnGuard {
            uow: self,
            wrote: write,
        })
    }

    /// Runs one reading connector call: `f` inside its own savepoint, rolled back alone
    /// when it fails or unwinds. `f` reaches the connection through [`with`](Self::with).
    ///
    /// # Errors
    /// [`Error::Aborted`] when an earlier call ended the transaction; else `f`'s error, or
    /// the database's on the savepoint.
    pub fn call<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.run_call(false, f)
    }

    /// Runs one writing connector call, as [`call`](Self::call). Records pulled from caller
    /// code inside `f` may come from reads of this unit of work, never from its writes.
    ///
    /// # Errors
    /// [`Error::NestedWrite`] when another write of this unit of work is running on this
    /// thread (caller code inside that write's `insert_many` iterator started this one);
    /// else as [`call`](Self::call).
    pub fn write_call<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.run_call(true, f)
    }

    fn run_call<T>(&self, write: bool, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _turn = self.enter(write)?;
        self.with(|c| (self.hooks.execute)(c, "SAVEPOINT memgpt_call"))
            .inspect_err(|e| self.fail(format!("starting a savepoint failed: {e}")))?;
        // A call that unwinds (a panicking iterator of records) is undone like one that
        // fails, before the panic goes on: the closure may catch it and commit the rest,
        // never half of this call.
        let outcome = match catch_unwind(AssertUnwindSafe(f)) {
            Ok(outcome) => outcome,
            Err(panic) => {
                self.undo("a panic unwound through the call");
                resume_unwind(panic)
            }
        };
        match outcome {
            Ok(value) => {
                self.with(|c| (self.hooks.execute)(c, "RELEASE SAVEPOINT memgpt_call"))
                    .inspect_err(|e| self.fail(format!("releasing a savepoint failed: {e}")))?;
                Ok(value)
            }
            Err(e) => {
                if matches!(e, Error::Aborted { .. }) {
                    return Err(e);
                }
                self.undo(&e.to_string());
                Err(e)
            }
        }
    }

    /// Rolls the running call back to its savepoint after `why`; when that fails, the
    /// transaction is gone and the unit of work can no longer commit.
    fn undo(&self, why: &str) {
        let undo = self.with(|c| {
            (self.hooks.execute)(
                c,
                "ROLLBACK TO SAVEPOINT memgpt_call; RELEASE SAVEPOINT memgpt_call",
            )
        });
        if let Err(undo) = undo {
            self.fail(format!(
                "{why}; the transaction did not survive it (rolling back to the call's \
                 savepoint failed: {undo})"
            ));
        }
    }

    /// Borrows the connection for one database round. Never call caller code (an iterator
    /// of records) inside `f`: that code may run calls of this unit of work.
    ///
    /// # Errors
    /// [`Error::Aborted`] when a call ended the transaction already; [`Error::Database`]
    /// when the connection is borrowed already on this thread (caller code ran inside `f`);
    /// else `f`'s error.
    pub fn with<T>(&self, f: impl FnOnce(&mut C) -> Result<T>) -> Result<T> {
        self.aborted()?;
        let mut conn: MutexGuard<'_, C> = match self.conn.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::WouldBlock) => {
                return Err(Error::database(
                    "the unit of work's connection is in use by a statement of this thread \
                     (an iterator read the same unit of work while a statement was running)",
                ))
            }
            Err(TryLockError::Poisoned(p)) => {
                drop(p.into_inner());
                let message = "a panic interrupted a statement of the unit of work".to_owned();
                self.fail(message.clone());
                return Err(Error::Aborted { message });
            }
        };
        f(&mut conn)
    }
}

/// How a connector call reaches its connection `C`: directly (the call's own transaction
/// on a connection it holds throughout), or through a unit of work whose connection `U`
/// (a pooled lease) leads to `C`.
pub enum Access<'a, C, U> {
    /// A connection this call holds for its whole duration.
    Direct(&'a mut C),
    /// The connection of a unit of work, borrowed for one round at a time.
    Shared(&'a UnitOfWork<U>, fn(&mut U) -> &mut C),
}

impl<C, U> std::fmt::Debug for Access<'_, C, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Direct(_) => "Access::Direct",
            Access::Shared(..) => "Access::Shared",
        })
    }
}

impl<C, U> Access<'_, C, U> {
    /// Runs one database round on the connection. Never run caller code inside `f`.
    ///
    /// # Errors
    /// As [`UnitOfWork::with`], or `f`'s error.
    pub fn with<T>(&mut self, f: impl FnOnce(&mut C) -> Result<T>) -> Result<T> {
        match self {
            Access::Direct(c) => f(c),
            Access::Shared(u, project) => u.with(|lease| f(project(lease))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A connection that records the SQL it is given; `ROLLBACK TO` fails when `gone`.
    fn push(c: &mut Log, sql: &str) -> Result<()> {
        c.sql.push(sql.to_owned());
        Ok(())
    }

    #[derive(Default)]
    struct Log {
        sql: Vec<String>,
        gone: bool,
    }

    fn hooks() -> TxHooks<Log> {
        TxHooks {
            execute: |c, sql| {
                c.sql.push(sql.to_owned());
                if c.gone && sql.starts_with("ROLLBACK TO") {
                    return Err(Error::database("no such savepoint"));
                }
                Ok(())
            },
            commit: |c| {
                c.sql.push("COMMIT".to_owned());
                Ok(())
            },
            rollback: |c| {
                c.sql.push("ROLLBACK".to_owned());
                Err(Error::database("rollback failed too"))
            },
            discard: |c| c.sql.push("DISCARD".to_owned()),
        }
    }

    #[test]
    fn a_failed_call_rolls_back_alone_and_the_rest_commits() {
        let out = run(Log::default(), hooks(), |u| {
            let r: Result<()> = u.call(|| Err(Error::database("boom")));
            assert!(r.is_err());
            u.call(|| u.with(|c| push(c, "INSERT")))?;
            Ok(7)
        });
        assert_eq!(out.unwrap(), 7);
    }

    #[test]
    fn a_lost_transaction_fails_every_later_call_and_the_commit() {
        let out = run(
            Log {
                gone: true,
                ..Log::default()
            },
            hooks(),
            |u| {
                let _ = u.call(|| -> Result<()> { Err(Error::database("disk full")) });
                let later = u.call(|| u.with(|c| push(c, "INSERT")));
                assert!(matches!(later.unwrap_err(), crate::Error::Aborted { .. }));
                Ok(())
            },
        );
        let e = out.unwrap_err();
        assert!(matches!(e, crate::Error::Aborted { .. }));
        assert!(e.to_string().contains("disk full"), "{e}");
    }

    #[test]
    fn the_closures_error_survives_a_failed_rollback() {
        let out: Result<()> = run(Log::default(), hooks(), |_| {
            Err(Error::invalid("text", "mine"))
        });
        assert_eq!(out.unwrap_err().to_string(), "invalid text: mine");
    }

    #[test]
    fn calls_nest_on_one_thread() {
        run(Log::default(), hooks(), |u| {
            u.call(|| u.call(|| u.with(|c| push(c, "INNER"))))
        })
        .unwrap();
    }
}
