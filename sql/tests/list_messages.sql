-- list_messages: membership, paging in both directions, limits, deleted messages.
-- Fixture: a group of alice and bob with 7 messages, seq 2..8 (seq 1 is
-- conversation.created).

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob()]);
  i int;
begin
  for i in 1..7 loop
    perform tests.send(case when i % 2 = 1 then tests.alice() else tests.bob() end, v_group, 'message ' || i);
  end loop;
  insert into fixture values ('group', v_group);
end
$$;

-- The seqs of a page, and its has_more.
create function pg_temp.page(p_result jsonb) returns jsonb language sql as $$
  select jsonb_build_object(
    'seqs', coalesce((select jsonb_agg((m ->> 'seq')::bigint) from jsonb_array_elements(p_result -> 'messages') m), '[]'::jsonb),
    'has_more', p_result -> 'has_more')
$$;

do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
begin
  perform tests.act_as(tests.bob());

  perform tests.eq(pg_temp.page(public.list_messages(v_group)),
    '{"seqs": [2, 3, 4, 5, 6, 7, 8], "has_more": false}'::jsonb, 'default page');

  -- Backwards (history): the newest before a seq, ascending.
  perform tests.eq(pg_temp.page(public.list_messages(v_group, null, null, 3)),
    '{"seqs": [6, 7, 8], "has_more": true}'::jsonb, 'newest 3');
  perform tests.eq(pg_temp.page(public.list_messages(v_group, 6, null, 3)),
    '{"seqs": [3, 4, 5], "has_more": true}'::jsonb, '3 before seq 6');
  perform tests.eq(pg_temp.page(public.list_messages(v_group, 4, null, 3)),
    '{"seqs": [2, 3], "has_more": false}'::jsonb, '3 before seq 4');
  perform tests.eq(pg_temp.page(public.list_messages(v_group, 5, null, 3)),
    '{"seqs": [2, 3, 4], "has_more": false}'::jsonb, 'exactly the last 3 before seq 5');
  perform tests.eq(pg_temp.page(public.list_messages(v_group, 2, null, 3)),
    '{"seqs": [], "has_more": false}'::jsonb, 'before the first message');

  -- Forwards (catching up): the oldest after a seq, ascending.
  perform tests.eq(pg_temp.page(public.list_messages(v_group, null, 0, 3)),
    '{"seqs": [2, 3, 4], "has_more": true}'::jsonb, '3 after seq 0');
  perform tests.eq(pg_temp.page(public.list_messages(v_group, null, 4, 3)),
    '{"seqs": [5, 6, 7], "has_more": true}'::jsonb, '3 after seq 4');
  perform tests.eq(pg_temp.page(public.list_messages(v_group, null, 5, 3)),
    '{"seqs": [6, 7, 8], "has_more": false}'::jsonb, 'exactly the last 3 after seq 5');
  perform tests.eq(pg_temp.page(public.list_messages(v_group, null, 8, 3)),
    '{"seqs": [], "has_more": false}'::jsonb, 'after the latest message');

  -- Named parameters, as PostgREST passes them.
  perform tests.eq(pg_temp.page(public.list_messages(p_conversation_id => v_group, p_after_seq => 6)),
    '{"seqs": [7, 8], "has_more": false}'::jsonb, 'after_seq alone, by name');

  -- Limits are clamped to 1..100.
  perform tests.eq(pg_temp.page(public.list_messages(v_group, null, null, 0)),
    '{"seqs": [8], "has_more": true}'::jsonb, 'limit 0 acts as 1');
  perform tests.eq(pg_temp.page(public.list_messages(v_group, null, null, -5)),
    '{"seqs": [8], "has_more": true}'::jsonb, 'negative limit acts as 1');
  perform tests.eq(pg_temp.page(public.list_messages(v_group, null, null, null)),
    '{"seqs": [2, 3, 4, 5, 6, 7, 8], "has_more": false}'::jsonb, 'null limit acts as the default');

  perform tests.raises(format('select public.list_messages(%L, 5, 2)', v_group), 'invalid_argument',
    'both before_seq and after_seq');
  perform tests.reset();
end
$$;

-- At most 100 a page.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_result jsonb;
  i int;
begin
  for i in 1..100 loop
    perform tests.send(tests.alice(), v_group, 'bulk ' || i);
  end loop;
  perform tests.act_as(tests.alice());
  v_result := public.list_messages(v_group, null, null, 1000);
  perform tests.reset();
  perform tests.eq(jsonb_array_length(v_result -> 'messages'), 100, 'messages in a page asked for 1000');
  perform tests.eq(v_result -> 'has_more', 'true'::jsonb, 'has_more with 107 messages');
  perform tests.eq((v_result -> 'messages' -> 99 ->> 'seq')::bigint, 108::bigint, 'last seq of the newest page');
end
$$;

-- A deleted message keeps its place but shows no content.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_message jsonb;
begin
  update public.messages set deleted_at = now() where conversation_id = v_group and seq = 3;
  perform tests.act_as(tests.alice());
  select m into v_message
  from jsonb_array_elements(public.list_messages(v_group, 5, null, 10) -> 'messages') m
  where (m ->> 'seq')::bigint = 3;
  perform tests.reset();

  perform tests.check(v_message is not null, 'deleted message is listed');
  perform tests.eq(v_message -> 'body', 'null'::jsonb, 'deleted message body');
  perform tests.eq(v_message -> 'attachment', 'null'::jsonb, 'deleted message attachment');
  perform tests.check(v_message -> 'deleted_at' <> 'null'::jsonb, 'deleted message has deleted_at');
end
$$;

-- Non-members, anon and callers without a user are refused; a missing
-- conversation looks exactly like someone else's.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_foreign jsonb;
  v_missing jsonb;
begin
  perform tests.act_as(tests.dave());
  v_foreign := tests.error_of(format('select public.list_messages(%L)', v_group));
  v_missing := tests.error_of(format('select public.list_messages(%L)', gen_random_uuid()));
  perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'non-member lists messages');
  perform tests.eq(v_missing, v_foreign, 'error for a missing conversation equals the non-member error');
  perform tests.raises('select public.list_messages(null)', 'not_a_participant', 'list without a conversation');

  perform tests.act_as_anon();
  perform tests.denied(format('select public.list_messages(%L)', v_group), 'anon lists messages');

  perform tests.act_as_service();
  perform tests.raises(format('select public.list_messages(%L)', v_group), 'not_a_participant',
    'service_role lists without a user');
  perform tests.reset();

  update public.participants set left_at = now() where conversation_id = v_group and user_id = tests.bob();
  perform tests.act_as(tests.bob());
  perform tests.raises(format('select public.list_messages(%L)', v_group), 'not_a_participant', 'former participant lists');
  perform tests.reset();
end
$$;
