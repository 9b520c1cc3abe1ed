-- edit_message and delete_message: only the author changes a message, the
-- change is a durable event for every member, and the old content survives
-- nowhere a participant can read (the message row, its search column, the
-- payloads of its earlier events, the RPCs).

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()]);
begin
  perform tests.connect('alice-1', tests.alice());
  perform tests.connect('bob-1', tests.bob());
  perform tests.connect('bob-expired', tests.bob(), false);
  perform tests.connect('dave-1', tests.dave());
  insert into fixture values ('group', v_group);
end
$$;

-- Where a participant could still find a text: the message rows (body and
-- search column) and the event payloads readable through the table, and the
-- RPCs that return messages or events. Runs as the given user.
create function pg_temp.traces(p_user uuid, p_conversation_id uuid, p_text text) returns bigint language plpgsql as $$
declare
  v_count bigint;
begin
  perform tests.act_as(p_user);
  v_count :=
    tests.count(format('select 1 from public.messages where conversation_id = %L and (body ilike %L or search::text ilike %L or attachment::text ilike %L)',
      p_conversation_id, '%' || p_text || '%', '%' || lower(p_text) || '%', '%' || p_text || '%'))
    + tests.count(format('select 1 from public.conversation_events where conversation_id = %L and payload::text ilike %L',
      p_conversation_id, '%' || p_text || '%'))
    + (case when public.list_events(p_conversation_id, 0, 500)::text ilike '%' || p_text || '%' then 1 else 0 end)
    + (case when public.list_messages(p_conversation_id, null, null, 100)::text ilike '%' || p_text || '%' then 1 else 0 end)
    + jsonb_array_length(public.search_messages(p_text, p_conversation_id) -> 'results');
  perform tests.reset();
  return v_count;
end;
$$;

-- An edit: the new body, edited_at, message.updated under the next seq, and
-- every earlier event of the message rewritten.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_message uuid := tests.id(tests.send(tests.alice(), v_group, 'Meet at the zeppelin hangar'));
  v_other uuid := tests.id(tests.send(tests.bob(), v_group, 'ok'));
  v_response jsonb;
  v_json jsonb;
begin
  perform tests.eq(pg_temp.traces(tests.bob(), v_group, 'zeppelin'), 5::bigint, 'traces of the original before the edit');

  perform tests.act_as_service();
  v_response := public.edit_message(tests.alice(), v_message, 'Meet at the station');
  perform tests.reset();

  v_json := v_response -> 'result' -> 'message';
  perform tests.eq(v_response -> 'result' -> 'changed', 'true'::jsonb, 'changed');
  perform tests.eq(v_json ->> 'body', 'Meet at the station', 'new body');
  perform tests.check(v_json ->> 'edited_at' is not null, 'edited_at set');
  perform tests.eq(v_json, (select public.message_json(m) from public.messages m where m.id = v_message), 'result is the stored message');
  perform tests.eq(v_json -> 'seq', '2'::jsonb, 'an edit keeps the message''s seq');

  perform tests.eq(tests.event_types(v_group), array['conversation.created', 'message.created', 'message.created', 'message.updated'],
    'events');
  perform tests.check_gap_free(v_group, 'after an edit');
  perform tests.eq(
    (select jsonb_agg(jsonb_build_object('seq', seq, 'payload', payload, 'actor_id', actor_id) order by seq)
      from public.conversation_events where message_id = v_message),
    jsonb_build_array(
      jsonb_build_object('seq', 2, 'payload', v_json, 'actor_id', tests.alice()),
      jsonb_build_object('seq', 4, 'payload', v_json, 'actor_id', tests.alice())),
    'the message''s events all carry the edited message');
  perform tests.eq((select payload ->> 'body' from public.conversation_events where message_id = v_other), 'ok',
    'other messages'' events untouched');

  perform tests.eq(v_response -> 'deliveries' -> 0 -> 'event', jsonb_build_object('type', 'message.updated',
    'conversation_id', v_group, 'seq', 4, 'data', v_json), 'message.updated envelope');
  perform tests.eq(tests.recipients(v_response, 'message.updated'), array['alice-1', 'bob-1'], 'message.updated recipients');

  perform tests.eq(pg_temp.traces(tests.bob(), v_group, 'zeppelin'), 0::bigint, 'traces of the original after the edit');
  perform tests.eq(pg_temp.traces(tests.alice(), v_group, 'zeppelin'), 0::bigint, 'traces of the original for the author');
  perform tests.check(pg_temp.traces(tests.bob(), v_group, 'station') > 0, 'the edited text is found');

  -- A second edit rewrites the first edit's event too.
  v_json := public.edit_message(tests.alice(), v_message, 'Meet at the pier') -> 'result' -> 'message';
  perform tests.eq((select array_agg(payload ->> 'body' order by seq) from public.conversation_events where message_id = v_message),
    array['Meet at the pier', 'Meet at the pier', 'Meet at the pier'], 'every event after a second edit');
  perform tests.eq(pg_temp.traces(tests.bob(), v_group, 'station'), 0::bigint, 'traces of the first edit');

  -- The same body again: nothing changes, nothing is pushed, no seq.
  v_response := public.edit_message(tests.alice(), v_message, 'Meet at the pier');
  perform tests.eq(v_response -> 'result' -> 'changed', 'false'::jsonb, 'an edit to the same body changes');
  perform tests.eq(v_response -> 'result' -> 'message', v_json, 'an unchanged edit returns the message');
  perform tests.eq(v_response -> 'deliveries', '[]'::jsonb, 'an unchanged edit pushes');
  perform tests.eq((select last_seq from public.conversations where id = v_group), 5::bigint, 'an unchanged edit takes a seq');
