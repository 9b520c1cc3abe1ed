-- Foundation: the helpers every feature uses (errors, blank text, event
-- envelopes, paging cursors). No tables.
--
-- Conventions of the whole schema (sql/schemas/*.sql, applied in file-name
-- order):
--
-- - Every RPC returns jsonb and reports a refusal as
--     raise exception using errcode = 'P0001', message = '<code>', detail = '<sentence>'
--   (public.api_error), which PostgREST returns as
--   {"code":"P0001","message":"<code>","details":"…"}.
-- - Functions are SECURITY DEFINER (RPCs) or run inside one (helpers), with
--   an empty search_path and schema-qualified names, so a caller cannot
--   redirect them to objects of its own.
-- - Supabase grants EXECUTE on every new function in public to anon and
--   authenticated, so every function's grants follow it: helpers are revoked
--   from every API role; internal RPCs (the Lambda functions verify the token
--   and pass the user id as p_user_id) are executable by service_role only;
--   user-facing RPCs, which take the caller from public.caller_id() (never
--   auth.uid() itself), by authenticated and service_role.
-- - Every table enables row level security and revokes Supabase's blanket
--   grants where it is created, then grants exactly what its policies are
--   written for. RLS is not forced: the table owner (the SECURITY DEFINER
--   functions) and service_role bypass it.
-- - Internal RPCs that change something return
--     {"result": {...}, "deliveries": [{"event": <envelope>, "recipients": [...]}, ...]}
--   so one round trip tells the function what to answer and what to push.
-- - Locking: every change of a conversation's membership or content locks the
--   conversation row first (directly, or through next_conversation_seq) and
--   only then its participants or messages. One order everywhere means no
--   deadlocks, and the row lock serializes the changes in seq order.
-- - Tables, row types, policies and SQL-language function bodies refer only
--   to objects of this file or earlier files. A PL/pgSQL body is resolved
--   when it first runs, so it may call what a later file defines.

-- Raises the API error every RPC uses.
create function public.api_error(p_code text, p_detail text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception using errcode = 'P0001', message = p_code, detail = p_detail;
end;
$$;
revoke execute on function public.api_error(text, text) from public, anon, authenticated, service_role;

-- The same with a hint for programs: a JSON object, which PostgREST returns
-- as the error's `hint` (e.g. rate_limited's {"retry_after_ms": n}).
create function public.api_error(p_code text, p_detail text, p_hint jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception using errcode = 'P0001', message = p_code, detail = p_detail, hint = p_hint::text;
end;
$$;
revoke execute on function public.api_error(text, text, jsonb) from public, anon, authenticated, service_role;

-- Refuses a row as a CHECK constraint would: check_violation, naming the
-- table and the broken rule. For the tables whose rules a trigger checks
-- instead of CHECKs (conversations, messages).
create function public.raise_check_violation(p_table text, p_rule text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception using
    errcode = 'check_violation',
    message = format('new row for relation "%s" violates check constraint "%s"', p_table, p_rule),
    schema = 'public',
    table = p_table,
    constraint = p_rule;
end;
$$;
revoke execute on function public.raise_check_violation(text, text) from public, anon, authenticated, service_role;

-- The input rules are decided in the chat functions' domain module; these
-- helpers and the checks that use them repeat them for callers that reach the
-- database directly, and the end-to-end test `rules` holds both to one table
-- of cases.
--
-- These helpers, like the event envelopes below, are PL/pgSQL with a set
-- clause: a SQL function with one is never inlined, so its query would be
-- parsed and planned again in each transaction that calls it (every send asks
-- them, and the checks of messages and conversations too); a PL/pgSQL
-- function's plan is kept for the session.

-- A text without the blank characters at either end. Blank: Unicode
-- White_Space, listed rather than `\s` (which follows the server's locale),
-- plus the invisible zero-width space, word joiner and byte-order mark.
create function public.trim_blank(p_text text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return regexp_replace(
    p_text,
    '^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]+|[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]+$',
    '',
    'g'
  );
end;
$$;

-- Whether a text is null, empty or only blank characters. Shared by the
-- messages check and the RPCs so they agree.
create function public.is_blank(p_text text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return p_text is null or public.trim_blank(p_text) = '';
end;
$$;

-- Whether a text holds a control character (Unicode Cc; NUL cannot be in a
-- text at all), listed rather than [[:cntrl:]], which follows the locale.
create function public.has_control(p_text text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return p_text ~ '[\u0001-\u001f\u007f-\u009f]';
end;
$$;

-- Whether a text holds a bidirectional embedding, override or isolate
-- (U+202A-U+202E, U+2066-U+2069): they reorder what follows them, so that
-- "txt.exe" shows as "exe.txt" or a name shows as someone else's. The marks
-- (U+200E, U+200F, U+061C) are not among them: they reorder nothing, and
-- right-to-left text mixed with left-to-right needs them.
create function public.has_bidi_control(p_text text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return p_text ~ '[\u202a-\u202e\u2066-\u2069]';
end;
$$;

-- A text without the characters that show nothing, or change how the text
-- around them shows, so that a name could pose as another ("ali" U+200B
-- "ce", "alice" U+202E) or look empty: control characters, bidi controls and
-- marks, zero-width and other invisible format characters, soft hyphen, the
-- Hangul fillers and the blank braille pattern (U+2800, which shows as
-- nothing but is no White_Space). Variation selectors are not among them:
-- emoji need them. Rust: chat::domain::is_invisible.
create function public.strip_invisible(p_text text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return regexp_replace(p_text,
    '[\u0001-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufeff\uffa0\ufff9-\ufffb]',
    '', 'g');
end;
$$;

-- Whether a text holds any of the characters strip_invisible removes.
create function public.has_invisible(p_text text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return public.strip_invisible(p_text) <> p_text;
end;
$$;

-- The signed-in user an API request acts for, or null: auth.uid(), unless the
-- token is one the chat refuses although PostgREST accepts it:
-- - an anonymous sign-in (claim is_anonymous = true, as Supabase Auth issues
--   them), unless the database allows them: app.allow_anonymous_users = 'on'
--   (e.g. `alter role authenticator set app.allow_anonymous_users = 'on'`),
--   the database's half of the template parameter AllowAnonymousUsers;
-- - a token past its exp by more than 5 seconds (or without a numeric exp):
--   PostgREST tolerates 30 seconds of clock skew on exp, the chat's functions
--   5 (LEEWAY_SECONDS in functions/chat/src/auth), and every path must agree.
-- Every policy and every user-facing RPC asks this, never auth.uid() itself.
create function public.caller_id()
returns uuid
language sql
stable
set search_path = ''
as $$
  select auth.uid()
  from (select auth.jwt() as claims) j
  where ((j.claims ->> 'is_anonymous') is distinct from 'true'
         or current_setting('app.allow_anonymous_users', true) = 'on')
    and case when jsonb_typeof(j.claims -> 'exp') = 'number'
          then (j.claims ->> 'exp')::numeric >= extract(epoch from now()) - 5
          else false
        end
$$;

-- Policies run it with the querying user's privileges; it only ever answers
-- about the caller.
revoke execute on function public.caller_id() from public, anon;
grant execute on function public.caller_id() to authenticated, service_role;

-- Search text as used: trimmed of blank characters, at most p_max_chars
-- characters and no control characters, or invalid_query. Empty when blank.
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

-- Not an API: check constraints evaluate them with the writer's privileges,
-- and only the table owner and service_role write messages. Users update
-- their own profile, whose constraints call has_invisible (and through it
-- strip_invisible) and is_blank (and through it trim_blank): all four are
-- pure, so executing them tells nobody anything.
revoke execute on function public.trim_blank(text) from public, anon;
revoke execute on function public.is_blank(text) from public, anon;
revoke execute on function public.has_control(text) from public, anon, authenticated, service_role;
revoke execute on function public.strip_invisible(text) from public, anon;
grant execute on function public.strip_invisible(text) to authenticated, service_role;
revoke execute on function public.has_invisible(text) from public, anon;
grant execute on function public.has_invisible(text) to authenticated, service_role;
revoke execute on function public.has_bidi_control(text) from public, anon, authenticated, service_role;
grant execute on function public.trim_blank(text) to authenticated, service_role;
grant execute on function public.is_blank(text) to authenticated, service_role;

-- The envelope of every server -> client event. A key that does not apply is
-- absent rather than null, so a client can tell a durable event (it has a
-- seq) from a transient one by the key alone.
create function public.event_envelope(p_type text, p_conversation_id uuid, p_seq bigint, p_data jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return jsonb_build_object('type', p_type, 'data', coalesce(p_data, '{}'::jsonb))
      || case when p_conversation_id is null then '{}'::jsonb
              else jsonb_build_object('conversation_id', p_conversation_id) end
      || case when p_seq is null then '{}'::jsonb
              else jsonb_build_object('seq', p_seq) end;
end;
$$;
revoke execute on function public.event_envelope(text, uuid, bigint, jsonb) from public, anon, authenticated, service_role;

-- One event and the connections to push it to.
create function public.delivery(p_event jsonb, p_recipients jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return jsonb_build_object('event', p_event, 'recipients', coalesce(p_recipients, '[]'::jsonb));
end;
$$;
revoke execute on function public.delivery(jsonb, jsonb) from public, anon, authenticated, service_role;

-- Paging cursors: the (activity time, id) of the last row of a page, opaque
-- to clients. The time is written as UTC ISO 8601 with microseconds, so it
-- reads back exactly whatever the session's TimeZone and DateStyle.
create function public.encode_cursor(p_at timestamptz, p_id uuid)
returns text
language sql
stable
set search_path = ''
as $$
  -- base64url without padding; encode() wraps lines, so newlines go too.
  select rtrim(
    translate(
      encode(convert_to(to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '|' || p_id::text, 'UTF8'), 'base64'),
      E'+/\n',
      '-_'
    ),
    '='
  )
$$;
revoke execute on function public.encode_cursor(timestamptz, uuid) from public, anon, authenticated, service_role;

-- The (time, id) of a cursor, or invalid_cursor for anything a client made up.
create function public.decode_cursor(p_cursor text, out o_at timestamptz, out o_id uuid)
language plpgsql
stable
set search_path = ''
as $$
declare
  v_base64 text;
  v_text text;
begin
  if p_cursor is null or char_length(p_cursor) > 200 or p_cursor !~ '^[A-Za-z0-9_-]+$' then
    perform public.api_error('invalid_cursor', 'The cursor is not one this API returned.');
  end if;
  begin
    v_base64 := translate(p_cursor, '-_', '+/');
    v_base64 := v_base64 || repeat('=', (4 - char_length(v_base64) % 4) % 4);
    v_text := convert_from(decode(v_base64, 'base64'), 'UTF8');
    if v_text !~ '^[^|]+\|[0-9a-fA-F-]{36}$' then
      raise exception using errcode = '22000', message = 'malformed cursor';
    end if;
    o_at := split_part(v_text, '|', 1)::timestamptz;
    o_id := split_part(v_text, '|', 2)::uuid;
  exception
    -- Bad base64, bad UTF-8, a bad time or id: all data exceptions.
    when data_exception then
      perform public.api_error('invalid_cursor', 'The cursor is not one this API returned.');
  end;
end;
$$;
revoke execute on function public.decode_cursor(text) from public, anon, authenticated, service_role;

-- One page of a cursor-paged list: p_rows holds up to p_limit + 1 items in
-- page order, each with its last_activity_at and id (the paging key); the
-- extra one only says that another page follows, whose cursor is the key of
-- the last item kept.
create function public.cursor_page(p_key text, p_rows jsonb, p_limit int)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    p_key, coalesce((
      select jsonb_agg(t.item order by t.n)
      from jsonb_array_elements(p_rows) with ordinality as t(item, n)
      where t.n <= p_limit
    ), '[]'::jsonb),
    'next_cursor', case when jsonb_array_length(p_rows) > p_limit then public.encode_cursor(
      (p_rows -> (p_limit - 1) ->> 'last_activity_at')::timestamptz,
      (p_rows -> (p_limit - 1) ->> 'id')::uuid
    ) end
  )
$$;
revoke execute on function public.cursor_page(text, jsonb, int) from public, anon, authenticated, service_role;
