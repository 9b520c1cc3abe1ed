-- Membership changes: add_members (owner only), join_room, leave_conversation
-- (which hands ownership on), their events and who is told.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_erin uuid := gen_random_uuid();
begin
  insert into auth.users (id, email, raw_user_meta_data) values (v_erin, 'erin@example.com', '{"username": "erin"}');
  insert into fixture values ('erin', v_erin);
  perform tests.connect('alice-1', tests.alice());
  perform tests.connect('bob-1', tests.bob());
  perform tests.connect('carol-1', tests.carol());
  perform tests.connect('dave-1', tests.dave());
  perform tests.connect('dave-expired', tests.dave(), false);
end
$$;

-- ===========================================================================
-- add_members
-- ===========================================================================

-- The owner adds: new users join, former members come back as members,
-- current members are skipped; one member.joined each, in the order given.
do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()]);
  v_response jsonb;
  v_created jsonb;
  v_joined jsonb;
begin
  update public.participants set left_at = now(), role = 'owner'
   where conversation_id = v_group and user_id = tests.carol();

  perform tests.act_as_service();
  v_response := public.add_members(tests.alice(), v_group, array[tests.dave(), tests.carol(), tests.bob(), tests.dave()]);
  perform tests.reset();

  perform tests.eq(v_response -> 'result' -> 'added', jsonb_build_array(tests.dave(), tests.carol()), 'added, in the order given');
  perform tests.eq(v_response -> 'result' -> 'conversation', public.conversation_json(v_group), 'result conversation');
  perform tests.eq(
    (select jsonb_object_agg(user_id, role) from public.participants where conversation_id = v_group and left_at is null),
    jsonb_build_object(tests.alice(), 'owner', tests.bob(), 'member', tests.carol(), 'member', tests.dave(), 'member'),
    'current members and roles (a former owner comes back as a member)');
  perform tests.eq(tests.event_types(v_group), array['conversation.created', 'member.joined', 'member.joined'], 'events');
  perform tests.check_gap_free(v_group, 'after add_members');
  perform tests.eq(
    (select jsonb_agg(payload - 'joined_at' order by seq) from public.conversation_events
      where conversation_id = v_group and type = 'member.joined'),
    jsonb_build_array(
      jsonb_build_object('user_id', tests.dave(), 'role', 'member', 'added_by', tests.alice(),
        'profile', (select public.public_profile_json(p) from public.profiles p where p.id = tests.dave())),
      jsonb_build_object('user_id', tests.carol(), 'role', 'member', 'added_by', tests.alice(),
        'profile', (select public.public_profile_json(p) from public.profiles p where p.id = tests.carol()))),
    'member.joined payloads: who joined, with their public profile');
  perform tests.eq(
    (select payload -> 'profile' ->> 'username' from public.conversation_events where conversation_id = v_group and seq = 2),
    'dave', 'member.joined names the added user');
  perform tests.eq(
    (select payload -> 'profile' from public.conversation_events where conversation_id = v_group and seq = 2),
    (select p -> 'profile' from jsonb_array_elements(v_response -> 'result' -> 'conversation' -> 'participants') p
      where p ->> 'user_id' = tests.dave()::text),
    'member.joined profile is the participant''s profile');
  perform tests.eq(
    (select (payload ->> 'joined_at')::timestamptz from public.conversation_events where conversation_id = v_group and seq = 3),
    (select joined_at from public.participants where conversation_id = v_group and user_id = tests.carol()),
    'member.joined joined_at is the stored one');

  -- The added users first get the conversation itself (a snapshot, no seq),
  -- then everyone gets each member.joined.
  v_created := v_response -> 'deliveries' -> 0;
  perform tests.eq(v_created -> 'event', jsonb_build_object('type', 'conversation.created', 'conversation_id', v_group,
    'data', public.conversation_json(v_group)), 'conversation.created for the added users, without seq');
  perform tests.eq(tests.connection_ids(v_created -> 'recipients'), array['carol-1', 'dave-1'], 'conversation.created recipients');
  perform tests.eq(jsonb_array_length(v_response -> 'deliveries'), 3, 'deliveries');
  v_joined := tests.deliveries(v_response, 'member.joined');
  perform tests.eq((select jsonb_agg(d -> 'event' -> 'seq') from jsonb_array_elements(v_joined) d), '[2, 3]'::jsonb,
    'member.joined deliveries carry their seqs');
  perform tests.eq(tests.recipients(v_response, 'member.joined'),
    array['alice-1', 'alice-1', 'bob-1', 'bob-1', 'carol-1', 'carol-1', 'dave-1', 'dave-1'],
    'each member.joined goes to every current member''s live connections');

  -- Adding current members changes nothing.
  v_response := public.add_members(tests.alice(), v_group, array[tests.bob(), tests.alice()]);
  perform tests.eq(v_response -> 'result' -> 'added', '[]'::jsonb, 'nobody new added');
  perform tests.eq(v_response -> 'deliveries', '[]'::jsonb, 'nothing pushed');
  perform tests.eq((select last_seq from public.conversations where id = v_group), 3::bigint, 'no seq taken');
