-- update_conversation: renaming (owner only, a durable event for everyone)
-- and the caller's own archived / muted settings (private, no event).
-- Fixture: a group of alice (owner), bob and carol; a 1:1 of alice and bob;
-- rooms "Lobby" (carol's) and "Garden" (alice's).

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
begin
  insert into fixture values
    ('group', tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()], 'Team')),
    ('direct', (public.open_direct_conversation(tests.alice(), tests.bob()) -> 'result' -> 'conversation' ->> 'id')::uuid),
    ('lobby', tests.make_conversation('room', tests.carol(), array[tests.alice()], 'Lobby')),
    ('garden', tests.make_conversation('room', tests.alice(), array[tests.bob()], 'Garden'));
  perform tests.connect('alice-1', tests.alice());
  perform tests.connect('bob-1', tests.bob());
  perform tests.connect('bob-expired', tests.bob(), false);
  perform tests.connect('dave-1', tests.dave());
end
$$;

-- The owner renames: conversation.updated under the next seq, to every
-- member's live connections.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_response jsonb;
  v_event jsonb;
begin
  perform tests.send(tests.bob(), v_group, 'hello');
  perform tests.act_as_service();
  v_response := public.update_conversation(tests.alice(), v_group, '  Team B  ');
  perform tests.reset();

  perform tests.eq(v_response -> 'result' -> 'conversation' ->> 'name', 'Team B', 'new name, trimmed');
  perform tests.eq((select name from public.conversations where id = v_group), 'Team B', 'stored name');
  perform tests.eq(v_response -> 'result' -> 'conversation', public.conversation_json(v_group), 'result conversation');
  perform tests.eq(v_response -> 'result' -> 'me', jsonb_build_object('role', 'owner',
    'joined_at', (select joined_at from public.participants where conversation_id = v_group and user_id = tests.alice()),
    'archived', false, 'muted', false, 'last_read_seq', 0, 'unread_count', 1), 'result me');

  perform tests.eq(tests.event_types(v_group), array['conversation.created', 'message.created', 'conversation.updated'], 'events');
  perform tests.eq((select payload from public.conversation_events where conversation_id = v_group and seq = 3),
    jsonb_build_object('name', 'Team B', 'updated_by', tests.alice()), 'conversation.updated payload');
  perform tests.eq((select actor_id from public.conversation_events where conversation_id = v_group and seq = 3),
    tests.alice(), 'conversation.updated actor');
  v_event := v_response -> 'deliveries' -> 0 -> 'event';
  perform tests.eq(v_event, jsonb_build_object('type', 'conversation.updated', 'conversation_id', v_group, 'seq', 3,
    'data', jsonb_build_object('name', 'Team B', 'updated_by', tests.alice())), 'conversation.updated envelope');
  perform tests.eq(tests.recipients(v_response, 'conversation.updated'), array['alice-1', 'bob-1'],
    'conversation.updated recipients');

  -- The same name again (after trimming) changes nothing and says nothing.
  v_response := public.update_conversation(tests.alice(), v_group, 'Team B ');
  perform tests.eq(v_response -> 'deliveries', '[]'::jsonb, 'renaming to the same name pushes');
  perform tests.eq((select last_seq from public.conversations where id = v_group), 3::bigint, 'renaming to the same name takes a seq');
  perform tests.check_gap_free(v_group, 'after renames');
end
$$;

-- Settings: the caller's own row only, no event, no push.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_last_seq bigint := (select last_seq from public.conversations where id = v_group);
  v_response jsonb;
