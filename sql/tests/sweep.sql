-- Removing connections other than by $disconnect (a push answered 410:
-- remove_connections; the sweep: sweep_candidates, sweep_connections), and
-- what every removal of a user's last live connection tells the others:
-- presence offline to the contacts, typing stopped where the user was typing.
-- Fixture: a group of alice, bob, carol and dave in which alice, bob and carol
-- have sent (contacts; dave is a member only); carol blocks alice.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

-- Registers a connection past its $connect (connection_is_settled): what
-- API Gateway's 410 may remove.
create function pg_temp.connect_settled(p_connection_id text, p_user_id uuid, p_live boolean default true)
returns void language plpgsql as $$
begin
  perform tests.connect(p_connection_id, p_user_id, p_live);
  update public.connections
     set connected_at = now() - interval '1 minute'
   where connection_id = p_connection_id;
end;
$$;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol(), tests.dave()]);
begin
  perform tests.take_part(v_group, array[tests.alice(), tests.bob(), tests.carol()]);
  insert into public.blocks (blocker_id, blocked_id) values (tests.carol(), tests.alice());
  insert into fixture values ('group', v_group);
end
$$;

-- send_typing records who is typing until when; a stop forgets it.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
begin
  perform tests.act_as_service();
  perform public.send_typing(tests.bob(), v_group, true);
  perform tests.reset();
  perform tests.eq((select expires_at from public.typing_indicators where conversation_id = v_group and user_id = tests.bob()),
    now() + interval '6 seconds', 'typing is recorded with its expiry');
  perform tests.act_as_service();
  perform public.send_typing(tests.bob(), v_group, true);
  perform public.send_typing(tests.bob(), v_group, false);
  perform tests.reset();
  perform tests.eq((select count(*) from public.typing_indicators), 0::bigint, 'a stop forgets the typing');
  perform tests.act_as_service();
  perform tests.denied('select count(*) from public.typing_indicators', 'service_role reads typing_indicators');
  perform tests.reset();
end
$$;

-- A push answered 410 (remove_connections): one of two connections going
-- tells nobody; the last one going tells the contacts alice is offline and
-- the group that she stopped typing, exactly as $disconnect does.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_result jsonb;
  v_typing jsonb;
