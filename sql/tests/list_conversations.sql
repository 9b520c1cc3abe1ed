-- list_conversations: the caller's current conversations, newest activity
-- first, paged by an opaque cursor that returns every row exactly once;
-- what each entry says; the archived filter; bad cursors.
-- Also the cursor helpers themselves.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;
-- The activity time each of alice's conversations is given, to know the order.
create temporary table activity (id uuid primary key, at timestamptz not null) on commit drop;

do $$
declare
  v_id uuid;
  i int;
begin
  -- 23 groups; several share an activity time, so the id decides among them.
  for i in 1..23 loop
    v_id := tests.make_conversation('group', tests.alice(), array[tests.bob()], 'group ' || i);
    insert into activity values (v_id, timestamptz '2026-01-01 00:00:00+00' + (i / 3) * interval '1 minute'
      + interval '0.000001 second' * (i % 2));
  end loop;
  -- A 1:1, a room, an archived group, one alice left, one she was never in.
  v_id := (public.open_direct_conversation(tests.carol(), tests.alice()) -> 'result' -> 'conversation' ->> 'id')::uuid;
  insert into fixture values ('direct', v_id);
  insert into activity values (v_id, '2026-02-01 00:00:00+00');
  v_id := tests.make_conversation('room', tests.dave(), array[tests.alice()], 'Plaza');
  insert into fixture values ('room', v_id);
  insert into activity values (v_id, '2025-12-01 00:00:00+00');
  v_id := tests.make_conversation('group', tests.bob(), array[tests.alice()], 'archived');
  update public.participants set archived = true, muted = true where conversation_id = v_id and user_id = tests.alice();
  insert into fixture values ('archived', v_id);
  insert into activity values (v_id, '2026-01-01 00:05:00+00');
  v_id := tests.make_conversation('group', tests.alice(), array[tests.bob()], 'left');
  perform public.leave_conversation(tests.alice(), v_id);
  insert into fixture values ('left', v_id);
  insert into fixture values ('foreign', tests.make_conversation('group', tests.bob(), array[tests.carol()], 'foreign'));
end
$$;

-- Messages in the 1:1 (the latest one deleted) and in the room, then the
-- activity times: the created_at of each conversation's latest event.
do $$
declare
  v_direct uuid := (select id from fixture where name = 'direct');
  v_room uuid := (select id from fixture where name = 'room');
begin
  perform tests.send(tests.carol(), v_direct, 'hi alice');
  perform tests.send(tests.alice(), v_direct, 'hi carol');
  perform tests.send(tests.carol(), v_direct, 'are you there?');
  perform public.delete_message(tests.carol(), (select id from public.messages where body = 'hi alice'));
  perform tests.send(tests.dave(), v_room, 'welcome');
  perform public.mark_read(tests.alice(), v_direct, 3);

  update public.conversation_events e
     set created_at = a.at
    from activity a, public.conversations c
   where e.conversation_id = a.id
     and c.id = a.id
     and e.seq = c.last_seq;
end
$$;

-- Pages of the given size, following next_cursor, as alice; returns the ids
-- in order and checks each page's size.
create function pg_temp.all_pages(p_limit int, p_archived boolean default null) returns uuid[] language plpgsql as $$
declare
  v_page jsonb;
  v_cursor text;
  v_ids uuid[] := '{}';
  v_pages int := 0;
begin
  perform tests.act_as(tests.alice());
  loop
    v_page := public.list_conversations(p_limit, v_cursor, p_archived);
    v_pages := v_pages + 1;
    v_ids := v_ids || array(select (c ->> 'id')::uuid from jsonb_array_elements(v_page -> 'conversations') c);
    if v_page -> 'next_cursor' = 'null'::jsonb then
      exit;
    end if;
    perform tests.eq(jsonb_array_length(v_page -> 'conversations'), p_limit, 'size of a page with a next page');
    v_cursor := v_page ->> 'next_cursor';
    perform tests.check(v_cursor ~ '^[A-Za-z0-9_-]+$', 'the cursor is base64url without padding: ' || v_cursor);
    perform tests.check(v_pages < 100, 'paging ends');
  end loop;
  perform tests.reset();
  return v_ids;
end;
$$;

-- Every current conversation exactly once, newest activity first (ties by
-- id, descending), whatever the page size.
do $$
declare
  v_expected uuid[] := array(
    select a.id from activity a
    where a.id <> (select id from fixture where name = 'left')
    order by a.at desc, a.id desc);
  v_size int;
