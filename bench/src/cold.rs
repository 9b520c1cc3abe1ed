//! Cold starts one at a time, after the run: every idle instance is
//! reclaimed, then one client connects, sends, calls REST and disconnects,
//! each step waiting for the last, so that every function it reaches starts
//! alone on a stack whose database path is warm — as Lambda starts an
//! instance for one user while the rest of the system runs. The run's own
//! cold starts come in bursts (the set-up opens its direct conversations four
//! at a time, the 200 sockets close together) that queue for the machine's
//! two cores, where Lambda would give each instance a vCPU of its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::api::Api;
use crate::client::Membership;
use crate::fleet::{Fleet, Member};
use crate::run::progress;
use crate::stack::Stack;
use crate::topology::Kind;
use crate::users::User;

/// After a step, for what it set off in the background (presence pushes, a
/// handed-off notification) to finish before the next step starts.
const QUIET: Duration = Duration::from_millis(300);
/// Longest wait for a closed socket's `$disconnect`.
const DISCONNECT_WAIT: Duration = Duration::from_secs(10);

/// The clients a round can use: each user with its conversations.
pub struct Cast<'a> {
    pub websocket_url: &'a str,
    pub users: &'a [User],
    pub memberships: &'a [Vec<Membership>],
}

/// Runs `rounds` rounds; answers, per function, how many cold starts it had
/// before them (the rest are theirs), or `None` when the emulator cannot
/// reclaim instances (an older build's) or no round was asked for.
pub async fn measure(
    rounds: usize,
    stack: &Stack,
    api: &Api,
    cast: &Cast<'_>,
) -> Result<Option<BTreeMap<String, usize>>, String> {
    if rounds == 0 || cast.users.len() < 2 {
        return Ok(None);
    }
    let before = stack.emulator_stats().await?;
    if stack.reclaim_idle().await?.is_none() {
        progress("this emulator cannot reclaim idle instances: no cold starts one at a time");
        return Ok(None);
    }
    progress(&format!("timing cold starts one at a time ({rounds} rounds)"));
    let mark = before
        .functions
        .iter()
        .map(|(id, function)| (id.clone(), function.cold_starts.len()))
        .collect();
    for round in 0..rounds {
        if round > 0 {
            stack.reclaim_idle().await?;
        }
        one_round(round, stack, api, cast).await?;
    }
    Ok(Some(mark))
}

/// User `round` (of the clients) connects (authorizer, `$connect`), sends
/// into its first conversation, opens a direct conversation with the next
/// user, lists its conversations and that conversation's messages, and
/// closes (`$disconnect`).
async fn one_round(round: usize, stack: &Stack, api: &Api, cast: &Cast<'_>) -> Result<(), String> {
    let index = round % cast.users.len();
    let user = &cast.users[index];
    let peer = &cast.users[(index + 1) % cast.users.len()];
    let memberships = cast.memberships.get(index).cloned().unwrap_or_default();
    let connected = Fleet::connect(
        vec![Member {
            url: format!("{}?token={}", cast.websocket_url, user.token),
            memberships: memberships.clone(),
        }],
        1,
    )
    .await?;
    let fleet = connected.fleet;
    tokio::time::sleep(QUIET).await;
    if let Some(&home) = memberships.first() {
        if fleet.send_one(0, home).await.is_none() {
            return Err(format!("cold starts: round {round}'s message was not acknowledged"));
        }
        tokio::time::sleep(QUIET).await;
    }
    api.create_conversation(Kind::Direct, user, &[peer], "").await?;
    let mut paths = vec!["/v1/conversations?limit=20".to_owned()];
    if let Some(home) = memberships.first() {
        paths.push(format!("/v1/conversations/{}/messages?limit=50", home.id));
    }
    for path in paths {
        let (status, _) = api.timed_get(user, &path).await?;
        if status != 200 {
            return Err(format!("cold starts: GET {path} answered {status}"));
        }
    }
    let disconnects = disconnect_invocations(stack).await?;
    fleet.close().await;
    let waited = Instant::now();
    while disconnect_invocations(stack).await? <= disconnects {
        if waited.elapsed() > DISCONNECT_WAIT {
            return Err(format!("cold starts: round {round}'s $disconnect did not run"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(QUIET).await;
    Ok(())
}

async fn disconnect_invocations(stack: &Stack) -> Result<u64, String> {
    let stats = stack.emulator_stats().await?;
    Ok(stats
        .functions
        .get(crate::run::DISCONNECT_FUNCTION)
        .map_or(0, |f| f.invocations))
}
