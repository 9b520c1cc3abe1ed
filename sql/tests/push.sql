-- Push notifications: saving, reading and deleting Web Push subscriptions
-- (each user their own only, validated), who send_message says is to be
-- notified (offline, not muted, no block with the sender), what the
-- notification function is told (notification_targets, by preview mode) and
-- forgetting subscriptions the push service no longer knows.

-- A well-formed subscription's keys: a 65-byte uncompressed point (0x04 …)
-- and a 16-byte secret, base64url without padding.
create function tests.p256dh(p_fill int default 1) returns text language sql immutable as $$
  select rtrim(translate(encode('\x04'::bytea || decode(repeat(lpad(to_hex(p_fill), 2, '0'), 64), 'hex'), 'base64'),
                         E'+/\n', '-_'), '=')
$$;
create function tests.push_auth() returns text language sql immutable as $$
  select rtrim(translate(encode(decode(repeat('ab', 16), 'hex'), 'base64'), E'+/\n', '-_'), '=')
$$;

-- Saving, reading and deleting.
do $$
declare
  v_result jsonb;
begin
  perform tests.eq(length(tests.p256dh()), 87, 'the fixture key is 87 characters');
  perform tests.eq(length(tests.push_auth()), 22, 'the fixture secret is 22 characters');

  perform tests.act_as(tests.alice());
  v_result := public.save_push_subscription('https://push.example.test/a1', tests.p256dh(), tests.push_auth());
  perform tests.eq(v_result -> 'created', 'true'::jsonb, 'a new subscription');
  perform tests.eq(v_result -> 'subscription' ->> 'endpoint', 'https://push.example.test/a1', 'its endpoint');
  -- Padded keys are stored without their padding.
  v_result := public.save_push_subscription('https://push.example.test/a1', tests.p256dh(2) || '=', tests.push_auth() || '==');
  perform tests.eq(v_result -> 'created', 'false'::jsonb, 'saved again');
  perform tests.eq((select p256dh from public.push_subscriptions where endpoint = 'https://push.example.test/a1'),
    tests.p256dh(2), 'the new key, unpadded');
  perform public.save_push_subscription('https://push.example.test/a2', tests.p256dh(), tests.push_auth());
  perform tests.eq(tests.count('select * from public.push_subscriptions'), 2::bigint, 'alice reads her two');

  perform tests.act_as(tests.bob());
  perform public.save_push_subscription('https://push.example.test/b1', tests.p256dh(), tests.push_auth());
  perform tests.eq(tests.count('select * from public.push_subscriptions'), 1::bigint, 'bob reads only his own');
  perform tests.eq(tests.count($q$select * from public.push_subscriptions where endpoint like '%/a%'$q$), 0::bigint,
    'bob reads none of alice''s');
  -- Deleting alice's, directly or through the RPC, removes nothing.
  execute $q$delete from public.push_subscriptions where endpoint = 'https://push.example.test/a1'$q$;
  perform tests.eq(public.delete_push_subscription('https://push.example.test/a2'), '{"removed": false}'::jsonb,
    'bob cannot delete alice''s');
  perform tests.write_denied($q$insert into public.push_subscriptions (endpoint, user_id, p256dh, auth)
    values ('https://push.example.test/x', '00000000-0000-4000-8000-000000000b0b', 'a', 'b')$q$,
    'push_subscriptions', 'no direct insert');
  perform tests.write_denied($q$update public.push_subscriptions set user_id = user_id$q$,
    'push_subscriptions', 'no direct update');
  perform tests.reset();
  perform tests.eq((select count(*) from public.push_subscriptions where user_id = tests.alice()), 2::bigint,
    'alice still has both');

  perform tests.act_as(tests.alice());
  perform tests.eq(public.delete_push_subscription('https://push.example.test/a2'), '{"removed": true}'::jsonb,
    'alice deletes hers');
  execute $q$delete from public.push_subscriptions where endpoint = 'https://push.example.test/a1'$q$;
  perform tests.eq(tests.count('select * from public.push_subscriptions'), 0::bigint, 'and the other, directly');
  perform tests.raises('select public.delete_push_subscription(null)', 'invalid_push_subscription', 'no endpoint');

  -- A browser signed in as someone else: the endpoint moves to them.
  perform tests.act_as(tests.carol());
  v_result := public.save_push_subscription('https://push.example.test/b1', tests.p256dh(), tests.push_auth());
  perform tests.eq(v_result -> 'created', 'true'::jsonb, 'new for carol');
  perform tests.reset();
  perform tests.eq((select user_id from public.push_subscriptions where endpoint = 'https://push.example.test/b1'),
    tests.carol(), 'the endpoint is carol''s now');

  perform tests.act_as_anon();
  perform tests.denied($q$select public.save_push_subscription('https://push.example.test/n', 'a', 'b')$q$, 'anon saves');
  perform tests.reset();