begin
  perform pg_temp.connect_settled('alice-1', tests.alice());
  perform pg_temp.connect_settled('alice-2', tests.alice());
  perform pg_temp.connect_settled('bob-1', tests.bob());
  perform pg_temp.connect_settled('carol-1', tests.carol());
  perform pg_temp.connect_settled('dave-1', tests.dave());
  perform tests.connect('alice-young', tests.alice());
  perform tests.reset();

  perform tests.act_as_service();
  perform public.send_typing(tests.alice(), v_group, true);

  v_result := public.remove_connections(array['alice-1']);
  perform tests.eq(v_result, '{"result": {"removed": 1}, "deliveries": []}'::jsonb,
    'a 410 with another connection left tells nobody');

  -- alice-young is still in its $connect as far as the 410 can tell: kept,
  -- and it keeps alice online.
  v_result := public.remove_connections(array['alice-young']);
  perform tests.eq(v_result, '{"result": {"removed": 0}, "deliveries": []}'::jsonb, 'a young connection is kept');
  perform tests.reset();
  delete from public.connections where connection_id = 'alice-young';
  -- alice-2 was last seen (by a ping) five minutes ago, later than the
  -- profile says.
  update public.profiles set last_seen_at = now() - interval '1 hour' where id = tests.alice();
  update public.connections set last_seen_at = now() - interval '5 minutes' where connection_id = 'alice-2';
  perform tests.act_as_service();

  v_result := public.remove_connections(array['alice-2', 'never-registered']);
  perform tests.eq(tests.result(v_result), '{"removed": 1}'::jsonb, 'the last connection is removed');
  perform tests.eq(tests.deliveries(v_result, 'presence') -> 0 -> 'event',
    jsonb_build_object('type', 'presence', 'data', jsonb_build_object('user_id', tests.alice(), 'online', false,
      'last_seen_at', now() - interval '5 minutes')),
    'presence offline, last seen when the connection last was');
  perform tests.reset();
  perform tests.eq((select last_seen_at from public.profiles where id = tests.alice()), now() - interval '5 minutes',
    'the profile''s last seen time moves forward to it');
  perform tests.act_as_service();
  -- carol blocks alice; dave is no contact.
  perform tests.eq(tests.recipients(v_result, 'presence'), array['bob-1'], 'offline presence goes to the contacts');
  v_typing := tests.deliveries(v_result, 'typing');
  perform tests.eq(jsonb_array_length(v_typing), 1, 'one typing stop');
  perform tests.eq(v_typing -> 0 -> 'event', jsonb_build_object('type', 'typing', 'conversation_id', v_group,
      'data', jsonb_build_object('user_id', tests.alice(), 'is_typing', false, 'expires_at', now())),
    'typing stopped, as a stop frame would say it');
  -- The other members, but for carol (a block hides typing both ways).
  perform tests.eq(tests.recipients(v_result, 'typing'), array['bob-1', 'dave-1'], 'typing stop recipients');
  perform tests.reset();
  perform tests.eq((select count(*) from public.typing_indicators where user_id = tests.alice()), 0::bigint,
    'the typing is forgotten');

  -- A typing indicator that expired on its own is not announced again.
  perform pg_temp.connect_settled('alice-3', tests.alice());
  perform tests.act_as_service();
  perform public.send_typing(tests.alice(), v_group, true);
  perform tests.reset();
  update public.typing_indicators set expires_at = now() - interval '1 second' where user_id = tests.alice();
  perform tests.act_as_service();
  v_result := public.remove_connections(array['alice-3']);
  perform tests.eq(tests.recipients(v_result, 'presence'), array['bob-1'], 'offline again');
  perform tests.eq(tests.deliveries(v_result, 'typing'), '[]'::jsonb, 'an expired typing is not stopped');
  perform tests.reset();
  perform tests.eq((select count(*) from public.typing_indicators where user_id = tests.alice()), 0::bigint,
    'an expired typing is forgotten too');

  -- $disconnect of a typist's last connection stops the typing the same way.
  perform tests.act_as_service();
  perform public.send_typing(tests.bob(), v_group, true);
  v_result := public.unregister_connection('bob-1');
  perform tests.eq(tests.recipients(v_result, 'typing'), array['carol-1', 'dave-1'], 'a disconnect stops the typing');
  perform tests.eq(tests.deliveries(v_result, 'typing') -> 0 -> 'event' -> 'data' -> 'is_typing', 'false'::jsonb,
    'a stop');
  perform tests.eq(tests.recipients(v_result, 'presence'), array['carol-1'], 'and bob is offline');
  perform tests.reset();
  delete from public.connections;
end
$$;

-- sweep_candidates: connections whose token expired, and live ones not seen
-- for the threshold, past their $connect, the longest in doubt first.
do $$
declare
  v_candidates jsonb;
