-- get_conversation: the Conversation JSON and the caller's own settings,
-- for current participants only.

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()]);
  v_room uuid := tests.make_conversation('room', tests.carol(), array[]::uuid[]);
  v_result jsonb;
  v_foreign jsonb;
begin
  perform tests.send(tests.alice(), v_group, 'one');
  perform tests.send(tests.alice(), v_group, 'two');
  perform tests.send(tests.bob(), v_group, 'three');
  perform public.mark_read(tests.bob(), v_group, 2);
  perform public.update_conversation(tests.bob(), v_group, null, true, null);

  perform tests.act_as(tests.bob());
  v_result := public.get_conversation(v_group);
  perform tests.reset();

  perform tests.eq(v_result -> 'conversation', public.conversation_json(v_group), 'the Conversation JSON');
  perform tests.eq(v_result -> 'me', jsonb_build_object(
    'role', 'member',
    'joined_at', (select joined_at from public.participants where conversation_id = v_group and user_id = tests.bob()),
    'archived', true, 'muted', false, 'last_read_seq', 2, 'unread_count', 1), 'bob''s settings');
  perform tests.eq(
    (select p -> 'last_read_seq' from jsonb_array_elements(v_result -> 'conversation' -> 'participants') p
      where p ->> 'user_id' = tests.bob()::text), '2'::jsonb, 'bob''s read receipt in the participants');

  -- Outsiders, missing ids, former members and public rooms one is not in:
  -- all the same refusal.
  perform tests.act_as(tests.dave());
  v_foreign := tests.error_of(format('select public.get_conversation(%L)', v_group));
  perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'an outsider gets a group');
  perform tests.eq(tests.error_of(format('select public.get_conversation(%L)', gen_random_uuid())), v_foreign,
    'a missing conversation looks the same');
  perform tests.eq(tests.error_of(format('select public.get_conversation(%L)', v_room)), v_foreign,
    'a room one has not joined');
  perform tests.eq(tests.error_of('select public.get_conversation(null)'), v_foreign, 'no conversation');
  perform tests.reset();

  perform public.leave_conversation(tests.carol(), v_group);
  perform tests.act_as(tests.carol());
  perform tests.eq(tests.error_of(format('select public.get_conversation(%L)', v_group)), v_foreign, 'a former member');
  perform tests.act_as_anon();
  perform tests.denied(format('select public.get_conversation(%L)', v_group), 'anon');
  perform tests.act_as_service();
  perform tests.eq(tests.error_of(format('select public.get_conversation(%L)', v_group)), v_foreign, 'service_role without a user');
  perform tests.reset();
end
$$;