end
$$;

-- Validation.
do $$
declare
  v_key text := tests.p256dh();
  v_auth text := tests.push_auth();
begin
  perform tests.act_as(tests.dave());
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'http://push.example.test/a', v_key, v_auth),
    'invalid_push_subscription', 'plain http');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'http://127.0.0.1:9/a', v_key, v_auth),
    'invalid_push_subscription', 'loopback http, unless allowed');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'https://', v_key, v_auth),
    'invalid_push_subscription', 'no host');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'https://push.example.test/a b', v_key, v_auth),
    'invalid_push_subscription', 'a space');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'https://bücher.example/a', v_key, v_auth),
    'invalid_push_subscription', 'a host not in its xn-- form');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'https://push.example.test/ä', v_key, v_auth),
    'invalid_push_subscription', 'a path not percent-encoded');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'https://push.example.test/a' || chr(160), v_key, v_auth),
    'invalid_push_subscription', 'a no-break space');
  -- The same, as a browser serialises them.
  perform public.save_push_subscription('https://xn--bcher-kva.example/%C3%A4', v_key, v_auth);
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'https://p.test/' || repeat('a', 2040), v_key, v_auth),
    'invalid_push_subscription', 'over 2048 bytes');
  perform tests.raises(format('select public.save_push_subscription(null, %L, %L)', v_key, v_auth),
    'invalid_push_subscription', 'no endpoint');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'https://p.test/a', left(v_key, 86), v_auth),
    'invalid_push_subscription', 'a key one character short');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'https://p.test/a', 'C' || substr(v_key, 2), v_auth),
    'invalid_push_subscription', 'a compressed or otherwise not uncompressed point');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'https://p.test/a', replace(v_key, 'A', '+'), v_auth),
    'invalid_push_subscription', 'base64, not base64url');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'https://p.test/a', v_key, v_auth || 'AA'),
    'invalid_push_subscription', 'an auth secret of 17 bytes');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, null)', 'https://p.test/a', v_key),
    'invalid_push_subscription', 'no auth secret');

  -- The local stack's push service stand-in is plain http on loopback.
  perform set_config('app.allow_loopback_push_endpoints', 'on', true);
  perform public.save_push_subscription('http://127.0.0.1:9/a', v_key, v_auth);
  perform public.save_push_subscription('http://localhost/a', v_key, v_auth);
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'http://push.example.test/a', v_key, v_auth),
    'invalid_push_subscription', 'plain http elsewhere, even then');
  perform tests.raises(format('select public.save_push_subscription(%L, %L, %L)', 'http://127.0.0.1.example.test/a', v_key, v_auth),
    'invalid_push_subscription', 'a host that only starts like loopback');
  perform set_config('app.allow_loopback_push_endpoints', '', true);
  perform tests.reset();
end
$$;

