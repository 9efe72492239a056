//! The operator's routes (`/stats`, `/metrics`) and the site pages whose
//! path the Worker owns: `/` (the dashboard in public mode, sign-in in
//! private mode) and `/torrents/<hash>`. Pages, scripts and styles are
//! static assets (`site/`, wrangler.toml `[assets]`), not in the wasm: the
//! Worker only picks which page a path gets and fetches it from the
//! `ASSETS` binding. Every other page is served by the assets layer itself.

use worker::*;

use super::{config_from, stats};
use crate::config::TrackerMode;

/// The static-assets binding (wrangler.toml `[assets] binding`).
pub const ASSETS_BINDING: &str = "ASSETS";

/// Answers the operations routes and the Worker-owned pages; `None` for
/// every other request.
pub async fn serve(req: &Request, env: &Env, url: &str, path: &str) -> Option<Result<Response>> {
    // The raw method (`Request::method()` reads unknown methods as GET); a
    // query on `/` is a misconfigured client, answered by the tracker.
    if !matches!(req.inner().method().as_str(), "GET" | "HEAD") {
        return None;
    }
    match path {
        "/stats" => Some(stats::serve(env, url, false).await),
        "/metrics" => Some(stats::serve(env, url, true).await),
        "/" if url.contains('?') => None,
        "/" => {
            let private = matches!(config_from(env), Ok(c) if c.mode == TrackerMode::Private);
            Some(page(env, url, if private { "/signin" } else { "/dashboard" }).await)
        }
        p => {
            let hash = p.strip_prefix("/torrents/")?;
            if hash.len() != 40 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Some(not_found());
            }
            Some(page(env, url, "/torrent").await)
        }
    }
}

/// The page at `asset` (a path under site/), as the assets layer serves it
/// (site/_headers: the CSP and the rest apply to binding fetches too).
async fn page(env: &Env, url: &str, asset: &str) -> Result<Response> {
    let Ok(assets) = env.assets(ASSETS_BINDING) else {
        return Response::error("the site's static assets are not configured (wrangler.toml [assets])", 404);
    };
    // Same origin as the request; only the path matters to the binding.
    let origin_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let origin = &url[..url[origin_end..].find('/').map(|i| i + origin_end).unwrap_or(url.len())];
    let found = assets.fetch(format!("{origin}{asset}"), None).await?;
    if found.status_code() != 200 {
        return not_found();
    }
    Ok(found)
}

fn not_found() -> Result<Response> {
    let mut resp = Response::error("no such page", 404)?;
    resp.headers_mut().set("content-type", "text/plain; charset=utf-8")?;
    Ok(resp)
}
