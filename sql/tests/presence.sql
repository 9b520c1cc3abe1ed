-- Presence: who is told when a user comes and goes (register_connection,
-- unregister_connection), and who may see it (get_me, get_presence,
-- search_users' profiles).
-- Fixture: alice and bob share a group in which both have sent (contacts);
-- alice and carol share a room in which both have sent (a room never makes
-- contacts) and a group in which only alice has (neither does that); dave
-- shares nothing with anyone; erin, who had sent too, left the group.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_erin uuid := gen_random_uuid();
  v_group uuid;
  v_room uuid;
begin
  insert into auth.users (id, email, raw_user_meta_data)
  values (v_erin, 'erin@example.com', '{"username": "erin", "display_name": "Erin"}');
  v_group := tests.make_conversation('group', tests.alice(), array[tests.bob(), v_erin]);
  v_room := tests.make_conversation('room', tests.carol(), array[tests.alice()], 'Plaza');
  perform tests.take_part(v_group, array[tests.alice(), tests.bob(), v_erin]);
  perform tests.take_part(v_room, array[tests.alice(), tests.carol()]);
  perform tests.take_part(tests.make_conversation('group', tests.carol(), array[tests.alice()]), array[tests.alice()]);
  update public.participants set left_at = now() where conversation_id = v_group and user_id = v_erin;
  insert into fixture values ('erin', v_erin), ('group', v_group), ('room', v_room);
end
$$;

-- A first connection tells the user's contacts (live connections only) that
-- the user is online; further connections tell nobody.
do $$
declare
  v_erin uuid := (select id from fixture where name = 'erin');
  v_result jsonb;
  v_event jsonb;
begin
  perform tests.connect('bob-1', tests.bob());
  perform tests.connect('bob-expired', tests.bob(), false);
  perform tests.connect('carol-1', tests.carol());
  perform tests.connect('dave-1', tests.dave());
  perform tests.connect('erin-1', v_erin);
  perform tests.connect('alice-old', tests.alice(), false);

  perform tests.act_as_service();
  v_result := public.register_connection('alice-1', tests.alice(), now() + interval '1 hour');
  perform tests.reset();

  perform tests.eq(v_result -> 'first_connection', 'true'::jsonb, 'first live connection next to an expired one');
  perform tests.eq(jsonb_array_length(v_result -> 'deliveries'), 1, 'deliveries of a first connection');
  v_event := v_result -> 'deliveries' -> 0 -> 'event';
  perform tests.eq(v_event, jsonb_build_object('type', 'presence', 'data', jsonb_build_object(
      'user_id', tests.alice(), 'online', true,
      'last_seen_at', (select last_seen_at from public.profiles where id = tests.alice()))),
    'presence envelope: no conversation_id, no seq');
  -- bob (group) is a contact; carol (room; a group only alice sent in) is
  -- not, dave shares nothing, erin left, bob's expired socket is not live,
  -- alice's own sockets are not told.
  perform tests.eq(tests.recipients(v_result, 'presence'), array['bob-1'], 'presence recipients');

  v_result := public.register_connection('alice-2', tests.alice(), now() + interval '1 hour');
  perform tests.eq(v_result -> 'deliveries', '[]'::jsonb, 'a second connection pushes nothing');

  -- Offline only when the last live connection goes.
  v_result := public.unregister_connection('alice-1');
  perform tests.eq(v_result -> 'deliveries', '[]'::jsonb, 'a disconnect with another connection left pushes nothing');
  v_result := public.unregister_connection('alice-2');
  perform tests.eq(v_result -> 'last_connection', 'true'::jsonb, 'last live connection (an expired one remains)');
  v_event := v_result -> 'deliveries' -> 0 -> 'event';
  perform tests.eq(v_event -> 'data' -> 'online', 'false'::jsonb, 'presence offline');
  perform tests.eq(v_event -> 'data' ->> 'user_id', tests.alice()::text, 'whose presence');
  perform tests.check(v_event -> 'data' ->> 'last_seen_at' is not null, 'offline presence says when last seen');
  perform tests.check(not v_event ? 'seq' and not v_event ? 'conversation_id', 'presence envelope keys');
  perform tests.eq(tests.recipients(v_result, 'presence'), array['bob-1'], 'offline presence recipients');
end
$$;

-- What each viewer sees of others' presence.
do $$
declare
  v_erin uuid := (select id from fixture where name = 'erin');
  v_all uuid[] := array[tests.alice(), tests.bob(), tests.carol(), tests.dave(), (select id from fixture where name = 'erin')];
  v_presence jsonb;
begin
  perform tests.connect('alice-1', tests.alice());

  -- bob: himself and alice (the group); not carol, dave, or erin who left.
  perform tests.act_as(tests.bob());
  v_presence := public.get_presence(v_all || gen_random_uuid());
  perform tests.eq(
    (select array_agg((p ->> 'user_id')::uuid order by ordinality) from jsonb_array_elements(v_presence -> 'presence')
      with ordinality as t (p, ordinality)),
    (select array_agg(u order by u) from unnest(array[tests.alice(), tests.bob()]) u),
    'bob sees the presence of (ordered by user_id)');
  perform tests.eq((select p -> 'online' from jsonb_array_elements(v_presence -> 'presence') p
    where p ->> 'user_id' = tests.alice()::text), 'true'::jsonb, 'alice is online for bob');
  perform tests.eq((select p -> 'online' from jsonb_array_elements(v_presence -> 'presence') p
    where p ->> 'user_id' = tests.bob()::text), 'true'::jsonb, 'bob is online for himself');
  perform tests.eq(
    (select array_agg(k order by k) from jsonb_object_keys(v_presence -> 'presence' -> 0) k),
    array['last_seen_at', 'online', 'user_id'], 'presence entry keys');

  -- carol: only herself (the room and the group make no contacts).
  perform tests.act_as(tests.carol());
  perform tests.eq(
    (select array_agg(p ->> 'user_id') from jsonb_array_elements(public.get_presence(v_all) -> 'presence') p),
    array[tests.carol()::text], 'carol sees the presence of');

  -- dave: only himself; a former member (erin): only herself.
  perform tests.act_as(tests.dave());
  perform tests.eq(
    (select array_agg(p ->> 'user_id') from jsonb_array_elements(public.get_presence(v_all) -> 'presence') p),
    array[tests.dave()::text], 'dave sees the presence of');
  perform tests.eq(public.get_presence(array[tests.alice()]), '{"presence": []}'::jsonb,
    'a stranger asks for alice''s presence');
  perform tests.act_as(v_erin);
  perform tests.eq(
    (select array_agg(p ->> 'user_id') from jsonb_array_elements(public.get_presence(v_all) -> 'presence') p),
    array[v_erin::text], 'a former member sees the presence of');

  -- Arguments.
  perform tests.act_as(tests.bob());
  perform tests.raises('select public.get_presence(null)', 'invalid_argument', 'presence of null');
  perform tests.raises('select public.get_presence(array[]::uuid[])', 'invalid_argument', 'presence of nobody');
  perform tests.raises(format('select public.get_presence(array(select gen_random_uuid() from generate_series(1, 101)) || %L::uuid)',
    tests.alice()), 'invalid_argument', 'presence of 102 users');
  perform tests.eq(jsonb_array_length(public.get_presence(
    array(select gen_random_uuid() from generate_series(1, 99)) || tests.alice()) -> 'presence'), 1,
    'presence of 100 users, one visible');
  perform tests.eq(jsonb_array_length(public.get_presence(array[tests.alice(), tests.alice()]) -> 'presence'), 1,
    'a repeated id answers once');

  perform tests.act_as_service();
  perform tests.raises(format('select public.get_presence(array[%L]::uuid[])', tests.alice()), 'invalid_argument',
    'service_role asks for presence without a user');
  perform tests.reset();
end
$$;

-- get_me: the caller's own profile, presence included.
do $$
declare
  v_me jsonb;
begin
  perform tests.act_as(tests.alice());
  v_me := public.get_me();
  perform tests.reset();
  perform tests.eq((v_me -> 'user') - 'last_seen_at', jsonb_build_object(
    'id', tests.alice(), 'username', 'alice', 'display_name', 'Alice', 'avatar_url', null, 'online', true), 'get_me');
  perform tests.eq((v_me -> 'user' ->> 'last_seen_at')::timestamptz,
    (select last_seen_at from public.profiles where id = tests.alice()), 'get_me last_seen_at');

  perform tests.act_as(tests.dave());
  perform tests.eq(public.get_me() -> 'user' -> 'online', 'true'::jsonb, 'dave (connected) is online for himself');
  perform tests.act_as(gen_random_uuid());
  perform tests.raises('select public.get_me()', 'user_not_found', 'get_me without a profile');
  perform tests.act_as_service();
  perform tests.raises('select public.get_me()', 'user_not_found', 'get_me as service_role without a user');
  perform tests.reset();
end
$$;

-- search_users: by a piece of the username or display name, literally,
-- never the caller, presence only for contacts.
do $$
declare
  v_result jsonb;
begin
  insert into auth.users (id, email, raw_user_meta_data)
  select gen_random_uuid(), format('bulk%s@example.com', g), jsonb_build_object('username', format('bulk_%s', lpad(g::text, 2, '0')))
  from generate_series(1, 60) g;
  insert into auth.users (id, email, raw_user_meta_data) values
    (gen_random_uuid(), 'pct@example.com', '{"username": "hundred_sure", "display_name": "100% sure"}'),
    (gen_random_uuid(), 'ali@example.com', '{"username": "zz_top", "display_name": "Alicia"}');

  perform tests.act_as(tests.bob());
  v_result := public.search_users('ALI');
  perform tests.eq(
    (select array_agg(u ->> 'username' order by ordinality) from jsonb_array_elements(v_result -> 'users')
      with ordinality as t (u, ordinality)),
    array['alice', 'zz_top'], 'case-insensitive match on username or display name, ordered by username');
  perform tests.eq(v_result -> 'users' -> 0 -> 'online', 'true'::jsonb, 'a contact''s presence in search results');
  perform tests.eq(v_result -> 'users' -> 1 -> 'online', 'null'::jsonb, 'a stranger''s presence in search results');
  perform tests.eq(v_result -> 'users' -> 1 -> 'last_seen_at', 'null'::jsonb, 'a stranger''s last_seen_at in search results');
  perform tests.eq(
    (select array_agg(k order by k) from jsonb_object_keys(v_result -> 'users' -> 0) k),
    array['avatar_url', 'display_name', 'id', 'last_seen_at', 'online', 'username'], 'Profile JSON keys');

  perform tests.eq(jsonb_array_length(public.search_users('bob') -> 'users'), 0, 'the caller finds himself');
  perform tests.eq(
    (select array_agg(u ->> 'username') from jsonb_array_elements(public.search_users('%') -> 'users') u),
    array['hundred_sure'], '% is matched literally');
  perform tests.eq(jsonb_array_length(public.search_users('bulk_') -> 'users'), 20, '_ is matched literally (default limit 20)');
  perform tests.eq(jsonb_array_length(public.search_users('ulk\_') -> 'users'), 0, 'a backslash is matched literally');
  perform tests.eq(jsonb_array_length(public.search_users('bulk', 1000) -> 'users'), 50, 'limit capped at 50');
  perform tests.eq(jsonb_array_length(public.search_users('bulk', 0) -> 'users'), 1, 'limit 0 acts as 1');
  perform tests.eq(public.search_users('bulk', 3) -> 'users' -> 2 ->> 'username', 'bulk_03', 'ordered by username');
  perform tests.eq(jsonb_array_length(public.search_users(null, 50) -> 'users'), 50, 'no query lists users');
  perform tests.eq(jsonb_array_length(public.search_users('nobody-is-called-this') -> 'users'), 0, 'no match');
  perform tests.raises(format('select public.search_users(%L)', repeat('a', 101)), 'invalid_query', '101-character query');
  perform tests.eq(tests.error_of(format('select public.search_users(%L)', repeat('a', 100))), null, '100-character query');

  perform tests.act_as_service();
  perform tests.raises('select public.search_users(''a'')', 'invalid_argument', 'service_role searches without a user');
  perform tests.reset();
end
$$;

-- Presence follows membership: once bob leaves the group, alice's presence
-- is no longer his to see, nor his hers, and neither is told of the other.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_result jsonb;
begin
  perform public.leave_conversation(tests.bob(), v_group);
  perform tests.act_as(tests.bob());
  perform tests.eq(public.get_presence(array[tests.alice()]), '{"presence": []}'::jsonb, 'alice''s presence after bob left');
  perform tests.eq(public.search_users('alice') -> 'users' -> 0 -> 'online', 'null'::jsonb,
    'alice''s presence in search after bob left');
  perform tests.reset();

  v_result := public.register_connection('bob-2', tests.bob(), now() + interval '1 hour');
  perform tests.eq(v_result -> 'first_connection', 'false'::jsonb, 'bob was already online');
  perform public.unregister_connection('bob-1');
  v_result := public.unregister_connection('bob-2');
  perform tests.eq(v_result -> 'last_connection', 'true'::jsonb, 'bob goes offline');
  perform tests.eq(tests.recipients(v_result, 'presence'), '{}'::text[], 'bob''s presence after leaving goes to');
end
$$;
