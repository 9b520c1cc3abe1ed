-- list_rooms: every public room (never a group or 1:1), newest activity
-- first, paged by an opaque cursor that returns every room exactly once,
-- with its counts and whether the caller is in it.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;
create temporary table activity (id uuid primary key, at timestamptz not null) on commit drop;

do $$
declare
  v_id uuid;
  i int;
begin
  for i in 1..17 loop
    v_id := tests.make_conversation('room', case when i % 2 = 0 then tests.alice() else tests.bob() end,
      array[]::uuid[], 'Room ' || i);
    -- Pairs share an activity time: the id decides between them.
    insert into activity values (v_id, timestamptz '2026-05-01 12:00:00+00' - (i / 2) * interval '1 hour');
  end loop;
  -- Not rooms: never listed.
  perform tests.make_conversation('group', tests.alice(), array[tests.bob()], 'Room 1');
  perform public.open_direct_conversation(tests.alice(), tests.bob());

  -- One room with members and messages, one deleted.
  v_id := (select id from public.conversations where kind = 'room' and name = 'Room 5');
  perform public.join_room(tests.carol(), v_id);
  perform public.join_room(tests.dave(), v_id);
  perform public.leave_conversation(tests.dave(), v_id);
  perform tests.send(tests.carol(), v_id, 'one');
  perform tests.send(tests.bob(), v_id, 'two');
  perform public.delete_message(tests.carol(), (select id from public.messages where body = 'one'));
  insert into fixture values ('room5', v_id);

  update public.conversation_events e
     set created_at = a.at
    from activity a, public.conversations c
   where e.conversation_id = a.id
     and c.id = a.id
     and e.seq = c.last_seq;
end
$$;

create function pg_temp.all_pages(p_user uuid, p_limit int) returns uuid[] language plpgsql as $$
declare
  v_page jsonb;
  v_cursor text;
  v_ids uuid[] := '{}';
  v_pages int := 0;
begin
  perform tests.act_as(p_user);
  loop
    v_page := public.list_rooms(p_limit, v_cursor);
    v_pages := v_pages + 1;
    v_ids := v_ids || array(select (r ->> 'id')::uuid from jsonb_array_elements(v_page -> 'rooms') r);
    exit when v_page -> 'next_cursor' = 'null'::jsonb;
    perform tests.eq(jsonb_array_length(v_page -> 'rooms'), p_limit, 'size of a page with a next page');
    v_cursor := v_page ->> 'next_cursor';
    perform tests.check(v_pages < 100, 'paging ends');
  end loop;
  perform tests.reset();
  return v_ids;
end;
$$;

-- Every room exactly once, in order, for anyone signed in, member or not.
do $$
declare
  v_expected uuid[] := array(select a.id from activity a order by a.at desc, a.id desc);
  v_size int;
begin
  foreach v_size in array array[1, 3, 4, 8, 16, 17, 50] loop
    perform tests.eq(pg_temp.all_pages(tests.dave(), v_size), v_expected, format('all pages of %s', v_size));
  end loop;
  perform tests.eq(pg_temp.all_pages(tests.alice(), 6), v_expected, 'all pages of 6 for a room owner');

  perform tests.act_as(tests.dave());
  perform tests.eq(jsonb_array_length(public.list_rooms() -> 'rooms'), 17, 'default limit 50');
  perform tests.eq(jsonb_array_length(public.list_rooms(0) -> 'rooms'), 1, 'limit 0 acts as 1');
  perform tests.eq(public.list_rooms(17) -> 'next_cursor', 'null'::jsonb, 'an exact single page');
  perform tests.raises('select public.list_rooms(10, ''nope!'')', 'invalid_cursor', 'a made-up cursor');
  perform tests.raises(format('select public.list_rooms(10, %L)',
    rtrim(translate(encode(convert_to('now|x', 'UTF8'), 'base64'), '+/', '-_'), '=')), 'invalid_cursor', 'a malformed cursor');
  perform tests.act_as_service();
  perform tests.raises('select public.list_rooms()', 'invalid_argument', 'service_role without a user');
  perform tests.reset();
end
$$;

-- What a room entry says.
do $$
declare
  v_room uuid := (select id from fixture where name = 'room5');
  v_entry jsonb;
begin
  perform tests.act_as(tests.carol());
  v_entry := (select r from jsonb_array_elements(public.list_rooms(100) -> 'rooms') r where (r ->> 'id')::uuid = v_room);
  perform tests.reset();
  perform tests.eq(v_entry, jsonb_build_object(
    'id', v_room, 'name', 'Room 5', 'created_by', tests.bob(),
    'created_at', (select created_at from public.conversations where id = v_room),
    'member_count', 2, 'message_count', 1,
    'last_activity_at', (select at from activity where id = v_room), 'joined', true), 'a room entry');

  perform tests.act_as(tests.dave());
  perform tests.eq((select r -> 'joined' from jsonb_array_elements(public.list_rooms(100) -> 'rooms') r
    where (r ->> 'id')::uuid = v_room), 'false'::jsonb, 'joined, for someone who left');
  perform tests.reset();
end
$$;
