-- open_direct_conversation: find-or-create of the 1:1 between the caller and
-- another user, optionally about a context.

do $$
declare
  v_first jsonb;
  v_second jsonb;
  v_reverse jsonb;
  v_conversation jsonb;
  v_id uuid;
begin
  perform tests.act_as(tests.alice());
  v_first := public.open_direct_conversation(tests.bob());
  v_second := public.open_direct_conversation(tests.bob(), null, null);
  perform tests.act_as(tests.bob());
  v_reverse := public.open_direct_conversation(tests.alice());
  perform tests.reset();

  v_conversation := v_first -> 'conversation';
  v_id := (v_conversation ->> 'id')::uuid;
  perform tests.eq(v_first -> 'created', 'true'::jsonb, 'first open creates');
  perform tests.eq(v_conversation ->> 'kind', 'direct', 'kind');
  perform tests.eq((v_conversation ->> 'created_by')::uuid, tests.alice(), 'created_by');
  perform tests.eq((v_conversation ->> 'last_seq')::bigint, 1::bigint, 'last_seq after creation');
  perform tests.eq(v_conversation -> 'context_type', 'null'::jsonb, 'no context_type');
  perform tests.eq(v_conversation -> 'context_id', 'null'::jsonb, 'no context_id');
  perform tests.check(v_conversation ? 'name' and v_conversation ? 'created_at', 'Conversation JSON has every field');
  perform tests.eq(
    (select jsonb_object_agg(p ->> 'user_id', p ->> 'role') from jsonb_array_elements(v_conversation -> 'participants') p),
    jsonb_build_object(tests.alice(), 'owner', tests.bob(), 'member'),
    'participants and roles');
  perform tests.check((v_conversation -> 'participants' -> 0) ? 'joined_at', 'participant JSON has joined_at');

  perform tests.eq(
    (select jsonb_agg(jsonb_build_object('seq', seq, 'type', type, 'actor_id', actor_id)) from public.conversation_events
      where conversation_id = v_id),
    jsonb_build_array(jsonb_build_object('seq', 1, 'type', 'conversation.created', 'actor_id', tests.alice())),
    'events after creation');
  perform tests.eq((select payload from public.conversation_events where conversation_id = v_id and seq = 1),
    v_conversation, 'conversation.created payload is the Conversation JSON');

  perform tests.eq(v_second -> 'created', 'false'::jsonb, 'second open creates');
  perform tests.eq(v_second -> 'conversation' ->> 'id', v_id::text, 'second open returns the same conversation');
  perform tests.eq(v_reverse -> 'created', 'false'::jsonb, 'open from the other side creates');
  perform tests.eq(v_reverse -> 'conversation' ->> 'id', v_id::text, '(b, a) is the same conversation as (a, b)');
  perform tests.eq((select count(*) from public.conversations where kind = 'direct'), 1::bigint, 'direct conversations stored');
  perform tests.eq((select last_seq from public.conversations where id = v_id), 1::bigint, 'finding takes no seq');

  -- Only the pair sees it.
  perform tests.act_as(tests.carol());
  perform tests.eq(tests.count(format('select 1 from public.conversations where id = %L', v_id)), 0::bigint,
    'a third user sees the 1:1');
  perform tests.reset();
end
$$;

-- A context gives a separate conversation per thing talked about.
do $$
declare
  v_plain uuid;
  v_listing_1 jsonb;
  v_listing_1_again jsonb;
  v_listing_1_reverse jsonb;
  v_listing_2 jsonb;
