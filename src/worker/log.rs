//! Writes structured log lines (see `crate::logging`) to the console, where
//! `wrangler tail` and Workers Logs pick them up. The level comes from
//! `LOG_LEVEL`, read with the rest of the configuration.

use std::cell::Cell;

use serde_json::Value;
use worker::{console_error, console_log, console_warn, Date};

use crate::logging::{line, Level};

thread_local! {
    static LEVEL: Cell<Level> = const { Cell::new(Level::Info) };
}

/// Sets the isolate's threshold (called when the configuration is read).
pub fn set_level(level: Level) {
    LEVEL.with(|l| l.set(level));
}

pub fn enabled(level: Level) -> bool {
    LEVEL.with(|l| l.get().allows(level))
}

/// Writes one event if the level allows it. `fields` is a JSON object of
/// named values; never put a passkey, token, password or query string in it.
pub fn event(level: Level, name: &str, fields: Value) {
    if !enabled(level) {
        return;
    }
    let text = line(level, name, Date::now().as_millis(), fields);
    match level {
        Level::Error => console_error!("{text}"),
        Level::Warn => console_warn!("{text}"),
        Level::Info | Level::Debug => console_log!("{text}"),
    }
}

pub fn error(name: &str, fields: Value) {
    event(Level::Error, name, fields)
}

pub fn warn(name: &str, fields: Value) {
    event(Level::Warn, name, fields)
}

pub fn info(name: &str, fields: Value) {
    event(Level::Info, name, fields)
}

pub fn debug(name: &str, fields: Value) {
    event(Level::Debug, name, fields)
}
