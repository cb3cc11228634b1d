//! Pusher protocol 7 without sockets: channel names and kinds, socket ids, client messages and
//! the server frames pusher-js understands.
//!
//! Server frames are built as JSON text here so the API layer only moves strings. In server →
//! client frames `data` is a JSON *string* (pusher-js runs `JSON.parse` on it).

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

use super::{
    CHANNEL_DATA_BYTES_MAX, CHANNEL_NAME_CHARS_MAX, EVENT_DATA_BYTES_MAX, EVENT_NAME_CHARS_MAX,
    Error, Result, USER_DATA_BYTES_MAX, USER_ID_CHARS_MAX,
};

/// Prefix of the channel that carries events to one signed-in user (`pusher:signin`): pusher-js
/// subscribes to `#server-to-user-{id}` once sign-in succeeds, and the server SDKs'
/// `sendToUser` publishes there.
pub const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

/// Error codes pusher-js acts on (`pusher:error` data `code`, and the WebSocket close code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// 4001: no app with this key; the client does not reconnect.
    AppNotFound = 4001,
    /// 4005: the path is not `/app/{key}`; no reconnect.
    PathNotFound = 4005,
    /// 4006: the protocol version is not a number; no reconnect.
    InvalidProtocol = 4006,
    /// 4007: protocol version not supported; no reconnect.
    UnsupportedProtocol = 4007,
    /// 4008: no protocol version given; no reconnect.
    NoProtocol = 4008,
    /// 4009: connection not authorised; no reconnect.
    Unauthorized = 4009,
    /// 4100: over capacity; reconnect after backoff.
    OverCapacity = 4100,
    /// 4200: generic reconnect-now (server restart, subscriber lag).
    ReconnectNow = 4200,
    /// 4201: pong not received in time; reconnect now.
    PongTimeout = 4201,
    /// 4301: client event rejected (disabled, not a member, too big); sent without closing.
    ClientEventRejected = 4301,
    /// 4302: a message could not be handled; sent without closing.
    MessageRejected = 4302,
}

impl ErrorCode {
    /// The numeric code.
    #[must_use]
    pub fn code(self) -> u16 {
        self as u16
    }
}

/// A connection's id: two decimal integers joined by a dot (`^\d+\.\d+$`, as the Pusher SDKs
/// require).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SocketId(String);

impl SocketId {
    /// The id made of two numbers.
    #[must_use]
    pub fn from_parts(a: u64, b: u64) -> Self {
        Self(format!("{a}.{b}"))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SocketId {
    type Err = Error;

    /// Parses `\d+\.\d+`, each part at most 20 digits.
    fn from_str(s: &str) -> Result<Self> {
        let (a, b) = s.split_once('.').ok_or(Error::SocketId)?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|c| c.is_ascii_digit());
        if digits(a) && digits(b) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::SocketId)
        }
    }
}

/// What a channel's name prefix makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Anyone may subscribe.
    Public,
    /// `private-…`: subscription needs `auth` signed with the app secret.
    Private,
    /// `presence-…`: as private, plus member tracking from signed `channel_data`.
    Presence,
    /// `#server-to-user-{id}`: only a connection signed in as user `id` may subscribe.
    User,
}

impl ChannelKind {
    /// Whether subscribing needs a channel signature (`private-` and `presence-`).
    #[must_use]
    pub fn needs_auth(self) -> bool {
        matches!(self, Self::Private | Self::Presence)
    }
}

/// Whether `c` may appear in a channel name (and so in a signed-in user's id).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-=@,.;".contains(c)
}

/// The user id of a `#server-to-user-{id}` channel.
#[must_use]
pub fn server_to_user_id(channel: &str) -> Option<&str> {
    channel
        .strip_prefix(SERVER_TO_USER_PREFIX)
        .filter(|id| !id.is_empty())
}

