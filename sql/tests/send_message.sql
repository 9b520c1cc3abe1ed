-- send_message: membership, validation, idempotency, gap-free seq, and the
-- message.created delivery it returns like every other write.
-- The first call goes through service_role, as the Lambda functions make it;
-- the rest call directly (who may execute it is covered by grants.sql).

-- Full-text indexing notes that a 5000-emoji "word" is too long to index;
-- expected here, and noise in the test output.
set local client_min_messages = warning;

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()]);
  v_other uuid := tests.make_conversation('group', tests.alice(), array[tests.dave()]);
begin
  insert into fixture values ('group', v_group), ('other', v_other);
  -- alice and bob are online (bob twice, once on a socket whose token expired);
  -- carol is offline; dave is online but not in the group.
  perform public.register_connection('alice-1', tests.alice(), now() + interval '1 hour');
  perform public.register_connection('bob-1', tests.bob(), now() + interval '1 hour');
  perform public.register_connection('bob-expired', tests.bob(), now() - interval '1 minute');
  perform public.register_connection('dave-1', tests.dave(), now() + interval '1 hour');
end
$$;

-- A first send stores the message and its event under the next seq and
-- returns who to push it to.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_result jsonb;
  v_message jsonb;
  v_event public.conversation_events;
begin
  perform tests.act_as_service();
  v_result := public.send_message(tests.alice(), v_group, 'first', 'text', 'Hello, world', null, null);
  perform tests.reset();

  v_message := v_result -> 'result' -> 'message';
  perform tests.eq(v_result -> 'result' -> 'duplicate', 'false'::jsonb, 'first send is a duplicate');
  perform tests.eq((v_message ->> 'seq')::bigint, 2::bigint, 'seq of the first message (after conversation.created)');
  perform tests.eq(v_message ->> 'body', 'Hello, world', 'stored body');
  perform tests.eq(v_message ->> 'kind', 'text', 'stored kind');
  perform tests.eq(v_message ->> 'client_msg_id', 'first', 'stored client_msg_id');
  perform tests.eq((v_message ->> 'sender_id')::uuid, tests.alice(), 'stored sender');
  perform tests.eq((v_message ->> 'conversation_id')::uuid, v_group, 'stored conversation');
  perform tests.check(v_message ? 'attachment' and v_message ? 'reply_to_id' and v_message ? 'edited_at'
    and v_message ? 'deleted_at' and v_message ? 'created_at' and v_message ? 'id',
    'Message JSON has every field');

  select * into v_event from public.conversation_events where conversation_id = v_group and seq = 2;
  perform tests.eq(v_event.type, 'message.created', 'event type');
  perform tests.eq(v_event.message_id, (v_message ->> 'id')::uuid, 'event message_id');
  perform tests.eq(v_event.actor_id, tests.alice(), 'event actor');
  perform tests.eq(v_event.payload, v_message, 'event payload is the Message JSON');
  perform tests.eq((select last_seq from public.conversations where id = v_group), 2::bigint, 'last_seq');

  -- One delivery: message.created in the envelope every event has, to every
  -- live connection of every current participant, the sender's included.
  perform tests.eq(jsonb_array_length(v_result -> 'deliveries'), 1, 'deliveries of a send');
  perform tests.eq(v_result -> 'deliveries' -> 0 -> 'event',
    public.event_envelope('message.created', v_group, 2, v_message), 'the message.created envelope');
  perform tests.eq(tests.sorted(v_result -> 'deliveries' -> 0 -> 'recipients'),
    tests.sorted(jsonb_build_array(
      jsonb_build_object('user_id', tests.alice(), 'connection_id', 'alice-1'),
      jsonb_build_object('user_id', tests.bob(), 'connection_id', 'bob-1'))),
    'recipients');
end
$$;

-- The same client_msg_id again stores nothing and returns the same message,
-- and delivers the same message.created again (the first send's fan-out may
-- never have run: its function died after the commit).
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_first jsonb;
  v_again jsonb;
