-- Deliveries: the envelope and delivery shapes, and that every write RPC
-- addresses exactly the live connections of the people entitled to the
-- event, never an expired socket, a non-member or a former member.

-- The envelope: absent keys (not nulls) for what does not apply.
do $$
declare
  v_id uuid := gen_random_uuid();
begin
  perform tests.eq(public.event_envelope('message.created', v_id, 7, '{"a": 1}'),
    jsonb_build_object('type', 'message.created', 'conversation_id', v_id, 'seq', 7, 'data', '{"a": 1}'::jsonb), 'durable event');
  perform tests.eq(public.event_envelope('typing', v_id, null, '{}'),
    jsonb_build_object('type', 'typing', 'conversation_id', v_id, 'data', '{}'::jsonb), 'transient event: no seq key');
  perform tests.eq(public.event_envelope('presence', null, null, null),
    '{"type": "presence", "data": {}}'::jsonb, 'presence: no conversation_id or seq key, data defaults to {}');
  perform tests.eq(public.delivery('{"type": "x"}', null), '{"event": {"type": "x"}, "recipients": []}'::jsonb,
    'a delivery to nobody');
end
$$;

-- Fixture: a group of alice (owner), bob and carol; erin left it; dave is
-- outside. Connections: alice live twice, bob live and expired, carol only
-- with a token that never expires, erin and dave live.
create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_erin uuid := gen_random_uuid();
  v_group uuid;
begin
  insert into auth.users (id, email, raw_user_meta_data) values (v_erin, 'erin@example.com', '{"username": "erin"}');
  v_group := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol(), v_erin]);
  perform public.leave_conversation(v_erin, v_group);
  perform tests.connect('alice-1', tests.alice());
  perform tests.connect('alice-2', tests.alice());
  perform tests.connect('bob-1', tests.bob());
  perform tests.connect('bob-expired', tests.bob(), false);
  perform public.register_connection('carol-forever', tests.carol(), null);
  perform tests.connect('erin-1', v_erin);
  perform tests.connect('dave-1', tests.dave());
  insert into fixture values ('group', v_group), ('erin', v_erin);
end
$$;

-- Every write RPC on the group, and whom each event goes to.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_erin uuid := (select id from fixture where name = 'erin');
  v_members text[] := array['alice-1', 'alice-2', 'bob-1', 'carol-forever'];
  v_message uuid;
  v_response jsonb;
begin
  v_response := public.send_message(tests.bob(), v_group, 'd-1', 'text', 'hello', null, null);
  v_message := (v_response -> 'result' -> 'message' ->> 'id')::uuid;
  perform tests.eq(tests.recipients(v_response, 'message.created'), v_members, 'send_message');
  perform tests.eq(tests.recipients(public.send_typing(tests.bob(), v_group), 'typing'),
    array['alice-1', 'alice-2', 'carol-forever'], 'send_typing: the others');

  perform tests.eq(tests.recipients(public.edit_message(tests.bob(), v_message, 'hello!'), 'message.updated'), v_members,
    'edit_message');
  perform tests.eq(tests.recipients(public.mark_read(tests.carol(), v_group), 'read'), v_members, 'mark_read');
  perform tests.eq(tests.recipients(public.update_conversation(tests.alice(), v_group, 'Renamed'), 'conversation.updated'),
    v_members, 'update_conversation');
  perform tests.eq(tests.recipients(public.update_conversation(tests.alice(), v_group, null, true), 'conversation.updated'),
    '{}'::text[], 'update_conversation of settings');

  v_response := public.add_members(tests.alice(), v_group, array[tests.dave(), v_erin]);
  perform tests.eq(tests.recipients(v_response, 'conversation.created'), array['dave-1', 'erin-1'],
    'add_members: the conversation to the added users');
  perform tests.eq(tests.recipients(v_response, 'member.joined'),
    (select array_agg(c order by c) from unnest(v_members || array['dave-1', 'erin-1'] || v_members || array['dave-1', 'erin-1']) c),
    'add_members: each member.joined to every member, the added ones too');

  v_response := public.leave_conversation(tests.dave(), v_group);
  perform tests.eq(tests.recipients(v_response, 'member.left'), v_members || array['dave-1', 'erin-1'],
    'leave_conversation: the remaining members and the leaver');
  perform tests.eq(tests.recipients(public.delete_message(tests.bob(), v_message), 'message.deleted'),
    v_members || array['erin-1'], 'delete_message');

  -- The token of bob's live socket expires: from then on it gets nothing.
  update public.connections set token_exp = now() - interval '1 second' where connection_id = 'bob-1';
  perform tests.eq(tests.recipients(public.mark_read(tests.alice(), v_group), 'read'),
    array['alice-1', 'alice-2', 'carol-forever', 'erin-1'], 'after bob''s token expired');
end
$$;

-- The recipient helpers on their own, in the final state above.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
begin
  perform tests.eq(tests.connection_ids(public.live_recipients(v_group, null)),
    array['alice-1', 'alice-2', 'carol-forever', 'erin-1'], 'live_recipients');
  perform tests.eq(tests.connection_ids(public.user_recipients(array[tests.bob(), tests.dave()])), array['dave-1'],
    'user_recipients: live connections only');
  perform tests.eq(public.user_recipients(array[tests.dave(), tests.alice()]),
    jsonb_build_array(
      jsonb_build_object('user_id', tests.alice(), 'connection_id', 'alice-1'),
      jsonb_build_object('user_id', tests.alice(), 'connection_id', 'alice-2'),
      jsonb_build_object('user_id', tests.dave(), 'connection_id', 'dave-1')),
    'user_recipients: one object of user_id and connection_id each, by user then connection');
  perform tests.eq(public.user_recipients('{}'), '[]'::jsonb, 'user_recipients of nobody');
  perform tests.eq(public.user_recipients(null), '[]'::jsonb, 'user_recipients of null');
  perform tests.eq(tests.connection_ids(public.contact_recipients(tests.dave())), '{}'::text[],
    'contact_recipients of someone in nothing');
  perform tests.eq(tests.connection_ids(public.contact_recipients(tests.alice())), '{}'::text[],
    'contact_recipients: nobody before the others took part');
  perform tests.take_part(v_group, array[tests.alice(), tests.carol(), (select id from fixture where name = 'erin')]);
  perform tests.eq(tests.connection_ids(public.contact_recipients(tests.alice())), array['carol-forever', 'erin-1'],
    'contact_recipients: live connections of co-members who took part, not one''s own');
end
$$;
