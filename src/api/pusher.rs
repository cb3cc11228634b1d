//! Pusher Channels protocol 7: the WebSocket `/app/{key}` and the HTTP API `/apps/{app_id}/…`.
//!
//! Both are exempt from bearer auth (see `auth.rs`): the HTTP API checks Pusher request
//! signatures, and `private-`/`presence-` subscriptions check channel signatures. The protocol
//! logic (names, frames, signatures, presence) lives in `crate::realtime`; this file moves
//! frames between sockets and the hub.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::BoxStream;
use futures::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio_stream::StreamMap;

use super::AppState;
use super::realtime::{GaugeGuard, let_subscribers_write_first};
use crate::clock::SharedClock;
use crate::realtime::{
    self, BATCH_EVENTS_MAX, CLIENT_EVENTS_PER_SECOND_MAX, CONNECTION_CHANNELS_MAX, ChannelKind,
    ClientMessage, Delivery, ErrorCode, EventData, Hub, PUBLISH_CHANNELS_MAX, RateWindow,
    RealtimeConfig, SERVER_TO_USER_PREFIX, SignedRequest, SocketId, USER_ID_CHARS_MAX, UserGuard,
    WS_MESSAGE_BYTES_MAX, check_channel_auth, check_channel_name, check_published_event_name,
    check_request, check_user_auth, frame_connection_established, frame_error,
    frame_error_without_code, frame_ping, frame_pong, frame_signin_success,
    frame_subscription_error, frame_subscription_succeeded, parse_client_message,
    parse_presence_data, parse_signed_in_user, server_to_user_id,
};

/// Event name of presence joins as published through the hub.
const MEMBER_ADDED: &str = "pusher_internal:member_added";
/// Event name of presence leaves as published through the hub.
const MEMBER_REMOVED: &str = "pusher_internal:member_removed";

/// The Pusher routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/{key}", get(upgrade))
        .route("/apps/{app_id}/events", post(events))
        .route("/apps/{app_id}/batch_events", post(batch_events))
        .route("/apps/{app_id}/channels", get(channels))
        .route("/apps/{app_id}/channels/{channel}", get(channel_info))
        .route(
            "/apps/{app_id}/channels/{channel}/users",
            get(channel_users),
        )
        .route(
            "/apps/{app_id}/users/{user_id}/terminate_connections",
            post(terminate_connections),
        )
}

// ---- WebSocket ----------------------------------------------------------------------------

/// Bytes a WebSocket connection reads from its socket at a time. Pusher clients send small
/// frames (subscribe, ping, client events), and a larger frame, up to
/// [`WS_MESSAGE_BYTES_MAX`], grows the buffer as it arrives. The library's default of 128 KiB
/// is zero-filled before every read, including the reads that find nothing after each
/// delivered event, and is held by every connection (docs/benchmarks-log.md, "WebSocket read
/// buffer").
const WS_READ_BUFFER_BYTES: usize = 4 * 1024;

/// `GET /app/{key}?protocol=7…`: upgrades, then runs one connection.
async fn upgrade(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let protocol = query.get("protocol").cloned();
    ws.max_message_size(WS_MESSAGE_BYTES_MAX)
        .max_frame_size(WS_MESSAGE_BYTES_MAX)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .on_upgrade(move |socket| connection(state, key, protocol, socket))
}

/// Sends `pusher:error` and closes with the same code, both within `deadline` (see
/// [`send_within`]); a client that takes neither is simply dropped.
async fn refuse(socket: &mut WebSocket, code: ErrorCode, message: &str, deadline: Duration) {
    let frames = async {
        socket
            .send(Message::Text(frame_error(code, message).into()))
            .await?;
        socket.send(close_frame(code.code(), message)).await
    };
    let _ = tokio::time::timeout(deadline, frames).await;
}

/// A close frame.
fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

/// Why a write to the client did not complete; either way the connection is dropped.
#[derive(Debug)]
enum SendFailed {
    /// The connection broke.
    Broken,
    /// The client took no data for the whole deadline.
    TimedOut,
}