begin
  perform tests.act_as_service();
  v_first := public.send_message(tests.bob(), v_group, 'retry-me', 'text', 'once', null, null);
  v_again := public.send_message(tests.bob(), v_group, 'retry-me', 'text', 'once', null, null);
  perform tests.reset();

  perform tests.eq(v_again -> 'result' -> 'duplicate', 'true'::jsonb, 'repeat is a duplicate');
  perform tests.eq(jsonb_array_length(v_again -> 'deliveries'), 1, 'a repeat has one delivery');
  perform tests.eq(v_again -> 'deliveries' -> 0 -> 'event', v_first -> 'deliveries' -> 0 -> 'event',
    'a repeat re-delivers the same message.created envelope');
  perform tests.eq(tests.sorted(v_again -> 'deliveries' -> 0 -> 'recipients'),
    tests.sorted(v_first -> 'deliveries' -> 0 -> 'recipients'),
    'a repeat re-delivers to the same connections');
  perform tests.eq(v_again -> 'result' -> 'message' ->> 'id', v_first -> 'result' -> 'message' ->> 'id', 'repeat returns the same id');
  perform tests.eq(v_again -> 'result' -> 'message' -> 'seq', v_first -> 'result' -> 'message' -> 'seq', 'repeat returns the same seq');
  perform tests.eq(v_again -> 'result' -> 'message', v_first -> 'result' -> 'message', 'repeat returns the same message');
  perform tests.eq((select count(*) from public.messages where sender_id = tests.bob() and client_msg_id = 'retry-me'),
    1::bigint, 'rows stored for a repeated client_msg_id');
  perform tests.eq((select last_seq from public.conversations where id = v_group), (v_first -> 'result' -> 'message' ->> 'seq')::bigint,
    'a repeat takes no seq');

  -- Another sender may use the same client_msg_id: the key is per sender.
  perform tests.eq(public.send_message(tests.carol(), v_group, 'retry-me', 'text', 'mine', null, null) -> 'result' -> 'duplicate',
    'false'::jsonb, 'same client_msg_id from another sender');

  -- The same sender reusing it in another conversation is a conflict.
  perform tests.raises(format('select public.send_message(%L, %L, ''retry-me'', ''text'', ''elsewhere'', null, null)',
    tests.bob(), (select id from fixture where name = 'other')), 'not_a_participant',
    'bob is not in the other conversation');
  perform tests.raises(format('select public.send_message(%L, %L, ''first'', ''text'', ''elsewhere'', null, null)',
    tests.alice(), (select id from fixture where name = 'other')), 'idempotency_conflict',
    'client_msg_id reused in another conversation');
end
$$;

