//! Pusher signatures: channel authorisation for `private-`/`presence-` subscriptions, user
//! authentication for `pusher:signin`, and HTTP
//! API request signing. Every comparison of a presented signature runs in constant time
//! (`Mac::verify_slice`).

use hmac::{Hmac, KeyInit as _, Mac as _};
use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::{AUTH_TIMESTAMP_SKEW_S_MAX, Error, Result, SocketId};

type HmacSha256 = Hmac<Sha256>;

/// A keyed HMAC-SHA256 over `parts`, concatenated.
fn mac(secret: &str, parts: &[&str]) -> HmacSha256 {
    #[expect(
        clippy::expect_used,
        reason = "HMAC takes keys of any length; new_from_slice cannot fail"
    )]
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p.as_bytes());
    }
    mac
}

/// The string a channel authorisation signs: `socket_id:channel[:channel_data]`.
fn channel_parts<'a>(
    socket_id: &'a str,
    channel: &'a str,
    channel_data: Option<&'a str>,
) -> Vec<&'a str> {
    let mut parts = vec![socket_id, ":", channel];
    if let Some(d) = channel_data {
        parts.extend([":", d]);
    }
    parts
}

/// `KEY:hex(HMAC_SHA256(secret, parts))`.
fn key_signature(key: &str, secret: &str, parts: &[&str]) -> String {
    format!(
        "{key}:{}",
        hex::encode(mac(secret, parts).finalize().into_bytes())
    )
}

/// Checks `auth` (`KEY:HEXSIG`) against the app key and the HMAC of `parts`, in constant time.
fn check_key_signature(key: &str, secret: &str, parts: &[&str], auth: &str) -> Result<()> {
    let unauthorized = |reason: &str| Error::Unauthorized {
        reason: reason.to_owned(),
    };
    let (given_key, sig_hex) = auth
        .split_once(':')
        .ok_or_else(|| unauthorized("auth is not KEY:SIGNATURE"))?;
    if given_key != key {
        return Err(unauthorized("auth names another app key"));
    }
    let sig = hex::decode(sig_hex).map_err(|_| unauthorized("signature is not hex"))?;
    mac(secret, parts)
        .verify_slice(&sig)
        .map_err(|_| unauthorized("invalid signature"))
}

/// `hex(HMAC_SHA256(secret, message))`, lowercase.
#[must_use]
pub fn hmac_sha256_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = mac(secret, &[]);
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// A webhook's `X-Pusher-Signature`: `hex(HMAC_SHA256(secret, body))` of the raw POST body.
#[must_use]
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    hmac_sha256_hex(secret, body)
}

/// `KEY:hex(HMAC_SHA256(secret, socket_id:channel[:channel_data]))`, as an auth endpoint
/// returns it.
#[must_use]
pub fn channel_auth(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> String {
    key_signature(
        key,
        secret,
        &channel_parts(socket_id, channel, channel_data),
    )
}

/// Checks a subscription's `auth` against the app key and secret, in constant time.
///
/// # Errors
/// [`Error::Unauthorized`] when the key differs or the signature does not verify.
pub fn check_channel_auth(
    key: &str,
    secret: &str,
    socket_id: &SocketId,
    channel: &str,
    channel_data: Option<&str>,
    auth: &str,
) -> Result<()> {
    let parts = channel_parts(socket_id.as_str(), channel, channel_data);
    check_key_signature(key, secret, &parts, auth)
}

/// `KEY:hex(HMAC_SHA256(secret, socket_id::user::user_data))`, as a user authentication
/// endpoint returns it for `pusher:signin`.
#[must_use]
pub fn user_auth(key: &str, secret: &str, socket_id: &str, user_data: &str) -> String {
    key_signature(key, secret, &[socket_id, "::user::", user_data])
}

/// Checks a `pusher:signin`'s `auth` against the app key and secret, in constant time.
///
/// # Errors
/// [`Error::Unauthorized`] when the key differs or the signature does not verify.
pub fn check_user_auth(
    key: &str,
    secret: &str,
    socket_id: &SocketId,
    user_data: &str,
    auth: &str,
) -> Result<()> {
    let parts = [socket_id.as_str(), "::user::", user_data];
    check_key_signature(key, secret, &parts, auth)
}

/// Lower-case hex MD5 of a request body.
#[must_use]
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// `hex(HMAC_SHA256(secret, METHOD\nPATH\nQ))`, Q being every parameter but `auth_signature`,
/// keys lower-cased, sorted by key, joined as `k=v` with `&`, not URL-encoded.
#[must_use]
pub fn sign_request(secret: &str, method: &str, path: &str, params: &[(String, String)]) -> String {
    hex::encode(
        mac(secret, &[&string_to_sign(method, path, params)])
            .finalize()
            .into_bytes(),
    )
}

fn string_to_sign(method: &str, path: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, &str)> = params
        .iter()
        .filter(|(k, _)| k != "auth_signature")
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .collect();
    pairs.sort();
    let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}\n{path}\n{}", method.to_ascii_uppercase(), q.join("&"))
}

/// A signed HTTP API request as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The path, starting `/apps/`.
    pub path: &'a str,
    /// The decoded query parameters, including the `auth_*` ones.
    pub params: &'a [(String, String)],
    /// The raw body.
    pub body: &'a [u8],
}

/// Checks a signed HTTP API request: `auth_key`, `auth_version=1.0`, an `auth_timestamp`
/// within [`AUTH_TIMESTAMP_SKEW_S_MAX`] of `now_s`, `body_md5` recomputed from the body, and
/// `auth_signature` compared in constant time.
///
/// # Errors
/// [`Error::Unauthorized`] with a reason safe to show the client.
pub fn check_request(req: &SignedRequest<'_>, key: &str, secret: &str, now_s: u64) -> Result<()> {
    let unauthorized = |reason: &str| Error::Unauthorized {
        reason: reason.to_owned(),
    };
    let param = |name: &str| {
        req.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if param("auth_key") != Some(key) {
        return Err(unauthorized("missing or unknown auth_key"));
    }
    if param("auth_version").is_some_and(|v| v != "1.0") {
        return Err(unauthorized("auth_version must be 1.0"));
    }
    let ts: u64 = param("auth_timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| unauthorized("missing auth_timestamp"))?;
    if ts.abs_diff(now_s) > AUTH_TIMESTAMP_SKEW_S_MAX {
        return Err(unauthorized(
            "auth_timestamp is too far from the server's time",
        ));
    }
    if !req.body.is_empty() && param("body_md5") != Some(body_md5(req.body).as_str()) {
        return Err(unauthorized("body_md5 does not match the body"));
    }
    let sig = param("auth_signature")
        .and_then(|s| hex::decode(s).ok())
        .ok_or_else(|| unauthorized("missing auth_signature"))?;
    mac(secret, &[&string_to_sign(req.method, req.path, req.params)])
        .verify_slice(&sig)
        .map_err(|_| unauthorized("invalid auth_signature"))
}
