-- The connection registry, typing recipients and health stats.
-- (What register/unregister push, presence, is covered by presence.sql.)

-- register / unregister: first and last connection, idempotent disconnects.
do $$
declare
  v_result jsonb;
begin
  perform tests.act_as_service();

  v_result := public.register_connection('alice-1', tests.alice(), now() + interval '1 hour');
  perform tests.eq(v_result - 'deliveries', jsonb_build_object('user_id', tests.alice(), 'first_connection', true),
    'first connection');
  perform tests.eq(jsonb_array_length(v_result -> 'deliveries'), 1, 'deliveries of a first connection');
  perform tests.eq(v_result -> 'deliveries' -> 0 -> 'event' ->> 'type', 'presence', 'a first connection pushes presence');
  v_result := public.register_connection('alice-2', tests.alice(), now() + interval '1 hour');
  perform tests.eq(v_result -> 'first_connection', 'false'::jsonb, 'second connection is first');
  perform tests.eq(v_result -> 'deliveries', '[]'::jsonb, 'deliveries of a second connection');
  -- $connect retried with the same id: still not the first.
  v_result := public.register_connection('alice-1', tests.alice(), now() + interval '2 hours');
  perform tests.eq(v_result -> 'first_connection', 'false'::jsonb, 'retried connection is first');
  perform tests.eq(v_result -> 'deliveries', '[]'::jsonb, 'deliveries of a retried connection');
  perform tests.reset();
  perform tests.eq((select count(*) from public.connections where user_id = tests.alice()), 2::bigint, 'alice''s connections');
  perform tests.check((select last_seen_at from public.profiles where id = tests.alice()) is not null, 'last_seen_at set on connect');

  perform tests.act_as_service();
  v_result := public.unregister_connection('alice-2');
  perform tests.eq(v_result, jsonb_build_object('user_id', tests.alice(), 'last_connection', false, 'deliveries', '[]'::jsonb),
    'first of two disconnects');
  v_result := public.unregister_connection('alice-1');
  perform tests.eq(v_result - 'deliveries', jsonb_build_object('user_id', tests.alice(), 'last_connection', true),
    'last disconnect');
  perform tests.eq(v_result -> 'deliveries' -> 0 -> 'event' -> 'data' -> 'online', 'false'::jsonb,
    'a last disconnect pushes presence offline');
  v_result := public.unregister_connection('alice-1');
  perform tests.eq(v_result, jsonb_build_object('user_id', null, 'last_connection', false, 'deliveries', '[]'::jsonb),
    'repeated disconnect');
  v_result := public.unregister_connection('never-seen');
  perform tests.eq(v_result, jsonb_build_object('user_id', null, 'last_connection', false, 'deliveries', '[]'::jsonb),
    'disconnect of an unknown id');

  perform tests.raises(format('select public.register_connection(''x-1'', %L, null)', gen_random_uuid()), 'user_not_found',
    'connect as an unknown user');
  perform tests.raises('select public.register_connection(''x-1'', null, null)', 'user_not_found',
    'connect without a user');
  perform tests.raises(format('select public.register_connection('''', %L, null)', tests.alice()), 'invalid_argument',
    'connect with an empty connection id');
  perform tests.reset();
end
$$;

-- A connection whose token expired is not live: it does not count as online.
do $$
begin
  perform tests.act_as_service();
  perform public.register_connection('bob-old', tests.bob(), now() - interval '1 minute');
  perform tests.eq(public.register_connection('bob-new', tests.bob(), now() + interval '1 hour') -> 'first_connection',
    'true'::jsonb, 'first live connection next to an expired one');
  perform tests.eq(public.unregister_connection('bob-new') -> 'last_connection', 'true'::jsonb,
    'last live connection next to an expired one');
  perform tests.reset();
end
$$;

-- touch and remove.
do $$
declare
  v_result jsonb;
begin
  perform tests.act_as_service();
  perform public.register_connection('carol-1', tests.carol(), now() + interval '1 hour');
  perform public.register_connection('carol-2', tests.carol(), now() + interval '1 hour');
  perform public.register_connection('dave-1', tests.dave(), now() + interval '1 hour');

  v_result := public.touch_connection('carol-1');
  perform tests.eq((v_result ->> 'user_id')::uuid, tests.carol(), 'touched connection''s user');
  perform tests.check(v_result ->> 'last_seen_at' is not null, 'touch returns last_seen_at');
  perform tests.raises('select public.touch_connection(''gone'')', 'unknown_connection', 'touch an unknown connection');

  -- Connections still in their $connect (registered moments ago) answer 410
  -- too; they are not forgotten.
  perform tests.eq(public.remove_connections(array['carol-1', 'dave-1']),
    '{"result": {"removed": 0}, "deliveries": []}'::jsonb, 'connections registered moments ago are kept');
  perform tests.reset();
  update public.connections set connected_at = now() - interval '31 seconds'
   where connection_id in ('carol-1', 'dave-1');
  perform tests.act_as_service();
  v_result := public.remove_connections(array['carol-1', 'dave-1', 'gone']);
  perform tests.eq(tests.result(v_result), '{"removed": 2}'::jsonb, 'remove two known and one unknown connection');
  -- dave-1 was dave's last connection (who is told is presence.sql's and sweep.sql's matter).
  perform tests.eq(jsonb_array_length(tests.deliveries(v_result, 'presence')), 1, 'dave went offline, carol did not');
  perform tests.eq(public.remove_connections(array[]::text[]),
    '{"result": {"removed": 0}, "deliveries": []}'::jsonb, 'remove nothing');
  perform tests.eq(public.remove_connections(null),
    '{"result": {"removed": 0}, "deliveries": []}'::jsonb, 'remove null');
  perform tests.reset();
  perform tests.eq((select array_agg(connection_id order by connection_id) from public.connections),
    array['bob-old', 'carol-2'], 'connections left');
end
$$;

-- send_typing: one transient typing event (no seq) that lasts six seconds
-- (a stop expires now), to the other current participants' live connections.
do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()]);
  v_typing jsonb;
  v_foreign jsonb;
  v_missing jsonb;
begin
  perform public.register_connection('alice-1', tests.alice(), now() + interval '1 hour');
  perform public.register_connection('alice-2', tests.alice(), now() + interval '1 hour');
  perform public.register_connection('bob-1', tests.bob(), now() + interval '1 hour');
  perform public.register_connection('dave-1', tests.dave(), now() + interval '1 hour');

  perform tests.act_as_service();
  -- carol-2 (registered above) is carol's; bob-old is expired; dave is not in the group.
  v_typing := public.send_typing(tests.alice(), v_group);
  perform tests.eq(jsonb_array_length(v_typing -> 'deliveries'), 1, 'one typing delivery');
  perform tests.eq(tests.sorted(v_typing -> 'deliveries' -> 0 -> 'recipients'),
    tests.sorted(jsonb_build_array(
      jsonb_build_object('user_id', tests.bob(), 'connection_id', 'bob-1'),
      jsonb_build_object('user_id', tests.carol(), 'connection_id', 'carol-2'))),
    'typing recipients of alice: not her own connections');
  perform tests.eq(v_typing -> 'deliveries' -> 0 -> 'event',
    jsonb_build_object('type', 'typing', 'conversation_id', v_group, 'data', jsonb_build_object(
      'user_id', tests.alice(), 'is_typing', true, 'expires_at', now() + interval '6 seconds')),
    'typing (is_typing by default) lasts six seconds, without a seq');
  perform tests.eq(v_typing -> 'result', jsonb_build_object('expires_at', now() + interval '6 seconds'),
    'the result is the expiry');
  perform tests.eq(public.send_typing(tests.alice(), v_group, false) -> 'deliveries' -> 0 -> 'event' -> 'data',
    jsonb_build_object('user_id', tests.alice(), 'is_typing', false, 'expires_at', now()), 'a stop expires now');
  perform tests.eq(tests.error_of(format('select public.send_typing(%L, %L, null)', tests.alice(), v_group)) ->> 'message',
    'invalid_argument', 'is_typing null');
  perform tests.eq(tests.recipients(public.send_typing(tests.carol(), v_group), 'typing'),
    array['alice-1', 'alice-2', 'bob-1'], 'typing recipients of carol: every connection of the others');

  v_foreign := tests.error_of(format('select public.send_typing(%L, %L)', tests.dave(), v_group));
  v_missing := tests.error_of(format('select public.send_typing(%L, %L)', tests.dave(), gen_random_uuid()));
  perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'non-member types');
  perform tests.eq(v_missing, v_foreign, 'error for a missing conversation equals the non-member error');
  perform public.unregister_connection('alice-2');
  perform tests.reset();
end
$$;

-- health_stats: counts only, for anyone.
do $$
declare
  v_stats jsonb;
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob()]);
  v_stale uuid := tests.make_conversation('group', tests.alice(), array[tests.bob()]);
begin
  -- An old conversation whose last event was two days ago is not active.
  update public.conversation_events set created_at = now() - interval '2 days' where conversation_id = v_stale;

  perform tests.act_as_anon();
  v_stats := public.health_stats();
  perform tests.reset();

  perform tests.eq(v_stats, jsonb_build_object(
    'live_connections', (select count(*) from public.connections where token_exp is null or token_exp > now()),
    'users_online', (select count(distinct user_id) from public.connections where token_exp is null or token_exp > now()),
    'active_conversations', (select count(distinct conversation_id) from public.conversation_events
      where created_at > now() - interval '24 hours')), 'health stats');
  -- alice-1, bob-1, carol-2, dave-1 live; bob-old expired.
  perform tests.eq(v_stats, '{"live_connections": 4, "users_online": 4, "active_conversations": 2}'::jsonb,
    'health stats of the fixture');
end
$$;

-- connection_is_live: a token not yet expired, or none; inlined into the
-- query that asks it of each row (no function call per connection), and
-- deaf to the search path of whoever asks (its body names pg_catalog).
create schema liveness_probe;
create function liveness_probe.now() returns timestamptz language sql as $$ select 'infinity'::timestamptz $$;
create function liveness_probe.tsgt(timestamptz, timestamptz) returns boolean language sql as $$ select false $$;
create operator liveness_probe.> (leftarg = timestamptz, rightarg = timestamptz, function = liveness_probe.tsgt);
do $$
declare
  v_search_path text := current_setting('search_path');
  v_line text;
  v_plan text := '';
begin
  perform tests.check(public.connection_is_live(null), 'no expiry: live');
  perform tests.check(public.connection_is_live(now() + interval '1 second'), 'expires later: live');
  perform tests.check(not public.connection_is_live(now() - interval '1 second'), 'expired: not live');

  for v_line in execute
    'explain (costs off) select 1 from public.connections c where public.connection_is_live(c.token_exp)'
  loop
    v_plan := v_plan || v_line || E'\n';
  end loop;
  perform tests.check(v_plan like '%token_exp IS NULL%' and v_plan not like '%connection_is_live%',
    'inlined into the query: ' || v_plan);

  perform set_config('search_path', 'liveness_probe, pg_catalog', true);
  perform tests.check(public.connection_is_live(pg_catalog.now() + interval '1 hour'), 'live whatever the search path');
  perform tests.check(not public.connection_is_live(pg_catalog.now() - interval '1 hour'),
    'expired whatever the search path');
  perform set_config('search_path', v_search_path, true);
end
$$;
