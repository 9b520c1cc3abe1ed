-- Blocks: block_user, unblock_user and list_blocks as the blocker, the
-- blocked user, a stranger and anon; what a block cuts (direct conversations
-- both ways, sends and edits there, putting the other in a new group or room
-- or adding them to one, presence, typing, read receipts) and what it leaves
-- (deleting, shared groups); and presence privacy: only members who both took
-- part in a direct conversation or group are contacts, and a member who comes
-- back has not taken part until they write again.
-- Fixture: alice and bob have a 1:1 in which both have sent; alice, bob and
-- carol share a group. Everyone is online.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_direct uuid := (public.open_direct_conversation(tests.alice(), tests.bob()) -> 'result' -> 'conversation' ->> 'id')::uuid;
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()]);
begin
  perform tests.send(tests.alice(), v_direct, 'hi bob', 'before-1');
  perform tests.send(tests.bob(), v_direct, 'hi alice', 'before-2');
  perform tests.connect('alice-1', tests.alice());
  perform tests.connect('bob-1', tests.bob());
  perform tests.connect('carol-1', tests.carol());
  perform tests.connect('dave-1', tests.dave());
  insert into fixture values ('direct', v_direct), ('group', v_group);
end
$$;

-- Before any block: contacts see each other, typing reaches everyone.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
begin
  perform tests.act_as(tests.bob());
  perform tests.eq(jsonb_array_length(public.get_presence(array[tests.alice()]) -> 'presence'), 1, 'bob sees alice before');
  perform tests.eq(public.list_blocks(), '{"blocks": []}'::jsonb, 'nobody blocked yet');
  perform tests.reset();
  perform tests.eq(tests.connection_ids(public.contact_recipients(tests.alice())), array['bob-1'], 'alice''s contacts before');
  perform tests.eq(tests.recipients(public.send_typing(tests.alice(), v_group), 'typing'),
    array['bob-1', 'carol-1'], 'alice''s typing before');
end
$$;

-- alice blocks bob.
do $$
declare
  v_result jsonb;
begin
  perform tests.act_as(tests.alice());
  v_result := public.block_user(tests.bob());
  perform tests.eq(v_result -> 'created', 'true'::jsonb, 'a new block');
  perform tests.eq(v_result -> 'block' ->> 'user_id', tests.bob()::text, 'whom');
  perform tests.eq(public.block_user(tests.bob()) -> 'created', 'false'::jsonb, 'blocking again');
  perform tests.eq(public.block_user(tests.bob()) -> 'block' -> 'created_at', v_result -> 'block' -> 'created_at',
    'blocking again keeps the first time');
  perform tests.raises(format('select public.block_user(%L)', tests.alice()), 'invalid_argument', 'blocking oneself');
  perform tests.raises('select public.block_user(null)', 'invalid_argument', 'blocking nobody');
  perform tests.raises('select public.block_user(gen_random_uuid())', 'user_not_found', 'blocking an unknown user');

  v_result := public.list_blocks();
  perform tests.eq(jsonb_array_length(v_result -> 'blocks'), 1, 'alice''s blocks');
  perform tests.eq((v_result -> 'blocks' -> 0) - 'created_at', jsonb_build_object('user_id', tests.bob(),
    'profile', jsonb_build_object('id', tests.bob(), 'username', 'bob', 'display_name', 'Bob', 'avatar_url', null)),
    'a block as listed');
  perform tests.reset();
end
$$;

-- The rows: the blocker reads her own; the blocked user, a stranger and anon
-- read nothing; nobody writes them directly.
do $$
begin
  perform tests.act_as(tests.alice());
  perform tests.eq(tests.count('select 1 from public.blocks'), 1::bigint, 'the blocker reads her block');
  perform tests.act_as(tests.bob());
  perform tests.eq(tests.count('select 1 from public.blocks'), 0::bigint, 'the blocked user reads no block');
  perform tests.eq(public.list_blocks(), '{"blocks": []}'::jsonb, 'the blocked user lists nothing');
  perform tests.denied(format('insert into public.blocks (blocker_id, blocked_id) values (%L, %L)', tests.bob(), tests.carol()),
    'inserting one''s own block directly');
  perform tests.denied(format('insert into public.blocks (blocker_id, blocked_id) values (%L, %L)', tests.carol(), tests.bob()),
    'inserting a block for someone else');
  perform tests.denied('delete from public.blocks', 'the blocked user deletes the block');
  perform tests.act_as(tests.alice());
  perform tests.denied('delete from public.blocks', 'deleting directly, even one''s own');
  perform tests.denied(format('update public.blocks set blocked_id = %L', tests.carol()), 'updating directly');
  perform tests.act_as(tests.carol());
  perform tests.eq(tests.count('select 1 from public.blocks'), 0::bigint, 'a stranger reads no block');
  perform tests.act_as_anon();
  perform tests.denied('select 1 from public.blocks', 'anon reads blocks');
  perform tests.denied('select public.list_blocks()', 'anon lists blocks');
  perform tests.denied(format('select public.block_user(%L)', tests.bob()), 'anon blocks');
  perform tests.denied(format('select public.unblock_user(%L)', tests.bob()), 'anon unblocks');
  perform tests.act_as_service();
  perform tests.raises(format('select public.block_user(%L)', tests.bob()), 'invalid_argument', 'service_role without a user');
  perform tests.reset();
  perform tests.eq((select count(*) from public.blocks), 1::bigint, 'still the one block');