/// Writes `msgs` and flushes them, giving up after `deadline`.
///
/// Every write to a client goes through here, with one activity period
/// (`realtime.activity_timeout_s`) as the deadline. A client that stops reading fills the
/// socket's send buffer, and an unbounded write would then wait until TCP gives up (many
/// minutes, or never while the peer keeps acknowledging with a zero window); the connection
/// task would hear nothing else meanwhile — not the activity timer, not shutdown, not its own
/// lag — and the connection would keep its presence memberships, subscriptions and slot. A
/// client that cannot take one frame in an activity period is treated as gone, as one that
/// does not answer a ping in that time is: the caller drops the connection without a close
/// frame (none could be written) and leaves its channels as for any other close.
async fn send_within(
    socket: &mut WebSocket,
    msgs: impl IntoIterator<Item = Message>,
    deadline: Duration,
) -> Result<(), SendFailed> {
    let write = async {
        for msg in msgs {
            socket.feed(msg).await?;
        }
        socket.flush().await
    };
    match tokio::time::timeout(deadline, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendFailed::Broken),
        Err(_) => {
            tracing::debug!(
                ?deadline,
                "Pusher client took no data within the write deadline; dropping the connection"
            );
            Err(SendFailed::TimedOut)
        }
    }
}

/// Text frames as WebSocket messages.
fn texts(frames: Vec<String>) -> impl Iterator<Item = Message> {
    frames.into_iter().map(|f| Message::Text(f.into()))
}

/// RFC 6455 close code for a message larger than the endpoint accepts.
const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;

/// RFC 6455 close code for data inconsistent with the message's type (a text frame that is
/// not UTF-8).
const CLOSE_INVALID_PAYLOAD: u16 = 1007;

/// The close frame RFC 6455 asks for after a receive error the peer caused: a message or frame
/// over [`WS_MESSAGE_BYTES_MAX`] (1009), a text message that is not UTF-8 (1007). `None` for
/// the others (the connection is gone, or broke at the transport).
fn close_for(e: axum::Error) -> Option<(u16, String)> {
    let e = e.into_inner().downcast::<tungstenite::Error>().ok()?;
    match *e {
        tungstenite::Error::Capacity(_) => Some((
            CLOSE_MESSAGE_TOO_BIG,
            format!("Messages are limited to {WS_MESSAGE_BYTES_MAX} bytes"),
        )),
        tungstenite::Error::Utf8(_) => Some((
            CLOSE_INVALID_PAYLOAD,
            "Text frames must be UTF-8".to_owned(),
        )),
        _ => None,
    }
}

/// What a client message asks of the connection besides the frames sent back.
enum Outcome {
    /// Nothing more.
    Continue,
    /// Send `pusher:error` with this code and close.
    Close(ErrorCode, String),
}

/// A channel's deliveries, as one stream of a connection's `StreamMap`.
type Deliveries = BoxStream<'static, Delivery>;

/// One connection's state.
struct Conn {
    /// The hub.
    hub: std::sync::Arc<Hub>,
    /// The app settings.
    config: RealtimeConfig,
    /// This connection's id.
    socket_id: SocketId,
    /// Subscribed channels → their deliveries.
    subs: StreamMap<String, Deliveries>,
    /// Presence channels joined → the user id joined as.
    presence: HashMap<String, String>,
    /// The engine clock, for the client-event rate limit.
    clock: SharedClock,
    /// Client events sent in the current second.
    client_rate: RateWindow,
    /// The sign-in this connection holds (`pusher:signin`); `terminate_connections` signals
    /// through it.
    user: Option<UserGuard>,
    /// The signed-in user's `user_info` (`null` without one): its presence member's info when
    /// it subscribes to a presence channel without `channel_data`.
    user_info: Value,
}

