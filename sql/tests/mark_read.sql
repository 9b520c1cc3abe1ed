-- Read receipts and unread counts: mark_read (the watermark never goes
-- back), unread_count (others' messages that still say something),
-- unread_counts, and who hears of a read.
-- Fixture: a group of alice, bob and carol:
--   seq 1 conversation.created, 2 alice, 3 bob, 4 bob (deleted later),
--   5 bob, 6 a system message, 7 message.deleted (of seq 4).

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()]);
  v_deleted uuid;
  v_seq bigint;
begin
  perform tests.send(tests.alice(), v_group, 'a1');
  perform tests.send(tests.bob(), v_group, 'b1');
  v_deleted := tests.id(tests.send(tests.bob(), v_group, 'b2'));
  perform tests.send(tests.bob(), v_group, 'b3');
  v_seq := public.next_conversation_seq(v_group);
  with m as (
    insert into public.messages (conversation_id, seq, sender_id, kind, body)
    values (v_group, v_seq, null, 'system', 'carol was promoted')
    returning *
  )
  insert into public.conversation_events (conversation_id, seq, type, message_id, payload)
  select v_group, v_seq, 'message.created', m.id, public.message_json(m) from m;
  perform public.delete_message(tests.bob(), v_deleted);

  perform tests.connect('alice-1', tests.alice());
  perform tests.connect('bob-1', tests.bob());
  perform tests.connect('bob-expired', tests.bob(), false);
  perform tests.connect('dave-1', tests.dave());
  insert into fixture values ('group', v_group);
end
$$;

-- Unread counts start at the others' live messages (system ones included).
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
begin
  perform tests.eq((select last_seq from public.conversations where id = v_group), 7::bigint, 'fixture last_seq');
  perform tests.eq(public.unread_count(v_group, tests.alice(), 0), 3::bigint, 'alice: b1, b3, system');
  perform tests.eq(public.unread_count(v_group, tests.bob(), 0), 2::bigint, 'bob: a1, system (not his own, not the deleted)');
  perform tests.eq(public.unread_count(v_group, tests.carol(), 0), 4::bigint, 'carol: a1, b1, b3, system');
  perform tests.eq(public.unread_count(v_group, tests.carol(), 5), 1::bigint, 'carol after seq 5: system');
  perform tests.eq(public.unread_count(v_group, tests.carol(), 7), 0::bigint, 'carol after everything');

  perform tests.act_as(tests.carol());
  perform tests.eq(public.get_conversation(v_group) -> 'me' -> 'unread_count', '4'::jsonb, 'get_conversation unread_count');
  perform tests.eq(public.list_conversations() -> 'conversations' -> 0 -> 'unread_count', '4'::jsonb,
    'list_conversations unread_count');
  perform tests.reset();
end
$$;

-- Marking read moves the watermark forward, pushes a read event (no seq) to
-- every member's live connections, and never moves it back.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_response jsonb;
  v_event jsonb;
begin
  perform tests.act_as_service();
  v_response := public.mark_read(tests.alice(), v_group, 3);
  perform tests.reset();

  perform tests.eq(v_response -> 'result', jsonb_build_object('conversation_id', v_group, 'last_read_seq', 3,
    'unread_count', 2, 'changed', true), 'result');
  perform tests.eq((select last_read_seq from public.participants where conversation_id = v_group and user_id = tests.alice()),
    3::bigint, 'stored watermark');
  v_event := v_response -> 'deliveries' -> 0 -> 'event';
  perform tests.eq(v_event - 'data', jsonb_build_object('type', 'read', 'conversation_id', v_group), 'read envelope (no seq)');
  perform tests.eq((v_event -> 'data') - 'read_at', jsonb_build_object('user_id', tests.alice(), 'last_read_seq', 3), 'read data');
  perform tests.check((v_event -> 'data' ->> 'read_at')::timestamptz is not null, 'read_at');
  perform tests.eq(tests.recipients(v_response, 'read'), array['alice-1', 'bob-1'], 'read recipients');
  perform tests.eq((select last_seq from public.conversations where id = v_group), 7::bigint, 'a read takes no seq');

  -- Back, or the same: nothing changes, nothing is pushed.
  v_response := public.mark_read(tests.alice(), v_group, 2);
  perform tests.eq(v_response -> 'result', jsonb_build_object('conversation_id', v_group, 'last_read_seq', 3,
    'unread_count', 2, 'changed', false), 'marking an earlier seq');
  perform tests.eq(v_response -> 'deliveries', '[]'::jsonb, 'marking an earlier seq pushes');
  perform tests.eq(public.mark_read(tests.alice(), v_group, 3) -> 'result' -> 'changed', 'false'::jsonb, 'marking the same seq');
  perform tests.eq(public.mark_read(tests.alice(), v_group, 0) -> 'result' -> 'last_read_seq', '3'::jsonb, 'marking seq 0');

  -- Beyond the latest: clamped. No seq: the latest.
  v_response := public.mark_read(tests.alice(), v_group, 1000);
  perform tests.eq(v_response -> 'result' -> 'last_read_seq', '7'::jsonb, 'a seq past the end is clamped');
  perform tests.eq(v_response -> 'result' -> 'unread_count', '0'::jsonb, 'nothing unread after reading everything');
  v_response := public.mark_read(tests.bob(), v_group);
  perform tests.eq(v_response -> 'result' -> 'last_read_seq', '7'::jsonb, 'no seq reads up to the latest');
  perform tests.eq(v_response -> 'result' -> 'changed', 'true'::jsonb, 'no seq changes');
  perform tests.eq(public.mark_read(tests.carol(), v_group, null) -> 'result' -> 'last_read_seq', '7'::jsonb, 'null seq');

  -- Read receipts are in the Conversation JSON.
  perform tests.eq(
    (select jsonb_object_agg(p ->> 'user_id', p -> 'last_read_seq') from jsonb_array_elements(
      public.conversation_json(v_group) -> 'participants') p),
    jsonb_build_object(tests.alice(), 7, tests.bob(), 7, tests.carol(), 7), 'read receipts in the Conversation JSON');

  -- New messages: the others' count, one's own does not.
  perform tests.send(tests.bob(), v_group, 'b4');
  perform tests.send(tests.alice(), v_group, 'a2');
  perform tests.eq(public.unread_count(v_group, tests.alice(), 7), 1::bigint, 'alice after new messages');
  perform tests.eq(public.unread_count(v_group, tests.bob(), 7), 1::bigint, 'bob after new messages');
  perform tests.eq(public.unread_count(v_group, tests.carol(), 7), 2::bigint, 'carol after new messages');