/// Checks a channel name (1..=[`CHANNEL_NAME_CHARS_MAX`] (164) characters, prefix included, of
/// `A-Za-z0-9_-=@,.;`, or `#server-to-user-` followed by those) and returns its kind. Other
/// names starting with `#` are reserved, as on Pusher.
///
/// # Errors
/// [`Error::ChannelName`] saying what is wrong.
pub fn check_channel_name(name: &str) -> Result<ChannelKind> {
    let bad = |reason: String| Error::ChannelName { reason };
    let len = name.chars().count();
    if len == 0 {
        return Err(bad("empty".into()));
    }
    if len > CHANNEL_NAME_CHARS_MAX {
        return Err(bad(format!(
            "{len} characters, at most {CHANNEL_NAME_CHARS_MAX}"
        )));
    }
    let rest = if name.starts_with('#') {
        server_to_user_id(name).ok_or_else(|| {
            bad(format!(
                "names starting with # are reserved; {SERVER_TO_USER_PREFIX}{{user_id}} is the only one in use"
            ))
        })?
    } else {
        name
    };
    if let Some(c) = rest.chars().find(|c| !is_name_char(*c)) {
        return Err(bad(format!("character {c:?} is not allowed")));
    }
    Ok(if name.starts_with('#') {
        ChannelKind::User
    } else if name.starts_with("presence-") {
        ChannelKind::Presence
    } else if name.starts_with("private-") {
        ChannelKind::Private
    } else {
        ChannelKind::Public
    })
}

/// Event-name prefixes of the Pusher protocol's own events (`pusher:ping`,
/// `pusher_internal:member_added`, …): a subscriber's client library acts on them.
pub(crate) const RESERVED_EVENT_PREFIXES: [&str; 2] = ["pusher:", "pusher_internal:"];

/// Checks the name of an event a publisher sends (the Pusher HTTP API, `POST /realtime`):
/// [`check_event_name`], and none of the protocol's own names ([`RESERVED_EVENT_PREFIXES`]).
///
/// # Errors
/// [`Error::EventName`] saying what is wrong.
pub fn check_published_event_name(name: &str) -> Result<()> {
    check_event_name(name)?;
    match RESERVED_EVENT_PREFIXES
        .iter()
        .find(|p| name.starts_with(**p))
    {
        Some(prefix) => Err(Error::EventName {
            reason: format!("names starting `{prefix}` are the Pusher protocol's own"),
        }),
        None => Ok(()),
    }
}

/// Checks an event name: 1..=200 characters, none of them a control character.
///
/// # Errors
/// [`Error::EventName`] saying what is wrong.
pub fn check_event_name(name: &str) -> Result<()> {
    let len = name.chars().count();
    if len == 0 {
        return Err(Error::EventName {
            reason: "empty".into(),
        });
    }
    if len > EVENT_NAME_CHARS_MAX {
        return Err(Error::EventName {
            reason: format!("{len} characters, at most {EVENT_NAME_CHARS_MAX}"),
        });
    }
    // IMPORTANT: SSE frames the name as one `event:` line, so control characters (line breaks)
    // would split the frame.
    if name.chars().any(char::is_control) {
        return Err(Error::EventName {
            reason: "control characters are not allowed".into(),
        });
    }
    Ok(())
}

/// Event data as the hub keeps it: one-line JSON text (what SSE sends as `data:`), and how a
/// Pusher frame carries it. Made only by its constructors, which check
/// [`EVENT_DATA_BYTES_MAX`] on the data as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData {
    /// One-line JSON text.
    json: String,
    /// The data was sent as text that is JSON itself: Pusher frames carry `json` as it is,
    /// even when it is a JSON string literal (`"\"123\""` stays a string for pusher-js).
    verbatim: bool,
}

