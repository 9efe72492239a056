//! The torrent list of the site (private mode): search, sort order and
//! keyset pages, turned into one SQL query that an index answers (no scan:
//! README, The site, shows the query plans). Pure: the Worker glue binds
//! the values and runs it.

/// Rows per page, at most.
pub const MAX_PAGE: u32 = 100;
/// Default rows per page.
pub const DEFAULT_PAGE: u32 = 50;
/// Longest search text and most search words taken.
pub const MAX_SEARCH_CHARS: usize = 100;
pub const MAX_SEARCH_WORDS: usize = 8;

/// What a list can be sorted by; each has an index on (column, info_hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Added,
    Seeders,
    Leechers,
    Completed,
    Size,
}

impl Sort {
    pub fn parse(s: &str) -> Option<Sort> {
        Some(match s {
            "added" => Sort::Added,
            "seeders" => Sort::Seeders,
            "leechers" => Sort::Leechers,
            "completed" => Sort::Completed,
            "size" => Sort::Size,
            _ => return None,
        })
    }

    pub fn column(self) -> &'static str {
        match self {
            Sort::Added => "created_at",
            Sort::Seeders => "seeders",
            Sort::Leechers => "leechers",
            Sort::Completed => "completed",
            Sort::Size => "size",
        }
    }
}

/// A list request: filter, order and where the page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// FTS5 query built from the member's words (each quoted, the last a prefix).
    pub search: Option<String>,
    pub sort: Sort,
    pub descending: bool,
    /// The last row of the previous page: (sort value, info hash).
    pub after: Option<(u64, String)>,
    pub limit: u32,
    /// Only this uploader's torrents (a member's own list).
    pub uploader: Option<u64>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery { search: None, sort: Sort::Added, descending: true, after: None, limit: DEFAULT_PAGE, uploader: None }
    }
}

/// Reads `q`, `sort`, `order`, `after` and `limit` from decoded query
/// pairs; unknown keys are ignored, bad values are an error in words.
pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<ListQuery, String> {
    let mut q = ListQuery::default();
    for (key, value) in pairs {
        match key {
            "q" => q.search = fts_query(value),
            "sort" => q.sort = Sort::parse(value).ok_or("sort must be added, seeders, leechers, completed or size")?,
            "order" => {
                q.descending = match value {
                    "desc" => true,
                    "asc" => false,
                    _ => return Err("order must be asc or desc".into()),
                }
            }
            "after" => q.after = Some(parse_cursor(value).ok_or("after must be a cursor from the previous page")?),
            "limit" => {
                q.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or(format!("limit must be 1-{MAX_PAGE}"))?
            }
            _ => {}
        }
    }
    Ok(q)
}

/// `<value>.<40 hex>`: where the next page starts.
pub fn cursor(value: u64, info_hash: &str) -> String {
    format!("{value}.{info_hash}")
}

fn parse_cursor(s: &str) -> Option<(u64, String)> {
    let (value, hash) = s.split_once('.')?;
    let value: u64 = value.parse().ok().filter(|v| *v < 1 << 53)?;
    (hash.len() == 40 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then(|| (value, hash.to_string()))
}

/// An FTS5 query matching every word of `text` (ASCII letters and digits,
/// and any non-ASCII character, which FTS5's tokenizer then splits; the
/// last word as a prefix), or `None` if it has none. Each word is quoted,
/// so nothing the member types is FTS5 syntax.
pub fn fts_query(text: &str) -> Option<String> {
    let text: String = text.chars().take(MAX_SEARCH_CHARS).collect();
    let words: Vec<&str> =
        text.split(|c: char| !c.is_ascii_alphanumeric() && c.is_ascii()).filter(|w| !w.is_empty()).take(MAX_SEARCH_WORDS).collect();
    let last = words.len().checked_sub(1)?;
    Some(words.iter().enumerate().map(|(i, w)| if i == last { format!("\"{w}\"*") } else { format!("\"{w}\"") }).collect::<Vec<_>>().join(" "))
}

/// A bound value of the query.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(u64),
}

/// The columns every list returns.
pub const COLUMNS: &str = "t.info_hash, t.name, t.size, t.freeleech, t.created_at, t.seeders, t.leechers, t.completed";

