//! [`StorageConnector::get_all_paginated`]'s iterator.

use super::{Keyset, StorageConnector};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::record::Record;

/// Iterator over the pages of [`StorageConnector::get_all_paginated`]. Each item is one
/// non-empty page; the iterator ends after the last page, or after the first error.
#[derive(Debug)]
pub struct Paginated<'c, C: StorageConnector> {
    connector: &'c C,
    filters: Vec<Filter>,
    after: Option<Keyset>,
    page_size: usize,
    done: bool,
}

impl<'c, C: StorageConnector> Paginated<'c, C> {
    /// The pages of `connector`'s records matching `filters`, `page_size` records each.
    pub(super) fn new(connector: &'c C, filters: &[Filter], page_size: usize) -> Result<Self> {
        if page_size == 0 {
            return Err(Error::invalid("page_size", "must be at least 1"));
        }
        crate::filter::validate_all(filters, connector.table_type())?;
        Ok(Paginated {
            connector,
            filters: filters.to_vec(),
            after: None,
            page_size,
            done: false,
        })
    }
}

impl<C: StorageConnector> Iterator for Paginated<'_, C> {
    type Item = Result<Vec<C::Record>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self
            .connector
            .get_page(&self.filters, self.after.as_ref(), self.page_size)
        {
            Ok(page) => {
                if page.len() < self.page_size {
                    self.done = true;
                }
                match page.last() {
                    Some(last) => {
                        self.after = Some(last.keyset());
                        Some(Ok(page))
                    }
                    None => None,
                }
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
