//! A WebSocket test client: sends JSON frames, waits for typed events.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{ARRIVAL, SILENCE};

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Events received while waiting for another type, kept in arrival order.
    pending: Vec<Value>,
}

/// How a socket ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    WithCode(u16),
    WithoutFrame,
}

impl WsClient {
    pub async fn connect(url: &str) -> Result<WsClient, tungstenite::Error> {
        let (socket, _response) = tokio_tungstenite::connect_async(url).await?;
        Ok(WsClient {
            socket,
            pending: Vec::new(),
        })
    }

    /// Connects with a request the caller built (e.g. with `Sec-WebSocket-Protocol`).
    pub async fn connect_request(
        request: tungstenite::handshake::client::Request,
    ) -> Result<(WsClient, tungstenite::handshake::client::Response), tungstenite::Error> {
        let (socket, response) = tokio_tungstenite::connect_async(request).await?;
        Ok((
            WsClient {
                socket,
                pending: Vec::new(),
            },
            response,
        ))
    }

    pub async fn send_json(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.socket.send(Message::text(text)).await.expect("send frame");
    }

    /// The next event of type `kind`; other events are kept for later calls.
    pub async fn expect(&mut self, kind: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|e| e["type"] == kind) {
            return self.pending.remove(i);
        }
        let deadline = tokio::time::Instant::now() + ARRIVAL;
        loop {
            let event = tokio::time::timeout_at(deadline, self.next_json())
                .await
                .unwrap_or_else(|_| panic!("no `{kind}` event arrived; got meanwhile: {:?}", self.pending))
                .unwrap_or_else(|closed| panic!("socket closed ({closed:?}) while waiting for `{kind}`"));
            if event["type"] == kind {
                return event;
            }
            self.pending.push(event);
        }
    }

    /// Asserts that no event of type `kind` arrives within [`SILENCE`].
    pub async fn expect_none(&mut self, kind: &str) {
        assert!(
            !self.pending.iter().any(|e| e["type"] == kind),
            "unexpected `{kind}`: {:?}",
            self.pending
        );
        let deadline = tokio::time::Instant::now() + SILENCE;
        while let Ok(next) = tokio::time::timeout_at(deadline, self.next_json()).await {
            match next {
                Ok(event) if event["type"] == kind => panic!("unexpected `{kind}` event: {event}"),
                Ok(event) => self.pending.push(event),
                Err(_) => return,
            }
        }
    }

    /// A round trip that proves the socket still works.
    pub async fn ping(&mut self) {
        self.send_json(serde_json::json!({"action": "ping"})).await;
        self.expect("pong").await;
    }

    /// Waits for the server to close the socket and returns the close code.
    pub async fn expect_closed(&mut self) -> Closed {
        let result = tokio::time::timeout(ARRIVAL, async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Close(frame))) => return closed(frame),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Closed::WithoutFrame,
                }
            }
        })
        .await;
        result.expect("the socket was not closed")
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        // Drain until the server's close arrives, so $disconnect has been triggered.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while self.socket.next().await.is_some() {}
        })
        .await;
    }

    async fn next_json(&mut self) -> Result<Value, Closed> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return Ok(serde_json::from_str(text.as_str())
                        .unwrap_or_else(|_| panic!("server sent a frame that is not JSON: {text}")))
                }
                Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(Closed::WithoutFrame),
            }
        }
    }
}

fn closed(frame: Option<CloseFrame>) -> Closed {
    match frame {
        Some(frame) => Closed::WithCode(u16::from(frame.code)),
        None => Closed::WithoutFrame,
    }
}

// --- For sockets that must stay silent

impl WsClient {
    /// Asserts that nothing at all arrives within [`SILENCE`] (and nothing is
    /// pending): for a socket that must not learn anything.
    pub async fn expect_nothing(&mut self) {
        assert!(self.pending.is_empty(), "unexpected events: {:?}", self.pending);
        if let Ok(next) = tokio::time::timeout(SILENCE, self.next_json()).await {
            match next {
                Ok(event) => panic!("unexpected event: {event}"),
                Err(closed) => panic!("the socket closed ({closed:?}) while it should stay silent"),
            }
        }
    }
}
