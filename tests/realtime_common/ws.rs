//! A Pusher protocol 7 WebSocket client for the tests, speaking the protocol as pusher-js does
//! (tokio-tungstenite).

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use streamcache::realtime::{channel_auth, user_auth};
use tokio_tungstenite::tungstenite::Message;

use super::Server;

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) const KEY: &str = "streamcache-key";
pub(crate) const SECRET: &str = "streamcache-secret";

pub(crate) struct Client {
    pub(crate) ws: Ws,
    pub(crate) socket_id: String,
    pub(crate) timeout: Duration,
}

pub(crate) async fn connect_raw(server: &Server, path: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}{path}", server.addr))
        .await
        .unwrap();
    ws
}

pub(crate) async fn connect(server: &Server) -> Client {
    let ws = connect_raw(
        server,
        &format!("/app/{KEY}?protocol=7&client=js&version=8.6.0&flash=false"),
    )
    .await;
    let (c, data) = established(ws).await;
    assert_eq!(data["activity_timeout"], 30);
    c
}

/// Reads `pusher:connection_established` from a new connection; returns the client (with its
/// socket id) and the event's data.
pub(crate) async fn established(ws: Ws) -> (Client, Value) {
    let mut c = Client {
        ws,
        socket_id: String::new(),
        timeout: Duration::from_secs(5),
    };
    let hello = c.recv().await;
    assert_eq!(hello["event"], "pusher:connection_established");
    let data: Value =
        serde_json::from_str(hello["data"].as_str().expect("data is a JSON string")).unwrap();
    c.socket_id = data["socket_id"].as_str().unwrap().to_owned();
    (c, data)
}

impl Client {
    /// The next text frame as JSON.
    pub(crate) async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(self.timeout, self.ws.next())
                .await
                .expect("frame in time");
            match msg.expect("connection open").unwrap() {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Reads until the close frame; returns its code.
    pub(crate) async fn close_code(&mut self) -> u16 {
        loop {
            let msg = tokio::time::timeout(self.timeout, self.ws.next())
                .await
                .expect("close in time");
            match msg {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return 1006,
                Some(Ok(_)) => {}
            }
        }
    }

    pub(crate) async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    pub(crate) async fn subscribe(
        &mut self,
        channel: &str,
        auth: Option<String>,
        channel_data: Option<&str>,
    ) -> Value {
        let mut data = json!({"channel": channel});
        if let Some(a) = auth {
            data["auth"] = json!(a);
        }
        if let Some(d) = channel_data {
            data["channel_data"] = json!(d);
        }
        self.send(json!({"event": "pusher:subscribe", "data": data}))
            .await;
        self.recv().await
    }

    /// Sends `pusher:signin` with `user_data` signed for this connection.
    pub(crate) async fn signin(&mut self, user_data: &str) {
        let auth = user_auth(KEY, SECRET, &self.socket_id, user_data);
        self.signin_with(user_data, &auth).await;
    }

    pub(crate) async fn signin_with(&mut self, user_data: &str, auth: &str) {
        self.send(
            json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}),
        )
        .await;
    }

    pub(crate) async fn subscribe_signed(
        &mut self,
        channel: &str,
        channel_data: Option<&str>,
    ) -> Value {
        let auth = channel_auth(KEY, SECRET, &self.socket_id, channel, channel_data);
        self.subscribe(channel, Some(auth), channel_data).await
    }
}