end
$$;

-- What the block cuts, both ways, storing nothing; what it leaves.
do $$
declare
  v_direct uuid := (select id from fixture where name = 'direct');
  v_group uuid := (select id from fixture where name = 'group');
  v_seq bigint := (select last_seq from public.conversations where id = v_direct);
  v_result jsonb;
begin
  perform tests.act_as_service();
  perform tests.raises(format('select public.open_direct_conversation(%L, %L)', tests.bob(), tests.alice()),
    'blocked', 'the blocked user opens the 1:1');
  perform tests.raises(format('select public.open_direct_conversation(%L, %L)', tests.alice(), tests.bob()),
    'blocked', 'the blocker opens the 1:1');
  perform tests.raises(format('select public.open_direct_conversation(%L, %L, ''listing'', ''42'')', tests.bob(), tests.alice()),
    'blocked', 'the blocked user opens a 1:1 about something');
  perform tests.raises(format('select public.send_message(%L, %L, ''after-1'', ''text'', ''hello?'')', tests.bob(), v_direct),
    'blocked', 'the blocked user sends into the 1:1');
  perform tests.raises(format('select public.send_message(%L, %L, ''after-2'', ''text'', ''hello?'')', tests.alice(), v_direct),
    'blocked', 'the blocker sends into the 1:1');
  -- A retry of a message sent before the block finds it.
  v_result := public.send_message(tests.bob(), v_direct, 'before-2', 'text', 'hi alice');
  perform tests.eq(v_result -> 'result' -> 'duplicate', 'true'::jsonb, 'a retry from before the block');
  -- An old message cannot be edited into a new one, by either.
  perform tests.raises(format('select public.edit_message(%L, %L, ''hello again'')', tests.bob(), tests.id(v_result -> 'result' -> 'message')),
    'blocked', 'the blocked user edits his message in the 1:1');
  perform tests.raises(format('select public.edit_message(%L, (select id from public.messages where client_msg_id = ''before-1''), ''hello again'')',
    tests.alice()), 'blocked', 'the blocker edits her message in the 1:1');
  perform tests.reset();
  perform tests.eq((select body from public.messages where client_msg_id = 'before-2'), 'hi alice', 'the edit stored nothing');
  perform tests.eq((select last_seq from public.conversations where id = v_direct), v_seq, 'no seq taken');
  perform tests.eq((select count(*) from public.messages where conversation_id = v_direct), 2::bigint, 'no message stored');
  perform tests.eq((select count(*) from public.conversations where kind = 'direct'), 1::bigint, 'no 1:1 created');

  -- Presence: neither sees the other's, nor is told of it.
  perform tests.act_as(tests.bob());
  perform tests.eq(public.get_presence(array[tests.alice()]), '{"presence": []}'::jsonb, 'bob asks for alice''s presence');
  perform tests.eq(public.get_profiles(array[tests.alice()]) -> 'users' -> 0 -> 'online', 'null'::jsonb,
    'alice''s profile for bob');
  perform tests.act_as(tests.alice());
  perform tests.eq(public.get_presence(array[tests.bob()]), '{"presence": []}'::jsonb, 'alice asks for bob''s presence');
  perform tests.reset();
  perform tests.eq(tests.connection_ids(public.contact_recipients(tests.alice())), '{}'::text[], 'alice''s presence goes to');
  perform tests.eq(tests.connection_ids(public.contact_recipients(tests.bob())), '{}'::text[], 'bob''s presence goes to');

  -- Typing in the group: not between the two, still to carol.
  perform tests.eq(tests.recipients(public.send_typing(tests.alice(), v_group), 'typing'),
    array['carol-1'], 'alice''s typing');
  perform tests.eq(tests.recipients(public.send_typing(tests.bob(), v_group), 'typing'),
    array['carol-1'], 'bob''s typing');
  perform tests.eq(tests.recipients(public.send_typing(tests.carol(), v_group), 'typing'),
    array['alice-1', 'bob-1'], 'carol''s typing');

  -- Messages in the group still reach everyone (the blocker's client hides them).
  perform tests.eq(tests.recipients(public.send_message(tests.bob(), v_group, 'group-1', 'text', 'hi all'), 'message.created'),
    array['alice-1', 'bob-1', 'carol-1'], 'bob''s group message');

  -- Read receipts in the group: not between the two (each reader's own
  -- devices still hear of theirs), still to carol.
  perform tests.eq(tests.recipients(public.mark_read(tests.bob(), v_group), 'read'), array['bob-1', 'carol-1'],
    'bob''s read receipt');
  perform tests.eq(tests.recipients(public.mark_read(tests.alice(), v_group), 'read'), array['alice-1', 'carol-1'],
    'alice''s read receipt');
  perform tests.eq(tests.recipients(public.mark_read(tests.carol(), v_group), 'read'), array['alice-1', 'bob-1', 'carol-1'],
    'carol''s read receipt');
end
$$;

-- Neither can reach the other through a new group or room, or by adding the
-- other to one; the refusal stores nothing and does not say who blocked
-- whom. Deleting a message in the 1:1 stays allowed.
do $$
declare
  v_direct uuid := (select id from fixture where name = 'direct');
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.carol()]);
  v_carols uuid := tests.make_conversation('group', tests.carol(), array[tests.alice()]);
  v_conversations bigint := (select count(*) from public.conversations);
  v_seq bigint := (select last_seq from public.conversations where id = v_group);
  v_error jsonb;