/// The SQL and its values. One more row than the page is asked for, so
/// the caller knows whether there is a next page.
pub fn sql(q: &ListQuery) -> (String, Vec<Bind>) {
    let col = q.sort.column();
    let (cmp, dir) = if q.descending { ('<', "DESC") } else { ('>', "ASC") };
    let mut binds = Vec::new();
    let mut conditions = Vec::new();
    let from = if let Some(search) = &q.search {
        binds.push(Bind::Text(search.clone()));
        conditions.push(format!("f.torrents_fts MATCH ?{}", binds.len()));
        "torrents_fts f JOIN torrents t ON t.info_hash = f.info_hash"
    } else {
        "torrents t"
    };
    if let Some(user) = q.uploader {
        binds.push(Bind::Int(user));
        conditions.push(format!("t.uploader = ?{}", binds.len()));
    }
    if let Some((value, hash)) = &q.after {
        binds.push(Bind::Int(*value));
        binds.push(Bind::Text(hash.clone()));
        conditions.push(format!("(t.{col}, t.info_hash) {cmp} (?{}, ?{})", binds.len() - 1, binds.len()));
    }
    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    let sql = format!(
        "SELECT {COLUMNS} FROM {from}{filter} ORDER BY t.{col} {dir}, t.info_hash {dir} LIMIT {}",
        q.limit + 1
    );
    (sql, binds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn search_words_are_quoted_and_the_last_is_a_prefix() {
        assert_eq!(fts_query("ubuntu 24.04 desk").as_deref(), Some("\"ubuntu\" \"24\" \"04\" \"desk\"*"));
        assert_eq!(fts_query("  \"OR NEAR(*) -- ").as_deref(), Some("\"OR\" \"NEAR\"*"));
        assert_eq!(fts_query("Übung").as_deref(), Some("\"Übung\"*"));
        assert_eq!(fts_query("\"*^:()"), None);
        assert_eq!(fts_query(""), None);
        let many = "a ".repeat(50);
        assert_eq!(fts_query(&many).unwrap().matches('"').count(), 2 * MAX_SEARCH_WORDS);
    }

    #[test]
    fn parses_list_parameters() {
        let q = parse([("q", "debian"), ("sort", "seeders"), ("order", "asc"), ("limit", "20")]).unwrap();
        assert_eq!(q.sort, Sort::Seeders);
        assert!(!q.descending);
        assert_eq!(q.limit, 20);
        assert_eq!(q.search.as_deref(), Some("\"debian\"*"));
        let q = parse([("after", &*format!("12.{HASH}"))]).unwrap();
        assert_eq!(q.after, Some((12, HASH.to_string())));
        assert!(parse([("sort", "name")]).is_err());
        assert!(parse([("order", "up")]).is_err());
        assert!(parse([("limit", "0")]).is_err());
        assert!(parse([("limit", "101")]).is_err());
        assert!(parse([("after", "12")]).is_err());
        assert!(parse([("after", "x.0123")]).is_err());
        assert!(parse([("after", &*format!("12.{}", HASH.to_uppercase()))]).is_err());
        assert_eq!(parse([("other", "x")]).unwrap(), ListQuery::default());
    }

    #[test]
    fn builds_keyset_queries() {
        let (s, b) = sql(&ListQuery::default());
        assert_eq!(s, format!("SELECT {COLUMNS} FROM torrents t ORDER BY t.created_at DESC, t.info_hash DESC LIMIT 51"));
        assert!(b.is_empty());
        let q = ListQuery {
            search: fts_query("deb"),
            sort: Sort::Size,
            descending: false,
            after: Some((5, HASH.into())),
            limit: 10,
            uploader: Some(7),
        };
        let (s, b) = sql(&q);
        assert_eq!(
            s,
            format!(
                "SELECT {COLUMNS} FROM torrents_fts f JOIN torrents t ON t.info_hash = f.info_hash \
                 WHERE f.torrents_fts MATCH ?1 AND t.uploader = ?2 AND (t.size, t.info_hash) > (?3, ?4) \
                 ORDER BY t.size ASC, t.info_hash ASC LIMIT 11"
            )
        );
        assert_eq!(b, vec![Bind::Text("\"deb\"*".into()), Bind::Int(7), Bind::Int(5), Bind::Text(HASH.into())]);
        assert_eq!(cursor(5, HASH), format!("5.{HASH}"));
    }
}
