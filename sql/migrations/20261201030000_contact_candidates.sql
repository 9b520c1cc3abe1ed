-- contact_recipients asks presence_visible only of the connections of
-- contacts (a direct or group conversation where both have taken part), not of
-- every member of every conversation the user is in: in a public room of
-- thousands, connecting and disconnecting cost a rule check per member.
-- presence_visible still decides; the narrower candidates only skip members it
-- would refuse.
create or replace function public.contact_recipients(p_user_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(
    jsonb_agg(
      jsonb_build_object('user_id', c.user_id, 'connection_id', c.connection_id)
      order by c.user_id, c.connection_id
    ),
    '[]'::jsonb
  )
  from public.connections c
  where c.user_id in (
      select b.user_id
      from public.participants a
      join public.participants b on b.conversation_id = a.conversation_id
      join public.conversations v on v.id = a.conversation_id
      where a.user_id = p_user_id
        and a.left_at is null
        and a.first_sent_at is not null
        and b.user_id <> p_user_id
        and b.left_at is null
        and b.first_sent_at is not null
        and v.kind <> 'room'
    )
    and public.connection_is_live(c.token_exp)
    and public.presence_visible(c.user_id, p_user_id)
$$;
revoke execute on function public.contact_recipients(uuid) from public, anon, authenticated, service_role;
