-- A message's own fields (seq, client_msg_id, kind, body, attachment and a
-- live text's body not blank) are checked by a trigger instead of six CHECK
-- constraints, which Postgres read and planned again for every message sent.
-- The rows already stored met the constraints, so nothing is re-checked.

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
    raise exception using
      errcode = 'check_violation',
      message = format('new row for relation "messages" violates check constraint "%s"', v_broken),
      schema = 'public',
      table = 'messages',
      constraint = v_broken;
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
