-- Who may call each RPC about a conversation or message, tried as a
-- member, a non-member, a former member, anon and service_role. The rule:
-- a non-member learns nothing, so the refusal for someone else's
-- conversation (or message) is exactly the refusal for one that does not exist.
-- Fixture: a group of alice and bob (carol left it) with one message of
-- alice's; a room; dave is in nothing.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()]);
begin
  insert into fixture values
    ('group', v_group),
    ('message', tests.id(tests.send(tests.alice(), v_group, 'hello'))),
    ('room', tests.make_conversation('room', tests.bob(), array[]::uuid[]));
  perform public.leave_conversation(tests.carol(), v_group);
end
$$;

-- User-facing RPCs about one conversation (%1$s is the conversation id).
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_room uuid := (select id from fixture where name = 'room');
  v_call text;
  v_member jsonb;
  v_foreign jsonb;
  v_missing jsonb;
begin
  foreach v_call in array array[
    'select public.list_messages(%1$L)',
    'select public.get_conversation(%1$L)',
    'select public.list_events(%1$L)',
    'select public.conversation_stats(%1$L)',
    'select public.conversation_connections(%1$L)',
    'select public.search_messages(''hello'', %1$L)'
  ] loop
    perform tests.act_as(tests.alice());
    perform tests.eq(tests.error_of(format(v_call, v_group)), null, 'a member runs ' || v_call);

    perform tests.act_as(tests.dave());
    v_foreign := tests.error_of(format(v_call, v_group));
    v_missing := tests.error_of(format(v_call, gen_random_uuid()));
    perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'a non-member runs ' || v_call);
    perform tests.eq(v_missing, v_foreign, 'a missing conversation, like a foreign one: ' || v_call);
    perform tests.eq(tests.error_of(format(v_call, v_room)), v_foreign, 'a room one is not in: ' || v_call);

    perform tests.act_as(tests.carol());
    perform tests.eq(tests.error_of(format(v_call, v_group)), v_foreign, 'a former member runs ' || v_call);

    perform tests.act_as_service();
    perform tests.eq(tests.error_of(format(v_call, v_group)), v_foreign, 'service_role without a user runs ' || v_call);

    perform tests.act_as_anon();
    perform tests.denied(format(v_call, v_group), 'anon runs ' || v_call);
  end loop;
  perform tests.reset();
end
$$;

-- User-facing RPCs about the caller: any signed-in user, never anon, and
-- service_role only with a user's claims.
do $$
declare
  v_call text;
begin
  foreach v_call in array array[
    'select public.get_me()',
    'select public.search_users(''a'')',
    format('select public.get_presence(array[%L]::uuid[])', tests.alice()),
    'select public.list_rooms()',
    'select public.list_conversations()',
    'select public.unread_counts()',
    'select public.search_messages(''hello'')'
  ] loop
    perform tests.act_as(tests.dave());
    perform tests.eq(tests.error_of(v_call), null, 'a signed-in user runs ' || v_call);
    perform tests.act_as_anon();
    perform tests.denied(v_call, 'anon runs ' || v_call);
  end loop;

  perform tests.act_as_service();
  perform tests.raises('select public.get_me()', 'user_not_found', 'service_role without a user runs get_me');
  foreach v_call in array array[
    'select public.search_users(''a'')',
    format('select public.get_presence(array[%L]::uuid[])', tests.alice()),
    'select public.list_rooms()',
    'select public.list_conversations()',
    'select public.unread_counts()'
  ] loop
    perform tests.raises(v_call, 'invalid_argument', 'service_role without a user runs ' || v_call);
  end loop;
  -- With a user's claims, service_role acts for that user.
  perform set_config('request.jwt.claims', json_build_object('sub', tests.alice(), 'role', 'service_role',
    'exp', floor(extract(epoch from now())) + 3600)::text, true);
  perform tests.eq((public.get_me() -> 'user' ->> 'id')::uuid, tests.alice(), 'service_role with alice''s claims runs get_me');
  perform tests.reset();
end
$$;

-- Internal RPCs about one conversation (%1$s: the user, %2$s: the
-- conversation): service_role for a member succeeds, for a non-member or a
-- former member gets the same refusal as for a missing conversation; no
-- signed-in user or anon may call them at all.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_call text;
  v_foreign jsonb;