-- At most 10 per user: the 11th forgets the first saved.
do $$
begin
  perform tests.act_as(tests.dave());
  for i in 1..11 loop
    perform public.save_push_subscription('https://push.example.test/d' || i, tests.p256dh(), tests.push_auth());
    perform tests.reset();
    -- Distinct creation times, as separate requests would have.
    update public.push_subscriptions set created_at = now() - make_interval(mins => 60 - i)
     where endpoint = 'https://push.example.test/d' || i;
    perform tests.act_as(tests.dave());
  end loop;
  perform tests.eq(tests.count('select * from public.push_subscriptions'), 10::bigint, 'ten kept');
  perform tests.eq(tests.count($q$select * from public.push_subscriptions where endpoint = 'https://push.example.test/d1'$q$),
    0::bigint, 'the first saved is gone');
  perform tests.reset();
end
$$;

-- Who send_message says is to be notified.
do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol(), tests.dave()]);
  v_response jsonb;
  v_message jsonb;
begin
  -- Everyone offline: everyone but the sender.
  v_response := public.send_message(tests.alice(), v_group, 'n-1', 'text', 'hello all');
  v_message := v_response -> 'result' -> 'message';
  perform tests.eq(v_response -> 'notify', jsonb_build_object(
    'conversation_id', v_group, 'message_id', v_message -> 'id',
    'user_ids', (select jsonb_agg(u order by u) from unnest(array[tests.bob(), tests.carol(), tests.dave()]) as u)),
    'every offline member but the sender');

  -- bob online, carol muted, dave blocked alice: nobody.
  perform tests.connect('bob-1', tests.bob());
  update public.participants set muted = true where conversation_id = v_group and user_id = tests.carol();
  insert into public.blocks (blocker_id, blocked_id) values (tests.dave(), tests.alice());
  v_response := public.send_message(tests.alice(), v_group, 'n-2', 'text', 'anyone?');
  perform tests.eq(v_response -> 'notify', 'null'::jsonb, 'online, muted and blocked are not notified');
  perform tests.check(v_response ? 'notify', 'notify is there, null');

  -- A block the sender made counts too; a socket whose token expired is no
  -- live connection.
  delete from public.blocks;
  insert into public.blocks (blocker_id, blocked_id) values (tests.alice(), tests.dave());
  delete from public.connections where connection_id = 'bob-1';
  perform tests.connect('bob-stale', tests.bob(), false);
  v_response := public.send_message(tests.alice(), v_group, 'n-3', 'text', 'still?');
  perform tests.eq(v_response -> 'notify' -> 'user_ids', jsonb_build_array(tests.bob()), 'bob, whose only socket expired');

  -- A repeat notifies nobody again (it takes no rate token), bob still offline.
  v_response := public.send_message(tests.alice(), v_group, 'n-3', 'text', 'still?');
  perform tests.eq(v_response -> 'result' -> 'duplicate', 'true'::jsonb, 'a repeat');
  perform tests.eq(v_response -> 'notify', 'null'::jsonb, 'a repeat notifies nobody again');

  -- A former member is not told.
  update public.participants set left_at = now() where conversation_id = v_group and user_id = tests.bob();
  v_response := public.send_message(tests.alice(), v_group, 'n-4', 'text', 'and now?');
  perform tests.eq(v_response -> 'result' -> 'duplicate', 'false'::jsonb, 'a new message');
  perform tests.eq(v_response -> 'notify', 'null'::jsonb, 'bob left: nobody now');
end
$$;

-- What the notification function is told.
do $$
declare
  v_direct uuid := (public.open_direct_conversation(tests.alice(), tests.bob()) -> 'result' -> 'conversation' ->> 'id')::uuid;
  v_long text := repeat('word ', 60);
  v_message jsonb;
  v_targets jsonb;
