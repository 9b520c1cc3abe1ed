-- message_json in PL/pgSQL: every send runs it, and a SQL function's query
-- is parsed and planned again in each transaction that calls it, a PL/pgSQL
-- function's plan is kept for the session. validated_body asks is_blank (a
-- SQL function) once rather than twice.

create or replace function public.message_json(p_message public.messages)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return jsonb_build_object(
    'id', p_message.id,
    'conversation_id', p_message.conversation_id,
    'seq', p_message.seq,
    'sender_id', p_message.sender_id,
    'client_msg_id', p_message.client_msg_id,
    'kind', p_message.kind,
    'body', case when p_message.deleted_at is null then p_message.body end,
    'attachment', case when p_message.deleted_at is null then p_message.attachment end,
    'reply_to_id', p_message.reply_to_id,
    'created_at', p_message.created_at,
    'edited_at', p_message.edited_at,
    'deleted_at', p_message.deleted_at
  );
end;
$$;

create or replace function public.validated_body(p_kind text, p_body text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  -- Asked once: is_blank is a SQL function, parsed and planned again in each
  -- transaction that calls it.
  v_blank boolean := public.is_blank(p_body);
begin
  if p_kind = 'text' and v_blank then
    perform public.api_error('invalid_body', 'A text message needs a non-blank body.');
  end if;
  if public.has_control(translate(p_body, E'\n\t', '')) or public.has_bidi_control(p_body) then
    perform public.api_error('invalid_body',
      'The body must not contain control characters other than newline and tab, nor bidirectional overrides or isolates (U+202A-U+202E, U+2066-U+2069).');
  end if;
  if char_length(p_body) > 5000 then
    perform public.api_error('message_too_long', 'The body must be at most 5000 characters.');
  end if;
  if v_blank then
    return null;
  end if;
  return p_body;
end;
$$;
