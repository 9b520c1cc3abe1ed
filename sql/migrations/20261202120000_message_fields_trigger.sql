-- A message's own fields (seq, client_msg_id, kind, body, attachment and a
-- live text's body not blank) are checked by a trigger instead of six CHECK
-- constraints, which Postgres read and planned again for every message sent.
-- The rows already stored met the constraints, so nothing is re-checked.
-- The refusal both triggers raise is one helper now, so the conversations'
-- trigger function is replaced to call it: the same error as before.

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

alter table public.messages
  drop constraint messages_seq_positive,
  drop constraint messages_client_msg_id_length,
  drop constraint messages_kind_check,
  drop constraint messages_body_length,
  drop constraint messages_attachment_object,
  drop constraint messages_text_body_not_blank;

create function public.check_message_fields()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_broken text;
begin
  -- As for a CHECK, an unknown (null) outcome passes.
  v_broken := case
    when not coalesce(new.seq > 0, true)
      then 'messages_seq_positive'
    when not coalesce(char_length(new.client_msg_id) between 1 and 100, true)
      then 'messages_client_msg_id_length'
    when not coalesce(new.kind in ('text', 'image', 'file', 'system'), true)
      then 'messages_kind_check'
    when not coalesce(char_length(new.body) <= 5000, true)
      then 'messages_body_length'
    when not coalesce(new.attachment is null or jsonb_typeof(new.attachment) = 'object', true)
      then 'messages_attachment_object'
    -- A live text message says something; a deleted one may have its body wiped.
    when not coalesce(new.kind <> 'text' or new.deleted_at is not null or not public.is_blank(new.body), true)
      then 'messages_text_body_not_blank'
  end;
  if v_broken is not null then
    perform public.raise_check_violation('messages', v_broken);
  end if;
  return new;
end;
$$;
revoke execute on function public.check_message_fields() from public, anon, authenticated, service_role;

-- Not fired by what a deleted account or a deleted reply sets to null
-- (sender_id, reply_to_id), nor by edited_at alone.
create trigger messages_fields_check
  before insert or update of seq, client_msg_id, kind, body, attachment, deleted_at
  on public.messages
  for each row execute function public.check_message_fields();

create or replace function public.check_conversation_fields()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_broken text;
begin
  -- As for a CHECK, an unknown (null) outcome passes.
  v_broken := case
    -- Left to kind's NOT NULL, which Postgres checks after this trigger.
    when new.kind is null
      then null
    when not coalesce(new.kind in ('direct', 'group', 'room'), true)
      then 'conversations_kind_check'
    when not coalesce(char_length(new.name) between 1 and 200, true)
      then 'conversations_name_length'
    when coalesce(public.has_invisible(new.name), false)
      then 'conversations_name_text'
    when not coalesce(char_length(new.context_type) between 1 and 100, true)
      then 'conversations_context_type_length'
    when not coalesce(char_length(new.context_id) between 1 and 100, true)
      then 'conversations_context_id_length'
    when (new.context_type is null) <> (new.context_id is null)
      then 'conversations_context_pair'
    when not coalesce(
      case when new.kind = 'direct'
        then new.direct_user_low is not null
         and new.direct_user_high is not null
         and new.direct_user_low < new.direct_user_high
        else new.direct_user_low is null and new.direct_user_high is null
      end, true)
      then 'conversations_direct_pair'
  end;
  if v_broken is not null then
    perform public.raise_check_violation('conversations', v_broken);
  end if;
  return new;
end;
$$;
revoke execute on function public.check_conversation_fields() from public, anon, authenticated, service_role;
