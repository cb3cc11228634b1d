//! The dashboard at `/`: one HTML page, a stylesheet and a script, embedded in the binary with
//! `include_str!` (no build step, nothing fetched from elsewhere — the Content-Security-Policy
//! header allows only this origin).
//!
//! The page listens to SSE `/realtime/orders`, reads the cache through `/redis/get/…` and
//! produces orders through `/kafka/topics/orders`.
//!
//! With an auth token configured, `/login` is where a browser signs in (`auth.rs` explains
//! the session cookie) and `/logout` where it signs out; without one both lead to `/`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::AppState;
use super::auth::{SESSION_COOKIE, constant_time_eq, session_value};

/// The page.
const INDEX_HTML: &str = include_str!("../../web/index.html");
/// Its stylesheet.
const STYLE_CSS: &str = include_str!("../../web/style.css");
/// Its script.
const APP_JS: &str = include_str!("../../web/app.js");
/// The sign-in page; `<!--error-->` is where a refusal is said.
const LOGIN_HTML: &str = include_str!("../../web/login.html");

/// Only this origin: scripts, styles, fetches and the event stream.
const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The dashboard routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/dashboard/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}

/// The sign-in form posted to `/login`.
#[derive(serde::Deserialize)]
struct SignIn {
    token: String,
}

/// `GET /login`: the form, or the dashboard when the server has no token.
async fn login_page(State(state): State<AppState>) -> Response {
    if state.engine.config().auth_token.is_none() {
        return Redirect::to("/").into_response();
    }
    asset("text/html; charset=utf-8", LOGIN_HTML)
}

/// `POST /login`: the right token sets the session cookie and leads to the dashboard; a wrong
/// one gets the form again with 401.
async fn login(State(state): State<AppState>, form: axum::Form<SignIn>) -> Response {
    let Some(expected) = state.engine.config().auth_token.as_deref() else {
        return Redirect::to("/").into_response();
    };
    if !constant_time_eq(form.token.as_bytes(), expected.as_bytes()) {
        let page = LOGIN_HTML.replace(
            "<!--error-->",
            r#"<p class="error" role="alert">That is not the server's auth token.</p>"#,
        );
        let mut resp = asset("text/html; charset=utf-8", "");
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        // A 401 names a scheme (RFC 9110 §15.5.2): the token is a bearer token.
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        *resp.body_mut() = page.into();
        return resp;
    }
    session_response(&format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        session_value(expected)
    ))
}

/// `POST /logout`: the session cookie is cleared.
async fn logout() -> Response {
    session_response(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
}

/// A redirect to the dashboard (which sends a browser without a session on to `/login`)
/// setting the cookie `set_cookie`.
fn session_response(set_cookie: &str) -> Response {
    let mut resp = Redirect::to("/").into_response();
    match HeaderValue::from_str(set_cookie) {
        Ok(v) => {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        // The value is ASCII built above (a name, hex digits and fixed attributes).
        Err(_) => *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    resp
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
