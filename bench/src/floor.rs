//! The floor: the least any design could do per message on this machine —
//! store the row with one `INSERT` over `tokio-postgres`, then push it over
//! a WebSocket on loopback — with no Lambda, PostgREST or emulator between.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::latency::{Samples, Summary};

/// Iterations run before timing starts: the first ones pay for caches.
const WARMUP_ITERATIONS: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    /// `INSERT … RETURNING` of a message row, one statement, prepared.
    pub insert: Summary,
    /// One `message.created` frame from a server socket to a client socket on loopback.
    pub push: Summary,
    /// Both in a row: the floor of send → deliver.
    pub insert_and_push: Summary,
}

pub async fn measure(db: &tokio_postgres::Client, sender: Uuid, samples: usize) -> Result<Floor, String> {
    let failed = |what: &str, e: &dyn std::fmt::Display| format!("floor, {what}: {e}");
    // A conversation of its own, so these rows never show in what is measured later.
    let conversation: Uuid = db
        .query_one(
            "insert into public.conversations (kind, name, created_by) values ('group', 'bench floor', $1) returning id",
            &[&sender],
        )
        .await
        .map_err(|e| failed("creating its conversation", &e))?
        .get(0);
    let insert = db
        .prepare(
            "insert into public.messages (conversation_id, seq, sender_id, client_msg_id, kind, body)
             values ($1, $2, $3, $4, 'text', $5) returning id, created_at",
        )
        .await
        .map_err(|e| failed("preparing the insert", &e))?;

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| failed("listening", &e))?;
    let addr = listener.local_addr().map_err(|e| failed("listening", &e))?;
    let accept = async {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio_tungstenite::accept_async(stream)
            .await
            .map_err(std::io::Error::other)
    };
    let connect = tokio_tungstenite::connect_async(format!("ws://{addr}"));
    let (server, client) = tokio::join!(accept, connect);
    let mut server = server.map_err(|e| failed("accepting", &e))?;
    let (mut client, _) = client.map_err(|e| failed("connecting", &e))?;

    let (mut inserts, mut pushes, mut both) = (Samples::default(), Samples::default(), Samples::default());
    for i in 0..WARMUP_ITERATIONS + samples {
        let client_msg_id = format!("floor.{i}");
        let body = format!("bench floor.{i} 0");
        let started = Instant::now();
        let row = db
            .query_one(
                &insert,
                &[&conversation, &(i as i64 + 1), &sender, &client_msg_id, &body],
            )
            .await
            .map_err(|e| failed("inserting", &e))?;
        let stored = Instant::now();
        let id: Uuid = row.get(0);
        let created_at: chrono::DateTime<chrono::Utc> = row.get(1);
        let frame = json!({
            "type": "message.created",
            "conversation_id": conversation,
            "seq": i + 1,
            "data": {
                "id": id, "conversation_id": conversation, "seq": i + 1, "sender_id": sender,
                "client_msg_id": client_msg_id, "kind": "text", "body": body, "attachment": null,
                "reply_to_id": null, "created_at": created_at, "edited_at": null, "deleted_at": null,
            },
        })
        .to_string();
        server
            .send(Message::text(frame))
            .await
            .map_err(|e| failed("pushing", &e))?;
        match client.next().await {
            Some(Ok(Message::Text(_))) => {}
            other => return Err(format!("floor, receiving: {other:?}")),
        }
        let delivered = Instant::now();
        if i >= WARMUP_ITERATIONS {
            inserts.push(stored - started);
            pushes.push(delivered - stored);
            both.push(delivered - started);
        }
    }
    let _ = client.close(None).await;
    let summary = |samples: &Samples| {
        samples
            .summary()
            .ok_or_else(|| "floor: no samples (--floor-samples 0)".to_string())
    };
    Ok(Floor {
        insert: summary(&inserts)?,
        push: summary(&pushes)?,
        insert_and_push: summary(&both)?,
    })
}

/// Ours over the floor, for p50 and p99.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratio {
    pub p50: f64,
    pub p99: f64,
}

impl Ratio {
    pub fn of(ours: &Summary, floor: &Summary) -> Ratio {
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                (a / b * 100.0).round() / 100.0
            } else {
                f64::NAN
            }
        };
        Ratio {
            p50: ratio(ours.p50_ms, floor.p50_ms),
            p99: ratio(ours.p99_ms, floor.p99_ms),
        }
    }
}
