-- create_conversation: groups and rooms, their validation, unique room
-- names, and the conversation.created event and its recipients.

do $$
begin
  perform tests.connect('alice-1', tests.alice());
  perform tests.connect('bob-1', tests.bob());
  perform tests.connect('bob-expired', tests.bob(), false);
  perform tests.connect('dave-1', tests.dave());
end
$$;

-- A group: the caller owns it, the members are deduplicated (the caller
-- among them is ignored), seq 1 is conversation.created, pushed to every
-- member's live connections, the caller's included.
do $$
declare
  v_response jsonb;
  v_conversation jsonb;
  v_id uuid;
begin
  perform tests.act_as_service();
  v_response := public.create_conversation(tests.alice(), 'group', E'  Weekend plans \u00a0',
    array[tests.bob(), tests.carol(), tests.bob(), tests.alice()]);
  perform tests.reset();

  v_conversation := v_response -> 'result' -> 'conversation';
  v_id := (v_conversation ->> 'id')::uuid;
  perform tests.eq(
    (select array_agg(k order by k) from jsonb_object_keys(v_response -> 'result') k), array['conversation'], 'result keys');
  perform tests.eq(v_conversation ->> 'kind', 'group', 'kind');
  perform tests.eq(v_conversation ->> 'name', 'Weekend plans', 'name trimmed of blank characters');
  perform tests.eq((v_conversation ->> 'created_by')::uuid, tests.alice(), 'created_by');
  perform tests.eq((v_conversation ->> 'last_seq')::bigint, 1::bigint, 'last_seq');
  perform tests.eq(
    (select jsonb_object_agg(p ->> 'user_id', p ->> 'role') from jsonb_array_elements(v_conversation -> 'participants') p),
    jsonb_build_object(tests.alice(), 'owner', tests.bob(), 'member', tests.carol(), 'member'), 'participants and roles');
  perform tests.eq((select count(*) from public.participants where conversation_id = v_id), 3::bigint, 'participant rows');

  perform tests.eq(tests.event_types(v_id), array['conversation.created'], 'events');
  perform tests.eq((select payload from public.conversation_events where conversation_id = v_id and seq = 1), v_conversation,
    'conversation.created payload');
  perform tests.eq((select actor_id from public.conversation_events where conversation_id = v_id and seq = 1), tests.alice(),
    'conversation.created actor');
  perform tests.eq(jsonb_array_length(v_response -> 'deliveries'), 1, 'deliveries of a creation');
  perform tests.eq(v_response -> 'deliveries' -> 0 -> 'event',
    jsonb_build_object('type', 'conversation.created', 'conversation_id', v_id, 'seq', 1, 'data', v_conversation),
    'conversation.created envelope');
  perform tests.eq(tests.sorted(v_response -> 'deliveries' -> 0 -> 'recipients'), tests.sorted(jsonb_build_array(
      jsonb_build_object('user_id', tests.alice(), 'connection_id', 'alice-1'),
      jsonb_build_object('user_id', tests.bob(), 'connection_id', 'bob-1'))),
    'recipients: live connections of the members, not bob''s expired one, not dave''s');

  -- A group of one, with no member list at all.
  v_response := public.create_conversation(tests.dave(), 'group', 'Notes to self');
  perform tests.eq(jsonb_array_length(v_response -> 'result' -> 'conversation' -> 'participants'), 1, 'a group of one');
  perform tests.eq(tests.recipients(v_response, 'conversation.created'), array['dave-1'], 'a group of one is pushed to');
  perform tests.eq(jsonb_array_length(public.create_conversation(tests.dave(), 'group', 'Null list', null)
    -> 'result' -> 'conversation' -> 'participants'), 1, 'a null member list');
end
$$;

-- Rooms: names unique in any letter case, also under a race (the index).
do $$
declare
  v_room jsonb;
