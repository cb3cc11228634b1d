//! Bearer-token authentication for every route except `/healthz` and the Pusher surface.
//! Under `/mongo` the token may also come as the Data API's `apiKey` header, under `/redis` as
//! Upstash's `_token` query parameter.
//!
//! A browser cannot send a bearer token with an `EventSource` or a page load, so the
//! dashboard signs in at `/login` instead: the token, posted once, buys a session cookie
//! ([`SESSION_COOKIE`], `HttpOnly`, `SameSite=Strict`) whose value is an HMAC of the token, not
//! the token itself; every route accepts it in the token's place, and a new token voids it.
//! Only from the server's own origin: `SameSite` lets another origin of the same site send the
//! cookie, so a request a browser marks as coming from elsewhere (`Sec-Fetch-Site`, or else a
//! foreign `Origin`) is not signed in by it.
//! `GET /` (and `HEAD /`) without credentials is sent to `/login` rather than answered 401.
//!
//! The Pusher WebSocket (`/app/{key}`) and HTTP API (`/apps/{app_id}/…`) are exempt: pusher-js
//! and the Pusher SDKs cannot send a bearer token, and both are authenticated the Pusher way
//! instead (HMAC-signed HTTP API requests; signed `private-`/`presence-` subscriptions). Public
//! Pusher channels are readable without a token, as they are on Pusher itself.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::is_under;
use super::{ApiError, AppState};

/// Paths answered without a token: liveness must work for any supervisor; signing in and out
/// and the sign-in page's stylesheet (no data) must work before the browser has a session.
const OPEN_PATHS: &[&str] = &["/healthz", "/login", "/logout", "/dashboard/style.css"];

/// The cookie holding a browser's session (see the module documentation).
pub(crate) const SESSION_COOKIE: &str = "streamcache_session";

/// What the session value is an HMAC of, keyed by the token.
const SESSION_CONTEXT: &[u8] = b"streamcache dashboard session v1";

/// The session cookie's value for `token`: HMAC-SHA256 of [`SESSION_CONTEXT`] keyed by the
/// token, in lowercase hex.
#[must_use]
pub(crate) fn session_value(token: &str) -> String {
    crate::realtime::hmac_sha256_hex(token, SESSION_CONTEXT)
}

/// The value of the cookie `name` among the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// Whether the request carries the session cookie of `token`, sent from the server's own
/// origin ([`from_own_origin`]).
fn has_session(req: &Request, token: &str) -> bool {
    let headers = req.headers();
    from_own_origin(req)
        && cookie(headers, SESSION_COOKIE)
            .is_some_and(|v| constant_time_eq(v.as_bytes(), session_value(token).as_bytes()))
}

/// Whether the browser says the request comes from the server's own origin, the only one the
/// session cookie stands for. IMPORTANT: `SameSite=Strict` keeps the cookie from other sites
/// only: a page on another origin of the same site (another port of the host, a sibling
/// subdomain) still sends it, and a plain GET writes under `/redis` (`/redis/set/k/v`), so
/// an `<img>` there would write with the signed-in browser's session. `Sec-Fetch-Site`, which
/// every current browser sends, must be `same-origin` (or `none`: an address typed or
/// bookmarked); without it, an `Origin`, when sent, must name this host.
fn from_own_origin(req: &Request) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            req.uri()
                .authority()
                .map(axum::http::uri::Authority::as_str)
        });
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, h)| h);
    host.is_some() && origin_host == host
}

/// Path prefixes answered without a token because they carry Pusher signing instead.
const OPEN_PREFIXES: &[&str] = &["/app/", "/apps/"];

/// The header in which an Atlas Data API client sends its API key.
const DATA_API_KEY_HEADER: &str = "apiKey";

/// Whether `path` skips the bearer check.
fn is_open(path: &str) -> bool {
    OPEN_PATHS.contains(&path) || OPEN_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Rejects requests without `Authorization: Bearer TOKEN` when a token is configured.
pub(crate) async fn require_bearer(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.engine.config().auth_token.as_deref() else {
        return next.run(req).await;
    };
    if is_open(req.uri().path()) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer =
        header_text(header::AUTHORIZATION.as_str()).and_then(|v| v.strip_prefix("Bearer "));
    // A Data API client sends its key as `apiKey`: under `/mongo` that header carries the
    // token too, so such a client works by changing only its base URL. An Upstash client may
    // send it as the `_token` query parameter, read only for `/redis` requests without one.
    let query_token;
    let presented = match bearer {
        None if is_under(req.uri().path(), "/mongo") => header_text(DATA_API_KEY_HEADER),
        None if is_under(req.uri().path(), "/redis") => {
            query_token = super::redis::query_token(req.uri());
            query_token.as_deref()
        }
        other => other,
    };
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {
            next.run(req).await
        }
        None if has_session(&req, expected) => next.run(req).await,
        None if matches!(*req.method(), Method::GET | Method::HEAD) && req.uri().path() == "/" => {
            Redirect::to("/login").into_response()
        }
        _ => {
            let mut resp = unauthorized(req.uri().path(), presented.is_some());
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
    }
}

/// The 401 of a request without the right token, in the error shape of the surface it was
/// sent to: the REST Proxy's 40101 under `/kafka`, the Data API's under `/mongo`, Upstash's
/// under `/redis`.
fn unauthorized(path: &str, token_sent: bool) -> Response {
    if is_under(path, "/kafka") {
        return super::kafka::unauthorized(path);
    }
    if is_under(path, "/mongo") {
        return super::mongo::unauthorized(token_sent);
    }
    if is_under(path, "/redis") {
        return super::redis::unauthorized();
    }
    ApiError::client(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong bearer token",
    )
    .into_response()
}

/// Compares two byte strings in time that depends only on their lengths.
#[must_use]
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::{constant_time_eq, is_open};

    #[test]
    fn pusher_paths_skip_bearer_auth() {
        assert!(is_open("/healthz"));
        assert!(is_open("/login"));
        assert!(!is_open("/dashboard/app.js"));
        assert!(is_open("/app/streamcache-key"));
        assert!(is_open("/apps/streamcache/events"));
        assert!(!is_open("/realtime/orders"));
        assert!(!is_open("/"));
        assert!(!is_open("/apps"));
        assert!(!is_open("/application"));
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(constant_time_eq(b"", b""));
    }
}
