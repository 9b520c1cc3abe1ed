-- Input rules as the chat functions' domain module decides them (the
-- end-to-end test `rules` holds both layers to one table of cases):
-- - blank is Unicode White_Space plus zero-width space, word joiner and BOM,
--   listed rather than left to the locale (trim_blank, is_blank); control
--   characters likewise (has_control);
-- - a body over 5000 characters is message_too_long, as the API documents
--   (validated_body, used by send_message and edit_message);
-- - client_msg_id is 1 to 100 of A-Z a-z 0-9 - _ . :;
-- - attachments: an https URL of at most 2048 bytes without spaces or control
--   characters, a name without / \ or control characters, a MIME type of
--   type/subtype each at most 127 characters, at most 104857600 bytes;
-- - names and search text trimmed of blank characters, no control characters
--   (validated_conversation_name, validated_query_text);

create function public.trim_blank(p_text text)
returns text
language sql
immutable
set search_path = ''
as $$
  select regexp_replace(
    p_text,
    '^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]+|[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]+$',
    '',
    'g'
  )
$$;

revoke execute on function public.trim_blank(text) from public, anon, authenticated;

grant execute on function public.trim_blank(text) to service_role;

create or replace function public.is_blank(p_text text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select p_text is null or public.trim_blank(p_text) = ''
$$;

create function public.has_control(p_text text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select p_text ~ '[\u0001-\u001f\u007f-\u009f]'
$$;

revoke execute on function public.has_control(text) from public, anon, authenticated, service_role;

create function public.validated_query_text(p_query text, p_max_chars int)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_query text := coalesce(public.trim_blank(p_query), '');
begin
  if char_length(v_query) > p_max_chars or public.has_control(v_query) then
    perform public.api_error('invalid_query',
      format('The query must be at most %s characters, without control characters.', p_max_chars));
  end if;
  return v_query;
end;
$$;

revoke execute on function public.validated_query_text(text, int) from public, anon, authenticated, service_role;

create or replace function public.validated_conversation_name(p_name text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_name text := public.trim_blank(p_name);
begin
  if v_name is null
     or v_name = ''
     or char_length(v_name) > 200
     or public.has_control(v_name) then
    perform public.api_error('invalid_name', 'The name must be 1 to 200 characters, without control characters.');
  end if;
  return v_name;
end;
$$;

create function public.validated_body(p_kind text, p_body text)
returns text
language plpgsql
stable
set search_path = ''
as $$
begin
  if p_kind = 'text' and public.is_blank(p_body) then
    perform public.api_error('invalid_body', 'A text message needs a non-blank body.');
  end if;
  if char_length(p_body) > 5000 then
    perform public.api_error('message_too_long', 'The body must be at most 5000 characters.');
  end if;
  if public.is_blank(p_body) then
    return null;
  end if;
  return p_body;
end;
$$;

revoke execute on function public.validated_body(text, text) from public, anon, authenticated, service_role;

create or replace function public.validated_attachment(p_kind text, p_attachment jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_url text;
  v_name text;
  v_mime text;
  v_size numeric;
begin
  if p_kind = 'text' then
    if p_attachment is not null and jsonb_typeof(p_attachment) <> 'null' then
      perform public.api_error('invalid_attachment', 'A text message cannot carry an attachment.');
    end if;
    return null;
  end if;

  if p_attachment is null or jsonb_typeof(p_attachment) <> 'object' then
    perform public.api_error('invalid_attachment',
      format('A %s message needs an attachment object {url, name, mime_type, size_bytes}.', p_kind));
  end if;

  if jsonb_typeof(p_attachment -> 'url') is distinct from 'string'
     or jsonb_typeof(p_attachment -> 'name') is distinct from 'string'
     or jsonb_typeof(p_attachment -> 'mime_type') is distinct from 'string'
     or jsonb_typeof(p_attachment -> 'size_bytes') is distinct from 'number' then
    perform public.api_error('invalid_attachment',
      'The attachment needs url, name and mime_type strings and a size_bytes number.');
  end if;

  v_url := p_attachment ->> 'url';
  v_name := public.trim_blank(p_attachment ->> 'name');
  v_mime := public.trim_blank(p_attachment ->> 'mime_type');
  v_size := (p_attachment ->> 'size_bytes')::numeric;

  -- The URL is stored and shown as given: https, a host, no spaces or
  -- control characters anywhere.
  if octet_length(v_url) > 2048
     or v_url !~ '^https://[^/?#\u0001-\u0020\u007f-\u009f]+[^\u0001-\u0020\u007f-\u009f]*$' then
    perform public.api_error('invalid_attachment', 'The attachment url must be an https URL of at most 2048 bytes.');
  end if;
  if v_name = '' or char_length(v_name) > 255 or v_name ~ '[/\\]' or public.has_control(v_name) then
    perform public.api_error('invalid_attachment',
      'The attachment name must be a file name of 1 to 255 characters without /, \ or control characters.');
  end if;
  -- RFC 6838 restricted names: type and subtype each a letter or digit and up
  -- to 126 more, so at most 255 in all. Checked before lower-casing: lower()
  -- follows the locale and could turn a non-ASCII letter into an ASCII one.
  if v_mime !~ '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$' then
    perform public.api_error('invalid_attachment', 'The attachment mime_type must be type/subtype, each 1 to 127 characters.');
  end if;
  v_mime := lower(v_mime);
  if p_kind = 'image' and v_mime not like 'image/%' then
    perform public.api_error('invalid_attachment', 'An image message needs an image/* mime_type.');
  end if;
  -- Files are stored elsewhere (e.g. Supabase Storage); this caps the metadata.
  if v_size <= 0 or v_size <> trunc(v_size) or v_size > 104857600 then
    perform public.api_error('invalid_attachment', 'The attachment size_bytes must be a whole number from 1 to 104857600.');
  end if;

  return jsonb_build_object('url', v_url, 'name', v_name, 'mime_type', v_mime, 'size_bytes', v_size::bigint);
end;
$$;

create or replace function public.send_message(
  p_sender uuid,
  p_conversation_id uuid,
  p_client_msg_id text,
  p_kind text default 'text',
  p_body text default null,
  p_attachment jsonb default null,
  p_reply_to_id uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_kind text := coalesce(p_kind, 'text');
  v_body text;
  v_attachment jsonb;
  v_message public.messages;
  v_duplicate boolean := false;
  v_seq bigint;
  v_now timestamptz;
  v_json jsonb;
  v_constraint text;
begin
  if p_sender is null or p_conversation_id is null or not exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.user_id = p_sender
      and p.left_at is null
  ) then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;

  -- Plain ASCII, so that it can travel in a header and a log line as it is.
  if p_client_msg_id is null or p_client_msg_id !~ '^[A-Za-z0-9_.:-]{1,100}$' then
    perform public.api_error('invalid_client_msg_id', 'client_msg_id must be 1 to 100 characters of A-Z a-z 0-9 - _ . :');
  end if;

  select m.* into v_message
  from public.messages m
  where m.sender_id = p_sender
    and m.client_msg_id = p_client_msg_id;
  v_duplicate := found;

  if not v_duplicate then
    if v_kind not in ('text', 'image', 'file') then
      perform public.api_error('invalid_kind', 'kind must be text, image or file.');
    end if;

    v_body := public.validated_body(v_kind, p_body);
    v_attachment := public.validated_attachment(v_kind, p_attachment);

    if p_reply_to_id is not null and not exists (
      select 1
      from public.messages m
      where m.id = p_reply_to_id
        and m.conversation_id = p_conversation_id
    ) then
      perform public.api_error('invalid_reply', 'reply_to_id must be a message of this conversation.');
    end if;

    -- A subtransaction: if a concurrent send with the same client_msg_id
    -- wins the unique key, the seq taken here is rolled back with the insert.
    begin
      v_seq := public.next_conversation_seq(p_conversation_id);
      v_now := clock_timestamp();

      insert into public.messages
        (conversation_id, seq, sender_id, client_msg_id, kind, body, attachment, reply_to_id, created_at)
      values
        (p_conversation_id, v_seq, p_sender, p_client_msg_id, v_kind, v_body, v_attachment, p_reply_to_id, v_now)
      returning * into v_message;

      v_json := public.message_json(v_message);

      insert into public.conversation_events (conversation_id, seq, type, message_id, actor_id, payload, created_at)
      values (p_conversation_id, v_seq, 'message.created', v_message.id, p_sender, v_json, v_now);
    exception
      when unique_violation then
        get stacked diagnostics v_constraint = constraint_name;
        if v_constraint is distinct from 'messages_sender_client_msg_id_key' then
          raise;
        end if;
        select m.* into v_message
        from public.messages m
        where m.sender_id = p_sender
          and m.client_msg_id = p_client_msg_id;
        if not found then
          raise;
        end if;
        v_duplicate := true;
    end;
  end if;

  if v_duplicate then
    if v_message.conversation_id <> p_conversation_id then
      perform public.api_error('idempotency_conflict',
        'This client_msg_id was already used for a message in another conversation.');
    end if;
    v_json := public.message_json(v_message);
  end if;

  return jsonb_build_object(
    'message', v_json,
    'duplicate', v_duplicate,
    'recipients', public.live_recipients(p_conversation_id, null)
  );
end;
$$;

create or replace function public.edit_message(p_user_id uuid, p_message_id uuid, p_body text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_message public.messages := public.lock_message_for_change(p_user_id, p_message_id);
  v_body text;
begin
  if v_message.deleted_at is not null then
    perform public.api_error('message_deleted', 'A deleted message cannot be edited.');
  end if;

  v_body := public.validated_body(v_message.kind, p_body);

  if v_body is not distinct from v_message.body then
    return jsonb_build_object(
      'result', jsonb_build_object('message', public.message_json(v_message), 'changed', false),
      'deliveries', '[]'::jsonb
    );
  end if;

  update public.messages m
     set body = v_body,
         edited_at = now()
   where m.id = p_message_id
  returning m.* into v_message;

  return jsonb_build_object(
    'result', jsonb_build_object('message', public.message_json(v_message), 'changed', true),
    'deliveries', jsonb_build_array(public.record_message_change('message.updated', p_user_id, v_message))
  );
end;
$$;

create or replace function public.search_users(p_query text default null, p_limit int default 20)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
  v_limit int := least(greatest(coalesce(p_limit, 20), 1), 50);
  v_pattern text := '%' || replace(replace(replace(public.validated_query_text(p_query, 100), '\', '\\'), '%', '\%'), '_', '\_') || '%';
begin
  return jsonb_build_object('users', (
    with found as (
      select p
      from public.profiles p
      where p.id <> v_me
        and (p.username ilike v_pattern escape '\' or p.display_name ilike v_pattern escape '\')
      order by p.username
      limit v_limit
    )
    select coalesce(jsonb_agg(public.profile_json(f.p, v_me) order by (f.p).username), '[]'::jsonb)
    from found f
  ));
end;
$$;

create or replace function public.search_messages(
  p_query text,
  p_conversation_id uuid default null,
  p_limit int default 20,
  p_offset int default 0
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := auth.uid();
  v_limit int := least(greatest(coalesce(p_limit, 20), 1), 50);
  v_offset int := coalesce(p_offset, 0);
  v_text text := public.validated_query_text(p_query, 200);
  v_query tsquery;
  v_results jsonb;
  v_rows int;
begin
  if v_text = '' then
    perform public.api_error('invalid_query', 'The query must be 1 to 200 characters.');
  end if;
  if v_offset < 0 or v_offset > 10000 then
    perform public.api_error('invalid_argument', 'offset must be 0 to 10000.');
  end if;
  if p_conversation_id is not null then
    perform public.require_participant(p_conversation_id, v_me);
  end if;

  v_query := websearch_to_tsquery('english', v_text) || websearch_to_tsquery('spanish', v_text);

  -- One row more than the page says whether there is more.
  select coalesce(jsonb_agg(jsonb_build_object('message', public.message_json(h.m), 'rank', h.rank) order by h.n), '[]'::jsonb),
         count(*)
  into v_results, v_rows
  from (
    select m, ts_rank(m.search, v_query) as rank,
           row_number() over (order by ts_rank(m.search, v_query) desc, m.seq desc, m.id desc) as n
    from public.messages m
    join public.participants p
      on p.conversation_id = m.conversation_id
     and p.user_id = v_me
     and p.left_at is null
    where (p_conversation_id is null or m.conversation_id = p_conversation_id)
      and m.deleted_at is null
      and m.search @@ v_query
    order by n
    limit v_limit + 1
    offset v_offset
  ) h;

  if v_rows > v_limit then
    v_results := v_results - v_limit;
  end if;

  return jsonb_build_object(
    'results', v_results,
    'next_offset', case when v_rows > v_limit then v_offset + v_limit end
  );
end;
$$;