async fn connection(state: AppState, key: String, protocol: Option<String>, mut socket: WebSocket) {
    let config = state.engine.config().realtime.clone();
    // The idle time before a ping, and the activity of every write to this client (see
    // `send_within`).
    let activity = Duration::from_secs(config.activity_timeout_s);
    if key != config.key {
        return refuse(
            &mut socket,
            ErrorCode::AppNotFound,
            &format!("App key {key} not in this cluster"),
            activity,
        )
        .await;
    }
    match protocol.as_deref().map(str::parse::<u8>) {
        None => {
            return refuse(
                &mut socket,
                ErrorCode::NoProtocol,
                "No protocol version supplied",
                activity,
            )
            .await;
        }
        Some(Ok(5..=7)) => {}
        Some(Err(_)) => {
            return refuse(
                &mut socket,
                ErrorCode::InvalidProtocol,
                "Invalid version string format",
                activity,
            )
            .await;
        }
        Some(Ok(_)) => {
            return refuse(
                &mut socket,
                ErrorCode::UnsupportedProtocol,
                "Unsupported protocol version",
                activity,
            )
            .await;
        }
    }
    let hub = state.engine.realtime().clone();
    let Some(_guard) = hub.try_connect() else {
        return refuse(
            &mut socket,
            ErrorCode::OverCapacity,
            "Over capacity",
            activity,
        )
        .await;
    };
    let _open = GaugeGuard::new(
        &state,
        "streamcache_realtime_ws_connections",
        "Open Pusher WebSocket connections",
    );
    let socket_id = hub.next_socket_id();
    let hello = frame_connection_established(&socket_id, config.activity_timeout_s);
    if send_within(&mut socket, texts(vec![hello]), activity)
        .await
        .is_err()
    {
        return;
    }
    let mut conn = Conn {
        hub,
        config,
        socket_id,
        subs: StreamMap::new(),
        presence: HashMap::new(),
        clock: state.engine.clock().clone(),
        client_rate: RateWindow::default(),
        user: None,
        user_info: Value::Null,
    };
    let mut shutdown = state.shutdown.clone();
    let idle = tokio::time::sleep(activity);
    tokio::pin!(idle);
    let mut pinged = false;
    let close: Option<(ErrorCode, String)> = loop {
        tokio::select! {
            () = shutdown.wait() => break Some((ErrorCode::ReconnectNow, "Server is shutting down".to_owned())),
            () = signed_out(conn.user.as_ref()) => {
                break Some((ErrorCode::Unauthorized, "You got disconnected by the app.".to_owned()));
            }
            msg = socket.recv() => {
                let msg = match msg {
                    Some(Ok(msg)) => msg,
                    Some(Err(e)) => {
                        if let Some((code, reason)) = close_for(e) {
                            let _ = send_within(&mut socket, [close_frame(code, &reason)], activity).await;
                        }
                        break None;
                    }
                    None => break None,
                };
                idle.set(tokio::time::sleep(activity));
                pinged = false;
                let (frames, outcome) = match msg {
                    Message::Text(text) => conn.handle(text.as_str()),
                    Message::Binary(_) => (vec![frame_error(ErrorCode::MessageRejected, "Binary frames are not supported")], Outcome::Continue),
                    Message::Ping(_) | Message::Pong(_) => (Vec::new(), Outcome::Continue),
                    Message::Close(_) => break None,
                };
                if send_within(&mut socket, texts(frames), activity).await.is_err() {
                    break None;
                }
                match outcome {
                    Outcome::Continue => {}
                    Outcome::Close(code, message) => break Some((code, message)),
                }
            }
            Some((_, delivery)) = conn.subs.next(), if !conn.subs.is_empty() => match delivery {
                Delivery::Event(event) => {
                    if event.exclude() == Some(&conn.socket_id) {
                        continue;
                    }
                    let frame = Message::Text(event.pusher_frame().into());
                    if send_within(&mut socket, [frame], activity).await.is_err() {
                        break None;
                    }
                }
                // Pusher has no replay: make the client reconnect and resubscribe at once.
                Delivery::Resync { .. } => break Some((ErrorCode::ReconnectNow, "Subscriber fell behind; reconnect".to_owned())),
            },
            () = &mut idle => {
                if pinged {
                    break Some((ErrorCode::PongTimeout, "Pong reply not received in time".to_owned()));
                }
                pinged = true;
                idle.set(tokio::time::sleep(activity));
                if send_within(&mut socket, texts(vec![frame_ping()]), activity).await.is_err() {
                    break None;
                }
            }
        }
    };
    if let Some((code, message)) = close {
        refuse(&mut socket, code, &message, activity).await;
    }
    conn.leave_all();
}

