//! Structured logs: one JSON object per line per notable event, filtered by
//! `LOG_LEVEL`. Callers pass named fields, never a raw URL or query string;
//! [`loggable_path`] is the only way a request path reaches a log.

use std::fmt;

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    /// Whether an event at `event` level is written when the threshold is `self`.
    pub fn allows(self, event: Level) -> bool {
        event <= self
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log line: `{"level":..,"event":..,"ts":..,<fields>}`.
pub fn line(level: Level, event: &str, ts_ms: u64, fields: Value) -> String {
    let mut obj = Map::new();
    obj.insert("level".into(), level.as_str().into());
    obj.insert("event".into(), event.into());
    obj.insert("ts".into(), ts_ms.into());
    if let Value::Object(extra) = fields {
        for (k, v) in extra {
            obj.entry(k).or_insert(v);
        }
    }
    Value::Object(obj).to_string()
}

/// A request path fit for a log: the private-mode passkey segment of
/// `/announce/<passkey>` and `/scrape/<passkey>` is replaced, and no query
/// string is ever included.
pub fn loggable_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    for route in ["/announce/", "/scrape/"] {
        if path.starts_with(route) {
            return format!("{route}[passkey]");
        }
    }
    if path.len() > 64 {
        return format!("{}…", &path[..path.floor_char_boundary(64)]);
    }
    path.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn levels_parse_and_filter() {
        assert_eq!(Level::parse("INFO"), Some(Level::Info));
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("verbose"), None);
        assert!(Level::Info.allows(Level::Error));
        assert!(Level::Info.allows(Level::Info));
        assert!(!Level::Info.allows(Level::Debug));
        assert!(!Level::Error.allows(Level::Warn));
    }

    #[test]
    fn a_line_is_one_json_object() {
        let l = line(Level::Warn, "publish_failed", 42, json!({ "info_hash": "ab", "event": "ignored" }));
        assert!(!l.contains('\n'));
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["event"], "publish_failed", "a field cannot overwrite the event name");
        assert_eq!(v["ts"], 42);
        assert_eq!(v["info_hash"], "ab");
    }

    #[test]
    fn paths_lose_passkeys_and_queries() {
        assert_eq!(loggable_path("/announce/0123456789abcdef"), "/announce/[passkey]");
        assert_eq!(loggable_path("/scrape/0123456789abcdef?info_hash=x"), "/scrape/[passkey]");
        assert_eq!(loggable_path("/announce?passkey=secret&info_hash=x"), "/announce");
        assert_eq!(loggable_path("/api/admin/users"), "/api/admin/users");
    }
}
