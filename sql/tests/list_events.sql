-- list_events: the durable events after a seq, as the envelopes the
-- WebSocket pushed, for current participants only; paging and limits.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob()]);
  v_message uuid;
begin
  -- seq 2 message, 3 message, 4 member.joined, 5 message.updated (of 2),
  -- 6 conversation.updated, 7 member.left, 8 message.deleted (of 3).
  v_message := tests.id(tests.send(tests.alice(), v_group, 'first'));
  perform tests.send(tests.bob(), v_group, 'second');
  perform public.add_members(tests.alice(), v_group, array[tests.carol()]);
  perform public.edit_message(tests.alice(), v_message, 'first, edited');
  perform public.update_conversation(tests.alice(), v_group, 'Renamed');
  perform public.leave_conversation(tests.carol(), v_group);
  perform public.delete_message(tests.bob(), (select id from public.messages where body = 'second'));
  insert into fixture values ('group', v_group);
end
$$;

do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_result jsonb;
  v_event public.conversation_events;
begin
  perform tests.act_as(tests.bob());
  v_result := public.list_events(v_group);
  perform tests.reset();

  perform tests.eq(v_result -> 'has_more', 'false'::jsonb, 'has_more');
  perform tests.eq(v_result -> 'last_seq', '8'::jsonb, 'last_seq');
  perform tests.eq((select array_agg(e ->> 'type' order by n) from jsonb_array_elements(v_result -> 'events') with ordinality t (e, n)),
    array['conversation.created', 'message.created', 'message.created', 'member.joined', 'message.updated',
      'conversation.updated', 'member.left', 'message.deleted'], 'types in seq order');
  perform tests.eq((select array_agg((e ->> 'seq')::int order by n) from jsonb_array_elements(v_result -> 'events') with ordinality t (e, n)),
    array[1, 2, 3, 4, 5, 6, 7, 8], 'seqs');

  -- Each is the envelope with its actor and time, and the payload as stored
  -- (rewritten by later edits and deletes).
  select * into v_event from public.conversation_events where conversation_id = v_group and seq = 2;
  perform tests.eq(v_result -> 'events' -> 1, jsonb_build_object('type', 'message.created', 'conversation_id', v_group,
    'seq', 2, 'data', v_event.payload, 'actor_id', tests.alice(), 'created_at', v_event.created_at), 'an event');
  perform tests.eq(v_result -> 'events' -> 1 -> 'data' ->> 'body', 'first, edited', 'an edited message''s created event');
  perform tests.eq(v_result -> 'events' -> 2 -> 'data' -> 'body', 'null'::jsonb, 'a deleted message''s created event');

  -- Paging forward.
  perform tests.act_as(tests.bob());
  v_result := public.list_events(v_group, 3, 2);
  perform tests.eq((select array_agg((e ->> 'seq')::int) from jsonb_array_elements(v_result -> 'events') e), array[4, 5],
    'two after seq 3');
  perform tests.eq(v_result -> 'has_more', 'true'::jsonb, 'more after seq 5');
  v_result := public.list_events(v_group, 6, 2);
  perform tests.eq((select array_agg((e ->> 'seq')::int) from jsonb_array_elements(v_result -> 'events') e), array[7, 8],
    'the last two');
  perform tests.eq(v_result -> 'has_more', 'false'::jsonb, 'nothing after the last two');
  perform tests.eq(public.list_events(v_group, 8) -> 'events', '[]'::jsonb, 'after the latest');
  perform tests.eq(public.list_events(v_group, 100) -> 'events', '[]'::jsonb, 'past the latest');
  perform tests.eq(jsonb_array_length(public.list_events(v_group, null) -> 'events'), 8, 'a null after_seq is 0');
  perform tests.eq(jsonb_array_length(public.list_events(v_group, 0, 0) -> 'events'), 1, 'limit 0 acts as 1');
  perform tests.eq(jsonb_array_length(public.list_events(p_conversation_id => v_group, p_limit => null) -> 'events'), 8,
    'a null limit is the default');
  perform tests.raises(format('select public.list_events(%L, -1)', v_group), 'invalid_argument', 'a negative after_seq');
  perform tests.reset();
end
$$;

-- At most 500 a page.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_result jsonb;
  i int;
begin
  for i in 1..500 loop
    perform tests.send(tests.alice(), v_group, 'bulk ' || i);
  end loop;
  perform tests.act_as(tests.alice());
  v_result := public.list_events(v_group, 0, 10000);
  perform tests.reset();
  perform tests.eq(jsonb_array_length(v_result -> 'events'), 500, 'events in a page asked for 10000');
  perform tests.eq(v_result -> 'has_more', 'true'::jsonb, 'has_more with 508 events');
  perform tests.eq(v_result -> 'last_seq', '508'::jsonb, 'last_seq');
end
$$;

-- Outsiders, missing ids and former members: the same refusal.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_foreign jsonb;
begin
  perform tests.act_as(tests.dave());
  v_foreign := tests.error_of(format('select public.list_events(%L)', v_group));
  perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'an outsider lists events');
  perform tests.eq(tests.error_of(format('select public.list_events(%L)', gen_random_uuid())), v_foreign,
    'a missing conversation looks the same');
  perform tests.eq(tests.error_of(format('select public.list_events(%L, -5)', v_group)), v_foreign,
    'an outsider with a bad argument learns nothing more');
  perform tests.act_as(tests.carol());
  perform tests.eq(tests.error_of(format('select public.list_events(%L)', v_group)), v_foreign, 'a former member');
  perform tests.act_as_anon();
  perform tests.denied(format('select public.list_events(%L)', v_group), 'anon');
  perform tests.act_as_service();
  perform tests.eq(tests.error_of(format('select public.list_events(%L)', v_group)), v_foreign, 'service_role without a user');
  perform tests.reset();
end
$$;
