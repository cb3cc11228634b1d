//! The realtime module's error type.

/// Why a realtime operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A channel name is empty, too long or uses a character Pusher does not allow.
    #[error("invalid channel name ({reason})")]
    ChannelName {
        /// What is wrong with it.
        reason: String,
    },
    /// An event name is empty or too long.
    #[error("invalid event name ({reason})")]
    EventName {
        /// What is wrong with it.
        reason: String,
    },
    /// The event payload is larger than the limit.
    #[error("event data is {len} bytes, more than the limit of {max}")]
    DataTooLarge {
        /// Bytes of JSON text.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Event data given as JSON text does not parse.
    #[error("event data is not valid JSON")]
    DataNotJson,
    /// A publish names more channels than allowed.
    #[error("{len} channels given, at most {max} allowed")]
    TooManyChannels {
        /// Channels named.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A batch holds more events than allowed.
    #[error("batch of {len} events, at most {max} allowed")]
    BatchTooLarge {
        /// Events in the batch.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The hub holds its maximum number of channels and none is idle.
    #[error("the hub already holds {max} channels, none of them idle")]
    HubFull {
        /// The limit.
        max: usize,
    },
    /// More channels pinned than [`PINNED_CHANNELS_MAX`](super::PINNED_CHANNELS_MAX).
    #[error("at most {max} channels can be pinned")]
    TooManyPinned {
        /// The limit.
        max: usize,
    },
    /// A socket id does not match `\d+\.\d+`.
    #[error("invalid socket_id")]
    SocketId,
    /// A channel authorisation or signed request failed.
    #[error("unauthorized: {reason}")]
    Unauthorized {
        /// Safe to show the client.
        reason: String,
    },
    /// A presence channel already has the maximum number of users.
    #[error("presence channel has {max} members already")]
    PresenceFull {
        /// The limit.
        max: usize,
    },
    /// Presence `channel_data` is missing, malformed or too large.
    #[error("invalid presence channel_data ({reason})")]
    ChannelData {
        /// What is wrong with it.
        reason: String,
    },
    /// Sign-in `user_data` is malformed, too large or has no usable `id`.
    #[error("invalid user data: {reason}")]
    UserData {
        /// What is wrong with it.
        reason: String,
    },
    /// A client WebSocket message is malformed.
    #[error("invalid message ({reason})")]
    Message {
        /// What is wrong with it.
        reason: String,
    },
    /// A watcher's configuration is invalid.
    #[error("invalid watcher {index} ({reason})")]
    Watcher {
        /// Position in `realtime.watchers`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A watcher `match` filter nests deeper than allowed.
    #[error("match filter nests {depth} levels, at most {max} allowed")]
    MatchTooDeep {
        /// Depth found.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// A `[realtime]` setting is out of range.
    #[error("invalid setting `realtime.{setting}` ({reason})")]
    Config {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Result alias with the module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