-- seq is gap-free: events are numbered 1..last_seq, message seqs are the
-- message.created events'.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  i int;
begin
  for i in 1..10 loop
    perform tests.send(case i % 3 when 0 then tests.alice() when 1 then tests.bob() else tests.carol() end,
      v_group, 'message ' || i);
    -- refused sends in between take no seq
    perform tests.error_of(format('select public.send_message(%L, %L, %L, ''text'', '''', null, null)',
      tests.alice(), v_group, 'bad-' || i));
  end loop;

  perform tests.eq(
    (select array_agg(seq order by seq) from public.conversation_events where conversation_id = v_group),
    (select array_agg(g) from generate_series(1::bigint, (select last_seq from public.conversations where id = v_group)) g),
    'event seqs are 1..last_seq');
  perform tests.eq(
    (select array_agg(seq order by seq) from public.messages where conversation_id = v_group),
    (select array_agg(seq order by seq) from public.conversation_events where conversation_id = v_group and type = 'message.created'),
    'message seqs are the message.created events''');
  perform tests.eq((select last_seq from public.conversations where id = v_group), 14::bigint, 'last_seq after 13 messages');
end
$$;

-- Body limits count characters, not bytes.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_sql text := 'select public.send_message(%L, %L, %L, %L, %L, null, null)';
  v_result jsonb;
begin
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'b1', 'text', ''), 'invalid_body', 'empty body');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'b2', 'text', null), 'invalid_body', 'null body');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'b3', 'text', E' \t\r\n  '), 'invalid_body',
    'ASCII whitespace-only body');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'b4', 'text', E'\u00a0\u3000\u2003\u200b\ufeff'), 'invalid_body',
    'Unicode whitespace-only body');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'b5', 'text', repeat('é', 5001)), 'message_too_long',
    '5001 two-byte characters');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'b6', 'text', repeat('😀', 5001)), 'message_too_long',
    '5001 four-byte characters');

  v_result := public.send_message(tests.alice(), v_group, 'b7', 'text', repeat('😀', 5000), null, null);
  perform tests.eq(char_length(v_result -> 'result' -> 'message' ->> 'body'), 5000, 'characters stored of 5000 four-byte characters');
  perform tests.eq(octet_length(v_result -> 'result' -> 'message' ->> 'body'), 20000, 'bytes stored of 5000 four-byte characters');
  perform tests.eq(v_result -> 'result' -> 'duplicate', 'false'::jsonb, '5000 four-byte characters accepted');

  v_result := public.send_message(tests.alice(), v_group, 'b8', 'text', repeat('é', 5000), null, null);
  perform tests.eq(char_length(v_result -> 'result' -> 'message' ->> 'body'), 5000, '5000 two-byte characters accepted');

  -- Surrounding whitespace is kept: it is the sender's text.
  v_result := public.send_message(tests.alice(), v_group, 'b9', 'text', E'  indented\n', null, null);
  perform tests.eq(v_result -> 'result' -> 'message' ->> 'body', E'  indented\n', 'body stored verbatim');
end
$$;

-- client_msg_id and kind.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_sql text := 'select public.send_message(%L, %L, %L, %L, ''hi'', null, null)';
begin
  perform tests.raises(format(v_sql, tests.alice(), v_group, '', 'text'), 'invalid_client_msg_id', 'empty client_msg_id');
  perform tests.raises(format(v_sql, tests.alice(), v_group, null, 'text'), 'invalid_client_msg_id', 'null client_msg_id');
  perform tests.raises(format(v_sql, tests.alice(), v_group, repeat('x', 101), 'text'), 'invalid_client_msg_id',
    '101-character client_msg_id');
  perform tests.eq(public.send_message(tests.alice(), v_group, repeat('x', 100), 'text', 'hi', null, null) -> 'result' -> 'duplicate',
    'false'::jsonb, '100-character client_msg_id accepted');

  perform tests.raises(format(v_sql, tests.alice(), v_group, 'k1', 'system'), 'invalid_kind', 'users send system messages');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'k2', 'video'), 'invalid_kind', 'unknown kind');
  perform tests.eq(public.send_message(tests.alice(), v_group, 'k3', null, 'hi', null, null) -> 'result' -> 'message' ->> 'kind',
    'text', 'kind defaults to text');
end
$$;

-- Attachments.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_sql text := 'select public.send_message(%L, %L, %L, %L, %L, %L::jsonb, null)';
  v_image jsonb := '{"url": "https://cdn.example.com/p.png", "name": "p.png", "mime_type": "image/png", "size_bytes": 1234}';
  v_result jsonb;