end
$$;

-- Refusals, in order, none of them writing anything.
do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob()]);
  v_direct uuid := (public.open_direct_conversation(tests.alice(), tests.bob()) -> 'result' -> 'conversation' ->> 'id')::uuid;
  v_many uuid[] := array(select gen_random_uuid() from generate_series(1, 101));
  v_sql text := 'select public.add_members(%L, %L, %L::uuid[])';
  v_foreign jsonb;
begin
  insert into auth.users (id, email) select u, u::text || '@example.com' from unnest(v_many) u;

  v_foreign := tests.error_of(format(v_sql, tests.dave(), v_group, array[tests.dave()]));
  perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'an outsider adds (themself)');
  perform tests.eq(tests.error_of(format(v_sql, tests.dave(), gen_random_uuid(), array[tests.dave()])), v_foreign,
    'adding to a missing conversation looks the same');
  perform tests.raises(format(v_sql, tests.alice(), v_direct, array[tests.carol()]), 'unsupported_for_kind', 'adding to a 1:1');
  perform tests.raises(format(v_sql, tests.bob(), v_group, array[tests.carol()]), 'not_owner', 'a member adds');
  perform tests.raises(format(v_sql, tests.alice(), v_group, '{}'), 'invalid_argument', 'adding nobody');
  perform tests.raises(format(v_sql, tests.alice(), v_group, null), 'invalid_argument', 'adding null');
  perform tests.raises(format(v_sql, tests.alice(), v_group, array[tests.carol(), null]), 'invalid_argument', 'adding a null id');
  perform tests.raises(format(v_sql, tests.alice(), v_group, v_many), 'too_many_members', 'adding 101');
  perform tests.raises(format(v_sql, tests.alice(), v_group, array[tests.carol(), gen_random_uuid()]), 'user_not_found',
    'adding an unknown user');

  perform tests.eq((select count(*) from public.participants where conversation_id = v_group), 2::bigint, 'group members after refusals');
  perform tests.eq((select count(*) from public.participants where conversation_id = v_direct), 2::bigint, '1:1 members after refusals');
  perform tests.eq((select last_seq from public.conversations where id = v_group), 1::bigint, 'group last_seq after refusals');

  -- 100 at once (given twice) is fine, in a room too.
  perform tests.eq(jsonb_array_length(public.add_members(tests.alice(), v_group, v_many[1:100] || v_many[1:100])
    -> 'result' -> 'added'), 100, 'adding 100');
  perform tests.check_gap_free(v_group, 'after adding 100');
end
$$;

-- A former owner is not an owner: ownership is checked among current members.
do $$
declare
  v_room uuid := tests.make_conversation('room', tests.alice(), array[tests.bob()]);
begin
  perform public.leave_conversation(tests.alice(), v_room);
  perform tests.raises(format('select public.add_members(%L, %L, array[%L]::uuid[])', tests.alice(), v_room, tests.alice()),
    'not_a_participant', 'a former owner adds themself back');
  perform tests.eq(public.add_members(tests.bob(), v_room, array[tests.alice()]) -> 'result' -> 'added',
    jsonb_build_array(tests.alice()), 'the new owner of a room adds');
end
$$;

-- ===========================================================================
-- join_room
-- ===========================================================================

do $$
declare
  v_room uuid := tests.make_conversation('room', tests.carol(), array[tests.alice()]);
  v_group uuid := tests.make_conversation('group', tests.carol(), array[tests.alice()]);
  v_direct uuid := (public.open_direct_conversation(tests.alice(), tests.carol()) -> 'result' -> 'conversation' ->> 'id')::uuid;
  v_response jsonb;
  v_missing jsonb;