/// Resolves when the signed-in user's connections are terminated; never without a sign-in.
async fn signed_out(user: Option<&UserGuard>) {
    match user {
        Some(u) => u.terminated().await,
        None => std::future::pending().await,
    }
}

impl Conn {
    /// Handles one text frame from the client; returns the frames to send back and what else
    /// the connection must do.
    fn handle(&mut self, text: &str) -> (Vec<String>, Outcome) {
        let msg = match parse_client_message(text) {
            Ok(msg) => msg,
            // Only a client event's data can be too large: Pusher rejects it as a client event.
            Err(e @ realtime::Error::DataTooLarge { .. }) => {
                let frame = frame_error(ErrorCode::ClientEventRejected, &e.to_string());
                return (vec![frame], Outcome::Continue);
            }
            Err(e) => {
                let frame = frame_error(ErrorCode::MessageRejected, &e.to_string());
                return (vec![frame], Outcome::Continue);
            }
        };
        let frames = match msg {
            ClientMessage::Signin { auth, user_data } => {
                return match self.signin(auth.as_deref(), user_data.as_deref()) {
                    Ok(frame) => (vec![frame], Outcome::Continue),
                    Err(message) => (Vec::new(), Outcome::Close(ErrorCode::Unauthorized, message)),
                };
            }
            ClientMessage::Ping => vec![frame_pong()],
            ClientMessage::Pong | ClientMessage::Other { .. } => Vec::new(),
            ClientMessage::Subscribe {
                channel,
                auth,
                channel_data,
            } => {
                vec![self.subscribe(&channel, auth.as_deref(), channel_data.as_deref())]
            }
            ClientMessage::Unsubscribe { channel } => {
                if self.subs.contains_key(&channel) {
                    self.unsubscribe(&channel);
                    Vec::new()
                } else {
                    // As Pusher answers it; the connection stays open.
                    vec![frame_error_without_code(&format!(
                        "No current subscription to channel {channel}, or subscription in progress"
                    ))]
                }
            }
            ClientMessage::ClientEvent {
                event,
                channel,
                data,
            } => self.client_event(&event, &channel, data),
        };
        (frames, Outcome::Continue)
    }

    /// `pusher:signin`: checks the signature over `socket_id::user::user_data` and the user
    /// data's id; on success the connection may subscribe to `#server-to-user-{id}`. A failure
    /// closes the connection with 4009, as Pusher and soketi do.
    fn signin(&mut self, auth: Option<&str>, user_data: Option<&str>) -> Result<String, String> {
        let not_authorized = || "Connection not authorized.".to_owned();
        let (Some(auth), Some(user_data)) = (auth, user_data) else {
            return Err(not_authorized());
        };
        let cfg = &self.config;
        check_user_auth(&cfg.key, &cfg.secret, &self.socket_id, user_data, auth)
            .map_err(|_| not_authorized())?;
        let (user_id, user_info) = parse_signed_in_user(user_data).map_err(|e| e.to_string())?;
        if let Some(old) = self.user.take()
            && old.user_id() != user_id
        {
            self.subs
                .remove(&format!("{SERVER_TO_USER_PREFIX}{}", old.user_id()));
        }
        self.user = Some(self.hub.sign_in(&user_id));
        self.user_info = user_info;
        Ok(frame_signin_success(user_data))
    }