begin
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'a1', 'image', null, null), 'invalid_attachment',
    'image without attachment');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'a2', 'image', null, '"https://x"'), 'invalid_attachment',
    'attachment that is not an object');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'a3', 'image', null,
    v_image || '{"url": "http://cdn.example.com/p.png"}'), 'invalid_attachment', 'plain http url');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'a4', 'image', null,
    v_image || '{"url": "javascript:alert(1)"}'), 'invalid_attachment', 'non-URL url');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'a5', 'image', null,
    v_image || '{"size_bytes": 0}'), 'invalid_attachment', 'size_bytes 0');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'a6', 'image', null,
    v_image || '{"size_bytes": "1234"}'), 'invalid_attachment', 'size_bytes as a string');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'a7', 'image', null,
    v_image - 'name'), 'invalid_attachment', 'attachment without a name');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'a8', 'image', null,
    v_image || '{"mime_type": "application/pdf"}'), 'invalid_attachment', 'image with a non-image mime_type');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'a9', 'file', null,
    v_image || '{"mime_type": "pdf"}'), 'invalid_attachment', 'mime_type without a subtype');
  perform tests.raises(format(v_sql, tests.alice(), v_group, 'a10', 'text', 'look', v_image), 'invalid_attachment',
    'text with an attachment');

  v_result := public.send_message(tests.alice(), v_group, 'a11', 'image', null, v_image || '{"extra": true}', null);
  perform tests.eq(v_result -> 'result' -> 'message' -> 'attachment', v_image, 'image attachment stored without unknown keys');
  perform tests.eq(v_result -> 'result' -> 'message' -> 'body', 'null'::jsonb, 'image without caption');

  v_result := public.send_message(tests.alice(), v_group, 'a12', 'file', 'the report',
    '{"url": "https://cdn.example.com/r.pdf", "name": "r.pdf", "mime_type": "application/pdf", "size_bytes": 99}', null);
  perform tests.eq(v_result -> 'result' -> 'message' ->> 'body', 'the report', 'file with a caption');
end
$$;

-- Replies stay inside their conversation.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_other uuid := (select id from fixture where name = 'other');
  v_here uuid := (tests.send(tests.alice(), v_group, 'question') ->> 'id')::uuid;
  v_there uuid := (tests.send(tests.alice(), v_other, 'elsewhere') ->> 'id')::uuid;
  v_sql text := 'select public.send_message(%L, %L, %L, ''text'', ''answer'', null, %L)';
  v_reply jsonb;
begin
  perform tests.raises(format(v_sql, tests.bob(), v_group, 'r1', v_there), 'invalid_reply',
    'reply to a message of another conversation');
  perform tests.raises(format(v_sql, tests.bob(), v_group, 'r2', gen_random_uuid()), 'invalid_reply',
    'reply to a message that does not exist');
  v_reply := public.send_message(tests.bob(), v_group, 'r3', 'text', 'answer', null, v_here) -> 'result' -> 'message';
  perform tests.eq((v_reply ->> 'reply_to_id')::uuid, v_here, 'reply_to_id stored');
end
$$;

-- Only current participants send; a missing conversation looks the same.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_sql text := 'select public.send_message(%L, %L, %L, ''text'', ''hi'', null, null)';
  v_missing jsonb;
  v_foreign jsonb;
begin
  v_foreign := tests.error_of(format(v_sql, tests.dave(), v_group, 'p1'));
  v_missing := tests.error_of(format(v_sql, tests.dave(), gen_random_uuid(), 'p2'));
  perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'non-member sends');
  perform tests.eq(v_missing, v_foreign, 'error for a missing conversation equals the non-member error');

  update public.participants set left_at = now() where conversation_id = v_group and user_id = tests.carol();
  perform tests.raises(format(v_sql, tests.carol(), v_group, 'p3'), 'not_a_participant', 'former participant sends');

  -- A former participant's connections no longer receive the group's messages.
  perform public.register_connection('carol-1', tests.carol(), now() + interval '1 hour');
  perform tests.check(not (public.send_message(tests.bob(), v_group, 'p4', 'text', 'bye carol', null, null)
    -> 'deliveries' -> 0 -> 'recipients') @> jsonb_build_array(jsonb_build_object('user_id', tests.carol())),
    'former participant among recipients');
end
$$;

-- A repeat of a message edited since re-delivers it as it is now, still as
-- message.created under its own seq (what a replay of its event returns).
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_first jsonb;
  v_edited jsonb;
  v_again jsonb;
  v_seq bigint;
