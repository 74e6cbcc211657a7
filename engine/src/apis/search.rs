//! PocketBase's list parameters (`page`, `perPage`, `skipTotal`, `sort`, `filter`) and its
//! paginated result envelope, shared by every list endpoint.

use crate::error::ApiError;

pub const DEFAULT_PER_PAGE: i64 = 30;
pub const MAX_PER_PAGE: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub page: i64,
    pub per_page: i64,
    pub skip_total: bool,
    pub sort: String,
    pub filter: String,
}

/// Go's query parsing (first value of a repeated key wins, malformed pairs are skipped).
pub use crate::go::query_pairs;

/// The first value of `key` in a raw query string.
pub fn query_value(raw: &str, key: &str) -> Option<String> {
    crate::go::query_first(raw, key)
}

impl ListParams {
    /// Parses the list parameters as PocketBase does: non-numeric `page`/`perPage` or a
    /// non-boolean `skipTotal` is a 400; out-of-range numbers are clamped.
    pub fn parse(raw_query: &str) -> Result<ListParams, ApiError> {
        let mut p = ListParams {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            skip_total: false,
            sort: String::new(),
            filter: String::new(),
        };
        for (k, v) in query_pairs(raw_query) {
            match k.as_str() {
                "page" => {
                    p.page = v
                        .parse()
                        .map_err(|e| ApiError::bad_request(None).caused_by(e))?
                }
                "perPage" => {
                    p.per_page = v
                        .parse()
                        .map_err(|e| ApiError::bad_request(None).caused_by(e))?
                }
                "skipTotal" => {
                    p.skip_total = parse_go_bool(&v).ok_or_else(|| ApiError::bad_request(None))?
                }
                "sort" => p.sort = v,
                "filter" => p.filter = v,
                _ => {}
            }
        }
        if p.page < 1 {
            p.page = 1;
        }
        if p.per_page <= 0 {
            p.per_page = DEFAULT_PER_PAGE;
        }
        p.per_page = p.per_page.min(MAX_PER_PAGE);
        Ok(p)
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.per_page)
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Writes `{"items":[...],"page":..,"perPage":..,"totalItems":..,"totalPages":..}` with the
/// items already serialised; `total` is `None` with `skipTotal` (both totals are then -1).
pub fn write_page(out: &mut Vec<u8>, items_json: &[u8], params: &ListParams, total: Option<i64>) {
    out.extend_from_slice(b"{\"items\":");
    out.extend_from_slice(items_json);
    let (total_items, total_pages) = match total {
        Some(t) => (t, (t + params.per_page - 1) / params.per_page),
        None => (-1, -1),
    };
    out.extend_from_slice(
        format!(
            ",\"page\":{},\"perPage\":{},\"totalItems\":{},\"totalPages\":{}}}",
            params.page, params.per_page, total_items, total_pages
        )
        .as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_like_pocketbase() {
        let p = ListParams::parse("page=0&perPage=5000").unwrap();
        assert_eq!((p.page, p.per_page), (1, 1000));
        let p = ListParams::parse("perPage=-1&skipTotal=1&filter=name%7E'x'+%26%26+a").unwrap();
        assert_eq!(p.per_page, 30);
        assert!(p.skip_total);
        assert_eq!(p.filter, "name~'x' && a");
        assert!(ListParams::parse("page=abc").is_err());
        assert!(ListParams::parse("skipTotal=yes").is_err());
    }
}
