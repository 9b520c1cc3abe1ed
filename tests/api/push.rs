//! Notifications to users who are offline, end to end: Web Push subscriptions
//! over REST (`/v1/push/*`) and through PostgREST with a user's token; a
//! message to an offline member reaching the push service stand-in (VAPID
//! checked, payload decrypted with the subscriber's key) and the webhook
//! receiver (signature checked); online, muted and blocked members left out;
//! a subscription the push service answers 410 for removed; and a
//! notification that keeps failing retried by the emulator's asynchronous
//! invocation and recorded at its failure destination.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::push_service::{decrypt, push_service, verify_vapid, verify_webhook, Subscriber};
use crate::helpers::{assert_error, stack, Stack, User, SILENCE};
use crate::postgrest_direct::{assert_denied, rows, Rest, Who};

const SUBSCRIPTIONS: &str = "/v1/push/subscriptions";

async fn subscribe(stack: &Stack, user: &User) -> Subscriber {
    let subscriber = push_service().subscriber();
    let (status, body) = stack
        .http()
        .post(user, SUBSCRIPTIONS, subscriber.subscription_json())
        .await;
    assert_eq!(status, 201, "{body}");
    subscriber
}

async fn endpoints_of(stack: &Stack, user: &User) -> Vec<String> {
    stack
        .db()
        .await
        .query(
            "select endpoint from push_subscriptions where user_id = $1 order by endpoint",
            &[&user.id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn subscriptions_are_saved_for_their_user_validated_and_deleted() {
    let stack = stack();
    let http = stack.http();
    let (alice, bob) = (stack.new_user("subscriber").await, stack.new_user("other").await);

    let (status, body) = http.get(&alice, "/v1/push/vapid-public-key").await;
    assert_eq!(
        (status, body),
        (200, json!({"public_key": stack.info.vapid_public_key}))
    );

    let phone = push_service().subscriber();
    let (status, body) = http.post(&alice, SUBSCRIPTIONS, phone.subscription_json()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["created"], true);
    assert_eq!(body["subscription"]["endpoint"], phone.endpoint);
    let (status, body) = http.post(&alice, SUBSCRIPTIONS, phone.subscription_json()).await;
    assert_eq!((status, &body["created"]), (200, &json!(false)), "saved again: {body}");
    let laptop = subscribe(stack, &alice).await;
    let mut both = vec![phone.endpoint.clone(), laptop.endpoint.clone()];
    both.sort();
    assert_eq!(endpoints_of(stack, &alice).await, both);

    // What the browser gives must be a subscription one can push to.
    let mut wrong = Vec::new();
    let good = phone.subscription_json();
    let mut http_endpoint = good.clone();
    http_endpoint["endpoint"] = json!("http://push.example.com/x");
    wrong.push(("plain http", http_endpoint, 422));
    let mut short_key = good.clone();
    short_key["keys"]["p256dh"] = json!(&phone.p256dh[..86]);
    wrong.push(("a short key", short_key, 422));
    let mut off_curve = good.clone();
    off_curve["keys"]["p256dh"] = json!(format!("{}{}", &phone.p256dh[..44], "A".repeat(43)));
    wrong.push(("a point off the curve", off_curve, 422));
    let mut long_auth = good.clone();
    long_auth["keys"]["auth"] = json!(format!("{}AA", phone.auth));
    wrong.push(("a 17-byte auth secret", long_auth, 422));
    wrong.push(("no keys", json!({"endpoint": phone.endpoint}), 400));
    wrong.push((
        "an unknown field",
        json!({"endpoint": phone.endpoint, "keys": good["keys"], "x": 1}),
        400,
    ));
    for (what, body, status) in wrong {
        let code = if status == 422 {
            "invalid_push_subscription"
        } else {
            "invalid_argument"
        };
        let answer = http.post(&alice, SUBSCRIPTIONS, body).await;
        assert_eq!(answer.0, status, "{what}: {}", answer.1);
        if status == 422 {
            assert_error(answer, status, code, what);
        }
    }

    // Bob cannot remove alice's; alice removes hers.
    let delete = |user: &User, endpoint: &str| {
        let body = json!({"endpoint": endpoint}).to_string();
        let token = user.token.clone();
        let http = stack.http();
        async move {
            http.request(Method::DELETE, Some(&token), SUBSCRIPTIONS, Some(body))
                .await
        }
    };
    assert_eq!(delete(&bob, &phone.endpoint).await, (200, json!({"removed": false})));
    assert_eq!(delete(&alice, &phone.endpoint).await, (200, json!({"removed": true})));
    assert_eq!(delete(&alice, &phone.endpoint).await, (200, json!({"removed": false})));
    assert_eq!(endpoints_of(stack, &alice).await, vec![laptop.endpoint.clone()]);
}

#[tokio::test]
async fn through_postgrest_nobody_reads_or_writes_anothers_subscriptions() {
    let stack = stack();
    let rest = Rest::new();
    let (alice, bob) = (stack.new_user("owner").await, stack.new_user("snoop").await);
    let subscriber = subscribe(stack, &alice).await;

    assert_eq!(
        rows(
            "alice reads hers",
            rest.get(Who::User(&alice), "push_subscriptions?select=*").await
        )
        .len(),
        1
    );
    assert!(rows(
        "bob reads none",
        rest.get(Who::User(&bob), "push_subscriptions?select=*").await
    )
    .is_empty());
    assert_denied("anon reads", &rest.get(Who::Anon, "push_subscriptions?select=*").await);
    let path = format!("push_subscriptions?user_id=eq.{}", alice.id);
    for (what, method, body) in [
        (
            "bob moves alice's subscription to himself",
            Method::PATCH,
            Some(json!({"user_id": bob.id})),
        ),
        (
            "bob inserts one for alice",
            Method::POST,
            Some(
                json!({"endpoint": "https://push.example.com/x", "user_id": alice.id, "p256dh": subscriber.p256dh, "auth": subscriber.auth}),
            ),
        ),
    ] {
        assert_denied(what, &rest.send(Who::User(&bob), method, &path, body).await);
    }
    // A delete through RLS reaches none of alice's rows.
    let _ = rest.send(Who::User(&bob), Method::DELETE, &path, None).await;
    let (status, body) = rest
        .rpc(
            Who::User(&bob),
            "delete_push_subscription",
            &json!({"p_endpoint": subscriber.endpoint}),
        )
        .await;
    assert_eq!((status, body), (200, json!({"removed": false})));
    for (function, args) in [
        (
            "notification_targets",
            json!({"p_message_id": Uuid::new_v4(), "p_user_ids": [alice.id]}),
        ),
        (
            "remove_push_subscriptions",
            json!({"p_endpoints": [subscriber.endpoint]}),
        ),
    ] {
        assert_denied(function, &rest.rpc(Who::User(&bob), function, &args).await);
    }
    assert_eq!(endpoints_of(stack, &alice).await, vec![subscriber.endpoint.clone()]);
}

#[tokio::test]
async fn an_offline_member_gets_an_encrypted_push_and_the_webhook_a_signed_notification() {
    let stack = stack();
    let service = push_service();
    let (alice, bob, _conversation) = stack.direct_pair().await;
    let conversation = _conversation;
    let subscriber = subscribe(stack, &bob).await;

    let message = stack.send_text(&alice, conversation, "Are you there, Bob?").await;
    let pushes = service.await_pushes(&subscriber, 1).await;
    let push = &pushes[0];
    verify_vapid(push, &stack.info.vapid_public_key, &service.origin);
    assert_eq!(push.headers["topic"].len(), 32, "a topic per user and conversation");
    assert_eq!(push.headers["urgency"], "high");
    assert!(push.headers["ttl"].parse::<u64>().unwrap() > 0);
    let payload = decrypt(push, &subscriber);
    assert_eq!(payload["type"], "message.created");
    assert_eq!(payload["conversation"]["id"], conversation.to_string());
    assert_eq!(payload["conversation"]["kind"], "direct");
    assert_eq!(payload["message"]["id"], message["id"]);
    assert_eq!(payload["message"]["seq"], message["seq"]);
    assert_eq!(payload["message"]["body"], "Are you there, Bob?");
    assert_eq!(payload["sender"]["id"], alice.id.to_string());
    assert_eq!(payload["sender"]["username"], alice.name);

    let received = service.await_webhooks(conversation, 1).await;
    let notification = verify_webhook(&received[0]);
    assert_eq!(notification["id"], message["id"], "an id to tell a repeat by");
    assert_eq!(notification["user_ids"], json!([bob.id]));
    assert_eq!(notification["message"]["body"], "Are you there, Bob?");
    assert_eq!(notification["sender"]["id"], alice.id.to_string());

    // A second message replaces the first at the push service: the same topic.
    stack.send_text(&alice, conversation, "Hello?").await;
    let pushes = service.await_pushes(&subscriber, 2).await;
    assert_eq!(pushes[1].headers["topic"], pushes[0].headers["topic"]);
    assert_eq!(decrypt(&pushes[1], &subscriber)["message"]["body"], "Hello?");
}

#[tokio::test]
async fn online_muted_and_blocked_members_are_not_notified() {
    let stack = stack();
    let service = push_service();
    let http = stack.http();
    let alice = stack.new_user("sender").await;
    let online = stack.new_user("online").await;
    let muted = stack.new_user("muted").await;
    let blocker = stack.new_user("blocker").await;
    let away = stack.new_user("away").await;
    let group = stack.group(&alice, &[&online, &muted, &blocker, &away]).await;
    let mut subscribers = Vec::new();
    for user in [&online, &muted, &blocker, &away] {
        subscribers.push(subscribe(stack, user).await);
    }
    let mut socket = stack.connect(&online).await;
    let (status, body) = http
        .patch(&muted, &format!("/v1/conversations/{group}"), json!({"muted": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = http.post(&blocker, "/v1/blocks", json!({"user_id": alice.id})).await;
    assert_eq!(status, 201, "{body}");

    let message = stack.send_text(&alice, group, "who gets this?").await;
    socket.expect("message.created").await;
    let pushes = service.await_pushes(&subscribers[3], 1).await;
    assert_eq!(decrypt(&pushes[0], &subscribers[3])["message"]["id"], message["id"]);
    let received = service.await_webhooks(group, 1).await;
    assert_eq!(
        verify_webhook(&received[0])["user_ids"],
        json!([away.id]),
        "only the one away"
    );
    tokio::time::sleep(SILENCE).await;
    for (who, subscriber) in ["online", "muted", "blocker"].iter().zip(&subscribers) {
        assert!(service.pushes(subscriber).is_empty(), "{who} got a push");
    }
    assert_eq!(service.webhooks(group).len(), 1);
}

#[tokio::test]
async fn a_subscription_the_push_service_no_longer_knows_is_removed() {
    let stack = stack();
    let service = push_service();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let (kept, gone) = (subscribe(stack, &bob).await, subscribe(stack, &bob).await);
    service.answer(&gone, 410);

    stack.send_text(&alice, conversation, "one").await;
    service.await_pushes(&kept, 1).await;
    service.await_pushes(&gone, 1).await;
    stack
        .eventually("the gone subscription is forgotten", || async {
            endpoints_of(stack, &bob).await == vec![kept.endpoint.clone()]
        })
        .await;

    stack.send_text(&alice, conversation, "two").await;
    service.await_pushes(&kept, 2).await;
    tokio::time::sleep(SILENCE).await;
    assert_eq!(service.pushes(&gone).len(), 1, "no push to a forgotten subscription");
}

/// The async invocation records of the notification function at its failure destination.
async fn failures(stack: &Stack) -> Vec<Value> {
    let (status, stats) = stack.http().get_anonymous("/__emulator/stats").await;
    assert_eq!(status, 200);
    stats["async_invocations"]["failures"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_notification_that_keeps_failing_is_retried_then_recorded_at_its_failure_destination() {
    let stack = stack();
    let service = push_service();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    service.fail_webhook_for(conversation);

    let message = stack.send_text(&alice, conversation, "this one fails").await;
    let matching = |records: &[Value]| -> Vec<Value> {
        records
            .iter()
            .filter(|f| f["record"]["requestPayload"]["message_id"] == message["id"])
            .cloned()
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let failure = loop {
        if let Some(failure) = matching(&failures(stack).await).into_iter().next() {
            break failure;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the event never reached its failure destination"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failure["function"], "NotifyFunction");
    assert_eq!(failure["destination"], "NotificationFailureQueue");
    let record = &failure["record"];
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(
        record["requestContext"]["approximateInvokeCount"], 3,
        "the first run and two retries"
    );
    assert_eq!(record["requestPayload"]["conversation_id"], conversation.to_string());
    assert_eq!(record["responsePayload"]["errorType"], "NotificationIncomplete");
    // Every run tried the receiver, each time with its own retries, all signed.
    let received = service.webhooks(conversation);
    assert!(received.len() >= 3, "{} webhook requests", received.len());
    for request in &received {
        assert_eq!(verify_webhook(request)["id"], message["id"]);
    }
    assert_eq!(matching(&failures(stack).await).len(), 1, "recorded once");
}