begin
  perform tests.eq(cardinality(v_expected), 26, 'alice''s current conversations');
  foreach v_size in array array[1, 2, 5, 7, 13, 26, 100] loop
    perform tests.eq(pg_temp.all_pages(v_size), v_expected, format('all pages of %s', v_size));
  end loop;

  -- The archived filter pages the same way.
  perform tests.eq(pg_temp.all_pages(1, true), array[(select id from fixture where name = 'archived')], 'archived only');
  perform tests.eq(pg_temp.all_pages(4, false), array_remove(v_expected, (select id from fixture where name = 'archived')),
    'not archived');

  -- The same pages whatever the session's time zone and date style.
  set local timezone = 'America/Los_Angeles';
  set local datestyle = 'SQL, DMY';
  perform tests.eq(pg_temp.all_pages(3), v_expected, 'all pages of 3 in another time zone and date style');
  reset timezone;
  reset datestyle;
end
$$;

-- An exact last page says there is no next one; limits are clamped.
do $$
declare
  v_page jsonb;
begin
  perform tests.act_as(tests.alice());
  perform tests.eq(public.list_conversations(26) -> 'next_cursor', 'null'::jsonb, 'an exact single page');
  perform tests.eq(jsonb_array_length(public.list_conversations() -> 'conversations'), 20, 'default limit');
  perform tests.eq(jsonb_array_length(public.list_conversations(0) -> 'conversations'), 1, 'limit 0 acts as 1');
  perform tests.eq(jsonb_array_length(public.list_conversations(-3) -> 'conversations'), 1, 'a negative limit acts as 1');
  perform tests.eq(jsonb_array_length(public.list_conversations(1000) -> 'conversations'), 26, 'limit capped (100)');
  v_page := public.list_conversations(25);
  perform tests.eq(jsonb_array_length(public.list_conversations(25, v_page ->> 'next_cursor') -> 'conversations'), 1,
    'the last page of one');
  perform tests.eq(public.list_conversations(25, v_page ->> 'next_cursor') -> 'next_cursor', 'null'::jsonb,
    'the last page has no next cursor');

  -- Someone in nothing.
  perform tests.act_as(gen_random_uuid());
  perform tests.eq(public.list_conversations(), '{"conversations": [], "next_cursor": null}'::jsonb, 'a user in nothing');
  perform tests.act_as_service();
  perform tests.raises('select public.list_conversations()', 'invalid_argument', 'service_role without a user');
  perform tests.reset();
end
$$;

-- What an entry says.
do $$
declare
  v_direct uuid := (select id from fixture where name = 'direct');
  v_room uuid := (select id from fixture where name = 'room');
  v_archived uuid := (select id from fixture where name = 'archived');
  v_list jsonb;
  v_entry jsonb;
