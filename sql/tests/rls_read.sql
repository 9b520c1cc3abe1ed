-- Who can read what through the tables, as PostgREST would query them.
-- Fixture: a group of alice (owner), bob and carol; a 1:1 of alice and bob;
-- a room of carol's; dave belongs to nothing.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()]);
  v_room uuid := tests.make_conversation('room', tests.carol(), array[]::uuid[], 'lobby');
  v_direct uuid;
begin
  v_direct := (public.open_direct_conversation(tests.alice(), tests.bob()) -> 'result' -> 'conversation' ->> 'id')::uuid;

  perform tests.send(tests.alice(), v_group, 'hello group');
  perform tests.send(tests.bob(), v_group, 'hi alice');
  perform tests.send(tests.alice(), v_direct, 'just us');
  perform tests.send(tests.carol(), v_room, 'welcome to the lobby');
  perform public.register_connection('conn-alice', tests.alice(), now() + interval '1 hour');
  perform public.register_connection('conn-dave', tests.dave(), now() + interval '1 hour');

  insert into fixture values ('group', v_group), ('direct', v_direct), ('room', v_room);
end
$$;

-- A member reads the conversation, its participants, messages and events.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_direct uuid := (select id from fixture where name = 'direct');
begin
  perform tests.act_as(tests.alice());
  perform tests.eq(tests.count(format('select 1 from public.conversations where id = %L', v_group)), 1::bigint,
    'member sees the group');
  perform tests.eq(tests.count(format('select 1 from public.participants where conversation_id = %L', v_group)), 3::bigint,
    'member sees the group''s participants');
  perform tests.eq(tests.count(format('select 1 from public.messages where conversation_id = %L', v_group)), 2::bigint,
    'member sees the group''s messages');
  perform tests.eq(tests.count(format('select 1 from public.conversation_events where conversation_id = %L', v_group)), 3::bigint,
    'member sees the group''s events');
  perform tests.eq(tests.count(format('select 1 from public.messages where conversation_id = %L', v_direct)), 1::bigint,
    'member sees the 1:1''s messages');
  perform tests.reset();
end
$$;

-- A non-member learns nothing: no conversation, participant, message or event row.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_direct uuid := (select id from fixture where name = 'direct');
  v_room uuid := (select id from fixture where name = 'room');
begin
  perform tests.act_as(tests.dave());
  perform tests.eq(tests.count('select 1 from public.conversations where kind <> ''room'''), 0::bigint,
    'non-member sees groups or 1:1s');
  perform tests.eq(tests.count('select 1 from public.participants'), 0::bigint,
    'non-member sees participant rows');
  perform tests.eq(tests.count('select 1 from public.messages'), 0::bigint,
    'non-member sees messages');
  perform tests.eq(tests.count('select 1 from public.conversation_events'), 0::bigint,
    'non-member sees events');
  -- Rooms are public to browse; their members and messages are not.
  perform tests.eq(tests.count(format('select 1 from public.conversations where id = %L', v_room)), 1::bigint,
    'signed-in user sees a public room');

  -- carol is in the group but not in alice and bob's 1:1.
  perform tests.act_as(tests.carol());
  perform tests.eq(tests.count(format('select 1 from public.conversations where id = %L', v_direct)), 0::bigint,
    'group member sees another pair''s 1:1');
  perform tests.eq(tests.count(format('select 1 from public.messages where conversation_id = %L', v_direct)), 0::bigint,
    'group member sees another pair''s 1:1 messages');
  perform tests.eq(tests.count(format('select 1 from public.participants where conversation_id = %L', v_direct)), 0::bigint,
    'group member sees another pair''s 1:1 participants');
  perform tests.eq(tests.count(format('select 1 from public.conversation_events where conversation_id = %L', v_direct)), 0::bigint,
    'group member sees another pair''s 1:1 events');
  perform tests.reset();
end
$$;

-- A participant who left no longer reads the conversation.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
begin
  update public.participants set left_at = now() where conversation_id = v_group and user_id = tests.bob();
  perform tests.act_as(tests.bob());
  perform tests.eq(tests.count(format('select 1 from public.conversations where id = %L', v_group)), 0::bigint,
    'former participant sees the group');
  perform tests.eq(tests.count(format('select 1 from public.messages where conversation_id = %L', v_group)), 0::bigint,
    'former participant sees the group''s messages');
  perform tests.reset();
  update public.participants set left_at = null where conversation_id = v_group and user_id = tests.bob();
end
$$;

-- Profiles: readable by every signed-in user, not by anon.
do $$
begin
  perform tests.act_as(tests.dave());
  perform tests.eq(tests.count('select 1 from public.profiles'), 4::bigint, 'signed-in user sees all profiles');
  perform tests.act_as_anon();
  perform tests.denied('select * from public.profiles', 'anon reads profiles');
  perform tests.reset();
end
$$;

-- anon reads no table at all.
do $$
declare
  t text;
begin
  perform tests.act_as_anon();
  foreach t in array array['conversations', 'participants', 'messages', 'conversation_events', 'connections'] loop
    perform tests.denied(format('select * from public.%I', t), 'anon reads ' || t);
  end loop;
  perform tests.reset();
end
$$;

-- Connections: nobody but service_role, not even a user's own connection ids.
do $$
begin
  perform tests.act_as(tests.alice());
  perform tests.denied('select * from public.connections', 'user reads connections');
  perform tests.denied(format('select connection_id from public.connections where user_id = %L', tests.alice()),
    'user reads their own connection ids');
  perform tests.act_as_service();
  perform tests.eq(tests.count('select 1 from public.connections'), 2::bigint, 'service_role reads connections');
  perform tests.reset();
end
$$;

-- service_role reads everything.
do $$
begin
  perform tests.act_as_service();
  perform tests.eq(tests.count('select 1 from public.conversations'), 3::bigint, 'service_role sees every conversation');
  perform tests.eq(tests.count('select 1 from public.messages'), 4::bigint, 'service_role sees every message');
  perform tests.eq(tests.count('select 1 from public.participants'), 6::bigint, 'service_role sees every participant');
  perform tests.eq(tests.count('select 1 from public.conversation_events'), 7::bigint, 'service_role sees every event');
  perform tests.reset();
end
$$;