end
$$;

-- Refusals.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_foreign jsonb;
begin
  perform tests.raises(format('select public.mark_read(%L, %L, -1)', tests.alice(), v_group), 'invalid_argument', 'a negative seq');
  v_foreign := tests.error_of(format('select public.mark_read(%L, %L, 1)', tests.dave(), v_group));
  perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'an outsider marks read');
  perform tests.eq(tests.error_of(format('select public.mark_read(%L, %L, 1)', tests.dave(), gen_random_uuid())), v_foreign,
    'marking a missing conversation looks the same');
  perform tests.eq(tests.error_of(format('select public.mark_read(%L, %L, -1)', tests.dave(), v_group)), v_foreign,
    'an outsider with a bad seq learns nothing more');

  perform tests.act_as(tests.alice());
  perform tests.denied(format('select public.mark_read(%L, %L)', tests.alice(), v_group), 'a signed-in user marks read directly');
  perform tests.act_as_anon();
  perform tests.denied(format('select public.mark_read(%L, %L)', tests.alice(), v_group), 'anon marks read');
  perform tests.reset();
end
$$;

-- In a room, only the reader's own devices hear of the read.
do $$
declare
  v_room uuid := tests.make_conversation('room', tests.bob(), array[tests.alice(), tests.dave()]);
  v_response jsonb;
begin
  perform tests.send(tests.bob(), v_room, 'welcome');
  perform tests.connect('alice-2', tests.alice());
  v_response := public.mark_read(tests.alice(), v_room);
  perform tests.eq(v_response -> 'result' -> 'changed', 'true'::jsonb, 'room read changed');
  perform tests.eq(tests.recipients(v_response, 'read'), array['alice-1', 'alice-2'], 'room read recipients');
end
$$;

-- unread_counts: the caller's current conversations with something unread.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_muted uuid := tests.make_conversation('group', tests.bob(), array[tests.carol()]);
  v_left uuid := tests.make_conversation('group', tests.bob(), array[tests.carol()]);
  v_read uuid := tests.make_conversation('group', tests.bob(), array[tests.carol()]);
  v_counts jsonb;
begin
  perform tests.send(tests.bob(), v_muted, 'm1');
  perform tests.send(tests.bob(), v_muted, 'm2');
  perform tests.send(tests.bob(), v_muted, 'm3');
  perform public.update_conversation(tests.carol(), v_muted, null, null, true);
  perform tests.send(tests.bob(), v_left, 'gone');
  perform public.leave_conversation(tests.carol(), v_left);
  perform tests.send(tests.bob(), v_read, 'seen');
  perform public.mark_read(tests.carol(), v_read);
  perform tests.send(tests.carol(), v_read, 'my own');

  perform tests.act_as(tests.carol());
  v_counts := public.unread_counts();
  perform tests.reset();

  perform tests.eq(v_counts -> 'total', '5'::jsonb, 'total (muted included)');
  perform tests.eq(tests.sorted(v_counts -> 'conversations'), tests.sorted(jsonb_build_array(
    jsonb_build_object('conversation_id', v_group, 'unread_count', 2, 'muted', false),
    jsonb_build_object('conversation_id', v_muted, 'unread_count', 3, 'muted', true))),
    'conversations with unread messages (not the left one, not the read one)');

  perform tests.act_as(gen_random_uuid());
  perform tests.eq(public.unread_counts(), '{"total": 0, "conversations": []}'::jsonb, 'someone in nothing');
  perform tests.act_as_service();
  perform tests.raises('select public.unread_counts()', 'invalid_argument', 'service_role without a user');
  perform tests.reset();
end
$$;