begin
  v_response := public.update_conversation(tests.bob(), v_group, null, true, null);
  perform tests.eq(v_response -> 'result' -> 'me' -> 'archived', 'true'::jsonb, 'archived in me');
  perform tests.eq(v_response -> 'result' -> 'me' -> 'muted', 'false'::jsonb, 'muted untouched');
  perform tests.eq(v_response -> 'result' -> 'me' ->> 'role', 'member', 'role in me');
  perform tests.eq(
    (select array_agg(k order by k) from jsonb_object_keys(v_response -> 'result' -> 'me') k),
    array['archived', 'joined_at', 'last_read_seq', 'muted', 'role', 'unread_count'], 'me keys');
  perform tests.eq(v_response -> 'deliveries', '[]'::jsonb, 'archiving pushes');

  v_response := public.update_conversation(p_user_id => tests.bob(), p_conversation_id => v_group, p_muted => true);
  perform tests.eq(v_response -> 'result' -> 'me' -> 'archived', 'true'::jsonb, 'archived kept');
  perform tests.eq(v_response -> 'result' -> 'me' -> 'muted', 'true'::jsonb, 'muted in me');
  v_response := public.update_conversation(tests.bob(), v_group, null, false, false);
  perform tests.eq((v_response -> 'result' -> 'me' -> 'archived') || (v_response -> 'result' -> 'me' -> 'muted'),
    '[false, false]'::jsonb, 'both settings back');
  perform public.update_conversation(tests.bob(), v_group, null, true, true);

  perform tests.eq((select array_agg(user_id order by user_id) from public.participants
    where conversation_id = v_group and (archived or muted)), array[tests.bob()], 'whose settings changed');
  perform tests.eq((select last_seq from public.conversations where id = v_group), v_last_seq, 'settings take a seq');
end
$$;

-- Refusals, in order, and nothing written by a refused call.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_direct uuid := (select id from fixture where name = 'direct');
  v_lobby uuid := (select id from fixture where name = 'lobby');
  v_garden uuid := (select id from fixture where name = 'garden');
  v_sql text := 'select public.update_conversation(%L, %L, %L, %L, %L)';
  v_foreign jsonb;
  v_missing jsonb;
begin
  perform tests.raises(format(v_sql, tests.alice(), v_group, null, null, null), 'invalid_argument', 'nothing to change');
  perform tests.raises(format(v_sql, tests.dave(), gen_random_uuid(), null, null, null), 'invalid_argument',
    'nothing to change, as an outsider');

  v_foreign := tests.error_of(format(v_sql, tests.dave(), v_group, 'Mine', null, null));
  v_missing := tests.error_of(format(v_sql, tests.dave(), gen_random_uuid(), 'Mine', null, null));
  perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'an outsider renames');
  perform tests.eq(v_missing, v_foreign, 'renaming a missing conversation looks the same');
  perform tests.eq(tests.error_of(format(v_sql, tests.dave(), v_group, null, true, null)), v_foreign, 'an outsider archives');

  perform tests.raises(format(v_sql, tests.alice(), v_direct, 'Us', null, null), 'unsupported_for_kind', 'renaming a 1:1');
  perform tests.raises(format(v_sql, tests.bob(), v_group, 'Bob''s', true, true), 'not_owner', 'a member renames');
  perform tests.raises(format(v_sql, tests.alice(), v_group, '   ', false, null), 'invalid_name', 'a blank name');
  perform tests.raises(format(v_sql, tests.alice(), v_group, repeat('x', 201), null, null), 'invalid_name', 'a long name');
  perform tests.raises(format(v_sql, tests.alice(), v_garden, 'LOBBY', true, null), 'room_name_taken', 'a room takes a room''s name');
  -- A member who left is not a participant any more.
  update public.participants set left_at = now() where conversation_id = v_group and user_id = tests.carol();
  perform tests.raises(format(v_sql, tests.carol(), v_group, null, true, null), 'not_a_participant', 'a former member archives');

  perform tests.eq((select name from public.conversations where id = v_group), 'Team B', 'group name after refusals');
  perform tests.eq((select name from public.conversations where id = v_garden), 'Garden', 'room name after refusals');
  perform tests.eq((select archived and muted from public.participants where conversation_id = v_group and user_id = tests.bob()),
    true, 'bob''s settings after his refused rename');
  perform tests.eq((select archived from public.participants where conversation_id = v_garden and user_id = tests.alice()),
    false, 'alice''s settings after a refused room rename');

  -- A room may be renamed to its own name in other letters, and a group to a room's name.
  perform tests.eq(public.update_conversation(tests.carol(), v_lobby, 'LOBBY') -> 'result' -> 'conversation' ->> 'name', 'LOBBY',
    'a room renamed in other letters');
  perform tests.eq(public.update_conversation(tests.alice(), v_group, 'Garden') -> 'result' -> 'conversation' ->> 'name', 'Garden',
    'a group named like a room');
end
$$;