begin
  perform tests.act_as_service();
  perform tests.raises(format('select public.create_conversation(%L, ''group'', ''Plan'', array[%L, %L]::uuid[])',
    tests.bob(), tests.carol(), tests.alice()), 'blocked', 'the blocked user creates a group with the blocker');
  perform tests.raises(format('select public.create_conversation(%L, ''room'', ''Plan room'', array[%L]::uuid[])',
    tests.alice(), tests.bob()), 'blocked', 'the blocker creates a room with the blocked user');
  perform tests.raises(format('select public.add_members(%L, %L, array[%L, %L]::uuid[])',
    tests.alice(), v_group, tests.dave(), tests.bob()), 'blocked', 'the blocker adds the blocked user');
  -- Both are told the same.
  v_error := tests.error_of(format('select public.create_conversation(%L, ''group'', ''Plan'', array[%L]::uuid[])',
    tests.bob(), tests.alice()));
  perform tests.eq(v_error ->> 'message', 'blocked', 'the blocked user''s refusal');
  perform tests.eq(v_error, tests.error_of(format('select public.create_conversation(%L, ''group'', ''Plan'', array[%L]::uuid[])',
    tests.alice(), tests.bob())), 'the refusal says nothing of who blocked whom');
  perform tests.reset();
  perform tests.eq((select count(*) from public.conversations), v_conversations, 'no conversation created');
  perform tests.eq((select last_seq from public.conversations where id = v_group), v_seq, 'nobody added');
  perform tests.eq((select count(*) from public.participants where conversation_id = v_group), 2::bigint, 'members');

  -- A third user may still bring both together (the blocker's client hides
  -- the other's messages there).
  perform tests.act_as_service();
  perform public.add_members(tests.carol(), v_carols, array[tests.bob()]);
  -- Deleting one's own message in the 1:1 is allowed.
  perform tests.eq(public.delete_message(tests.bob(), (select id from public.messages where client_msg_id = 'before-2'))
    -> 'result' -> 'deleted', 'true'::jsonb, 'the blocked user deletes his message in the 1:1');
  perform tests.reset();
  perform tests.eq((select last_seq from public.conversations where id = v_direct),
    (select max(seq) from public.conversation_events where conversation_id = v_direct), 'the deletion is an event');
end
$$;

-- Unblocking restores everything; only the blocker can.
do $$
declare
  v_direct uuid := (select id from fixture where name = 'direct');
  v_group uuid := (select id from fixture where name = 'group');
begin
  perform tests.act_as(tests.bob());
  perform tests.eq(public.unblock_user(tests.alice()) -> 'removed', 'false'::jsonb, 'the blocked user unblocks');
  perform tests.reset();
  perform tests.eq((select count(*) from public.blocks), 1::bigint, 'the block stands');

  perform tests.act_as(tests.alice());
  perform tests.eq(public.unblock_user(tests.bob()), jsonb_build_object('user_id', tests.bob(), 'removed', true), 'unblock');
  perform tests.eq(public.unblock_user(tests.bob()) -> 'removed', 'false'::jsonb, 'unblocking again');
  perform tests.raises('select public.unblock_user(null)', 'invalid_argument', 'unblocking nobody');
  perform tests.eq(public.list_blocks(), '{"blocks": []}'::jsonb, 'no blocks left');
  perform tests.reset();

  perform tests.eq(public.open_direct_conversation(tests.bob(), tests.alice()) -> 'result' -> 'conversation' ->> 'id',
    v_direct::text, 'bob opens the 1:1 again');
  perform tests.eq(public.send_message(tests.bob(), v_direct, 'after-3', 'text', 'back') -> 'result' -> 'duplicate',
    'false'::jsonb, 'bob sends again');
  perform tests.eq(tests.connection_ids(public.contact_recipients(tests.alice())), array['bob-1'], 'alice''s contacts again');
  perform tests.eq(tests.recipients(public.send_typing(tests.alice(), v_group), 'typing'),
    array['bob-1', 'carol-1'], 'alice''s typing again');
end
$$;

-- At most 1000 blocks per user.
do $$
begin
  insert into auth.users (id, email)
  select gen_random_uuid(), format('blocked%s@example.com', g) from generate_series(1, 1000) g;
  insert into public.blocks (blocker_id, blocked_id)
  select tests.dave(), u.id from auth.users u where u.email like 'blocked%@example.com';
  perform tests.act_as(tests.dave());
  perform tests.raises(format('select public.block_user(%L)', tests.alice()), 'too_many_blocks', 'the 1001st block');
  perform tests.eq(jsonb_array_length(public.list_blocks() -> 'blocks'), 1000, 'all 1000 listed');
  perform tests.reset();
  delete from public.blocks where blocker_id = tests.dave();
end
$$;

-- Presence privacy: opening a 1:1, being put in a group or joining a room
-- reveals nothing; both having sent in a 1:1 or group does, until one leaves.
do $$
declare
  v_direct uuid;
  v_group uuid;
  v_room uuid := tests.make_conversation('room', tests.bob(), array[]::uuid[]);
  v_stats jsonb;
begin
  -- dave, a stranger, opens a 1:1 with bob and writes; bob has not answered.
  v_direct := (public.open_direct_conversation(tests.dave(), tests.bob()) -> 'result' -> 'conversation' ->> 'id')::uuid;
  perform tests.send(tests.dave(), v_direct, 'hello bob');
  -- dave puts bob in a group and writes there; joins bob's room, where both write.
  v_group := tests.make_conversation('group', tests.dave(), array[tests.bob()]);
  perform tests.send(tests.dave(), v_group, 'hello group');
  perform public.join_room(tests.dave(), v_room);
  perform tests.send(tests.bob(), v_room, 'room talk');
  perform tests.send(tests.dave(), v_room, 'room talk too');

  perform tests.act_as(tests.dave());
  perform tests.eq(public.get_presence(array[tests.bob()]), '{"presence": []}'::jsonb, 'bob''s presence for dave');
  perform tests.eq(public.search_users('bob') -> 'users' -> 0 -> 'online', 'null'::jsonb, 'bob in dave''s search');
  v_stats := public.conversation_stats(v_room);
  perform tests.eq(v_stats -> 'online_count', '1'::jsonb, 'online in the room, for dave: only himself');
  perform tests.eq(public.conversation_connections(v_room) -> 'users',
    jsonb_build_array(jsonb_build_object('user_id', tests.dave(), 'connections', 1)), 'connections in the room, for dave');
  perform tests.eq(public.conversation_connections(v_direct) -> 'total_connections', '1'::jsonb,
    'connections in the 1:1, for dave: only his own');
  perform tests.reset();
  perform tests.eq(tests.connection_ids(public.contact_recipients(tests.bob())), array['alice-1'], 'bob''s presence goes to');

  -- bob answers in the 1:1: now they are contacts.
  perform tests.send(tests.bob(), v_direct, 'hello dave');
  perform tests.act_as(tests.dave());
  perform tests.eq(jsonb_array_length(public.get_presence(array[tests.bob()]) -> 'presence'), 1, 'after bob answered');
  perform tests.eq(public.conversation_stats(v_room) -> 'online_count', '2'::jsonb, 'online in the room, now');
  perform tests.reset();
  perform tests.eq(tests.connection_ids(public.contact_recipients(tests.bob())), array['alice-1', 'dave-1'],
    'bob''s presence goes to, now');

  -- bob leaves the 1:1: dave reopening it does not bring bob back, nor his presence.
  perform public.leave_conversation(tests.bob(), v_direct);
  perform public.leave_conversation(tests.dave(), v_direct);
  perform public.open_direct_conversation(tests.dave(), tests.bob());
  perform tests.send(tests.dave(), v_direct, 'still there?');
  perform tests.act_as(tests.dave());
  perform tests.eq(public.get_presence(array[tests.bob()]), '{"presence": []}'::jsonb, 'after bob left');
  perform tests.reset();
end
$$;

-- Coming back is not taking part: a former member added back to a group,
-- returning to a 1:1 or rejoining a room has not written since, so what they
-- wrote before leaving makes no contact of anyone until they write again.
do $$
declare
  v_users uuid[] := array[gen_random_uuid(), gen_random_uuid(), gen_random_uuid()];
  v_erin uuid := v_users[1];
  v_finn uuid := v_users[2];
  v_gina uuid := v_users[3];
  v_group uuid;
  v_direct uuid;
  v_room uuid;
begin
  insert into auth.users (id, email) select u, u::text || '@example.com' from unnest(v_users) u;
  v_group := tests.make_conversation('group', v_erin, array[v_finn]);
  perform tests.send(v_erin, v_group, 'hi finn');
  perform tests.send(v_finn, v_group, 'hi erin');
  perform tests.eq(public.presence_visible(v_erin, v_finn), true, 'both wrote in the group');
  perform public.leave_conversation(v_finn, v_group);
  perform public.add_members(v_erin, v_group, array[v_finn]);
  perform tests.eq(public.presence_visible(v_erin, v_finn), false, 'finn added back');
  perform tests.eq(public.presence_visible(v_finn, v_erin), false, 'finn added back, his view');
  perform tests.send(v_finn, v_group, 'back');
  perform tests.eq(public.presence_visible(v_erin, v_finn), true, 'finn wrote again');

  v_direct := (public.open_direct_conversation(v_gina, v_erin) -> 'result' -> 'conversation' ->> 'id')::uuid;
  perform tests.send(v_gina, v_direct, 'hi erin');
  perform tests.send(v_erin, v_direct, 'hi gina');
  perform tests.eq(public.presence_visible(v_erin, v_gina), true, 'both wrote in the 1:1');
  perform public.leave_conversation(v_gina, v_direct);
  perform public.open_direct_conversation(v_gina, v_erin);
  perform tests.eq(public.presence_visible(v_erin, v_gina), false, 'gina back in the 1:1');
  perform tests.send(v_gina, v_direct, 'me again');
  perform tests.eq(public.presence_visible(v_erin, v_gina), true, 'gina wrote again');

  v_room := tests.make_conversation('room', v_erin, array[]::uuid[]);
  perform public.join_room(v_gina, v_room);
  perform tests.send(v_gina, v_room, 'hello room');
  perform public.leave_conversation(v_gina, v_room);
  perform public.join_room(v_gina, v_room);
  perform tests.eq((select first_sent_at from public.participants where conversation_id = v_room and user_id = v_gina),
    null::timestamptz, 'gina back in the room');
end
$$;

-- blocked_with, the set form of blocked_between: the users with a block
-- between them and a user, whoever made it, each once.
do $$
declare
  v_users uuid[] := array[tests.alice(), tests.bob(), tests.carol(), tests.dave()];
begin
  delete from public.blocks;
  insert into public.blocks (blocker_id, blocked_id)
  values (tests.alice(), tests.bob()), (tests.bob(), tests.alice()), (tests.carol(), tests.alice()),
         (tests.bob(), tests.dave());
  perform tests.eq(array(select u from public.blocked_with(tests.alice()) as u order by u),
    array(select u from unnest(array[tests.bob(), tests.carol()]) as u order by u), 'alice: both ways, bob once');
  perform tests.eq(array(select u from public.blocked_with(tests.dave()) as u), array[tests.bob()], 'dave: blocked by bob');
  perform tests.eq(array(select u from public.blocked_with(gen_random_uuid()) as u), '{}'::uuid[], 'nobody: none');
  perform tests.eq(
    (select count(*) from unnest(v_users) as a, unnest(v_users) as b
      where public.blocked_between(a, b) <> (b in (select public.blocked_with(a)))),
    0::bigint, 'the same pairs as blocked_between');
end
$$;