end
$$;

-- Edit validation and who may edit.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_message uuid := tests.id(tests.send(tests.alice(), v_group, 'draft'));
  v_sql text := 'select public.edit_message(%L, %L, %L)';
  v_not_found jsonb;
  v_seq bigint;
  v_system uuid;
begin
  perform tests.raises(format(v_sql, tests.alice(), v_message, ''), 'invalid_body', 'an empty body');
  perform tests.raises(format(v_sql, tests.alice(), v_message, null), 'invalid_body', 'a null body');
  perform tests.raises(format(v_sql, tests.alice(), v_message, E' \u00a0\n'), 'invalid_body', 'a blank body');
  perform tests.raises(format(v_sql, tests.alice(), v_message, repeat('😀', 5001)), 'message_too_long', '5001 characters');
  perform tests.eq(char_length(public.edit_message(tests.alice(), v_message, repeat('😀', 5000)) -> 'result' -> 'message' ->> 'body'),
    5000, '5000 four-byte characters');

  perform tests.raises(format(v_sql, tests.bob(), v_message, 'hijacked'), 'not_author', 'a fellow member edits');
  v_not_found := tests.error_of(format(v_sql, tests.dave(), v_message, 'hijacked'));
  perform tests.eq(v_not_found ->> 'message', 'message_not_found', 'an outsider edits');
  perform tests.eq(tests.error_of(format(v_sql, tests.dave(), gen_random_uuid(), 'hijacked')), v_not_found,
    'editing a missing message looks the same');
  perform tests.eq(tests.error_of(format(v_sql, tests.alice(), gen_random_uuid(), 'x')), v_not_found,
    'a member edits a missing message');
  perform tests.eq(tests.error_of(format(v_sql, null, v_message, 'x')), v_not_found, 'editing without a user');

  -- System messages have no author to edit them.
  v_seq := public.next_conversation_seq(v_group);
  insert into public.messages (conversation_id, seq, sender_id, kind, body)
  values (v_group, v_seq, null, 'system', 'bob joined') returning id into v_system;
  insert into public.conversation_events (conversation_id, seq, type, message_id, payload)
  values (v_group, v_seq, 'message.created', v_system, '{}');
  perform tests.raises(format(v_sql, tests.alice(), v_system, 'x'), 'not_author', 'editing a system message');
  perform tests.raises(format('select public.delete_message(%L, %L)', tests.alice(), v_system), 'not_author',
    'deleting a system message');

  -- An author who left cannot edit what they wrote there any more.
  update public.participants set left_at = now() where conversation_id = v_group and user_id = tests.alice();
  perform tests.eq(tests.error_of(format(v_sql, tests.alice(), v_message, 'after leaving')), v_not_found,
    'a former member edits their message');
  perform tests.eq(tests.error_of(format('select public.delete_message(%L, %L)', tests.alice(), v_message)), v_not_found,
    'a former member deletes their message');
  update public.participants set left_at = null where conversation_id = v_group and user_id = tests.alice();

  perform tests.eq((select body from public.messages where id = v_message), repeat('😀', 5000), 'body after refusals');

  perform tests.act_as(tests.alice());
  perform tests.denied(format(v_sql, tests.alice(), v_message, 'direct'), 'a signed-in user edits directly');
  perform tests.denied(format('select public.delete_message(%L, %L)', tests.alice(), v_message), 'a signed-in user deletes directly');
  perform tests.act_as_anon();
  perform tests.denied(format(v_sql, tests.alice(), v_message, 'anon'), 'anon edits');
  perform tests.denied(format('select public.delete_message(%L, %L)', tests.alice(), v_message), 'anon deletes');
  perform tests.reset();
end
$$;

-- Captions: an image's caption may be removed (blank becomes none).
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_image uuid := tests.id(public.send_message(tests.bob(), v_group, 'img-1', 'image', 'sunset',
    '{"url": "https://cdn.example.com/s.png", "name": "s.png", "mime_type": "image/png", "size_bytes": 10}', null) -> 'result' -> 'message');
  v_response jsonb;
begin
  v_response := public.edit_message(tests.bob(), v_image, '   ');
  perform tests.eq(v_response -> 'result' -> 'message' -> 'body', 'null'::jsonb, 'a blank caption is no caption');
  perform tests.eq(v_response -> 'result' -> 'changed', 'true'::jsonb, 'removing the caption changes');
  perform tests.eq(v_response -> 'result' -> 'message' -> 'attachment' ->> 'url', 'https://cdn.example.com/s.png',
    'the attachment stays');
  perform tests.eq(public.edit_message(tests.bob(), v_image, null) -> 'result' -> 'changed', 'false'::jsonb,
    'no caption again');
  perform tests.eq(public.edit_message(tests.bob(), v_image, 'dusk') -> 'result' -> 'message' ->> 'body', 'dusk', 'a new caption');
