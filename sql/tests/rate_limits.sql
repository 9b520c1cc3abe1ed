-- Rate limits: take_token's bucket (burst, refusal with the retry-after,
-- refill from the last update, a refusal storing nothing), each guarded RPC
-- (edits, renames and adding members too) refusing with nothing stored, a
-- repeated client_msg_id never limited, the
-- connection cap of register_connection, and no API role reaching the bucket.
-- Fresh users, so that no other test's calls share their buckets.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_users uuid[] := array[gen_random_uuid(), gen_random_uuid(), gen_random_uuid()];
begin
  insert into auth.users (id, email) select u, u::text || '@example.com' from unnest(v_users) u;
  insert into fixture values ('flooder', v_users[1]), ('friend', v_users[2]), ('bystander', v_users[3]);
  insert into fixture values
    ('direct', tests.make_conversation('group', v_users[1], array[v_users[2], v_users[3]])),
    ('room', tests.make_conversation('room', v_users[2], array[]::uuid[]));
end
$$;

create function pg_temp.user_of(p_name text) returns uuid language sql stable as $$
  select id from fixture where name = p_name
$$;

-- The retry-after of a statement's rate_limited refusal (ms), failing the test
-- when it is not refused that way.
create function pg_temp.retry_after_ms(p_sql text, p_what text) returns bigint language plpgsql as $$
declare
  v_message text;
  v_hint text;
begin
  execute p_sql;
  raise exception 'FAILED: %: expected rate_limited, but it succeeded', p_what;
exception
  when sqlstate 'P0001' then
    get stacked diagnostics v_message = message_text, v_hint = pg_exception_hint;
    if v_message <> 'rate_limited' then
      raise exception 'FAILED: %: expected rate_limited, got %', p_what, v_message;
    end if;
    return (v_hint::jsonb ->> 'retry_after_ms')::bigint;
end;
$$;

-- The bucket: a full burst, then refusals saying when the next token comes;
-- a refusal leaves the bucket as it was.
do $$
declare
  v_user uuid := pg_temp.user_of('flooder');
  v_retry bigint;
  v_tokens double precision;
begin
  for i in 1..3 loop
    perform public.take_token(v_user, 'typing', 60, 3);
  end loop;
  v_retry := pg_temp.retry_after_ms(format('select public.take_token(%L, ''typing'', 60, 3)', v_user), 'a 4th take of 3');
  -- 60 a minute: one token a second, and almost none has come back yet.
  perform tests.check(v_retry between 900 and 1000, format('the retry-after is about a second (%s ms)', v_retry));
  v_tokens := (select tokens from public.rate_limit_buckets where user_id = v_user and action = 'typing');
  perform tests.check(v_tokens < 0.1, format('the bucket is empty (%s)', v_tokens));

  -- Another action and another user have buckets of their own.
  perform public.take_token(v_user, 'join', 60, 3);
  perform public.take_token(pg_temp.user_of('friend'), 'typing', 60, 3);

  -- Refill from the last update, at most the burst: a minute ago at 60 a
  -- minute is far more than 3.
  update public.rate_limit_buckets set tokens = 0, updated_at = updated_at - interval '1 minute'
   where user_id = v_user and action = 'typing';
  for i in 1..3 loop
    perform public.take_token(v_user, 'typing', 60, 3);
  end loop;
  perform pg_temp.retry_after_ms(format('select public.take_token(%L, ''typing'', 60, 3)', v_user), 'refilled to the burst only');

  -- Half a token left at 2 a minute: the rest comes in 15 s.
  update public.rate_limit_buckets set tokens = 0.5, updated_at = clock_timestamp() + interval '1 hour'
   where user_id = v_user and action = 'typing';
  v_retry := pg_temp.retry_after_ms(format('select public.take_token(%L, ''typing'', 2, 3)', v_user), 'half a token');
  perform tests.eq(v_retry, 15000::bigint, 'the retry-after of half a token at 2 a minute');

  -- No limits given: not limited (SQL callers); half a limit is a mistake.
  perform public.take_token(v_user, 'typing', null, null);
  perform tests.raises(format('select public.take_token(%L, ''typing'', 60, null)', v_user), 'invalid_argument', 'a rate without a burst');
  perform tests.raises(format('select public.take_token(%L, ''typing'', 0, 3)', v_user), 'invalid_argument', 'a rate of 0');
  perform tests.raises(format('select public.take_token(%L, ''spam'', 60, 3)', v_user), '23514', 'an unknown action');
