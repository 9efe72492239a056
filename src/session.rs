//! Cookie sessions for the site (private mode): the cookie's name and
//! attributes, reading it from a `Cookie` header, and the Origin rule that
//! keeps another site from acting with a member's cookie. Pure functions;
//! the Worker glue is `worker/api/session.rs`.

/// `__Host-`: the browser only accepts it Secure, from this host, for path
/// `/`, so no subdomain or plain-http page can plant or overwrite it.
pub const COOKIE_NAME: &str = "__Host-session";
/// How long a browser keeps the cookie (30 days); the token row behind it
/// is what counts, and signing out or a ban deletes it at once.
pub const COOKIE_MAX_AGE: u32 = 30 * 24 * 3600;

/// The `Set-Cookie` value that stores `token`: HttpOnly (no script reads
/// it), Secure, SameSite=Strict (never sent with a request another site
/// starts).
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE_NAME}={token}; Max-Age={COOKIE_MAX_AGE}; Path=/; HttpOnly; Secure; SameSite=Strict")
}

/// The `Set-Cookie` value that makes the browser forget the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict")
}

/// The session token in a `Cookie` header, if it holds a well-formed one
/// (64 lower-case hex characters, as `accounts::token_from` makes).
pub fn token_in(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The origin (`scheme://host[:port]`) of an absolute URL.
pub fn origin_of(url: &str) -> &str {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url };
    match url[start..].find(['/', '?', '#']) {
        Some(end) => &url[..start + end],
        None => url,
    }
}

/// Why a state-changing request is refused, if it is.
#[derive(Debug, PartialEq, Eq)]
pub enum OriginRefusal {
    /// A page of another site sent it (or the browser hid the origin: `null`).
    Foreign,
    /// It carries the session cookie but no `Origin`: browsers always send
    /// one with a POST or DELETE, so this did not come from our own page.
    Missing,
}

/// The Origin rule for POST and DELETE: a request naming another origin is
/// refused whatever its credentials; one authenticated by the cookie must
/// name ours. Scripts using a bearer token send no `Origin` and pass.
pub fn check_origin(origin: Option<&str>, request_url: &str, has_cookie: bool) -> Result<(), OriginRefusal> {
    match origin {
        Some(o) if o.eq_ignore_ascii_case(origin_of(request_url)) => Ok(()),
        Some(_) => Err(OriginRefusal::Foreign),
        None if has_cookie => Err(OriginRefusal::Missing),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_the_session_cookie_among_others() {
        assert_eq!(token_in(&format!("a=1; __Host-session={TOKEN}; b=2")), Some(TOKEN));
        assert_eq!(token_in(&format!("__Host-session={TOKEN}")), Some(TOKEN));
        assert_eq!(token_in("a=1"), None);
        assert_eq!(token_in("__Host-session=short"), None);
        assert_eq!(token_in(&format!("session={TOKEN}")), None, "only the __Host- name");
        assert_eq!(token_in(&format!("__Host-session={}", TOKEN.to_uppercase())), None);
    }

    #[test]
    fn cookie_attributes() {
        let set = set_cookie(TOKEN);
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(attr), "{set} lacks {attr}");
        }
        assert!(!set.contains("Domain"), "a __Host- cookie has no Domain");
        assert!(clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn origins() {
        assert_eq!(origin_of("https://t.example/api/me?x=1"), "https://t.example");
        assert_eq!(origin_of("http://127.0.0.1:8787/api"), "http://127.0.0.1:8787");
        assert_eq!(origin_of("http://127.0.0.1:8787"), "http://127.0.0.1:8787");
    }

    #[test]
    fn origin_rule() {
        let url = "https://t.example/api/session";
        assert_eq!(check_origin(Some("https://t.example"), url, true), Ok(()));
        assert_eq!(check_origin(Some("https://evil.example"), url, true), Err(OriginRefusal::Foreign));
        assert_eq!(check_origin(Some("https://evil.example"), url, false), Err(OriginRefusal::Foreign));
        assert_eq!(check_origin(Some("null"), url, true), Err(OriginRefusal::Foreign));
        assert_eq!(check_origin(Some("http://t.example"), url, true), Err(OriginRefusal::Foreign), "scheme counts");
        assert_eq!(check_origin(None, url, true), Err(OriginRefusal::Missing));
        assert_eq!(check_origin(None, url, false), Ok(()), "a script with a bearer token");
    }
}