begin
  perform pg_temp.connect_settled('expired-1', tests.alice(), false);
  perform tests.connect('expired-young', tests.alice(), false);
  perform pg_temp.connect_settled('quiet-1', tests.bob());
  perform pg_temp.connect_settled('quiet-2', tests.carol());
  perform tests.connect('quiet-young', tests.carol());
  perform pg_temp.connect_settled('fresh-1', tests.dave());
  update public.connections set last_seen_at = now() - interval '10 minutes' where connection_id = 'quiet-1';
  update public.connections set last_seen_at = now() - interval '20 minutes' where connection_id = 'quiet-2';
  update public.connections set last_seen_at = now() - interval '30 minutes' where connection_id = 'quiet-young';
  update public.connections set last_seen_at = now() - interval '4 minutes' where connection_id = 'fresh-1';

  perform tests.act_as_service();
  v_candidates := public.sweep_candidates(300);
  perform tests.eq(v_candidates, '{"expired": ["expired-1"], "stale": ["quiet-2", "quiet-1"]}'::jsonb,
    'expired and stale, oldest first; young ones and fresh ones left alone');
  perform tests.eq(public.sweep_candidates(300, 1) -> 'stale', '["quiet-2"]'::jsonb, 'at most the limit');
  perform tests.eq(public.sweep_candidates(200) -> 'stale', '["quiet-2", "quiet-1", "fresh-1"]'::jsonb,
    'a shorter threshold');
  perform tests.raises('select public.sweep_candidates(0)', 'invalid_argument', 'a threshold of 0');
  perform tests.raises('select public.sweep_candidates(null)', 'invalid_argument', 'no threshold');
  perform tests.raises('select public.sweep_candidates(300, 0)', 'invalid_argument', 'a limit of 0');
  perform tests.raises('select public.sweep_candidates(300, 10001)', 'invalid_argument', 'a limit too large');
  perform tests.reset();
  perform tests.act_as(tests.alice());
  perform tests.denied('select public.sweep_candidates(300)', 'a user lists sweep candidates');
  perform tests.denied('select public.sweep_connections(array[''quiet-1''], null)', 'a user sweeps');
  perform tests.reset();
end
$$;

-- sweep_connections: the gone ones forgotten (presence offline, typing
-- stopped), the ones API Gateway still knows refreshed, typing indicators
-- that expired pruned; health counts what is left.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_result jsonb;
  v_before jsonb;
begin
  -- alice keeps a live connection; bob is typing; carol's typing expired;
  -- dave is typing and stays.
  perform pg_temp.connect_settled('alice-live', tests.alice());
  insert into public.typing_indicators (conversation_id, user_id, expires_at)
  values (v_group, tests.bob(), now() + interval '3 seconds'),
         (v_group, tests.carol(), now() - interval '1 minute'),
         (v_group, tests.dave(), now() + interval '3 seconds');
  perform tests.act_as_anon();
  v_before := public.health_stats();
  perform tests.reset();

  perform tests.act_as_service();
  v_result := public.sweep_connections(array['expired-1', 'quiet-1', 'quiet-2', 'quiet-young', 'unknown'],
    array['fresh-1', 'also-unknown']);
  perform tests.reset();
  -- quiet-young is still in its $connect as far as the sweep can tell: kept.
  perform tests.eq(tests.result(v_result), '{"removed": 3, "refreshed": 1}'::jsonb, 'removed and refreshed');
  perform tests.eq((select array_agg(connection_id order by connection_id) from public.connections),
    array['alice-live', 'expired-young', 'fresh-1', 'quiet-young'], 'what is left');
  perform tests.eq((select last_seen_at from public.connections where connection_id = 'fresh-1'), now(),
    'a connection API Gateway still knows is seen now');
  -- Only bob went offline: alice keeps alice-live, carol quiet-young.
  perform tests.eq(jsonb_array_length(tests.deliveries(v_result, 'presence')), 1, 'one user went offline');
  perform tests.eq(tests.deliveries(v_result, 'presence') -> 0 -> 'event' -> 'data' ->> 'user_id', tests.bob()::text,
    'bob went offline');
  perform tests.eq(tests.recipients(v_result, 'presence'), array['alice-live', 'quiet-young'],
    'bob''s contacts are told');
  perform tests.eq(tests.deliveries(v_result, 'presence') -> 0 -> 'event' -> 'data' ->> 'last_seen_at',
    to_jsonb(now()) #>> '{}', 'bob''s last seen time stays his profile''s (his connect), later than quiet-1''s');
  perform tests.eq(tests.recipients(v_result, 'typing'), array['alice-live', 'fresh-1', 'quiet-young'],
    'bob''s typing stopped for the others');
  perform tests.eq((select array_agg(user_id order by user_id) from public.typing_indicators),
    array[tests.dave()], 'bob''s typing stopped, carol''s expired one pruned, dave''s kept');

  perform tests.act_as_anon();
  perform tests.eq(public.health_stats() -> 'live_connections',
    to_jsonb((v_before ->> 'live_connections')::int - 2), 'health counts the live connections left');
  perform tests.reset();
end
$$;