end
$$;

-- send_message: the burst is stored, the next is refused and stores nothing,
-- and a repeat of a stored client_msg_id is answered whatever the bucket holds.
do $$
declare
  v_user uuid := pg_temp.user_of('flooder');
  v_friend uuid := pg_temp.user_of('friend');
  v_conversation uuid := (select id from fixture where name = 'direct');
  v_result jsonb;
begin
  perform tests.act_as_service();
  perform public.send_message(v_user, v_conversation, 'm1', 'text', 'one', null, null, 60, 2);
  perform public.send_message(v_user, v_conversation, 'm2', 'text', 'two', null, null, 60, 2);
  perform pg_temp.retry_after_ms(
    format('select public.send_message(%L, %L, ''m3'', ''text'', ''three'', null, null, 60, 2)', v_user, v_conversation),
    'a third message of a burst of 2');
  v_result := public.send_message(v_user, v_conversation, 'm2', 'text', 'two', null, null, 60, 2);
  perform tests.eq(v_result -> 'result' ->> 'duplicate', 'true', 'a repeat is answered though the bucket is empty');
  -- The others in the conversation are not limited by the flooder's bucket.
  perform public.send_message(v_friend, v_conversation, 'f1', 'text', 'hi', null, null, 60, 2);
  perform tests.reset();

  perform tests.eq((select count(*) from public.messages where conversation_id = v_conversation and sender_id = v_user),
    2::bigint, 'messages stored for the flooder');
  perform tests.eq((select count(*) from public.conversation_events where conversation_id = v_conversation),
    4::bigint, 'events: conversation.created and three messages');
  perform tests.check_gap_free(v_conversation, 'after a refused send');
end
$$;

-- typing, creating, opening a direct conversation and joining a room: each
-- refused once its bucket is empty, with nothing stored.
do $$
declare
  v_user uuid := pg_temp.user_of('bystander');
  v_friend uuid := pg_temp.user_of('friend');
  v_room uuid := (select id from fixture where name = 'room');
  v_conversation uuid := (select id from fixture where name = 'direct');
  v_conversations bigint;
begin
  perform tests.act_as_service();
  perform public.send_typing(v_user, v_conversation, true, 60, 1);
  perform pg_temp.retry_after_ms(format('select public.send_typing(%L, %L, true, 60, 1)', v_user, v_conversation), 'typing');

  perform public.create_conversation(v_user, 'group', 'First', '{}', 60, 1);
  perform tests.reset();
  v_conversations := (select count(*) from public.conversations);
  perform tests.act_as_service();
  perform pg_temp.retry_after_ms(format('select public.create_conversation(%L, ''group'', ''Second'', ''{}'', 60, 1)', v_user),
    'a second conversation');
  -- Opening a direct conversation draws on the same bucket.
  perform pg_temp.retry_after_ms(
    format('select public.open_direct_conversation(%L, %L, null, null, 60, 1)', v_user, v_friend),
    'a direct conversation after a group');
  perform tests.reset();
  perform tests.eq((select count(*) from public.conversations), v_conversations, 'conversations after the refusals');

  perform tests.act_as_service();
  perform public.join_room(v_user, v_room, 60, 1);
  -- Joining again takes a token too.
  perform pg_temp.retry_after_ms(format('select public.join_room(%L, %L, 60, 1)', v_user, v_room), 'joining again');
  perform public.leave_conversation(v_user, v_room);
  perform pg_temp.retry_after_ms(format('select public.join_room(%L, %L, 60, 1)', v_user, v_room), 'rejoining after leaving');
  perform tests.reset();
  perform tests.eq((select left_at is not null from public.participants where conversation_id = v_room and user_id = v_user),
    true, 'the refused rejoin left the member out');
end
$$;

-- Edits share the 'message' bucket with sends; renames and adding members
-- draw on the 'conversation' bucket; a member's own settings do not. Each
-- refusal stores nothing.
do $$
declare
  v_users uuid[] := array[gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), gen_random_uuid()];
  v_owner uuid := v_users[1];
  v_adder uuid := v_users[2];
  v_group uuid;
  v_other uuid;
  v_message uuid;
  v_seq bigint;