begin
  perform tests.act_as(tests.alice());
  v_plain := (public.open_direct_conversation(tests.carol()) -> 'conversation' ->> 'id')::uuid;
  v_listing_1 := public.open_direct_conversation(tests.carol(), 'listing', 'L-1');
  v_listing_1_again := public.open_direct_conversation(tests.carol(), 'listing', 'L-1');
  v_listing_2 := public.open_direct_conversation(tests.carol(), 'listing', 'L-2');
  perform tests.act_as(tests.carol());
  v_listing_1_reverse := public.open_direct_conversation(tests.alice(), 'listing', 'L-1');
  perform tests.reset();

  perform tests.eq(v_listing_1 -> 'created', 'true'::jsonb, 'a context creates its own conversation');
  perform tests.check((v_listing_1 -> 'conversation' ->> 'id')::uuid <> v_plain, 'context conversation differs from the plain one');
  perform tests.eq(v_listing_1 -> 'conversation' ->> 'context_type', 'listing', 'context_type stored');
  perform tests.eq(v_listing_1 -> 'conversation' ->> 'context_id', 'L-1', 'context_id stored');
  perform tests.eq(v_listing_1_again -> 'created', 'false'::jsonb, 'same context again creates');
  perform tests.eq(v_listing_1_again -> 'conversation' -> 'id', v_listing_1 -> 'conversation' -> 'id', 'same context, same conversation');
  perform tests.eq(v_listing_1_reverse -> 'conversation' -> 'id', v_listing_1 -> 'conversation' -> 'id',
    'same context from the other side, same conversation');
  perform tests.eq(v_listing_2 -> 'created', 'true'::jsonb, 'another context creates');
  perform tests.check(v_listing_2 -> 'conversation' -> 'id' <> v_listing_1 -> 'conversation' -> 'id',
    'another context, another conversation');
end
$$;

-- Refusals.
do $$
declare
  v_before bigint := (select count(*) from public.conversations);
begin
  perform tests.act_as(tests.alice());
  perform tests.raises(format('select public.open_direct_conversation(%L)', tests.alice()), 'invalid_participant',
    'a 1:1 with oneself');
  perform tests.raises(format('select public.open_direct_conversation(%L)', gen_random_uuid()), 'user_not_found',
    'a 1:1 with an unknown user');
  perform tests.raises('select public.open_direct_conversation(null)', 'invalid_argument', 'a 1:1 with nobody');
  perform tests.raises(format('select public.open_direct_conversation(%L, ''listing'', null)', tests.bob()),
    'invalid_argument', 'context_type without context_id');
  perform tests.raises(format('select public.open_direct_conversation(%L, null, ''L-1'')', tests.bob()),
    'invalid_argument', 'context_id without context_type');
  perform tests.raises(format('select public.open_direct_conversation(%L, '''', ''L-1'')', tests.bob()),
    'invalid_argument', 'empty context_type');
  perform tests.raises(format('select public.open_direct_conversation(%L, ''listing'', %L)', tests.bob(), repeat('x', 101)),
    'invalid_argument', '101-character context_id');

  -- The caller comes from the token, so service_role without a user is refused.
  perform tests.act_as_service();
  perform tests.raises(format('select public.open_direct_conversation(%L)', tests.bob()), 'invalid_argument',
    'open without a signed-in user');
  perform tests.reset();
  perform tests.eq((select count(*) from public.conversations), v_before, 'conversations after refusals');
end
$$;

-- A 1:1 that one side left: the other side cannot pull them back in; the
-- one who left comes back by opening it themselves, as a durable event.
do $$
declare
  v_id uuid;
  v_again jsonb;
begin
  perform tests.act_as(tests.alice());
  v_id := (public.open_direct_conversation(tests.dave()) -> 'conversation' ->> 'id')::uuid;
  perform tests.reset();
  update public.participants set left_at = now() where conversation_id = v_id and user_id = tests.dave();

  perform tests.act_as(tests.alice());
  v_again := public.open_direct_conversation(tests.dave());
  perform tests.reset();
  perform tests.eq(v_again -> 'created', 'false'::jsonb, 'reopening creates');
  perform tests.eq(jsonb_array_length(v_again -> 'conversation' -> 'participants'), 1, 'the other side stays out');
  perform tests.eq((v_again -> 'conversation' ->> 'last_seq')::bigint, 1::bigint, 'no event when nobody returns');

  perform tests.act_as(tests.dave());
  v_again := public.open_direct_conversation(tests.alice());
  perform tests.reset();
  perform tests.eq(jsonb_array_length(v_again -> 'conversation' -> 'participants'), 2, 'participants after returning');
  perform tests.eq((v_again -> 'conversation' ->> 'last_seq')::bigint, 2::bigint, 'last_seq after returning');
  perform tests.eq((select type from public.conversation_events where conversation_id = v_id and seq = 2), 'member.joined',
    'event of the returning participant');
  perform tests.eq((select payload ->> 'user_id' from public.conversation_events where conversation_id = v_id and seq = 2),
    tests.dave()::text, 'who returned');
end
$$;
