-- Column privacy of the tables signed-in users read directly: presence
-- (profiles.last_seen_at) and a member's own settings (participants.archived,
-- muted, last_read_seq) are refused, the rest readable; former members hidden;
-- read positions in rooms; who the caller is (caller_id: anonymous sign-ins,
-- expired tokens); and unique room names.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob()]);
begin
  perform tests.connect('alice-1', tests.alice());
  update public.participants set muted = true, archived = true
   where conversation_id = v_group and user_id = tests.bob();
  insert into fixture values ('group', v_group);
end
$$;

-- Presence is not a column a signed-in user can read, in any part of a query.
do $$
declare
  v_sql text;
begin
  perform tests.act_as(tests.bob());
  foreach v_sql in array array[
    'select last_seen_at from public.profiles',
    'select * from public.profiles',
    'select p from public.profiles p',
    'select id from public.profiles where last_seen_at is not null',
    'select id from public.profiles order by last_seen_at',
    'select count(last_seen_at) from public.profiles',
    format('select last_seen_at from public.profiles where id = %L', tests.bob())
  ] loop
    perform tests.denied(v_sql, 'a signed-in user runs: ' || v_sql);
  end loop;

  -- The public part of a profile stays readable by every signed-in user.
  perform tests.eq(tests.count('select id, username, display_name, avatar_url, created_at from public.profiles'),
    4::bigint, 'readable profile columns');
  perform tests.eq(tests.count('select 1 from public.profiles'), 4::bigint, 'profiles counted without columns');
  perform tests.reset();
end
$$;

-- A member's archived / muted / last_read_seq are not readable by fellow
-- participants, nor by the member through the table (the RPCs show them to
-- their owner, and read receipts to the others where the kind has them).
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_sql text;
begin
  foreach v_sql in array array[
    'select archived from public.participants',
    'select muted from public.participants',
    'select * from public.participants',
    'select p from public.participants p',
    'select user_id from public.participants where muted',
    'select user_id from public.participants order by archived',
    'select user_id, last_read_seq from public.participants',
    'select user_id from public.participants where last_read_seq > 0'
  ] loop
    perform tests.act_as(tests.alice());
    perform tests.denied(v_sql, 'a fellow participant runs: ' || v_sql);
    perform tests.act_as(tests.bob());
    perform tests.denied(v_sql, 'the member runs: ' || v_sql);
  end loop;

  -- Membership stays readable by fellow participants.
  perform tests.act_as(tests.alice());
  perform tests.eq(tests.count(format(
    'select conversation_id, user_id, role, joined_at, left_at from public.participants where conversation_id = %L',
    v_group)), 2::bigint, 'readable participant columns');
  -- Still row-filtered: dave is in nothing.
  perform tests.act_as(tests.dave());
  perform tests.eq(tests.count('select user_id from public.participants'), 0::bigint, 'non-member reads participants');
  perform tests.reset();
end
$$;

-- The RPCs are where these are read: the owner sees their own settings, the
-- others see none of them, and presence follows its own rules (presence.sql).
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_as_bob jsonb;
  v_as_alice jsonb;
begin
  perform tests.act_as(tests.bob());
  v_as_bob := public.get_conversation(v_group);
  perform tests.act_as(tests.alice());
  v_as_alice := public.get_conversation(v_group);
  perform tests.reset();

  perform tests.eq(v_as_bob -> 'me' -> 'muted', 'true'::jsonb, 'bob reads his own muted');
  perform tests.eq(v_as_bob -> 'me' -> 'archived', 'true'::jsonb, 'bob reads his own archived');
  perform tests.eq(v_as_alice -> 'me' -> 'muted', 'false'::jsonb, 'alice reads her own muted');
  perform tests.check(v_as_alice::text not like '%archived": true%' and v_as_alice::text not like '%muted": true%',
    'alice''s view of the conversation shows bob''s settings');
  perform tests.check(not exists (
      select 1 from jsonb_array_elements(v_as_alice -> 'conversation' -> 'participants') p
      where p ? 'archived' or p ? 'muted'),
    'participant JSON carries archived or muted');
end
$$;

-- anon reads no column of either table; service_role reads all of them.
do $$
begin
  perform tests.act_as_anon();
  perform tests.denied('select id from public.profiles', 'anon reads profile ids');
  perform tests.denied('select user_id from public.participants', 'anon reads participant ids');
  perform tests.act_as_service();
  perform tests.eq(tests.count(format('select last_seen_at from public.profiles where id = %L and last_seen_at is not null',
    tests.alice())), 1::bigint, 'service_role reads last_seen_at');
  perform tests.eq(tests.count('select archived, muted from public.participants where muted'), 1::bigint,
    'service_role reads archived and muted');
  perform tests.reset();
end
$$;

-- Room names are unique in any letter case; other kinds may share names,
-- with each other and with a room.
do $$
declare
  v_room uuid := tests.make_conversation('room', tests.alice(), array[]::uuid[], 'Lobby');