impl EventData {
    /// The one-line text of a JSON value (a watcher's payload, a JSON `data` field). A Pusher
    /// frame carries a JSON string as the string itself, anything else as its JSON text.
    ///
    /// # Errors
    /// [`Error::DataTooLarge`] when the text is over [`EVENT_DATA_BYTES_MAX`].
    pub fn from_json_text(json: String) -> Result<Self> {
        if json.len() > EVENT_DATA_BYTES_MAX {
            return Err(Error::DataTooLarge {
                len: json.len(),
                max: EVENT_DATA_BYTES_MAX,
            });
        }
        debug_assert!(!json.contains('\n'), "event data must be one line");
        Ok(Self {
            json,
            verbatim: false,
        })
    }

    /// Data sent as text, as the Pusher SDKs send `data`; the limit applies to the text as
    /// sent. Text that parses as JSON is kept (its line breaks, whitespace there, become
    /// spaces) and Pusher frames carry it verbatim; any other text becomes a JSON string for
    /// SSE, and Pusher frames carry the text itself.
    ///
    /// # Errors
    /// [`Error::DataTooLarge`] when the text is over [`EVENT_DATA_BYTES_MAX`].
    pub fn from_sent_text(text: &str) -> Result<Self> {
        if text.len() > EVENT_DATA_BYTES_MAX {
            return Err(Error::DataTooLarge {
                len: text.len(),
                max: EVENT_DATA_BYTES_MAX,
            });
        }
        if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            let json = if text.contains(['\n', '\r']) {
                text.replace(['\n', '\r'], " ")
            } else {
                text.to_owned()
            };
            return Ok(Self {
                json,
                verbatim: true,
            });
        }
        Ok(Self {
            json: Value::String(text.to_owned()).to_string(),
            verbatim: false,
        })
    }

    /// The one-line JSON text.
    #[must_use]
    pub fn as_json(&self) -> &str {
        &self.json
    }

    /// The one-line JSON text, owned.
    #[must_use]
    pub fn into_json(self) -> String {
        self.json
    }

    /// Whether Pusher frames carry the JSON text as it is (see [`EventData::from_sent_text`]).
    #[must_use]
    pub fn verbatim(&self) -> bool {
        self.verbatim
    }
}

/// A message from a WebSocket client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `pusher:ping`.
    Ping,
    /// `pusher:pong`.
    Pong,
    /// `pusher:subscribe`.
    Subscribe {
        /// Channel name (not yet checked).
        channel: String,
        /// `KEY:HEXSIG` for private and presence channels.
        auth: Option<String>,
        /// Presence `channel_data` exactly as signed.
        channel_data: Option<String>,
    },
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// Channel name.
        channel: String,
    },
    /// A `client-*` event to relay.
    ClientEvent {
        /// Event name, starting `client-`.
        event: String,
        /// Channel name.
        channel: String,
        /// The data.
        data: EventData,
    },
    /// `pusher:signin`: user authentication, `auth` signing `socket_id::user::user_data`.
    Signin {
        /// `KEY:HEXSIG`, when given.
        auth: Option<String>,
        /// The user's JSON data exactly as signed, when given.
        user_data: Option<String>,
    },
    /// Any other event, ignored.
    Other {
        /// Its name.
        event: String,
    },
}