begin
  v_room := public.create_conversation(tests.alice(), 'room', 'Lobby') -> 'result' -> 'conversation';
  perform tests.eq(v_room ->> 'kind', 'room', 'room kind');
  perform tests.raises(format('select public.create_conversation(%L, ''room'', ''lobby'')', tests.bob()),
    'room_name_taken', 'a room named like another in other letters');
  perform tests.raises(format('select public.create_conversation(%L, ''room'', ''  LOBBY  '')', tests.bob()),
    'room_name_taken', 'a room named like another once trimmed');
  perform tests.eq(tests.error_of(format('select public.create_conversation(%L, ''group'', ''Lobby'')', tests.bob())), null,
    'a group named like a room');
  perform tests.eq(tests.error_of(format('select public.create_conversation(%L, ''room'', ''Lobby 2'')', tests.bob())), null,
    'a room with another name');
  perform tests.eq((select count(*) from public.conversations where kind = 'room' and lower(name) = 'lobby'), 1::bigint,
    'rooms named lobby');

  -- A name that shows like another, or reordered, or as nothing, is no name.
  perform tests.raises(format('select public.create_conversation(%L, ''room'', %L)', tests.bob(), E'Lob\u200bby'),
    'invalid_name', 'a room named like another with a zero-width space');
  perform tests.raises(format('select public.create_conversation(%L, ''room'', %L)', tests.bob(), E'\u202eybboL'),
    'invalid_name', 'a room named with a right-to-left override');
  perform tests.raises(format('select public.create_conversation(%L, ''room'', %L)', tests.bob(), E'\u2800'),
    'invalid_name', 'a room named with a blank braille pattern');
  -- The table holds to it for every writer, past the RPCs too.
  perform tests.raises(format('insert into public.conversations (kind, name) values (''room'', %L)', E'Lob\u2060by'),
    '23514', 'a room stored with a word joiner inside');
end
$$;

-- Validation, each refusal leaving nothing behind.
do $$
declare
  v_before bigint := (select count(*) from public.conversations);
  v_sql text := 'select public.create_conversation(%L, %L, %L, %L::uuid[])';
begin
  perform tests.raises(format(v_sql, tests.alice(), 'direct', 'x', '{}'), 'invalid_argument', 'kind direct');
  perform tests.raises(format(v_sql, tests.alice(), 'channel', 'x', '{}'), 'invalid_argument', 'unknown kind');
  perform tests.raises(format(v_sql, tests.alice(), null, 'x', '{}'), 'invalid_argument', 'no kind');

  perform tests.raises(format(v_sql, tests.alice(), 'group', null, '{}'), 'invalid_name', 'no name');
  perform tests.raises(format(v_sql, tests.alice(), 'group', '', '{}'), 'invalid_name', 'empty name');
  perform tests.raises(format(v_sql, tests.alice(), 'group', '    ', '{}'), 'invalid_name', 'blank name');
  perform tests.raises(format(v_sql, tests.alice(), 'group', E'\u00a0\u3000', '{}'), 'invalid_name', 'Unicode-blank name');
  perform tests.raises(format(v_sql, tests.alice(), 'group', E'two\nlines', '{}'), 'invalid_name', 'name with a newline');
  perform tests.raises(format(v_sql, tests.alice(), 'group', E'bell\u0007', '{}'), 'invalid_name', 'name with a control character');
  perform tests.raises(format(v_sql, tests.alice(), 'group', repeat('é', 201), '{}'), 'invalid_name', '201-character name');
  perform tests.eq(tests.error_of(format(v_sql, tests.alice(), 'group', repeat('é', 200), '{}')), null, '200-character name');
  perform tests.eq(tests.error_of(format(v_sql, tests.alice(), 'group', '  ' || repeat('é', 200) || '  ', '{}')), null,
    '200 characters once trimmed');

  perform tests.raises(format(v_sql, tests.alice(), 'group', 'x', array[gen_random_uuid()]), 'user_not_found', 'an unknown member');
  perform tests.raises(format(v_sql, tests.alice(), 'group', 'x', array[tests.bob(), null]), 'invalid_argument', 'a null member');
  perform tests.raises(format(v_sql, gen_random_uuid(), 'group', 'x', '{}'), 'user_not_found', 'an unknown caller');
  perform tests.raises(format(v_sql, null, 'group', 'x', '{}'), 'user_not_found', 'no caller');

  perform tests.eq((select count(*) from public.conversations), v_before + 2, 'conversations after refusals (two 200-character names)');
end
$$;

-- At most 100 members besides the owner, counted after deduplication.
do $$
declare
  v_users uuid[] := array(select gen_random_uuid() from generate_series(1, 101));
  v_sql text := 'select public.create_conversation(%L, ''group'', ''big'', %L::uuid[])';