    fn subscribe(
        &mut self,
        channel: &str,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) -> String {
        let kind = match check_channel_name(channel) {
            Ok(kind) => kind,
            Err(e) => {
                return frame_subscription_error(channel, "InvalidChannel", &e.to_string(), 400);
            }
        };
        if self.subs.contains_key(channel) {
            // Pusher's answer: the subscription stands as it was made (its presence member
            // too), and no second subscription_succeeded is sent.
            return frame_error_without_code(&format!(
                "Existing subscription to channel {channel}"
            ));
        }
        if kind == ChannelKind::User
            && server_to_user_id(channel) != self.user.as_ref().map(UserGuard::user_id)
        {
            return frame_subscription_error(
                channel,
                "AuthError",
                "only a connection signed in as this user (pusher:signin) may subscribe",
                401,
            );
        }
        if self.subs.len() >= CONNECTION_CHANNELS_MAX {
            let msg = format!("at most {CONNECTION_CHANNELS_MAX} channels per connection");
            return frame_subscription_error(channel, "LimitReached", &msg, 400);
        }
        let signed_data = if kind == ChannelKind::Presence {
            channel_data
        } else {
            None
        };
        if kind.needs_auth() {
            let Some(auth) = auth else {
                return frame_subscription_error(
                    channel,
                    "AuthError",
                    "auth is required for this channel",
                    401,
                );
            };
            let cfg = &self.config;
            if let Err(e) = check_channel_auth(
                &cfg.key,
                &cfg.secret,
                &self.socket_id,
                channel,
                signed_data,
                auth,
            ) {
                return frame_subscription_error(channel, "AuthError", &e.to_string(), 401);
            }
        }
        let mut joined = None;
        // Held until `member_added` is published (see `Hub::presence_announcing`).
        let _announcing = (kind == ChannelKind::Presence).then(|| self.hub.presence_announcing());
        if kind == ChannelKind::Presence {
            // Without channel_data (signed as `socket_id:channel`), a signed-in connection joins
            // as its user, as Pusher allows and pusher-js does when the authorizer returns none.
            let parsed = match (signed_data, &self.user) {
                (Some(data), _) => parse_presence_data(data),
                (None, Some(user)) => Ok((user.user_id().to_owned(), self.user_info.clone())),
                (None, None) => Err(realtime::Error::ChannelData {
                    reason: "missing, and the connection is not signed in (pusher:signin)".into(),
                }),
            };
            let (user_id, info) = match parsed {
                Ok(p) => p,
                Err(e) => {
                    return frame_subscription_error(channel, "AuthError", &e.to_string(), 400);
                }
            };
            match self.hub.presence_join(channel, &user_id, &info) {
                Ok(is_new) => joined = Some((user_id, info, is_new)),
                Err(e) => {
                    return frame_subscription_error(channel, "LimitReached", &e.to_string(), 403);
                }
            }
        }
        let sub = match self.hub.subscribe(channel, None) {
            Ok(sub) => sub,
            Err(e) => {
                if let Some((user_id, ..)) = &joined {
                    self.hub.presence_leave(channel, user_id);
                }
                return frame_subscription_error(channel, "ServerError", &e.to_string(), 503);
            }
        };
        let deliveries = futures::stream::unfold(sub, |mut sub| async move {
            let d = sub.recv().await;
            Some((d, sub))
        })
        .boxed();
        self.subs.insert(channel.to_owned(), deliveries);
        let snapshot = joined
            .as_ref()
            .map(|_| self.hub.presence_snapshot(channel).to_json());
        if let Some((user_id, info, is_new)) = joined {
            if is_new {
                let data = json!({"user_id": user_id, "user_info": info});
                let _ = self
                    .hub
                    .publish(channel, MEMBER_ADDED, data, Some(self.socket_id.clone()));
                self.hub.member_added_webhook(channel, &user_id);
            }
            self.presence.insert(channel.to_owned(), user_id);
        }
        frame_subscription_succeeded(channel, snapshot.as_ref())
    }

    /// Leaves `channel`: the presence member first, then the subscription, so a webhook hears
    /// `member_removed` before `channel_vacated` (the reverse of joining).
    fn unsubscribe(&mut self, channel: &str) {
        if let Some(user_id) = self.presence.remove(channel) {
            self.leave_presence(channel, &user_id);
        }
        self.subs.remove(channel);
    }

    fn leave_presence(&self, channel: &str, user_id: &str) {
        let _announcing = self.hub.presence_announcing();
        if self.hub.presence_leave(channel, user_id) {
            let _ = self
                .hub
                .publish(channel, MEMBER_REMOVED, json!({"user_id": user_id}), None);
            self.hub.member_removed_webhook(channel, user_id);
        }
    }

    /// Leaves every channel, presence members first (see [`Conn::unsubscribe`]).
    fn leave_all(&mut self) {
        let joined: Vec<(String, String)> = self.presence.drain().collect();
        for (channel, user_id) in joined {
            self.leave_presence(&channel, &user_id);
        }
        self.subs = StreamMap::new();
    }

