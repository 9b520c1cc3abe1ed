-- A conversation's own fields (kind, name, context, direct pair) are checked by
-- a trigger on those columns instead of seven CHECK constraints, which
-- Postgres re-read for every message sent (each one writes last_seq).
-- The rows already stored met the constraints, so nothing is re-checked.

alter table public.conversations
  drop constraint conversations_kind_check,
  drop constraint conversations_name_length,
  drop constraint conversations_name_text,
  drop constraint conversations_context_type_length,
  drop constraint conversations_context_id_length,
  drop constraint conversations_context_pair,
  drop constraint conversations_direct_pair;

-- What a conversation's own fields must hold, checked by a trigger on those
-- columns rather than by CHECK constraints. Postgres reads every CHECK of a
-- table again for each statement that writes one of its rows, and every
-- message sent writes last_seq here: these seven checks were about a tenth of
-- the server's instructions for a message to a group
-- (bench/sql/send_message_callgrind.sh). The refusal is the one a CHECK
-- gives: check_violation, naming the constraint that was broken.
create function public.check_conversation_fields()
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
    raise exception using
      errcode = 'check_violation',
      message = format('new row for relation "conversations" violates check constraint "%s"', v_broken),
      schema = 'public',
      table = 'conversations',
      constraint = v_broken;
  end if;
  return new;
end;
$$;
revoke execute on function public.check_conversation_fields() from public, anon, authenticated, service_role;

-- Not fired by an update of last_seq alone: that is what sending does.
create trigger conversations_fields_check
  before insert or update of kind, name, context_type, context_id, direct_user_low, direct_user_high
  on public.conversations
  for each row execute function public.check_conversation_fields();