begin
  perform tests.raises(format(
    'insert into public.conversations (kind, name, created_by) values (''room'', ''lOBBY'', %L)', tests.bob()),
    '23505', 'a room named like another in other letters');
  perform tests.raises(format(
    'insert into public.conversations (kind, name, created_by) values (''room'', ''Lobby'', %L)', tests.bob()),
    '23505', 'a room named exactly like another');
  perform tests.eq(tests.error_of(format(
    'insert into public.conversations (kind, name, created_by) values (''group'', ''Lobby'', %L), (''group'', ''lobby'', %L)',
    tests.bob(), tests.bob())), null, 'groups named like a room and like each other');
  perform tests.eq(tests.error_of(format(
    'insert into public.conversations (kind, name, created_by) values (''room'', ''Lobby 2'', %L)', tests.bob())), null,
    'a room with another name');
  perform tests.eq((select indexdef like '%UNIQUE%lower(name)%WHERE (kind = ''room''::text)%' from pg_indexes
    where schemaname = 'public' and indexname = 'conversations_room_name_key'), true, 'the unique index on room names');
end
$$;

-- Former members are not shown to the members, whenever they joined; read
-- positions: in a group every member's, in a room only one's own (me).
do $$
declare
  v_room uuid := tests.make_conversation('room', tests.alice(), array[tests.bob(), tests.carol()], 'Reading room');
  v_group uuid := (select id from fixture where name = 'group');
  v_json jsonb;
begin
  update public.participants set last_read_seq = 7 where user_id = tests.bob() and conversation_id in (v_room, v_group);
  update public.participants set left_at = now() where conversation_id = v_room and user_id = tests.carol();
  insert into public.participants (conversation_id, user_id) values (v_room, tests.dave());

  perform tests.act_as(tests.dave());
  perform tests.eq((select array_agg(user_id order by user_id) from public.participants where conversation_id = v_room),
    (select array_agg(u order by u) from unnest(array[tests.alice(), tests.bob(), tests.dave()]) u),
    'a newcomer reads the room''s members');
  perform tests.eq(tests.count(format('select 1 from public.participants where conversation_id = %L and left_at is not null',
    v_room)), 0::bigint, 'a newcomer reads a former member');
  perform tests.act_as(tests.alice());
  perform tests.eq(tests.count(format('select 1 from public.participants where conversation_id = %L and user_id = %L',
    v_room, tests.carol())), 0::bigint, 'a member from before reads a former member');

  v_json := public.get_conversation(v_room);
  perform tests.eq((select jsonb_agg(p -> 'last_read_seq') from jsonb_array_elements(v_json -> 'conversation' -> 'participants') p),
    '[null, null, null]'::jsonb, 'read positions of a room''s members');
  perform tests.act_as(tests.bob());
  perform tests.eq(public.get_conversation(v_room) -> 'me' -> 'last_read_seq', '7'::jsonb, 'a room member''s own read position');
  perform tests.act_as(tests.alice());
  v_json := public.get_conversation(v_group);
  perform tests.eq((select p -> 'last_read_seq' from jsonb_array_elements(v_json -> 'conversation' -> 'participants') p
    where p ->> 'user_id' = tests.bob()::text), '7'::jsonb, 'a group member''s read position (a read receipt)');
  perform tests.reset();
end
$$;

-- caller_id: the user of a token the chat accepts; nobody for an anonymous
-- sign-in (unless the database allows them) or a token more than 5 s past exp.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_now bigint := floor(extract(epoch from now()));
  v_case record;
  v_updated int;
begin
  for v_case in select * from (values
    ('{}'::jsonb, true, 'a fresh token'),
    (jsonb_build_object('is_anonymous', false), true, 'is_anonymous false'),
    (jsonb_build_object('exp', v_now - 3), true, 'exp 3 s ago'),
    (jsonb_build_object('is_anonymous', true), false, 'an anonymous sign-in'),
    (jsonb_build_object('exp', v_now - 10), false, 'exp 10 s ago'),
    (jsonb_build_object('exp', null), false, 'no exp'),
    (jsonb_build_object('exp', 'soon'), false, 'exp not a number')
  ) as c (claims, accepted, what) loop
    perform tests.act_as(tests.alice(), v_case.claims);
    perform tests.eq(public.caller_id() is not null, v_case.accepted, 'caller_id, ' || v_case.what);
    -- Through every kind of path: a table's policy, a user-facing RPC.
    perform tests.eq(tests.count(format('select 1 from public.participants where conversation_id = %L', v_group)) > 0,
      v_case.accepted, 'participants read, ' || v_case.what);
    perform tests.eq(tests.count('select 1 from public.conversations') > 0, v_case.accepted, 'conversations read, ' || v_case.what);
    perform tests.eq(tests.count('select 1 from public.profiles') > 0, v_case.accepted, 'profiles read, ' || v_case.what);
    perform tests.eq(tests.error_of('select public.list_conversations()') is null, v_case.accepted,
      'list_conversations, ' || v_case.what);
    perform tests.eq(tests.error_of(format('select public.get_conversation(%L)', v_group)) is null, v_case.accepted,
      'get_conversation, ' || v_case.what);
    execute format('update public.profiles set display_name = ''Al'' where id = %L', tests.alice());
    get diagnostics v_updated = row_count;
    perform tests.eq(v_updated, case when v_case.accepted then 1 else 0 end, 'own profile updated, ' || v_case.what);
  end loop;

  -- The database's half of AllowAnonymousUsers.
  perform set_config('app.allow_anonymous_users', 'on', true);
  perform tests.act_as(tests.alice(), jsonb_build_object('is_anonymous', true));
  perform tests.eq(public.caller_id(), tests.alice(), 'an anonymous sign-in where they are allowed');
  perform set_config('app.allow_anonymous_users', '', true);
  perform tests.reset();
end
$$;