begin
  perform tests.act_as_service();
  v_response := public.join_room(tests.dave(), v_room);
  perform tests.reset();

  perform tests.eq(v_response -> 'result' -> 'joined', 'true'::jsonb, 'joined');
  perform tests.eq(v_response -> 'result' -> 'conversation', public.conversation_json(v_room), 'result conversation');
  perform tests.eq((select role from public.participants where conversation_id = v_room and user_id = tests.dave()), 'member',
    'joined as a member');
  perform tests.eq(tests.event_types(v_room), array['conversation.created', 'member.joined'], 'events');
  perform tests.eq((v_response -> 'deliveries' -> 0 -> 'event') - 'data',
    jsonb_build_object('type', 'member.joined', 'conversation_id', v_room, 'seq', 2), 'member.joined envelope');
  perform tests.eq((v_response -> 'deliveries' -> 0 -> 'event' -> 'data') - 'joined_at',
    jsonb_build_object('user_id', tests.dave(), 'role', 'member', 'added_by', null,
      'profile', (select public.public_profile_json(p) from public.profiles p where p.id = tests.dave())),
    'member.joined data: the joiner with their public profile');
  perform tests.eq(tests.recipients(v_response, 'member.joined'), array['alice-1', 'carol-1', 'dave-1'],
    'member.joined recipients: every current member, the joiner too');

  -- Again: nothing happens.
  v_response := public.join_room(tests.dave(), v_room);
  perform tests.eq(v_response -> 'result' -> 'joined', 'false'::jsonb, 'joined again');
  perform tests.eq(v_response -> 'deliveries', '[]'::jsonb, 'joining again pushes');
  perform tests.eq((select last_seq from public.conversations where id = v_room), 2::bigint, 'joining again takes a seq');

  -- Leave and come back: the same row, reactivated.
  perform public.leave_conversation(tests.dave(), v_room);
  v_response := public.join_room(tests.dave(), v_room);
  perform tests.eq(v_response -> 'result' -> 'joined', 'true'::jsonb, 'rejoined');
  perform tests.eq((select count(*) from public.participants where conversation_id = v_room and user_id = tests.dave()
    and left_at is null), 1::bigint, 'rejoined participant row');
  perform tests.check_gap_free(v_room, 'after joins');

  -- Only rooms can be joined; anything else, existing or not, is not found.
  v_missing := tests.error_of(format('select public.join_room(%L, %L)', tests.dave(), gen_random_uuid()));
  perform tests.eq(v_missing ->> 'message', 'conversation_not_found', 'joining a missing room');
  perform tests.eq(tests.error_of(format('select public.join_room(%L, %L)', tests.dave(), v_group)), v_missing, 'joining a group');
  perform tests.eq(tests.error_of(format('select public.join_room(%L, %L)', tests.dave(), v_direct)), v_missing, 'joining a 1:1');
  perform tests.raises(format('select public.join_room(%L, %L)', gen_random_uuid(), v_room), 'user_not_found',
    'joining as an unknown user');
  perform tests.eq((select count(*) from public.participants where conversation_id in (v_group, v_direct)
    and user_id = tests.dave()), 0::bigint, 'dave in the group or 1:1 after refusals');
end
$$;

-- A room everyone left has no owner; whoever joins next owns it.
do $$
declare
  v_room uuid := tests.make_conversation('room', tests.carol(), array[]::uuid[]);
begin
  perform public.leave_conversation(tests.carol(), v_room);
  perform tests.eq(public.join_room(tests.bob(), v_room) -> 'deliveries' -> 0 -> 'event' -> 'data' ->> 'role', 'owner',
    'the first to join an empty room');
  perform tests.eq(public.join_room(tests.carol(), v_room) -> 'deliveries' -> 0 -> 'event' -> 'data' ->> 'role', 'member',
    'the former owner, coming back after that');
end
$$;

-- ===========================================================================
-- leave_conversation
-- ===========================================================================

-- The owner leaves: the longest-standing member becomes the owner.
do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol(), tests.dave()]);
  v_response jsonb;
  v_event jsonb;
