-- open_direct_conversation: find-or-create of the 1:1 between the caller
-- (p_user_id, verified by the Lambda function) and another user, optionally
-- about a context, and what it pushes.

-- alice has a phone and a laptop (the laptop's token expired), bob a phone,
-- carol is offline, dave is online but not involved.
do $$
begin
  perform tests.connect('alice-phone', tests.alice());
  perform tests.connect('alice-laptop', tests.alice(), false);
  perform tests.connect('bob-phone', tests.bob());
  perform tests.connect('dave-phone', tests.dave());
end
$$;

do $$
declare
  v_first jsonb;
  v_second jsonb;
  v_reverse jsonb;
  v_conversation jsonb;
  v_id uuid;
begin
  perform tests.act_as_service();
  v_first := public.open_direct_conversation(tests.alice(), tests.bob());
  v_second := public.open_direct_conversation(tests.alice(), tests.bob(), null, null);
  v_reverse := public.open_direct_conversation(p_user_id => tests.bob(), p_other_user_id => tests.alice());
  perform tests.reset();

  v_conversation := v_first -> 'result' -> 'conversation';
  v_id := (v_conversation ->> 'id')::uuid;
  perform tests.eq(v_first -> 'result' -> 'created', 'true'::jsonb, 'first open creates');
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
  perform tests.eq(
    (select array_agg(k order by k) from jsonb_object_keys(v_conversation -> 'participants' -> 0) k),
    array['joined_at', 'last_delivered_seq', 'last_read_seq', 'profile', 'role', 'user_id'], 'participant JSON keys');

  perform tests.eq(
    (select jsonb_agg(jsonb_build_object('seq', seq, 'type', type, 'actor_id', actor_id)) from public.conversation_events
      where conversation_id = v_id),
    jsonb_build_array(jsonb_build_object('seq', 1, 'type', 'conversation.created', 'actor_id', tests.alice())),
    'events after creation');
  perform tests.eq((select payload from public.conversation_events where conversation_id = v_id and seq = 1),
    v_conversation, 'conversation.created payload is the Conversation JSON');

  -- Creating pushes conversation.created (seq 1) to both users' live connections.
  perform tests.eq(jsonb_array_length(v_first -> 'deliveries'), 1, 'deliveries of a creation');
  perform tests.eq(v_first -> 'deliveries' -> 0 -> 'event',
    jsonb_build_object('type', 'conversation.created', 'conversation_id', v_id, 'seq', 1, 'data', v_conversation),
    'conversation.created envelope');
  perform tests.eq(tests.recipients(v_first, 'conversation.created'), array['alice-phone', 'bob-phone'],
    'conversation.created recipients: live connections of the pair only');

  perform tests.eq(v_second -> 'result' -> 'created', 'false'::jsonb, 'second open creates');
  perform tests.eq(v_second -> 'result' -> 'conversation' ->> 'id', v_id::text, 'second open returns the same conversation');
  perform tests.eq(v_second -> 'deliveries', '[]'::jsonb, 'finding pushes nothing');
  perform tests.eq(v_reverse -> 'result' -> 'created', 'false'::jsonb, 'open from the other side creates');
  perform tests.eq(v_reverse -> 'result' -> 'conversation' ->> 'id', v_id::text, '(b, a) is the same conversation as (a, b)');
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
  v_plain := (public.open_direct_conversation(tests.alice(), tests.carol()) -> 'result' -> 'conversation' ->> 'id')::uuid;
  v_listing_1 := public.open_direct_conversation(tests.alice(), tests.carol(), 'listing', 'L-1') -> 'result';
  v_listing_1_again := public.open_direct_conversation(tests.alice(), tests.carol(), 'listing', 'L-1') -> 'result';
  v_listing_2 := public.open_direct_conversation(tests.alice(), tests.carol(), 'listing', 'L-2') -> 'result';
  v_listing_1_reverse := public.open_direct_conversation(tests.carol(), tests.alice(), 'listing', 'L-1') -> 'result';

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
  perform tests.act_as_service();
  perform tests.raises(format('select public.open_direct_conversation(%L, %L)', tests.alice(), tests.alice()),
    'invalid_participant', 'a 1:1 with oneself');
  perform tests.raises(format('select public.open_direct_conversation(%L, %L)', tests.alice(), gen_random_uuid()),
    'user_not_found', 'a 1:1 with an unknown user');
  perform tests.raises(format('select public.open_direct_conversation(%L, %L)', gen_random_uuid(), tests.alice()),
    'user_not_found', 'a 1:1 opened by an unknown user');
  perform tests.raises(format('select public.open_direct_conversation(%L, null)', tests.alice()),
    'invalid_argument', 'a 1:1 with nobody');
  perform tests.raises(format('select public.open_direct_conversation(null, %L)', tests.bob()),
    'invalid_argument', 'a 1:1 opened by nobody');
  perform tests.raises(format('select public.open_direct_conversation(%L, %L, ''listing'', null)', tests.alice(), tests.bob()),
    'invalid_argument', 'context_type without context_id');
  perform tests.raises(format('select public.open_direct_conversation(%L, %L, null, ''L-1'')', tests.alice(), tests.bob()),
    'invalid_argument', 'context_id without context_type');
  perform tests.raises(format('select public.open_direct_conversation(%L, %L, '''', ''L-1'')', tests.alice(), tests.bob()),
    'invalid_argument', 'empty context_type');
  perform tests.raises(format('select public.open_direct_conversation(%L, %L, ''listing'', %L)', tests.alice(), tests.bob(),
    repeat('x', 101)), 'invalid_argument', '101-character context_id');

  -- Internal now: the caller is a parameter, so only service_role may pass it.
  perform tests.act_as(tests.alice());
  perform tests.denied(format('select public.open_direct_conversation(%L, %L)', tests.alice(), tests.bob()),
    'a signed-in user opens a 1:1 directly');
  perform tests.denied(format('select public.open_direct_conversation(%L, %L)', tests.carol(), tests.dave()),
    'a signed-in user opens a 1:1 for others');
  perform tests.act_as_anon();
  perform tests.denied(format('select public.open_direct_conversation(%L, %L)', tests.alice(), tests.bob()),
    'anon opens a 1:1');
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
  v_id := (public.open_direct_conversation(tests.alice(), tests.dave()) -> 'result' -> 'conversation' ->> 'id')::uuid;
  perform public.leave_conversation(tests.dave(), v_id);

  v_again := public.open_direct_conversation(tests.alice(), tests.dave());
  perform tests.eq(v_again -> 'result' -> 'created', 'false'::jsonb, 'reopening creates');
  perform tests.eq(jsonb_array_length(v_again -> 'result' -> 'conversation' -> 'participants'), 1, 'the other side stays out');
  perform tests.eq((v_again -> 'result' -> 'conversation' ->> 'last_seq')::bigint, 2::bigint, 'no event when nobody returns');
  perform tests.eq(v_again -> 'deliveries', '[]'::jsonb, 'nothing pushed when nobody returns');

  v_again := public.open_direct_conversation(tests.dave(), tests.alice());
  perform tests.eq(jsonb_array_length(v_again -> 'result' -> 'conversation' -> 'participants'), 2, 'participants after returning');
  perform tests.eq((v_again -> 'result' -> 'conversation' ->> 'last_seq')::bigint, 3::bigint, 'last_seq after returning');
  perform tests.eq(tests.event_types(v_id), array['conversation.created', 'member.left', 'member.joined'],
    'events of leaving and returning');
  perform tests.eq((select payload ->> 'user_id' from public.conversation_events where conversation_id = v_id and seq = 3),
    tests.dave()::text, 'who returned');
  perform tests.check_gap_free(v_id, 'a returned 1:1');

  -- The return is pushed to both sides' live connections, with its seq.
  perform tests.eq(v_again -> 'deliveries' -> 0 -> 'event' -> 'seq', '3'::jsonb, 'member.joined seq');
  perform tests.eq((v_again -> 'deliveries' -> 0 -> 'event' -> 'data') - 'joined_at',
    jsonb_build_object('user_id', tests.dave(), 'role', 'member', 'added_by', null,
      'profile', (select public.public_profile_json(p) from public.profiles p where p.id = tests.dave())),
    'member.joined data: the returning user with their public profile');
  perform tests.eq(tests.recipients(v_again, 'member.joined'), array['alice-phone', 'dave-phone'],
    'member.joined recipients');
end
$$;
