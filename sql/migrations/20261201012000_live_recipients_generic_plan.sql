-- live_recipients plans generically, and so does user_recipients under it:
-- given the members as an array, Postgres judged a plan for that particular
-- array cheaper every time and planned user_recipients' query again on
-- every send.

create or replace function public.live_recipients(p_conversation_id uuid, p_except_user_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  return public.user_recipients(array(
    select p.user_id
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.left_at is null
      and (p_except_user_id is null or p.user_id <> p_except_user_id)
  ));
end;
$$;
