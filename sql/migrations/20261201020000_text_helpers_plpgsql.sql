-- The text and envelope helpers in PL/pgSQL rather than SQL: with their set
-- clause a SQL function is never inlined, so each was parsed and planned again
-- in every transaction that called it (about seven calls a send, two of them
-- from check constraints: messages_text_body_not_blank on the insert,
-- conversations_name_text on every last_seq update); a PL/pgSQL function's
-- plan is kept for the session. Same expressions, so the same results, and
-- the same markings: the ones that check constraints call (is_blank,
-- trim_blank, has_invisible, strip_invisible) stay immutable, so the rows
-- already checked need no new validation. None of them is in an index
-- expression, so no index needs rebuilding either. The grants stay as they
-- were: create or replace keeps them.

create or replace function public.trim_blank(p_text text)
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

create or replace function public.is_blank(p_text text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return p_text is null or public.trim_blank(p_text) = '';
end;
$$;

create or replace function public.has_control(p_text text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return p_text ~ '[\u0001-\u001f\u007f-\u009f]';
end;
$$;

create or replace function public.has_bidi_control(p_text text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return p_text ~ '[\u202a-\u202e\u2066-\u2069]';
end;
$$;

create or replace function public.strip_invisible(p_text text)
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

create or replace function public.has_invisible(p_text text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return public.strip_invisible(p_text) <> p_text;
end;
$$;

create or replace function public.event_envelope(p_type text, p_conversation_id uuid, p_seq bigint, p_data jsonb)
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

create or replace function public.delivery(p_event jsonb, p_recipients jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return jsonb_build_object('event', p_event, 'recipients', coalesce(p_recipients, '[]'::jsonb));
end;
$$;