begin
  update public.participants set joined_at = now() - interval '3 days' where conversation_id = v_group and user_id = tests.carol();
  update public.participants set joined_at = now() - interval '2 days' where conversation_id = v_group and user_id = tests.bob();
  update public.participants set joined_at = now() - interval '1 day' where conversation_id = v_group and user_id = tests.alice();

  perform tests.act_as_service();
  v_response := public.leave_conversation(tests.alice(), v_group);
  perform tests.reset();

  perform tests.eq(v_response -> 'result', jsonb_build_object('conversation_id', v_group, 'left', true, 'seq', 2), 'result');
  perform tests.check((select left_at is not null from public.participants where conversation_id = v_group and user_id = tests.alice()),
    'left_at set');
  perform tests.eq(
    (select array_agg(user_id order by user_id) from public.participants where conversation_id = v_group and role = 'owner'
      and left_at is null), array[tests.carol()], 'the new owner');
  v_event := v_response -> 'deliveries' -> 0 -> 'event';
  perform tests.eq(v_event, jsonb_build_object('type', 'member.left', 'conversation_id', v_group, 'seq', 2, 'data',
    jsonb_build_object('user_id', tests.alice(), 'new_owner_id', tests.carol(),
      'left_at', (select left_at from public.participants where conversation_id = v_group and user_id = tests.alice()))),
    'member.left envelope');
  perform tests.eq((select payload from public.conversation_events where conversation_id = v_group and seq = 2), v_event -> 'data',
    'member.left payload');
  -- The remaining members and the leaver's own devices (dave's expired one is not live).
  perform tests.eq(tests.recipients(v_response, 'member.left'), array['alice-1', 'bob-1', 'carol-1', 'dave-1'],
    'member.left recipients');

  -- A member leaves: ownership stays.
  v_response := public.leave_conversation(tests.bob(), v_group);
  perform tests.eq(v_response -> 'deliveries' -> 0 -> 'event' -> 'data' -> 'new_owner_id', 'null'::jsonb,
    'no new owner when a member leaves');
  perform tests.eq(tests.recipients(v_response, 'member.left'), array['bob-1', 'carol-1', 'dave-1'],
    'a former member is not told of later leaves');

  -- Leaving twice, or a conversation one is not in.
  perform tests.raises(format('select public.leave_conversation(%L, %L)', tests.bob(), v_group), 'not_a_participant', 'leaving twice');
  perform tests.eq(tests.error_of(format('select public.leave_conversation(%L, %L)', (select id from fixture where name = 'erin'), v_group)),
    tests.error_of(format('select public.leave_conversation(%L, %L)', (select id from fixture where name = 'erin'), gen_random_uuid())),
    'leaving someone else''s conversation looks like leaving a missing one');

  -- Ties in joined_at go to the lowest user id, and the last one out leaves no owner.
  update public.participants set joined_at = now() where conversation_id = v_group and left_at is null;
  perform tests.eq(public.leave_conversation(tests.carol(), v_group) -> 'deliveries' -> 0 -> 'event' -> 'data' ->> 'new_owner_id',
    tests.dave()::text, 'the only one left becomes the owner');
  v_response := public.leave_conversation(tests.dave(), v_group);
  perform tests.eq(v_response -> 'deliveries' -> 0 -> 'event' -> 'data' -> 'new_owner_id', 'null'::jsonb, 'the last one out');
  perform tests.eq(tests.recipients(v_response, 'member.left'), array['dave-1'], 'the last one out is told');
  perform tests.eq((select count(*) from public.participants where conversation_id = v_group and left_at is null), 0::bigint,
    'members left');
  perform tests.check_gap_free(v_group, 'after leaves');

  -- Gone means gone: no reading through the table or the RPCs.
  perform tests.act_as(tests.alice());
  perform tests.eq(tests.count(format('select 1 from public.messages where conversation_id = %L', v_group)), 0::bigint,
    'a former member reads messages');
  perform tests.raises(format('select public.get_conversation(%L)', v_group), 'not_a_participant', 'a former member gets the conversation');
  perform tests.reset();
end
$$;

-- Ties among several members go to the lowest user id.
do $$
declare
  v_group uuid := tests.make_conversation('group', tests.dave(), array[tests.alice(), tests.bob(), tests.carol()]);
begin
  perform tests.eq(public.leave_conversation(tests.dave(), v_group) -> 'deliveries' -> 0 -> 'event' -> 'data' ->> 'new_owner_id',
    (select min(u::text) from unnest(array[tests.alice(), tests.bob(), tests.carol()]) u), 'the new owner among equals');
end
$$;

-- Internal RPCs: never for signed-in users or anon.
do $$
declare
  v_room uuid := tests.make_conversation('room', tests.carol(), array[tests.alice()]);
  v_call text;
begin
  foreach v_call in array array[
    format('select public.add_members(%L, %L, array[%L]::uuid[])', tests.carol(), v_room, tests.bob()),
    format('select public.join_room(%L, %L)', tests.bob(), v_room),
    format('select public.leave_conversation(%L, %L)', tests.alice(), v_room)
  ] loop
    perform tests.act_as(tests.carol());
    perform tests.denied(v_call, 'a signed-in user runs ' || v_call);
    perform tests.act_as_anon();
    perform tests.denied(v_call, 'anon runs ' || v_call);
  end loop;
  perform tests.reset();
  perform tests.eq((select count(*) from public.participants where conversation_id = v_room and left_at is null), 2::bigint,
    'room members after refused calls');
end
$$;