    fn client_event(&mut self, event: &str, channel: &str, data: EventData) -> Vec<String> {
        let reject = |msg: &str| vec![frame_error(ErrorCode::ClientEventRejected, msg)];
        if !self.config.client_events {
            return reject("Client events are not enabled for this app");
        }
        if !check_channel_name(channel).is_ok_and(ChannelKind::needs_auth) {
            return reject("Client events are only allowed on private- and presence- channels");
        }
        if !self.subs.contains_key(channel) {
            return reject("Client events need a subscription to the channel");
        }
        if !self
            .client_rate
            .allow(self.clock.monotonic_ns(), CLIENT_EVENTS_PER_SECOND_MAX)
        {
            return reject("Client event rate limit reached (10 per second)");
        }
        let user_id = self.presence.get(channel).cloned();
        match self
            .hub
            .publish_client_event(channel, event, data, self.socket_id.clone(), user_id)
        {
            Ok(_) => Vec::new(),
            Err(e) => reject(&e.to_string()),
        }
    }
}

// ---- HTTP API -----------------------------------------------------------------------------

/// An HTTP API error: status and a message in `{"error": …}`.
#[derive(Debug)]
struct PusherError(StatusCode, String);

impl IntoResponse for PusherError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({"error": self.1, "code": self.0.as_u16()})),
        )
            .into_response()
    }
}

impl From<realtime::Error> for PusherError {
    fn from(e: realtime::Error) -> Self {
        let status = match &e {
            realtime::Error::DataTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            realtime::Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            realtime::Error::HubFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self(status, e.to_string())
    }
}

/// The parts of an HTTP API request that its signature covers.
#[derive(Debug)]
struct Call {
    /// `GET` or `POST`.
    method: Method,
    /// The request URI (its path is signed).
    uri: Uri,
    /// The decoded query parameters, `auth_*` included.
    params: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for Call {
    type Rejection = PusherError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(params) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| PusherError(StatusCode::BAD_REQUEST, e.body_text()))?;
        Ok(Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            params,
        })
    }
}

