//! Capability: the embedded dashboard (`/`, `/dashboard/app.js`, `/dashboard/style.css`), and
//! signing a browser in at `/login` when the server has an auth token.
//!
//! Method: requests through the router with no socket; checks content types, the
//! Content-Security-Policy that keeps the page to its own origin, that no asset refers to
//! another origin (nothing is fetched from the internet), and the session cookie's life.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns unwrap on setup"
)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

async fn get(path: &str) -> (StatusCode, String, String, String) {
    let engine = std::sync::Arc::new(streamcache::engine::Engine::temporary().unwrap());
    let resp = streamcache::api::router(engine)
        .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (ct, csp) = (header("content-type"), header("content-security-policy"));
    let body = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    (status, ct, csp, body)
}

#[tokio::test]
async fn page_and_assets_are_served_from_the_binary() {
    for (path, ct) in [
        ("/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
    ] {
        let (status, content_type, csp, body) = get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(content_type.starts_with(ct), "{path}: {content_type}");
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} refers to another origin"
        );
    }
    let (_, _, _, html) = get("/").await;
    assert!(html.contains("/dashboard/app.js") && html.contains("/dashboard/style.css"));
    let (_, _, _, js) = get("/dashboard/app.js").await;
    for needle in [
        "/realtime/orders",
        "/redis/get/",
        "/kafka/topics/orders",
        "application/vnd.kafka.json.v2+json",
    ] {
        assert!(js.contains(needle), "app.js uses {needle}");
    }
}

/// A router over a temporary engine whose HTTP surface wants `token` (none: no auth).
fn router(token: Option<&str>) -> axum::Router {
    let engine = streamcache::engine::Engine::open(streamcache::config::Config {
        ephemeral: true,
        auth_token: token.map(str::to_owned),
        ..streamcache::config::Config::default()
    })
    .unwrap();
    streamcache::api::router(std::sync::Arc::new(engine))
}

/// Status, the named response headers, and the body (not read for an event stream).
async fn send(
    router: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = router.clone().oneshot(request).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    if headers
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"))
    {
        return (status, headers, String::new());
    }
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn get_with(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::builder().uri(path);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.body(Body::empty()).unwrap()
}

fn sign_in(form: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap()
}

fn header<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> &'h str {
    headers.get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn a_browser_signs_in_with_the_token_and_then_uses_the_dashboard_by_its_cookie() {
    // A token with characters the form encodes.
    let token = "s3cret&x=1 +";
    let app = router(Some(token));

    // Without credentials the page leads to the sign-in form, which is open, as is its
    // stylesheet; everything else stays closed.
    let (status, headers, _) = send(&app, get_with("/", None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(header(&headers, "location"), "/login");
    let head = Request::builder()
        .method("HEAD")
        .uri("/")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(&app, head).await;
    assert_eq!(
        (status, header(&headers, "location")),
        (StatusCode::SEE_OTHER, "/login")
    );
    let (status, headers, page) = send(&app, get_with("/login", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert!(page.contains(r#"action="/login""#) && page.contains(r#"name="token""#));
    assert_eq!(
        send(&app, get_with("/dashboard/style.css", None)).await.0,
        StatusCode::OK
    );
    for path in ["/dashboard/app.js", "/realtime/orders", "/readyz"] {
        assert_eq!(
            send(&app, get_with(path, None)).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }

    // A wrong token: the form again, 401, no cookie. So is the right token's prefix.
    for wrong in ["token=nope", "token=s3cret"] {
        let (status, headers, page) = send(&app, sign_in(wrong)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert!(page.contains("not the server's auth token"), "{page}");
        assert!(headers.get("set-cookie").is_none());
        assert_eq!(header(&headers, "www-authenticate"), "Bearer");
    }

    // The token buys a session cookie that is not the token, and leads to the page.
    let (status, headers, _) = send(&app, sign_in("token=s3cret%26x%3D1+%2B")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(header(&headers, "location"), "/");
    let set_cookie = header(&headers, "set-cookie").to_owned();
    assert!(
        set_cookie.starts_with("streamcache_session="),
        "{set_cookie}"
    );
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(!cookie.contains("s3cret"), "{cookie}");

    // With it: the page, its script, the event stream, the cache; among other cookies too.
    let jar = format!("theme=dark; {cookie}; other=1");
    for (path, content_type) in [
        ("/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/realtime/orders", "text/event-stream"),
        ("/redis/get/customer:1", "application/json"),
    ] {
        let (status, headers, _) = send(&app, get_with(path, Some(&jar))).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            header(&headers, "content-type").starts_with(content_type),
            "{path}"
        );
    }

    // A changed value, or the cookie of another token, opens nothing.
    let mut forged = cookie.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        send(&app, get_with("/readyz", Some(&forged))).await.0,
        StatusCode::UNAUTHORIZED
    );
    let rotated = router(Some("a new token"));
    assert_eq!(
        send(&rotated, get_with("/readyz", Some(&cookie))).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&rotated, get_with("/", Some(&cookie))).await.0,
        StatusCode::SEE_OTHER
    );

    // Signing out clears the cookie.
    let (status, headers, _) = send(
        &app,
        Request::builder()
            .method("POST")
            .uri("/logout")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cleared = header(&headers, "set-cookie");
    assert!(
        cleared.starts_with("streamcache_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test]
async fn without_a_token_the_sign_in_page_leads_to_the_dashboard() {
    let app = router(None);
    for request in [get_with("/login", None), sign_in("token=anything")] {
        let (status, headers, _) = send(&app, request).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(header(&headers, "location"), "/");
    }
    assert_eq!(send(&app, get_with("/", None)).await.0, StatusCode::OK);
}

/// `SameSite=Strict` keeps the session cookie from other sites only: a page on another origin
/// of the same site (another port, a sibling subdomain) still has the browser send it, and a
/// plain GET writes under `/redis`. The cookie signs in only requests the browser marks as
/// coming from the server's own origin; it had signed in every one, so such a page could write
/// with an `<img>`.
#[tokio::test]
async fn the_session_cookie_signs_in_only_requests_from_the_servers_own_origin() {
    let token = "s3cret";
    let app = router(Some(token));
    let (_, headers, _) = send(&app, sign_in("token=s3cret")).await;
    let cookie = header(&headers, "set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let request = |path: &str, from: (&str, &str)| {
        Request::builder()
            .uri(path)
            .header("host", "streamcache.example:8080")
            .header("cookie", &cookie)
            .header(from.0, from.1)
            .body(Body::empty())
            .unwrap()
    };
    for from in [
        ("sec-fetch-site", "same-site"),
        ("sec-fetch-site", "cross-site"),
        ("origin", "http://other.streamcache.example:8080"),
        ("origin", "http://streamcache.example:3000"),
        ("origin", "null"),
    ] {
        let (status, _, _) = send(&app, request("/redis/set/k/written", from)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{from:?}");
    }
    let (_, _, body) = send(
        &app,
        request("/redis/get/k", ("sec-fetch-site", "same-origin")),
    )
    .await;
    assert_eq!(body, r#"{"result":null}"#, "nothing was written");
    for from in [
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-site", "none"),
        ("origin", "http://streamcache.example:8080"),
    ] {
        let (status, _, _) = send(&app, request("/redis/set/k/v", from)).await;
        assert_eq!(status, StatusCode::OK, "{from:?}");
    }
    // The bearer token is not a browser's ambient credential: it works from anywhere.
    let (status, _, _) = send(
        &app,
        Request::builder()
            .uri("/redis/get/k")
            .header("authorization", format!("Bearer {token}"))
            .header("sec-fetch-site", "cross-site")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
