-- Users never write conversations, participants, messages, events or
-- connections directly (only through the RPCs), and change only their own
-- profile's editable columns.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob()]);
  v_message uuid;
begin
  v_message := (tests.send(tests.alice(), v_group, 'original') ->> 'id')::uuid;
  perform public.register_connection('conn-alice', tests.alice(), now() + interval '1 hour');
  insert into fixture values ('group', v_group), ('message', v_message);
end
$$;

-- A member (alice, the group's owner) is refused every direct write.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_message uuid := (select id from fixture where name = 'message');
  v_role text;
begin
  foreach v_role in array array['authenticated', 'anon'] loop
    if v_role = 'authenticated' then
      perform tests.act_as(tests.alice());
    else
      perform tests.act_as_anon();
    end if;

    -- conversations
    perform tests.write_denied(format(
      'insert into public.conversations (kind, name, created_by) values (''group'', ''mine'', %L)', tests.alice()),
      'conversations', v_role || ' inserts a conversation');
    perform tests.write_denied(format('update public.conversations set name = ''renamed'', last_seq = 0 where id = %L', v_group),
      'conversations', v_role || ' updates a conversation');
    perform tests.write_denied(format('delete from public.conversations where id = %L', v_group),
      'conversations', v_role || ' deletes a conversation');

    -- participants
    perform tests.write_denied(format(
      'insert into public.participants (conversation_id, user_id, role) values (%L, %L, ''member'')', v_group, tests.dave()),
      'participants', v_role || ' adds a participant');
    perform tests.write_denied(format(
      'update public.participants set role = ''owner'', last_read_seq = 99 where conversation_id = %L', v_group),
      'participants', v_role || ' updates participants');
    perform tests.write_denied(format('delete from public.participants where conversation_id = %L', v_group),
      'participants', v_role || ' removes participants');

    -- messages
    perform tests.write_denied(format(
      'insert into public.messages (conversation_id, seq, sender_id, client_msg_id, kind, body) values (%L, 99, %L, ''forged'', ''text'', ''forged'')',
      v_group, tests.alice()),
      'messages', v_role || ' inserts a message');
    perform tests.write_denied(format('update public.messages set body = ''tampered'' where id = %L', v_message),
      'messages', v_role || ' updates a message');
    perform tests.write_denied(format('delete from public.messages where id = %L', v_message),
      'messages', v_role || ' deletes a message');

    -- conversation_events
    perform tests.write_denied(format(
      'insert into public.conversation_events (conversation_id, seq, type, payload) values (%L, 99, ''message.created'', ''{}'')', v_group),
      'conversation_events', v_role || ' inserts an event');
    perform tests.write_denied(format('update public.conversation_events set payload = ''{}'' where conversation_id = %L', v_group),
      'conversation_events', v_role || ' updates events');
    perform tests.write_denied(format('delete from public.conversation_events where conversation_id = %L', v_group),
      'conversation_events', v_role || ' deletes events');

    -- connections
    perform tests.write_denied(format(
      'insert into public.connections (connection_id, user_id) values (''forged'', %L)', tests.alice()),
      'connections', v_role || ' inserts a connection');
    perform tests.write_denied('update public.connections set token_exp = null', 'connections', v_role || ' updates connections');
    perform tests.write_denied('delete from public.connections', 'connections', v_role || ' deletes connections');

    -- profiles: no inserts or deletes, ever
    perform tests.write_denied(format(
      'insert into public.profiles (id, username) values (%L, ''imposter'')', tests.alice()),
      'profiles', v_role || ' inserts a profile');
    perform tests.write_denied(format('delete from public.profiles where id = %L', tests.alice()),
      'profiles', v_role || ' deletes a profile');

    perform tests.write_denied('truncate public.messages', 'messages', v_role || ' truncates messages');
  end loop;
  perform tests.reset();

  -- And nothing changed.
  perform tests.eq((select body from public.messages where id = v_message), 'original', 'message body after refused writes');
  perform tests.eq((select count(*) from public.participants where conversation_id = v_group), 2::bigint,
    'participants after refused writes');
  perform tests.eq((select last_seq from public.conversations where id = v_group), 2::bigint,
    'last_seq after refused writes');
  perform tests.eq((select count(*) from public.connections), 1::bigint, 'connections after refused writes');
end
$$;

-- Profiles: the owner edits display_name, avatar_url and username; nobody
-- edits someone else's profile, and presence is not the user's to set.
do $$
declare
  v_updated int;
begin
  perform tests.act_as(tests.alice());
  update public.profiles set display_name = 'Alice A.', avatar_url = 'https://example.com/a.png' where id = tests.alice();
  get diagnostics v_updated = row_count;
  perform tests.eq(v_updated, 1, 'owner updates own profile');

  perform tests.raises(format('update public.profiles set avatar_url = %L where id = %L', 'javascript:alert(1)', tests.alice()),
    '23514', 'a non-https avatar');
  perform tests.raises(format('update public.profiles set username = %L where id = %L', '   ', tests.alice()),
    '23514', 'a blank username');

  update public.profiles set display_name = 'Hijacked' where id = tests.bob();
  get diagnostics v_updated = row_count;
  perform tests.eq(v_updated, 0, 'user updates another user''s profile');

  perform tests.write_denied(format('update public.profiles set last_seen_at = now() where id = %L', tests.alice()),
    'profiles', 'user sets own last_seen_at');
  perform tests.write_denied(format('update public.profiles set id = %L where id = %L', tests.dave(), tests.alice()),
    'profiles', 'user changes own profile id');

  perform tests.act_as_anon();
  perform tests.write_denied(format('update public.profiles set display_name = ''anon'' where id = %L', tests.alice()),
    'profiles', 'anon updates a profile');
  perform tests.reset();

  perform tests.eq((select display_name from public.profiles where id = tests.alice()), 'Alice A.', 'alice''s display_name');
  perform tests.eq((select display_name from public.profiles where id = tests.bob()), 'Bob', 'bob''s display_name');
end
$$;

-- The RPCs are the way in: a non-member cannot post or read through them either.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
begin
  perform tests.act_as(tests.dave());
  perform tests.raises(format('select public.list_messages(%L)', v_group), 'not_a_participant',
    'non-member lists messages');
  perform tests.reset();
  perform tests.raises(format('select public.send_message(%L, %L, ''x'', ''text'', ''hi'', null, null)', tests.dave(), v_group),
    'not_a_participant', 'non-member sends a message');
end
$$;