begin
  perform tests.act_as(tests.bob());
  perform public.save_push_subscription('https://push.example.test/bob-phone', tests.p256dh(), tests.push_auth());
  perform public.save_push_subscription('https://push.example.test/bob-laptop', tests.p256dh(3), tests.push_auth());
  perform tests.act_as(tests.carol());
  perform public.save_push_subscription('https://push.example.test/carol', tests.p256dh(), tests.push_auth());
  perform tests.reset();

  v_message := tests.send(tests.alice(), v_direct, v_long);
  v_targets := public.notification_targets((v_message ->> 'id')::uuid, array[tests.bob()], 'preview');
  perform tests.eq(v_targets -> 'notification' -> 'conversation',
    jsonb_build_object('id', v_direct, 'kind', 'direct', 'name', null), 'the conversation');
  perform tests.eq(v_targets -> 'notification' -> 'sender' ->> 'id', tests.alice()::text, 'the sender');
  perform tests.check(v_targets -> 'notification' -> 'sender' ? 'display_name', 'the sender''s name');
  perform tests.eq(v_targets -> 'notification' -> 'message' ->> 'id', v_message ->> 'id', 'the message');
  perform tests.eq(v_targets -> 'notification' -> 'message' -> 'seq', v_message -> 'seq', 'its seq');
  perform tests.eq(v_targets -> 'notification' -> 'message' ->> 'body', left(v_long, 99) || '…', 'a preview');
  perform tests.eq(char_length(v_targets -> 'notification' -> 'message' ->> 'body'), 100, '99 characters and …');
  perform tests.eq((select jsonb_agg(s ->> 'endpoint') from jsonb_array_elements(v_targets -> 'subscriptions') as s),
    '["https://push.example.test/bob-laptop", "https://push.example.test/bob-phone"]'::jsonb, 'bob''s devices only');
  perform tests.eq(v_targets -> 'subscriptions' -> 0 ->> 'p256dh', tests.p256dh(3), 'with their keys');
  perform tests.eq(v_targets -> 'subscriptions' -> 0 ->> 'auth', tests.push_auth(), 'and secrets');

  perform tests.eq(public.notification_targets((v_message ->> 'id')::uuid, array[tests.bob()], 'full')
    -> 'notification' -> 'message' ->> 'body', v_long, 'the full text');
  perform tests.eq(public.notification_targets((v_message ->> 'id')::uuid, array[tests.bob()], 'none')
    -> 'notification' -> 'message' -> 'body', 'null'::jsonb, 'no text');
  perform tests.eq(public.notification_targets((v_message ->> 'id')::uuid, array[tests.bob()], 'none')
    -> 'notification' -> 'sender' ->> 'id', tests.alice()::text, 'but who sent it');
  v_message := tests.send(tests.alice(), v_direct, 'short');
  perform tests.eq(public.notification_targets((v_message ->> 'id')::uuid, array[tests.bob()], 'preview')
    -> 'notification' -> 'message' ->> 'body', 'short', 'a short text whole');
  perform tests.raises(format('select public.notification_targets(%L, null, %L)', v_message ->> 'id', 'some'),
    'invalid_argument', 'an unknown preview mode');

  -- A deleted message tells nothing.
  perform public.delete_message(tests.alice(), (v_message ->> 'id')::uuid);
  perform tests.eq(public.notification_targets((v_message ->> 'id')::uuid, array[tests.bob()], 'full'),
    '{"notification": null, "subscriptions": []}'::jsonb, 'deleted');

  -- Gone subscriptions are forgotten.
  perform tests.eq(public.remove_push_subscriptions(array['https://push.example.test/bob-phone', 'https://nowhere.test/x']),
    '{"removed": 1}'::jsonb, 'one removed');
  perform tests.eq((select array_agg(endpoint order by endpoint) from public.push_subscriptions where user_id = tests.bob()),
    array['https://push.example.test/bob-laptop'], 'the other stays');

  -- Only service_role runs the internal ones.
  perform tests.act_as(tests.bob());
  perform tests.denied(format('select public.notification_targets(%L, array[%L]::uuid[])', v_message ->> 'id', tests.bob()),
    'a user reads targets');
  perform tests.denied($q$select public.remove_push_subscriptions(array['x'])$q$, 'a user removes others''');
  perform tests.reset();
end
$$;
