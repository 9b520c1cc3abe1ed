-- Delivery receipts: mark_delivered (the watermark never goes back, a seq
-- past the end is clamped), mark_read raising it (read is the higher
-- watermark), who hears of a delivery (the senders of the messages it covers
-- and the member's own devices; in a room the latter only; never across a
-- block), the receipts in the Conversation JSON, and refusals.
-- Fixture: a group of alice, bob, carol and dave (who leaves):
--   seq 1 conversation.created, 2 alice, 3 bob, 4 alice, 5 dave,
--   6 member.left (dave), 7 carol.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol(), tests.dave()]);
begin
  perform tests.send(tests.alice(), v_group, 'a1');
  perform tests.send(tests.bob(), v_group, 'b1');
  perform tests.send(tests.alice(), v_group, 'a2');
  perform tests.send(tests.dave(), v_group, 'd1');
  perform public.leave_conversation(tests.dave(), v_group);
  perform tests.send(tests.carol(), v_group, 'c1');

  perform tests.connect('alice-1', tests.alice());
  perform tests.connect('bob-1', tests.bob());
  perform tests.connect('bob-expired', tests.bob(), false);
  perform tests.connect('carol-1', tests.carol());
  perform tests.connect('carol-2', tests.carol());
  perform tests.connect('dave-1', tests.dave());
  insert into fixture values ('group', v_group);
end
$$;

-- The watermark moves forward to the seq reported; `delivered` (no seq) goes
-- to the senders of the messages between the old watermark and the new one
-- who are still members, and to the reporter's own devices.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_response jsonb;
  v_event jsonb;
begin
  perform tests.eq((select last_seq from public.conversations where id = v_group), 7::bigint, 'fixture last_seq');
  perform tests.eq((select last_delivered_seq from public.participants where conversation_id = v_group and user_id = tests.carol()),
    0::bigint, 'a member starts with nothing delivered');

  perform tests.act_as_service();
  v_response := public.mark_delivered(tests.carol(), v_group, 2);
  perform tests.reset();

  perform tests.eq(v_response -> 'result', jsonb_build_object('conversation_id', v_group, 'last_delivered_seq', 2,
    'changed', true), 'result');
  perform tests.eq((select last_delivered_seq from public.participants where conversation_id = v_group and user_id = tests.carol()),
    2::bigint, 'stored watermark');
  perform tests.eq((select last_read_seq from public.participants where conversation_id = v_group and user_id = tests.carol()),
    0::bigint, 'delivered is not read');
  v_event := v_response -> 'deliveries' -> 0 -> 'event';
  perform tests.eq(v_event - 'data', jsonb_build_object('type', 'delivered', 'conversation_id', v_group),
    'delivered envelope (no seq)');
  perform tests.eq((v_event -> 'data') - 'delivered_at',
    jsonb_build_object('user_id', tests.carol(), 'last_delivered_seq', 2), 'delivered data');
  perform tests.check((v_event -> 'data' ->> 'delivered_at')::timestamptz is not null, 'delivered_at');
  perform tests.eq(tests.recipients(v_response, 'delivered'), array['alice-1', 'carol-1', 'carol-2'],
    'up to alice''s a1: alice and carol''s own devices');
  perform tests.eq((select last_seq from public.conversations where id = v_group), 7::bigint, 'a delivery takes no seq');

  -- Up to dave's d1: bob's b1 and alice's a2 are covered too; dave has left.
  v_response := public.mark_delivered(tests.carol(), v_group, 5);
  perform tests.eq(v_response -> 'result' -> 'last_delivered_seq', '5'::jsonb, 'up to 5');
  perform tests.eq(tests.recipients(v_response, 'delivered'), array['alice-1', 'bob-1', 'carol-1', 'carol-2'],
    'the senders still in the conversation (not dave), live connections only');

  -- Back, or the same: nothing changes, nothing is pushed.
  v_response := public.mark_delivered(tests.carol(), v_group, 3);
  perform tests.eq(v_response -> 'result', jsonb_build_object('conversation_id', v_group, 'last_delivered_seq', 5,
    'changed', false), 'a lower seq');
  perform tests.eq(v_response -> 'deliveries', '[]'::jsonb, 'a lower seq pushes');
  perform tests.eq(public.mark_delivered(tests.carol(), v_group, 5) -> 'result' -> 'changed', 'false'::jsonb, 'the same seq');
  perform tests.eq(public.mark_delivered(tests.carol(), v_group, 0) -> 'result' -> 'last_delivered_seq', '5'::jsonb, 'seq 0');
  perform tests.eq((select last_delivered_seq from public.participants where conversation_id = v_group and user_id = tests.carol()),
    5::bigint, 'the stored watermark did not go back');

  -- Beyond the latest: clamped. Only carol's own c1 is new: her devices hear of it.
  v_response := public.mark_delivered(tests.carol(), v_group, 1000);
  perform tests.eq(v_response -> 'result' -> 'last_delivered_seq', '7'::jsonb, 'a seq past the end is clamped');
  perform tests.eq(tests.recipients(v_response, 'delivered'), array['carol-1', 'carol-2'], 'nobody else''s message');