begin
  perform tests.act_as_service();
  v_first := public.send_message(tests.bob(), v_group, 'edit-then-retry', 'text', 'once', null, null) -> 'result' -> 'message';
  v_seq := (v_first ->> 'seq')::bigint;
  v_edited := public.edit_message(tests.bob(), (v_first ->> 'id')::uuid, 'once, edited') -> 'result' -> 'message';
  v_again := public.send_message(tests.bob(), v_group, 'edit-then-retry', 'text', 'once', null, null);
  perform tests.reset();

  perform tests.eq(v_again -> 'result' -> 'duplicate', 'true'::jsonb, 'a repeat after an edit is a duplicate');
  perform tests.eq(v_again -> 'deliveries' -> 0 -> 'event',
    public.event_envelope('message.created', v_group, v_seq, v_edited),
    'a repeat after an edit re-delivers message.created with the current message and its own seq');
  perform tests.eq(v_again -> 'deliveries' -> 0 -> 'event' -> 'data',
    (select payload from public.conversation_events where conversation_id = v_group and seq = v_seq),
    'the re-delivered payload is the one a replay of the event returns');
end
$$;

-- The table refuses every writer a message whose own fields break its rules
-- (messages_fields_check), on insert and on an update of those fields, naming
-- the rule as a CHECK constraint would; what a deleted account or reply sets
-- to null, and a deleted message's wiped body, are not refused.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_seq bigint := (select last_seq from public.conversations where id = v_group) + 100;
  v_case record;
  v_error jsonb;
  v_message uuid;
begin
  for v_case in
    select * from (values
      ('messages_seq_positive', '0, ''a'', ''text'', ''hi'', null'),
      ('messages_client_msg_id_length', '1, '''', ''text'', ''hi'', null'),
      ('messages_client_msg_id_length', format('1, %L, ''text'', ''hi'', null', repeat('c', 101))),
      ('messages_kind_check', '1, ''a'', ''sticker'', ''hi'', null'),
      ('messages_body_length', format('1, ''a'', ''text'', %L, null', repeat('b', 5001))),
      ('messages_attachment_object', '1, ''a'', ''file'', null, ''[1]'''),
      ('messages_text_body_not_blank', '1, ''a'', ''text'', '' '', null'),
      ('messages_text_body_not_blank', '1, ''a'', ''text'', null, null')
    ) as c(rule, row_values)
  loop
    v_error := tests.error_of(format(
      'insert into public.messages (conversation_id, sender_id, seq, client_msg_id, kind, body, attachment) values (%L, %L, %s)',
      v_group, tests.alice(), v_case.row_values));
    perform tests.eq(v_error ->> 'sqlstate', '23514', 'insert breaking ' || v_case.rule || ': ' || v_case.row_values);
    perform tests.eq(v_error ->> 'message',
      format('new row for relation "messages" violates check constraint "%s"', v_case.rule),
      'the rule named for ' || v_case.row_values);
  end loop;
  perform tests.raises(format(
      'insert into public.messages (conversation_id, seq, kind, body) values (%L, %s, null, ''hi'')', v_group, v_seq),
    '23502', 'a message of no kind');

  insert into public.messages (conversation_id, sender_id, seq, client_msg_id, kind, body)
  values (v_group, tests.alice(), v_seq, 'table-rules', 'text', 'kept')
  returning id into v_message;
  perform tests.raises(format('update public.messages set body = %L where id = %L', E'\t', v_message),
    '23514', 'an edit to a blank body');
  perform tests.raises(format('update public.messages set kind = ''sticker'' where id = %L', v_message),
    '23514', 'a message turned to an unknown kind');
  perform tests.eq(tests.error_of(format(
      'update public.messages set body = null, deleted_at = now() where id = %L', v_message)),
    null, 'a deleted message with its body wiped');
  perform tests.eq(tests.error_of(format('update public.messages set sender_id = null where id = %L', v_message)),
    null, 'a message whose author is gone');
  delete from public.messages where id = v_message;
end
$$;
