//! Cursor pagination: `?after=&before=&pageSize=` in, `{data, pagination}` out.

use serde::{Deserialize, Serialize};

use crate::problem::Problem;

/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: usize = 1000;
/// The page size when none is given.
pub const DEFAULT_PAGE_SIZE: usize = 50;

/// Raw query parameters; validated by [`PageQuery::to_request`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    after: Option<String>,
    before: Option<String>,
    page_size: Option<String>,
}

impl PageQuery {
    /// Validates the parameters into a store page request.
    pub fn to_request(&self) -> Result<oemgate_store::PageRequest, Problem> {
        let page_size = match self.page_size.as_deref() {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => {
                    return Err(Problem::bad_request(format!(
                        "\"pageSize\" must be an integer from 1 to {MAX_PAGE_SIZE}, got {raw:?}"
                    )));
                }
            },
        };
        if self.after.is_some() && self.before.is_some() {
            return Err(Problem::bad_request("\"after\" and \"before\" cannot be combined"));
        }
        Ok(oemgate_store::PageRequest {
            after: self.after.clone(),
            before: self.before.clone(),
            page_size,
        })
    }
}

/// The cursors of a list response.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PaginationCursors {
    /// Cursor for the next page.
    pub after: Option<String>,
    /// Cursor for the previous page.
    pub before: Option<String>,
}

/// A list response.
#[derive(Debug, Serialize, Deserialize)]
pub struct Paginated<T> {
    /// The items.
    pub data: Vec<T>,
    /// The cursors.
    pub pagination: PaginationCursors,
}
