//! Where a connector's calls get their connection: the store (a connection per call), or
//! a unit of work ([`InTx`], whose connectors [`Tx`] makes).

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::unit_of_work::UnitOfWork;

/// A value only this crate makes: [`Source`]'s methods take one, so that only the
/// connector calls them (they hand out a raw connection).
#[derive(Debug, Clone, Copy)]
pub struct Internal(pub(crate) ());

/// Where the calls of a connector get their connection: the store (a connection checked
/// out per call; the store handle itself is the source), or a unit of work ([`InTx`]).
/// Its methods are the connector's: they take an [`Internal`], which only memgpt-core
/// makes.
pub trait Source {
    /// The backend.
    type Backend: Backend;

    /// The store.
    fn store(&self) -> &Self::Backend;

    /// Runs the reads of one call on one connection: a read connection of the store, or
    /// the unit of work's (in a savepoint of its own). A read fails or succeeds as a whole
    /// and changes nothing (`f` is `Fn`: it cannot pull from an iterator, say): outside a
    /// unit of work, `f` runs once more, on another
    /// connection, when the backend says the first was lost before it could be checked
    /// ([`Backend::run_again`]).
    ///
    /// # Errors
    /// `f`'s error; no connection; [`Error::Aborted`] in a unit of work that has ended.
    fn read<T>(
        &self,
        internal: Internal,
        f: impl Fn(&mut <Self::Backend as Backend>::Conn) -> Result<T>,
    ) -> Result<T>;

    /// Runs `f` as one write, all or nothing: in a write transaction of its own, or in a
    /// savepoint of the unit of work. `f` holds the connection throughout and may pull
    /// records from caller code between database rounds. Outside a unit of work, a write
    /// whose transaction could not begin because the connection was lost before it could
    /// be checked runs on another connection ([`Backend::run_again`]); one that began never
    /// runs again.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    fn write<T>(
        &self,
        internal: Internal,
        f: impl FnOnce(&mut <Self::Backend as Backend>::Conn) -> Result<T>,
    ) -> Result<T>;

    /// `Ok` unless the source is a unit of work that has ended ([`Error::Aborted`]): a
    /// call with nothing to do says so too.
    ///
    /// # Errors
    /// [`Error::Aborted`].
    fn usable(&self, _: Internal) -> Result<()> {
        Ok(())
    }
}

impl<B: Backend> Source for B {
    type Backend = B;

    fn store(&self) -> &B {
        self
    }

    fn read<T>(&self, _: Internal, f: impl Fn(&mut B::Conn) -> Result<T>) -> Result<T> {
        let mut lease = self.read_lease()?;
        match self.read_on(&mut lease, &f) {
            Err(e) => match self.run_again(lease, &e) {
                Some(again) => {
                    let mut again = again?;
                    self.read_on(&mut again, f)
                }
                None => Err(e),
            },
            done => done,
        }
    }

    fn write<T>(&self, _: Internal, f: impl FnOnce(&mut B::Conn) -> Result<T>) -> Result<T> {
        let mut lease = self.write_lease()?;
        // `f` is taken once the transaction has begun: still here after a failure, it never
        // ran and nothing was written, so it may run on another connection.
        let mut waiting = Some(f);
        let first = self.write_transaction(&mut lease, |conn| match waiting.take() {
            Some(f) => f(conn),
            None => Err(Error::Aborted {
                message: "a write's transaction ran its body twice".to_owned(),
            }),
        });
        match (first, waiting) {
            (Err(e), Some(f)) => match self.run_again(lease, &e) {
                Some(again) => {
                    let mut again = again?;
                    self.write_transaction(&mut again, f)
                }
                None => Err(e),
            },
            (done, _) => done,
        }
    }
}

/// The source of a connector made by a unit of work ([`Tx::connector`]): its connection,
/// inside its transaction. Neither `Send` nor `Sync`, as the unit of work.
pub struct InTx<'t, B: Backend> {
    uow: &'t UnitOfWork<B::Lease>,
    store: B,
}

impl<B: Backend> Clone for InTx<'_, B> {
    fn clone(&self) -> Self {
        InTx {
            uow: self.uow,
            store: self.store.clone(),
        }
    }
}

impl<B: Backend> Source for InTx<'_, B> {
    type Backend = B;

    fn store(&self) -> &B {
        &self.store
    }

    fn read<T>(&self, _: Internal, f: impl Fn(&mut B::Conn) -> Result<T>) -> Result<T> {
        self.uow.call(|lease| f(lease))
    }

    fn write<T>(&self, _: Internal, f: impl FnOnce(&mut B::Conn) -> Result<T>) -> Result<T> {
        self.uow.call(|lease| f(lease))
    }

    fn usable(&self, _: Internal) -> Result<()> {
        match self.uow.failure() {
            Some(message) => Err(Error::Aborted { message }),
            None => Ok(()),
        }
    }
}

/// A unit of work in progress on backend `B`: connectors made from it share its connection
/// and its transaction, on the thread that runs it (neither it nor its connectors are
/// `Send` or `Sync`). See `SqliteStore::transaction` / `PgStore::transaction` and
/// [`unit_of_work`](crate::unit_of_work).
pub struct Tx<'t, B: Backend> {
    pub(crate) source: InTx<'t, B>,
}

impl<B: Backend> std::fmt::Debug for Tx<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

impl<'t, B: Backend> Tx<'t, B> {
    /// The unit of work `uow` on `store`.
    pub fn new(uow: &'t UnitOfWork<B::Lease>, store: B) -> Self {
        Tx {
            source: InTx { uow, store },
        }
    }
}
