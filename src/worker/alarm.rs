//! An object's alarm, for both objects (a torrent's own and a shard): it
//! is only ever moved earlier (setting one is billed as a row written),
//! and set one way.

use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::State;

/// The alarm an object knows is scheduled (ms).
#[derive(Default, Clone, Copy)]
pub struct Alarm(Option<u64>);

impl Alarm {
    pub fn known(at_ms: Option<u64>) -> Self {
        Alarm(at_ms)
    }

    /// The alarm storage holds: what an object knows once it has loaded.
    pub async fn stored(state: &State) -> worker::Result<Self> {
        Ok(Alarm::known(state.storage().get_alarm().await?.map(|ms| ms as u64)))
    }

    /// The alarm ran, or was deleted: none is scheduled.
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// `at_secs` in ms if the alarm must move there (nothing is scheduled,
    /// or only later), recorded as scheduled; `None` if it need not move.
    pub fn earlier(&mut self, at_secs: u32) -> Option<u64> {
        let at_ms = at_secs as u64 * 1000;
        if matches!(self.0, Some(c) if c <= at_ms) {
            return None;
        }
        self.0 = Some(at_ms);
        Some(at_ms)
    }
}

/// Starts the storage write that sets the alarm and returns it, for the
/// caller to await before it answers (an announce's entry awaits it in JS).
pub fn start(state: &State, at_ms: u64) -> worker::Result<js_sys::Promise> {
    let when = js_sys::Date::new(&(at_ms as f64).into());
    Ok(state.as_raw().storage()?.set_alarm(when, JsValue::NULL.into())?)
}

/// For an answer that awaits nothing in Rust: starts the alarm's write if
/// it must move (`at_ms`, from [`Alarm::earlier`]), counting its row in
/// `written`; the entry awaits the promise before answering.
pub fn start_counted(state: &State, at_ms: Option<u64>, written: &mut usize) -> worker::Result<Option<js_sys::Promise>> {
    let Some(at_ms) = at_ms else { return Ok(None) };
    *written += 1;
    Ok(Some(start(state, at_ms)?))
}

/// Sets the alarm to `at_ms` and waits until it is stored.
pub async fn set(state: &State, at_ms: u64) -> worker::Result<()> {
    JsFuture::from(start(state, at_ms)?).await?;
    Ok(())
}