begin
  insert into auth.users (id, email) select u, u::text || '@example.com' from unnest(v_users) u;
  perform tests.raises(format(v_sql, tests.alice(), v_users), 'too_many_members', '101 members');
  perform tests.eq(jsonb_array_length(public.create_conversation(tests.alice(), 'group', 'big', v_users[1:100] || v_users[1:100] || tests.alice())
    -> 'result' -> 'conversation' -> 'participants'), 101, '100 members (each twice, and the owner) and the owner');
end
$$;

-- Only service_role creates conversations, and only for the caller it names.
do $$
begin
  perform tests.act_as(tests.alice());
  perform tests.denied(format('select public.create_conversation(%L, ''group'', ''x'')', tests.alice()),
    'a signed-in user creates a conversation directly');
  perform tests.act_as_anon();
  perform tests.denied(format('select public.create_conversation(%L, ''group'', ''x'')', tests.alice()),
    'anon creates a conversation');
  perform tests.reset();
end
$$;

-- The table refuses every writer a conversation whose own fields break its
-- rules (conversations_fields_check), on insert and on an update of those
-- fields, naming the rule as a CHECK constraint would; an update of last_seq
-- alone, which every message makes, does not check them again.
do $$
declare
  v_low uuid := least(tests.alice(), tests.bob());
  v_high uuid := greatest(tests.alice(), tests.bob());
  v_group uuid;
  v_case record;
  v_error jsonb;
begin
  for v_case in
    select * from (values
      ('conversations_kind_check', format('(kind) values (%L)', 'channel')),
      ('conversations_name_length', format('(kind, name) values (''group'', %L)', '')),
      ('conversations_name_length', format('(kind, name) values (''group'', %L)', repeat('n', 201))),
      ('conversations_name_text', format('(kind, name) values (''group'', %L)', E'Lob\u200bby')),
      ('conversations_context_type_length', format('(kind, context_type, context_id) values (''group'', %L, ''1'')', repeat('t', 101))),
      ('conversations_context_id_length', '(kind, context_type, context_id) values (''group'', ''order'', '''')'),
      ('conversations_context_pair', '(kind, context_type) values (''group'', ''order'')'),
      ('conversations_direct_pair', '(kind) values (''direct'')'),
      ('conversations_direct_pair', format('(kind, direct_user_low, direct_user_high) values (''direct'', %L, %L)', v_high, v_low)),
      ('conversations_direct_pair', format('(kind, direct_user_low, direct_user_high) values (''group'', %L, %L)', v_low, v_high))
    ) as c(rule, row_values)
  loop
    v_error := tests.error_of('insert into public.conversations ' || v_case.row_values);
    perform tests.eq(v_error ->> 'sqlstate', '23514', 'insert breaking ' || v_case.rule || ': ' || v_case.row_values);
    perform tests.eq(v_error ->> 'message',
      format('new row for relation "conversations" violates check constraint "%s"', v_case.rule),
      'the rule named for ' || v_case.row_values);
  end loop;
  perform tests.raises('insert into public.conversations (kind) values (null)', '23502', 'a conversation of no kind');
  perform tests.eq(tests.error_of(format(
      'insert into public.conversations (kind, direct_user_low, direct_user_high, context_type, context_id) values (''direct'', %L, %L, ''order'', ''42'')',
      v_low, v_high)), null, 'a direct conversation with its pair and a context');

  insert into public.conversations (kind, name) values ('group', 'Plans') returning id into v_group;
  perform tests.raises(format('update public.conversations set name = %L where id = %L', E'Pl\u2060ans', v_group),
    '23514', 'renaming to a name with a word joiner');
  perform tests.raises(format('update public.conversations set kind = ''direct'' where id = %L', v_group),
    '23514', 'a group turned direct without a pair');

  -- A row that broke the rules before they were checked where they are now
  -- (made here by disabling the trigger) keeps taking events: sending is not
  -- where a name is judged.
  alter table public.conversations disable trigger conversations_fields_check;
  update public.conversations set name = E'Pl\u2060ans' where id = v_group;
  alter table public.conversations enable trigger conversations_fields_check;
  perform tests.eq(public.next_conversation_seq(v_group), 1::bigint, 'an event numbered in a conversation whose name is not checked again');
end
$$;