impl Call {
    /// The first value of query parameter `name`.
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether an `info` parameter asks for `user_count`, which Pusher reports for `presence-`
/// channels only and refuses (400) to be asked of any other channel.
fn asks_user_count(info: &str) -> bool {
    info.split(',').any(|a| a.trim() == "user_count")
}

/// Checks the app id and the request signature.
fn authorize(state: &AppState, app_id: &str, call: &Call, body: &[u8]) -> Result<(), PusherError> {
    let config = &state.engine.config().realtime;
    if app_id != config.app_id {
        return Err(PusherError(
            StatusCode::NOT_FOUND,
            format!("unknown app_id {app_id}"),
        ));
    }
    let now_s = state.engine.clock().now_ms() / 1000;
    let req = SignedRequest {
        method: call.method.as_str(),
        path: call.uri.path(),
        params: &call.params,
        body,
    };
    check_request(&req, &config.key, &config.secret, now_s)?;
    Ok(())
}

/// One event to publish, as `/events` and each `/batch_events` item spell it.
#[derive(Debug, Deserialize)]
struct EventBody {
    /// Event name.
    name: String,
    /// Payload: a string (what the SDKs send) or any other JSON value but `null`; required.
    #[serde(default)]
    data: Option<Value>,
    /// Target channels (`/events`).
    #[serde(default)]
    channels: Option<Vec<String>>,
    /// One target channel (`/events` alternative, `/batch_events` items).
    #[serde(default)]
    channel: Option<String>,
    /// Connection to exclude.
    #[serde(default)]
    socket_id: Option<String>,
    /// Attributes to report back, e.g. `subscription_count,user_count`.
    #[serde(default)]
    info: Option<String>,
}

/// A validated event, ready to publish.
struct Checked {
    name: String,
    data: EventData,
    channels: Vec<String>,
    exclude: Option<SocketId>,
    info: Option<String>,
}

fn check_event(body: EventBody) -> Result<Checked, PusherError> {
    check_published_event_name(&body.name)?;
    // The size limit applies to the data as sent, before any escaping.
    let data = match &body.data {
        // Pusher and soketi refuse an event without data rather than publish `null`.
        None | Some(Value::Null) => {
            return Err(PusherError(
                StatusCode::BAD_REQUEST,
                "`data` is required (a string, as the SDKs send it)".into(),
            ));
        }
        Some(Value::String(s)) => EventData::from_sent_text(s)?,
        Some(other) => EventData::from_json_text(other.to_string())?,
    };
    let channels = match (body.channels, body.channel) {
        (Some(list), None) => list,
        (None, Some(one)) => vec![one],
        _ => {
            return Err(PusherError(
                StatusCode::BAD_REQUEST,
                "give exactly one of `channels` and `channel`".into(),
            ));
        }
    };
    if channels.is_empty() || channels.len() > PUBLISH_CHANNELS_MAX {
        return Err(realtime::Error::TooManyChannels {
            len: channels.len(),
            max: PUBLISH_CHANNELS_MAX,
        }
        .into());
    }
    for c in &channels {
        check_channel_name(c)?;
    }
    let exclude = body
        .socket_id
        .as_deref()
        .map(str::parse::<SocketId>)
        .transpose()?;
    Ok(Checked {
        name: body.name,
        data,
        channels,
        exclude,
        info: body.info,
    })
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, PusherError> {
    serde_json::from_slice(body)
        .map_err(|e| PusherError(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}

/// Publishes a checked event; returns the per-channel info object when asked for.
fn publish(hub: &Hub, ev: Checked) -> Result<Option<Value>, PusherError> {
    for c in &ev.channels {
        hub.publish_data(c, &ev.name, ev.data.clone(), ev.exclude.clone())?;
    }
    Ok(ev.info.as_deref().map(|info| {
        let map: Map<String, Value> = ev
            .channels
            .iter()
            .map(|c| (c.clone(), channel_attributes(hub, c, info)))
            .collect();
        Value::Object(map)
    }))
}

/// The attributes `info` asks for on one channel.
fn channel_attributes(hub: &Hub, channel: &str, info: &str) -> Value {
    let mut out = Map::new();
    for attr in info.split(',').map(str::trim) {
        match attr {
            "subscription_count" => {
                out.insert(attr.into(), json!(hub.subscriber_count(channel)));
            }
            "user_count" if channel.starts_with("presence-") => {
                out.insert(attr.into(), json!(hub.presence_user_count(channel)));
            }
            _ => {}
        }
    }
    Value::Object(out)
}

/// `POST /apps/{app_id}/events`.
async fn events(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    call: Call,
    body: Bytes,
) -> Result<Json<Value>, PusherError> {
    authorize(&state, &app_id, &call, &body)?;
    let ev = check_event(parse_body(&body)?)?;
    let info = publish(state.engine.realtime(), ev)?;
    let_subscribers_write_first().await;
    Ok(Json(info.map_or_else(
        || json!({}),
        |channels| json!({"channels": channels}),
    )))
}

/// Body of `batch_events`.
#[derive(Debug, Deserialize)]
struct BatchBody {
    /// The events.
    batch: Vec<EventBody>,
}

/// `POST /apps/{app_id}/batch_events`: published whole or not at all. Every event is checked
/// before any is published, and a publish that passed the checks cannot fail (a full hub drops
/// an event to a channel it does not hold instead of refusing it, see `Hub::publish`), so a
/// refused batch published nothing and a client may retry it without duplicates.
async fn batch_events(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    call: Call,
    body: Bytes,
) -> Result<Json<Value>, PusherError> {
    authorize(&state, &app_id, &call, &body)?;
    let batch: BatchBody = parse_body(&body)?;
    if batch.batch.len() > BATCH_EVENTS_MAX {
        return Err(realtime::Error::BatchTooLarge {
            len: batch.batch.len(),
            max: BATCH_EVENTS_MAX,
        }
        .into());
    }
    let checked = batch
        .batch
        .into_iter()
        .map(|b| {
            if b.channels.is_some() {
                Err(PusherError(
                    StatusCode::BAD_REQUEST,
                    "batch items take `channel`".into(),
                ))
            } else {
                check_event(b)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let hub = state.engine.realtime();
    let mut infos = Vec::new();
    let mut any_info = false;
    for ev in checked {
        let channel = ev.channels.first().cloned().unwrap_or_default();
        // Cannot fail after the checks above (see the function's doc).
        let info = publish(hub, ev)?;
        any_info |= info.is_some();
        infos.push(
            info.and_then(|i| i.get(&channel).cloned())
                .unwrap_or_else(|| json!({})),
        );
    }
    let_subscribers_write_first().await;
    Ok(Json(if any_info {
        json!({"batch": infos})
    } else {
        json!({})
    }))
}

/// `GET /apps/{app_id}/channels[?filter_by_prefix=…&info=…]`: occupied channels.
async fn channels(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    call: Call,
) -> Result<Json<Value>, PusherError> {
    authorize(&state, &app_id, &call, &[])?;
    let prefix = call.param("filter_by_prefix").unwrap_or("");
    let info = call.param("info").unwrap_or("");
    if asks_user_count(info) && !prefix.starts_with("presence-") {
        return Err(PusherError(
            StatusCode::BAD_REQUEST,
            "info=user_count needs filter_by_prefix=presence-".into(),
        ));
    }
    let hub = state.engine.realtime();
    let map: Map<String, Value> = hub
        .occupied_channels()
        .into_iter()
        .filter(|(c, _)| c.starts_with(prefix))
        .map(|(c, _)| {
            let attrs = channel_attributes(hub, &c, info);
            (c, attrs)
        })
        .collect();
    Ok(Json(json!({"channels": map})))
}

/// `GET /apps/{app_id}/channels/{channel}[?info=…]`: `occupied` and `subscription_count`, and
/// `user_count` on a `presence-` channel; `info=user_count` on any other channel is 400.
async fn channel_info(
    State(state): State<AppState>,
    Path((app_id, channel)): Path<(String, String)>,
    call: Call,
) -> Result<Json<Value>, PusherError> {
    authorize(&state, &app_id, &call, &[])?;
    let kind = check_channel_name(&channel)?;
    if kind != ChannelKind::Presence && call.param("info").is_some_and(asks_user_count) {
        return Err(PusherError(
            StatusCode::BAD_REQUEST,
            "info=user_count is reported for presence- channels only".into(),
        ));
    }
    let hub = state.engine.realtime();
    let count = hub.subscriber_count(&channel);
    let mut out = json!({"occupied": count > 0, "subscription_count": count});
    if kind == ChannelKind::Presence {
        out["user_count"] = json!(hub.presence_user_count(&channel));
    }
    Ok(Json(out))
}

/// `POST /apps/{app_id}/users/{user_id}/terminate_connections`: closes every connection signed
/// in as the user with `pusher:error` 4009, so pusher-js does not reconnect.
async fn terminate_connections(
    State(state): State<AppState>,
    Path((app_id, user_id)): Path<(String, String)>,
    call: Call,
    body: Bytes,
) -> Result<Json<Value>, PusherError> {
    authorize(&state, &app_id, &call, &body)?;
    let len = user_id.chars().count();
    if len == 0 || len > USER_ID_CHARS_MAX {
        return Err(PusherError(
            StatusCode::BAD_REQUEST,
            format!("user id of {len} characters, 1..={USER_ID_CHARS_MAX} allowed"),
        ));
    }
    state.engine.realtime().terminate_user(&user_id);
    Ok(Json(json!({})))
}

/// `GET /apps/{app_id}/channels/{channel}/users`: presence channels only.
async fn channel_users(
    State(state): State<AppState>,
    Path((app_id, channel)): Path<(String, String)>,
    call: Call,
) -> Result<Json<Value>, PusherError> {
    authorize(&state, &app_id, &call, &[])?;
    if check_channel_name(&channel)? != ChannelKind::Presence {
        return Err(PusherError(
            StatusCode::BAD_REQUEST,
            "users are listed for presence- channels only".into(),
        ));
    }
    let users: Vec<Value> = state
        .engine
        .realtime()
        .presence_snapshot(&channel)
        .members
        .into_iter()
        .map(|m| json!({"id": m.user_id}))
        .collect();
    Ok(Json(json!({"users": users})))
}