begin
  foreach v_call in array array[
    'select public.send_message(%1$L, %2$L, gen_random_uuid()::text, ''text'', ''hi'', null, null)',
    'select public.send_typing(%1$L, %2$L)',
    'select public.update_conversation(%1$L, %2$L, null, true)',
    'select public.add_members(%1$L, %2$L, array[%1$L]::uuid[])',
    'select public.mark_read(%1$L, %2$L)',
    'select public.leave_conversation(%1$L, %2$L)'
  ] loop
    perform tests.act_as_service();
    v_foreign := tests.error_of(format(v_call, tests.dave(), v_group));
    perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'for a non-member: ' || v_call);
    perform tests.eq(tests.error_of(format(v_call, tests.dave(), gen_random_uuid())), v_foreign,
      'a missing conversation, like a foreign one: ' || v_call);
    perform tests.eq(tests.error_of(format(v_call, tests.carol(), v_group)), v_foreign, 'for a former member: ' || v_call);
    perform tests.eq(tests.error_of(format(v_call, null, v_group)), v_foreign, 'for nobody: ' || v_call);

    perform tests.act_as(tests.alice());
    perform tests.denied(format(v_call, tests.alice(), v_group), 'a member runs ' || v_call);
    perform tests.act_as_anon();
    perform tests.denied(format(v_call, tests.alice(), v_group), 'anon runs ' || v_call);

    -- Last, as it may change the fixture (leave_conversation is the last call).
    perform tests.act_as_service();
    perform tests.eq(tests.error_of(format(v_call, tests.alice(), v_group)), null, 'for a member: ' || v_call);
  end loop;
  perform tests.reset();
end
$$;

-- Internal RPCs about one message: someone else's (in a conversation one is
-- not in) is exactly like a missing one; a fellow member's is not_author.
do $$
declare
  v_message uuid := (select id from fixture where name = 'message');
  v_call text;
  v_foreign jsonb;
begin
  -- alice left the group at the end of the block above; she comes back.
  update public.participants set left_at = null
   where conversation_id = (select id from fixture where name = 'group') and user_id = tests.alice();
  foreach v_call in array array[
    'select public.edit_message(%1$L, %2$L, ''changed'')',
    'select public.delete_message(%1$L, %2$L)'
  ] loop
    perform tests.act_as_service();
    v_foreign := tests.error_of(format(v_call, tests.dave(), v_message));
    perform tests.eq(v_foreign ->> 'message', 'message_not_found', 'for a non-member: ' || v_call);
    perform tests.eq(tests.error_of(format(v_call, tests.dave(), gen_random_uuid())), v_foreign,
      'a missing message, like a foreign one: ' || v_call);
    perform tests.eq(tests.error_of(format(v_call, tests.carol(), v_message)), v_foreign, 'for a former member: ' || v_call);
    perform tests.raises(format(v_call, tests.bob(), v_message), 'not_author', 'for a fellow member: ' || v_call);
    perform tests.act_as(tests.alice());
    perform tests.denied(format(v_call, tests.alice(), v_message), 'the author runs ' || v_call);
    perform tests.act_as_anon();
    perform tests.denied(format(v_call, tests.alice(), v_message), 'anon runs ' || v_call);
    perform tests.act_as_service();
    perform tests.eq(tests.error_of(format(v_call, tests.alice(), v_message)), null, 'for the author: ' || v_call);
  end loop;
  perform tests.reset();
end
$$;

-- join_room: anything but a room, existing or not, is conversation_not_found.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_room uuid := (select id from fixture where name = 'room');
  v_missing jsonb;
begin
  perform tests.act_as_service();
  v_missing := tests.error_of(format('select public.join_room(%L, %L)', tests.dave(), gen_random_uuid()));
  perform tests.eq(v_missing ->> 'message', 'conversation_not_found', 'joining a missing room');
  perform tests.eq(tests.error_of(format('select public.join_room(%L, %L)', tests.dave(), v_group)),
    v_missing, 'joining a group');
  perform tests.eq(tests.error_of(format('select public.join_room(%L, %L)', tests.dave(), v_room)),
    null, 'joining a room');
  perform tests.reset();
end
$$;
