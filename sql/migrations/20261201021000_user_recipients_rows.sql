-- user_recipients puts each connection's row into the array as it is (a
-- row's JSON has its columns' names as keys) rather than through an object
-- built for it first: the same JSON, in the same order, and about a quarter
-- less time in a room of a thousand, where every send asks it for every
-- member.

create or replace function public.user_recipients(p_user_ids uuid[])
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select coalesce(jsonb_agg(r order by r.user_id, r.connection_id), '[]'::jsonb)
    from (
      select c.user_id, c.connection_id
      from public.connections c
      where c.user_id = any (coalesce(p_user_ids, '{}'::uuid[]))
        and public.connection_is_live(c.token_exp)
    ) r
  );
end;
$$;
