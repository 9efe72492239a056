//! A request body the Worker answered without reading (a refused POST, a
//! 405). workerd closes a keep-alive connection whose request body was left
//! unread, with no `connection: close` to warn the client (a Worker cannot
//! set that header), so a client that sends its next request on it sees that
//! request dropped ("other side closed"). After every answer on the full
//! path, the unread body is read and thrown away, at most as much as its
//! route accepts (`api::body_limit`): a larger body is left unread, and the
//! connection closes.

use futures_util::StreamExt;
use worker::{web_sys, Request};

/// The request as it came, kept while the router answers it: `None` when
/// there is nothing to drain (no body, or one its route would refuse as too large).
pub struct Unread(Option<(web_sys::Request, usize)>);

impl Unread {
    pub fn of(req: &Request) -> Self {
        let inner = req.inner();
        if inner.body().is_none() {
            return Self(None);
        }
        let limit = super::api::body_limit(&super::request_path(req));
        let declared = req.headers().get("content-length").ok().flatten().and_then(|l| l.parse::<usize>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Self(None);
        }
        // The same JS object (`web_sys::Request::clone` would tee the body).
        Self(Some((Clone::clone(inner), limit)))
    }

    /// Reads the body if the answer left it unread, up to the route's limit
    /// (where a body sent without `content-length` is cut off).
    pub async fn drain(self) {
        let Some((inner, limit)) = self.0 else { return };
        if inner.body_used() {
            return;
        }
        let Ok(mut stream) = Request::from(inner).stream() else { return };
        let mut read = 0;
        while let Some(Ok(chunk)) = stream.next().await {
            read += chunk.len();
            if read > limit {
                return;
            }
        }
    }
}