end
$$;

-- Reading is the higher watermark: it raises the delivered one (told by
-- `read` alone), and a read below it leaves it.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_response jsonb;
  v_expected jsonb;
begin
  v_response := public.mark_read(tests.bob(), v_group, 4);
  perform tests.eq(tests.recipients(v_response, 'read'), array['alice-1', 'bob-1', 'carol-1', 'carol-2'], 'read recipients');
  perform tests.eq(tests.deliveries(v_response, 'delivered'), '[]'::jsonb, 'no delivered event beside read');
  perform tests.eq((select last_delivered_seq from public.participants where conversation_id = v_group and user_id = tests.bob()),
    4::bigint, 'read up to 4 is delivered up to 4');
  v_response := public.mark_delivered(tests.bob(), v_group, 4);
  perform tests.eq(v_response -> 'result', jsonb_build_object('conversation_id', v_group, 'last_delivered_seq', 4,
    'changed', false), 'delivered up to what was read');
  perform tests.eq(public.mark_delivered(tests.bob(), v_group, 2) -> 'result' -> 'last_delivered_seq', '4'::jsonb,
    'delivered below what was read');
  v_response := public.mark_delivered(tests.bob(), v_group, 7);
  perform tests.eq(tests.recipients(v_response, 'delivered'), array['bob-1', 'carol-1', 'carol-2'],
    'past what was read: carol''s c1 (dave''s d1 is his, and he left)');

  perform public.mark_read(tests.carol(), v_group, 2);
  perform tests.eq((select (last_read_seq, last_delivered_seq)::text from public.participants
    where conversation_id = v_group and user_id = tests.carol()), '(2,7)', 'a read below the delivered watermark');

  -- Both receipts are in the Conversation JSON, for the current members.
  perform tests.eq(
    (select jsonb_object_agg(p ->> 'user_id', jsonb_build_array(p -> 'last_read_seq', p -> 'last_delivered_seq'))
      from jsonb_array_elements(public.conversation_json(v_group) -> 'participants') p),
    jsonb_build_object(tests.alice(), jsonb_build_array(0, 0), tests.bob(), jsonb_build_array(4, 7),
      tests.carol(), jsonb_build_array(2, 7)),
    'receipts in the Conversation JSON');
  v_expected := public.conversation_json(v_group);
  perform tests.act_as(tests.alice());
  perform tests.eq(public.get_conversation(v_group) -> 'conversation', v_expected,
    'get_conversation without a block shows every receipt');
  perform tests.reset();
end
$$;

-- Refusals: a negative or missing seq, an outsider (a former member, a
-- missing conversation: the same answer, whatever the seq), and every API
-- role but service_role; nobody writes the watermark or reads it directly.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_foreign jsonb;
begin
  perform tests.raises(format('select public.mark_delivered(%L, %L, -1)', tests.alice(), v_group), 'invalid_argument',
    'a negative seq');
  perform tests.raises(format('select public.mark_delivered(%L, %L, null)', tests.alice(), v_group), 'invalid_argument',
    'no seq');
  v_foreign := tests.error_of(format('select public.mark_delivered(%L, %L, 1)', tests.dave(), v_group));
  perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'a former member reports a delivery');
  perform tests.eq(tests.error_of(format('select public.mark_delivered(%L, %L, 1)', tests.dave(), gen_random_uuid())),
    v_foreign, 'a missing conversation looks the same');
  perform tests.eq(tests.error_of(format('select public.mark_delivered(%L, %L, -1)', tests.dave(), v_group)), v_foreign,
    'an outsider with a bad seq learns nothing more');
  perform tests.eq(tests.error_of(format('select public.mark_delivered(%L, %L, null)', tests.dave(), v_group)), v_foreign,
    'an outsider without a seq learns nothing more');

  perform tests.act_as(tests.alice());
  perform tests.denied(format('select public.mark_delivered(%L, %L, 7)', tests.alice(), v_group),
    'a signed-in user reports a delivery directly');
  perform tests.write_denied(
    format('update public.participants set last_delivered_seq = 7 where conversation_id = %L and user_id = %L', v_group, tests.alice()),
    'participants', 'a signed-in user writes her delivered watermark');
  perform tests.write_denied(
    format('update public.participants set last_delivered_seq = 0 where conversation_id = %L and user_id = %L', v_group, tests.bob()),
    'participants', 'a signed-in user writes another''s delivered watermark');
  perform tests.denied(format('select user_id, last_delivered_seq from public.participants where conversation_id = %L', v_group),
    'a signed-in user reads the delivered watermarks directly');
  perform tests.act_as_anon();
  perform tests.denied(format('select public.mark_delivered(%L, %L, 7)', tests.alice(), v_group), 'anon reports a delivery');
  perform tests.reset();
  perform tests.eq((select last_delivered_seq from public.participants where conversation_id = v_group and user_id = tests.alice()),
    0::bigint, 'alice''s watermark is untouched');
end
$$;

-- In a room, only the member's own devices hear of a delivery, and nobody's
-- receipts are in the Conversation JSON.
do $$
declare
  v_room uuid := tests.make_conversation('room', tests.bob(), array[tests.alice(), tests.dave()]);
  v_response jsonb;
  v_expected jsonb;