/// Parses one text frame from a client.
///
/// # Errors
/// [`Error::Message`] when the frame is not a JSON object with a string `event`, or a known
/// event lacks its fields.
pub fn parse_client_message(text: &str) -> Result<ClientMessage> {
    let bad = |reason: &str| Error::Message {
        reason: reason.to_owned(),
    };
    let value: Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
    let obj = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
    let event = obj
        .get("event")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no event name"))?;
    // `data` is an object in client → server pusher:* messages; accept a JSON string too.
    let data = match obj.get("data") {
        Some(Value::String(s)) => {
            serde_json::from_str::<Value>(s).unwrap_or(Value::String(s.clone()))
        }
        Some(v) => v.clone(),
        None => Value::Null,
    };
    let field = |name: &str| data.get(name).and_then(Value::as_str).map(str::to_owned);
    Ok(match event {
        "pusher:ping" => ClientMessage::Ping,
        "pusher:pong" => ClientMessage::Pong,
        "pusher:subscribe" => ClientMessage::Subscribe {
            channel: field("channel").ok_or_else(|| bad("subscribe without channel"))?,
            auth: field("auth"),
            channel_data: field("channel_data"),
        },
        "pusher:unsubscribe" => ClientMessage::Unsubscribe {
            channel: field("channel").ok_or_else(|| bad("unsubscribe without channel"))?,
        },
        "pusher:signin" => ClientMessage::Signin {
            auth: field("auth"),
            user_data: field("user_data"),
        },
        e if e.starts_with("client-") => {
            let channel = obj
                .get("channel")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("client event without channel"))?;
            let data = match obj.get("data") {
                Some(Value::String(s)) => EventData::from_sent_text(s)?,
                Some(v) => EventData::from_json_text(v.to_string())?,
                None => EventData::from_json_text("null".to_owned())?,
            };
            ClientMessage::ClientEvent {
                event: e.to_owned(),
                channel: channel.to_owned(),
                data,
            }
        }
        e => ClientMessage::Other {
            event: e.to_owned(),
        },
    })
}

/// Parses presence `channel_data` (`{"user_id": …, "user_info": …}`) into the user id (a
/// number is turned into its decimal text) and the user info.
///
/// # Errors
/// [`Error::ChannelData`] when it is too large, not an object, or the user id is missing, empty
/// or too long.
pub fn parse_presence_data(channel_data: &str) -> Result<(String, Value)> {
    parse_user_object(channel_data, CHANNEL_DATA_BYTES_MAX, "user_id")
        .map_err(|reason| Error::ChannelData { reason })
}

/// Parses sign-in `user_data` (`{"id": …, "user_info"?: …, "watchlist"?: …}`) into the user
/// id (a number is turned into its decimal text). The id becomes part of the channel name
/// `#server-to-user-{id}`, so it is held to channel-name characters.
///
/// # Errors
/// [`Error::UserData`] when it is too large, not an object, or the id is missing, empty, too
/// long or has a character a channel name may not.
pub fn parse_user_data(user_data: &str) -> Result<String> {
    parse_signed_in_user(user_data).map(|(id, _)| id)
}

/// As [`parse_user_data`], with the user's `user_info` (`null` when absent): what a presence
/// channel lists for a signed-in connection that subscribes without `channel_data`, as Pusher
/// (and pusher-js since 7.4) allows.
///
/// # Errors
/// As [`parse_user_data`].
pub fn parse_signed_in_user(user_data: &str) -> Result<(String, Value)> {
    let bad = |reason: String| Error::UserData { reason };
    let (id, info) = parse_user_object(user_data, USER_DATA_BYTES_MAX, "id").map_err(bad)?;
    if let Some(c) = id.chars().find(|c| !is_name_char(*c)) {
        return Err(bad(format!("character {c:?} is not allowed in an id")));
    }
    Ok((id, info))
}

/// The user id and `user_info` (`null` when absent) of signed user data (presence
/// `channel_data`, sign-in `user_data`) of at most `bytes_max` bytes: the id from `id_field`, a
/// string or a number (as its decimal text) of 1..=[`USER_ID_CHARS_MAX`] characters. Errors are
/// the reason.
fn parse_user_object(
    text: &str,
    bytes_max: usize,
    id_field: &str,
) -> std::result::Result<(String, Value), String> {
    if text.len() > bytes_max {
        return Err(format!("{} bytes, at most {bytes_max}", text.len()));
    }
    let value: Value = serde_json::from_str(text).map_err(|_| "not JSON".to_owned())?;
    let id = match value.get(id_field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(format!("no {id_field}")),
    };
    let len = id.chars().count();
    if len == 0 || len > USER_ID_CHARS_MAX {
        return Err(format!(
            "{id_field} of {len} characters, 1..={USER_ID_CHARS_MAX} allowed"
        ));
    }
    let info = value.get("user_info").cloned().unwrap_or(Value::Null);
    Ok((id, info))
}

