//! The operator's pages: the dashboard (`/`, its script and style, all
//! embedded in the Worker, no external CDN), `/stats` and `/metrics`.

use worker::*;

use super::stats;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard/dashboard.css");

/// Answers the operations routes; `None` for every other request.
pub async fn serve(req: &Request, env: &Env, url: &str, path: &str) -> Option<Result<Response>> {
    // The raw method (`Request::method()` reads unknown methods as GET); a
    // query on `/` is a misconfigured client, answered by the tracker.
    if !matches!(path, "/" | "/dashboard.js" | "/dashboard.css" | "/stats" | "/metrics")
        || !matches!(req.inner().method().as_str(), "GET" | "HEAD")
        || (path == "/" && url.contains('?'))
    {
        return None;
    }
    Some(match path {
        "/stats" => stats::serve(env, url, false).await,
        "/metrics" => stats::serve(env, url, true).await,
        "/dashboard.js" => asset(DASHBOARD_JS, "text/javascript; charset=utf-8"),
        "/dashboard.css" => asset(DASHBOARD_CSS, "text/css; charset=utf-8"),
        _ => asset(INDEX_HTML, "text/html; charset=utf-8"),
    })
}

fn asset(body: &'static str, content_type: &str) -> Result<Response> {
    let mut resp = Response::ok(body)?;
    let headers = resp.headers_mut();
    headers.set("content-type", content_type)?;
    headers.set("cache-control", "public, max-age=300")?;
    // Only this Worker's own script, style and /stats: nothing else may load.
    headers.set(
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'",
    )?;
    headers.set("x-content-type-options", "nosniff")?;
    Ok(resp)
}