begin
  perform tests.send(tests.bob(), v_room, 'welcome');
  perform tests.send(tests.dave(), v_room, 'hi');
  v_response := public.mark_delivered(tests.alice(), v_room, 3);
  perform tests.eq(v_response -> 'result' -> 'changed', 'true'::jsonb, 'room delivery changed');
  perform tests.eq(tests.recipients(v_response, 'delivered'), array['alice-1'], 'room delivery recipients: alice''s own');
  perform tests.eq((select last_delivered_seq from public.participants where conversation_id = v_room and user_id = tests.alice()),
    3::bigint, 'the room watermark is stored');
  perform tests.eq(
    (select array_agg(distinct coalesce(p ->> 'last_delivered_seq', 'null')) from jsonb_array_elements(
      public.conversation_json(v_room) -> 'participants') p),
    array['null'], 'no delivered receipt in a room''s Conversation JSON');
  v_expected := public.conversation_json(v_room);
  perform tests.act_as(tests.bob());
  perform tests.eq(public.get_conversation(v_room) -> 'conversation', v_expected, 'get_conversation in a room');
  perform tests.reset();
end
$$;

-- Across a block (alice blocks bob): neither hears of the other's delivery
-- or read in the group they share, nor in their 1:1, and neither sees the
-- other's receipts in get_conversation or update_conversation; carol still
-- hears and sees everyone's.
do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()]);
  v_direct uuid := (public.open_direct_conversation(tests.alice(), tests.bob()) -> 'result' -> 'conversation' ->> 'id')::uuid;
  v_receipts jsonb;
  v_seen jsonb;
  v_expected jsonb;
begin
  perform tests.send(tests.bob(), v_group, 'b1');    -- 2
  perform tests.send(tests.alice(), v_group, 'a1');  -- 3
  perform tests.send(tests.carol(), v_group, 'c1');  -- 4
  perform tests.send(tests.bob(), v_direct, 'hi');   -- 2
  perform tests.act_as(tests.alice());
  perform public.block_user(tests.bob());
  perform tests.reset();

  perform tests.eq(tests.recipients(public.mark_delivered(tests.alice(), v_group, 4), 'delivered'),
    array['alice-1', 'carol-1', 'carol-2'], 'alice''s delivery of bob''s and carol''s messages');
  perform tests.eq(tests.recipients(public.mark_delivered(tests.bob(), v_group, 4), 'delivered'),
    array['bob-1', 'carol-1', 'carol-2'], 'bob''s delivery of alice''s and carol''s messages');
  perform tests.eq(tests.recipients(public.mark_delivered(tests.carol(), v_group, 4), 'delivered'),
    array['alice-1', 'bob-1', 'carol-1', 'carol-2'], 'carol''s delivery');
  perform tests.eq(tests.recipients(public.mark_delivered(tests.alice(), v_direct, 2), 'delivered'),
    array['alice-1'], 'the 1:1: alice''s own devices only');
  perform tests.eq(tests.recipients(public.mark_read(tests.alice(), v_group, 4), 'read'),
    array['alice-1', 'carol-1', 'carol-2'], 'alice''s read');

  v_receipts := '{"last_read_seq": null, "last_delivered_seq": null}'::jsonb;
  perform tests.act_as(tests.alice());
  v_seen := public.get_conversation(v_group) -> 'conversation' -> 'participants';
  perform tests.eq(
    (select jsonb_object_agg(p ->> 'user_id', jsonb_build_object('last_read_seq', p -> 'last_read_seq',
      'last_delivered_seq', p -> 'last_delivered_seq')) from jsonb_array_elements(v_seen) p),
    jsonb_build_object(tests.alice(), jsonb_build_object('last_read_seq', 4, 'last_delivered_seq', 4),
      tests.bob(), v_receipts,
      tests.carol(), jsonb_build_object('last_read_seq', 0, 'last_delivered_seq', 4)),
    'alice sees no receipt of bob''s');
  perform tests.eq(jsonb_array_length(v_seen), 3, 'every member is still listed');
  perform tests.act_as(tests.bob());
  perform tests.eq(
    (select p - 'user_id' - 'role' - 'joined_at' - 'profile' from jsonb_array_elements(
      public.get_conversation(v_direct) -> 'conversation' -> 'participants') p where p ->> 'user_id' = tests.alice()::text),
    v_receipts, 'bob sees no receipt of alice''s in their 1:1');
  perform tests.reset();
  v_expected := public.conversation_json(v_group);
  perform tests.act_as(tests.carol());
  perform tests.eq(public.get_conversation(v_group) -> 'conversation', v_expected, 'carol sees every receipt');
  perform tests.act_as_service();
  perform tests.eq(
    (select p - 'user_id' - 'role' - 'joined_at' - 'profile' from jsonb_array_elements(
      public.update_conversation(tests.bob(), v_group, null, true) -> 'result' -> 'conversation' -> 'participants') p
      where p ->> 'user_id' = tests.alice()::text),
    v_receipts, 'update_conversation answers bob without alice''s receipts');
  perform tests.reset();
end
$$;