/// Builds `{"event": e, "channel"?: c, "data": d}` where `d` is already a JSON value, keys in
/// that order (soketi's order; easier to read in logs).
fn frame(event: &str, channel: Option<&str>, data: Value) -> String {
    let event = Value::String(event.to_owned());
    match channel {
        Some(c) => format!(
            r#"{{"event":{event},"channel":{},"data":{data}}}"#,
            Value::String(c.to_owned())
        ),
        None => format!(r#"{{"event":{event},"data":{data}}}"#),
    }
}

/// The first frame of every connection.
#[must_use]
pub fn frame_connection_established(socket_id: &SocketId, activity_timeout_s: u64) -> String {
    let data = json!({"socket_id": socket_id.as_str(), "activity_timeout": activity_timeout_s});
    frame(
        "pusher:connection_established",
        None,
        Value::String(data.to_string()),
    )
}

/// `pusher:pong`.
#[must_use]
pub fn frame_pong() -> String {
    frame("pusher:pong", None, json!({}))
}

/// `pusher:signin_success`, carrying the signed `user_data` back (pusher-js reads the user id
/// from it).
#[must_use]
pub fn frame_signin_success(user_data: &str) -> String {
    let data = json!({"user_data": user_data}).to_string();
    frame("pusher:signin_success", None, Value::String(data))
}

/// `pusher:ping`, sent when the client has been idle.
#[must_use]
pub fn frame_ping() -> String {
    frame("pusher:ping", None, json!({}))
}

/// `pusher:error` with `{"code", "message"}` as an object (pusher-js accepts both forms).
#[must_use]
pub fn frame_error(code: ErrorCode, message: &str) -> String {
    error_frame(json!(code.code()), message)
}

/// `pusher:error` with `"code": null`, as Pusher answers a subscribe to a channel the connection
/// is already subscribed to, or an unsubscribe from one it is not: a notice about the request,
/// with no code for pusher-js to act on.
#[must_use]
pub fn frame_error_without_code(message: &str) -> String {
    error_frame(Value::Null, message)
}

fn error_frame(code: Value, message: &str) -> String {
    frame(
        "pusher:error",
        None,
        json!({"code": code, "message": message}),
    )
}

/// `pusher_internal:subscription_succeeded`; `presence` carries the member snapshot as JSON.
#[must_use]
pub fn frame_subscription_succeeded(channel: &str, presence: Option<&Value>) -> String {
    let data = presence.map_or_else(|| "{}".to_owned(), |p| json!({"presence": p}).to_string());
    frame(
        "pusher_internal:subscription_succeeded",
        Some(channel),
        Value::String(data),
    )
}

/// `pusher:subscription_error` on the channel (soketi's form, so the app learns which channel
/// failed).
#[must_use]
pub fn frame_subscription_error(channel: &str, kind: &str, error: &str, status: u16) -> String {
    frame(
        "pusher:subscription_error",
        Some(channel),
        json!({"type": kind, "error": error, "status": status}),
    )
}

/// `pusher_internal:member_added`.
#[must_use]
pub fn frame_member_added(channel: &str, user_id: &str, user_info: &Value) -> String {
    let data = json!({"user_id": user_id, "user_info": user_info}).to_string();
    frame(
        "pusher_internal:member_added",
        Some(channel),
        Value::String(data),
    )
}

/// `pusher_internal:member_removed`.
#[must_use]
pub fn frame_member_removed(channel: &str, user_id: &str) -> String {
    let data = json!({"user_id": user_id}).to_string();
    frame(
        "pusher_internal:member_removed",
        Some(channel),
        Value::String(data),
    )
}

/// The string a Pusher frame (and a `client_event` webhook) carries as `data` for an event's
/// one-line JSON text: unless `verbatim`, a JSON string is that string, anything else its JSON
/// text.
pub(crate) fn pusher_data(data_json: &str, verbatim: bool) -> String {
    match serde_json::from_str::<Value>(data_json) {
        Ok(Value::String(s)) if !verbatim => s,
        _ => data_json.to_owned(),
    }
}

/// The frame delivering a channel event; `data_json` is one-line JSON text. Unless `verbatim`
/// (see [`EventData::from_sent_text`]), a JSON string is sent as that string (as the Pusher
/// SDKs publish it), anything else as its JSON text. Client events on presence channels carry
/// the sender's `user_id`.
pub(crate) fn frame_event(
    event: &str,
    channel: &str,
    data_json: &str,
    verbatim: bool,
    user_id: Option<&str>,
) -> String {
    let framed = frame(
        event,
        Some(channel),
        Value::String(pusher_data(data_json, verbatim)),
    );
    match (user_id, framed.strip_suffix('}')) {
        (Some(id), Some(open)) => format!(r#"{open},"user_id":{}}}"#, Value::String(id.to_owned())),
        _ => framed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_id_format() {
        assert!("1.2".parse::<SocketId>().is_ok());
        assert!("123456.7890".parse::<SocketId>().is_ok());
        for bad in [
            "",
            "1",
            "1.",
            ".1",
            "a.1",
            "1.2.3",
            "1.-2",
            "123456789012345678901.1",
        ] {
            assert!(bad.parse::<SocketId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn channel_names_and_kinds() {
        assert_eq!(check_channel_name("orders").ok(), Some(ChannelKind::Public));
        assert_eq!(
            check_channel_name("private-a").ok(),
            Some(ChannelKind::Private)
        );
        assert_eq!(
            check_channel_name("presence-a").ok(),
            Some(ChannelKind::Presence)
        );
        assert!(check_channel_name(&"a".repeat(CHANNEL_NAME_CHARS_MAX)).is_ok());
        assert!(check_channel_name(&"a".repeat(CHANNEL_NAME_CHARS_MAX + 1)).is_err());
        assert!(check_channel_name("").is_err());
        assert!(check_channel_name("a b").is_err());
        assert!(check_channel_name("a#b").is_err());
    }

    #[test]
    fn data_normalisation_keeps_key_order() {
        assert_eq!(
            sent_json(r#"{"b":1,"a":2}"#).ok().as_deref(),
            Some(r#"{"b":1,"a":2}"#)
        );
        assert_eq!(sent_json("{\n\"a\":1}").ok().as_deref(), Some("{ \"a\":1}"));
        assert_eq!(sent_json("hello").ok().as_deref(), Some("\"hello\""));
        let max = "x".repeat(EVENT_DATA_BYTES_MAX);
        assert!(sent_json(&max).is_ok());
        assert!(sent_json(&format!("{max}x")).is_err());
    }

    /// The JSON text the hub keeps for data sent as `text`.
    fn sent_json(text: &str) -> Result<String> {
        EventData::from_sent_text(text).map(EventData::into_json)
    }

    #[test]
    fn event_frame_sends_string_data_raw() {
        let f = frame_event("E", "c", r#""{\"a\":1}""#, false, None);
        assert_eq!(f, r#"{"event":"E","channel":"c","data":"{\"a\":1}"}"#);
        let f = frame_event("E", "c", r#"{"a":1}"#, false, None);
        assert_eq!(f, r#"{"event":"E","channel":"c","data":"{\"a\":1}"}"#);
        // Verbatim data (sent as text that is JSON) keeps a JSON string literal as one.
        let f = frame_event("E", "c", r#""123""#, true, None);
        assert_eq!(f, r#"{"event":"E","channel":"c","data":"\"123\""}"#);
        let f = frame_event("client-x", "presence-c", "1", false, Some("u1"));
        assert_eq!(
            f,
            r#"{"event":"client-x","channel":"presence-c","data":"1","user_id":"u1"}"#
        );
    }
}