end
$$;

-- A delete: a tombstone in place (id, seq), content gone from the row and
-- from every earlier event, message.deleted pushed to everyone.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_message uuid := tests.id(public.send_message(tests.carol(), v_group, 'file-1', 'file', 'quarterly numbers',
    '{"url": "https://cdn.example.com/q3-numbers.pdf", "name": "q3.pdf", "mime_type": "application/pdf", "size_bytes": 99}', null)
    -> 'result' -> 'message');
  v_last_seq bigint;
  v_response jsonb;
  v_json jsonb;
begin
  perform public.edit_message(tests.carol(), v_message, 'quarterly numbers (final)');
  perform tests.check(pg_temp.traces(tests.alice(), v_group, 'quarterly') > 0, 'the caption is found before the delete');
  perform tests.check(pg_temp.traces(tests.alice(), v_group, 'q3-numbers') > 0, 'the attachment is found before the delete');

  perform tests.act_as_service();
  v_response := public.delete_message(tests.carol(), v_message);
  perform tests.reset();
  v_json := v_response -> 'result' -> 'message';
  v_last_seq := (select last_seq from public.conversations where id = v_group);

  perform tests.eq(v_response -> 'result' -> 'deleted', 'true'::jsonb, 'deleted');
  perform tests.eq(v_json - 'deleted_at', (public.message_json((select m from public.messages m where m.id = v_message))) - 'deleted_at',
    'result is the stored message');
  perform tests.check(v_json -> 'body' = 'null'::jsonb and v_json -> 'attachment' = 'null'::jsonb
    and v_json ->> 'deleted_at' is not null, 'the result is a tombstone');
  perform tests.eq((select row(body, attachment, search::text) from public.messages where id = v_message)::text,
    row(null::text, null::jsonb, '')::text, 'the stored row keeps no content');
  perform tests.eq((select array_agg(type order by seq) from public.conversation_events where message_id = v_message),
    array['message.created', 'message.updated', 'message.deleted'], 'the message''s events');
  perform tests.eq((select count(*) from public.conversation_events where message_id = v_message and payload <> v_json), 0::bigint,
    'every event of the message carries the tombstone');
  perform tests.eq(v_response -> 'deliveries' -> 0 -> 'event', jsonb_build_object('type', 'message.deleted',
    'conversation_id', v_group, 'seq', v_last_seq, 'data', v_json), 'message.deleted envelope');
  perform tests.eq(tests.recipients(v_response, 'message.deleted'), array['alice-1', 'bob-1'], 'message.deleted recipients');
  perform tests.check_gap_free(v_group, 'after a delete');

  perform tests.eq(pg_temp.traces(tests.alice(), v_group, 'quarterly'), 0::bigint, 'traces of the caption after the delete');
  perform tests.eq(pg_temp.traces(tests.carol(), v_group, 'quarterly'), 0::bigint, 'traces of the caption for the author');
  perform tests.eq(pg_temp.traces(tests.alice(), v_group, 'q3-numbers'), 0::bigint, 'traces of the attachment after the delete');

  -- Again: nothing more.
  v_response := public.delete_message(tests.carol(), v_message);
  perform tests.eq(v_response -> 'result', jsonb_build_object('message', v_json, 'deleted', false), 'deleting again');
  perform tests.eq(v_response -> 'deliveries', '[]'::jsonb, 'deleting again pushes');
  perform tests.eq((select last_seq from public.conversations where id = v_group), v_last_seq, 'deleting again takes a seq');

  perform tests.raises(format('select public.edit_message(%L, %L, ''back'')', tests.carol(), v_message), 'message_deleted',
    'editing a deleted message');
  perform tests.raises(format('select public.edit_message(%L, %L, ''back'')', tests.alice(), v_message), 'not_author',
    'someone else edits a deleted message');
  perform tests.raises(format('select public.delete_message(%L, %L)', tests.alice(), v_message), 'not_author',
    'someone else deletes a deleted message');
end
$$;

-- Only the author deletes; outsiders learn nothing.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_message uuid := tests.id(tests.send(tests.alice(), v_group, 'keep me'));
  v_not_found jsonb;
begin
  perform tests.raises(format('select public.delete_message(%L, %L)', tests.bob(), v_message), 'not_author',
    'a fellow member deletes');
  v_not_found := tests.error_of(format('select public.delete_message(%L, %L)', tests.dave(), v_message));
  perform tests.eq(v_not_found ->> 'message', 'message_not_found', 'an outsider deletes');
  perform tests.eq(tests.error_of(format('select public.delete_message(%L, %L)', tests.dave(), gen_random_uuid())), v_not_found,
    'deleting a missing message looks the same');
  perform tests.eq((select body from public.messages where id = v_message), 'keep me', 'body after refused deletes');
end
$$;