begin
  insert into auth.users (id, email) select u, u::text || '@example.com' from unnest(v_users) u;
  v_group := tests.make_conversation('group', v_owner, array[v_users[3]]);
  v_other := tests.make_conversation('group', v_adder, array[v_users[3]]);
  v_message := tests.id(tests.send(v_owner, v_group, 'first'));

  perform tests.act_as_service();
  perform public.edit_message(v_owner, v_message, 'second', 60, 1);
  perform pg_temp.retry_after_ms(format('select public.edit_message(%L, %L, ''third'', 60, 1)', v_owner, v_message),
    'a second edit of a burst of 1');
  perform pg_temp.retry_after_ms(
    format('select public.send_message(%L, %L, ''after-edit'', ''text'', ''x'', null, null, 60, 1)', v_owner, v_group),
    'a send after the edit took the token');

  perform public.update_conversation(v_owner, v_group, 'Renamed', null, null, 60, 1);
  perform pg_temp.retry_after_ms(format('select public.update_conversation(%L, %L, ''Again'', null, null, 60, 1)', v_owner, v_group),
    'a second rename of a burst of 1');
  perform pg_temp.retry_after_ms(format('select public.add_members(%L, %L, array[%L]::uuid[], 60, 1)', v_owner, v_group, v_users[4]),
    'adding a member after the rename took the token');
  perform tests.eq(public.update_conversation(v_owner, v_group, null, true, null, 60, 1) -> 'result' -> 'me' -> 'archived',
    'true'::jsonb, 'archiving is not limited');

  perform public.add_members(v_adder, v_other, array[v_users[4]], 60, 1);
  perform pg_temp.retry_after_ms(format('select public.create_conversation(%L, ''group'', ''More'', ''{}'', 60, 1)', v_adder),
    'creating after adding members took the token');
  perform tests.reset();

  perform tests.eq((select body from public.messages where id = v_message), 'second', 'the refused edit stored nothing');
  perform tests.eq((select count(*) from public.messages where conversation_id = v_group), 1::bigint, 'messages');
  perform tests.eq((select name from public.conversations where id = v_group), 'Renamed', 'the refused rename stored nothing');
  perform tests.eq((select count(*) from public.participants where conversation_id = v_group), 2::bigint,
    'the refused addition stored nothing');
  perform tests.check_gap_free(v_group, 'after the refusals');
end
$$;

-- register_connection: at most p_max_connections live ones; an expired one
-- does not count, and a retried $connect of a registered id is accepted.
do $$
declare
  v_user uuid := pg_temp.user_of('friend');
begin
  perform tests.act_as_service();
  perform public.register_connection('cap-1', v_user, now() + interval '1 hour', 2);
  perform public.register_connection('cap-expired', v_user, now() - interval '1 minute', 2);
  perform public.register_connection('cap-2', v_user, now() + interval '1 hour', 2);
  perform tests.raises(format('select public.register_connection(''cap-3'', %L, now() + interval ''1 hour'', 2)', v_user),
    'too_many_connections', 'a third live connection of 2');
  perform public.register_connection('cap-2', v_user, now() + interval '1 hour', 2);
  perform tests.reset();
  perform tests.eq((select array_agg(connection_id order by connection_id) from public.connections where user_id = v_user),
    array['cap-1', 'cap-2', 'cap-expired'], 'connections registered');
end
$$;

-- No API role reaches the buckets: not the helper, not the table.
do $$
declare
  v_user uuid := pg_temp.user_of('flooder');
begin
  perform tests.act_as(v_user);
  perform tests.denied(format('select public.take_token(%L, ''message'', 1000, 1000)', v_user), 'authenticated takes a token');
  perform tests.denied('select * from public.rate_limit_buckets', 'authenticated reads buckets');
  perform tests.write_denied(format('delete from public.rate_limit_buckets where user_id = %L', v_user),
    'rate_limit_buckets', 'authenticated resets its bucket');
  perform tests.act_as_anon();
  perform tests.denied(format('select public.take_token(%L, ''message'', 1000, 1000)', v_user), 'anon takes a token');
  perform tests.denied('select * from public.rate_limit_buckets', 'anon reads buckets');
  perform tests.act_as_service();
  perform tests.denied(format('select public.take_token(%L, ''message'', 1000, 1000)', v_user), 'service_role takes a token');
  perform tests.reset();
end
$$;