begin
  perform tests.act_as(tests.alice());
  v_list := public.list_conversations(100) -> 'conversations';
  perform tests.reset();

  v_entry := (select c from jsonb_array_elements(v_list) c where (c ->> 'id')::uuid = v_direct);
  perform tests.eq(
    (select array_agg(k order by k) from jsonb_object_keys(v_entry) k),
    array['archived', 'context_id', 'context_type', 'counterpart', 'created_at', 'id', 'kind', 'last_activity_at',
      'last_message', 'last_read_seq', 'last_seq', 'member_count', 'muted', 'name', 'other_user_id', 'role',
      'unread_count'],
    'entry keys');
  perform tests.eq(v_entry - 'last_message' - 'created_at', jsonb_build_object(
    'id', v_direct, 'kind', 'direct', 'name', null, 'context_type', null, 'context_id', null,
    'last_seq', 5, 'last_activity_at', '2026-02-01T00:00:00+00:00', 'member_count', 2,
    'other_user_id', tests.carol(), 'unread_count', 1, 'last_read_seq', 3, 'archived', false, 'muted', false,
    'role', 'member', 'counterpart', jsonb_build_object(
      'id', tests.carol(), 'username', 'carol', 'display_name', 'Carol', 'avatar_url', null)), 'a 1:1 entry');
  perform tests.eq(v_entry -> 'last_message' ->> 'body', 'are you there?', 'last_message of the 1:1');
  perform tests.eq(v_entry -> 'last_message',
    (select public.message_json(m) from public.messages m where m.conversation_id = v_direct order by seq desc limit 1),
    'last_message is the Message JSON of the highest seq');

  v_entry := (select c from jsonb_array_elements(v_list) c where (c ->> 'id')::uuid = v_room);
  perform tests.eq(v_entry -> 'other_user_id', 'null'::jsonb, 'a room has no other user');
  perform tests.eq(v_entry -> 'counterpart', 'null'::jsonb, 'a room has no counterpart');
  perform tests.eq(v_entry -> 'unread_count', '1'::jsonb, 'unread in the room');
  perform tests.eq(v_entry -> 'member_count', '2'::jsonb, 'room members');

  v_entry := (select c from jsonb_array_elements(v_list) c where (c ->> 'id')::uuid = v_archived);
  perform tests.eq(v_entry -> 'archived', 'true'::jsonb, 'archived, for its owner');
  perform tests.eq(v_entry -> 'muted', 'true'::jsonb, 'muted, for its owner');
  perform tests.eq(v_entry -> 'last_message', 'null'::jsonb, 'no messages, no last_message');
  perform tests.eq(v_entry ->> 'role', 'member', 'role');

  -- The last message may be a tombstone.
  perform public.delete_message(tests.carol(), (select id from public.messages where body = 'are you there?'));
  perform tests.act_as(tests.alice());
  v_entry := (select c from jsonb_array_elements(public.list_conversations(1) -> 'conversations') c);
  perform tests.reset();
  perform tests.eq((v_entry ->> 'id')::uuid, v_direct, 'new activity moves the 1:1 to the top');
  perform tests.eq(v_entry -> 'last_message' -> 'body', 'null'::jsonb, 'a deleted last message shows no body');
  perform tests.eq(v_entry -> 'unread_count', '0'::jsonb, 'deleted messages are not unread');

  -- bob's view of the shared archived group shows his settings, not alice's.
  perform tests.act_as(tests.bob());
  v_entry := (select c from jsonb_array_elements(public.list_conversations(100) -> 'conversations') c
    where (c ->> 'id')::uuid = v_archived);
  perform tests.reset();
  perform tests.eq(v_entry -> 'archived', 'false'::jsonb, 'bob''s archived');
  perform tests.eq(v_entry -> 'muted', 'false'::jsonb, 'bob''s muted');
  perform tests.eq(v_entry ->> 'role', 'owner', 'bob''s role');
end
$$;

-- Bad cursors: whatever a client makes up is invalid_cursor (400), never a
-- server error.
do $$
declare
  v_cursor text;
begin
  perform tests.act_as(tests.alice());
  foreach v_cursor in array array[
    '',
    'not a cursor',
    'abc=',
    'a',
    repeat('A', 201),
    rtrim(translate(encode(convert_to('hello', 'UTF8'), 'base64'), '+/', '-_'), '='),
    rtrim(translate(encode(convert_to('yesterday-ish|' || gen_random_uuid(), 'UTF8'), 'base64'), E'+/\n', '-_'), '='),
    rtrim(translate(encode(convert_to('2026-01-01T00:00:00Z|not-a-uuid-but-36-characters-long!!', 'UTF8'), 'base64'), E'+/\n', '-_'), '='),
    rtrim(translate(encode(convert_to('2026-13-45T00:00:00Z|' || gen_random_uuid(), 'UTF8'), 'base64'), E'+/\n', '-_'), '='),
    rtrim(translate(encode(convert_to('2026-01-01T00:00:00Z|' || gen_random_uuid() || '|x', 'UTF8'), 'base64'), E'+/\n', '-_'), '='),
    rtrim(translate(encode('\xfffefd7c'::bytea, 'base64'), '+/', '-_'), '=')
  ] loop
    perform tests.raises(format('select public.list_conversations(10, %L)', v_cursor), 'invalid_cursor', 'cursor ' || v_cursor);
  end loop;
  -- A null cursor is the first page.
  perform tests.eq(public.list_conversations(5, null), public.list_conversations(5), 'a null cursor');
  perform tests.reset();
end
$$;

-- The cursor helpers: a round trip keeps the microseconds and the id.
do $$
declare
  v_at timestamptz := '2026-03-04 05:06:07.890123+02';
  v_id uuid := gen_random_uuid();
  v_decoded record;
begin
  select * into v_decoded from public.decode_cursor(public.encode_cursor(v_at, v_id));
  perform tests.eq(v_decoded.o_at, v_at, 'decoded time');
  perform tests.eq(v_decoded.o_id, v_id, 'decoded id');
  perform tests.eq(convert_from(decode(translate(public.encode_cursor(v_at, v_id), '-_', '+/') || '==', 'base64'), 'UTF8'),
    '2026-03-04T03:06:07.890123Z|' || v_id, 'what the cursor holds');
  perform tests.check(public.encode_cursor(v_at, v_id) !~ '[=+/\s]', 'no padding, no +, /, or line breaks');
end
$$;
