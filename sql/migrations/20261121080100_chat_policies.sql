-- Row Level Security policies and table grants for the API roles.
--
-- Users read through RLS and never write conversations, participants,
-- messages or events directly: every durable change goes through a
-- SECURITY DEFINER function that checks, takes the next seq and writes the
-- event in one transaction. So authenticated gets SELECT only (plus UPDATE of
-- its own profile's editable columns) and anon gets nothing on any table.
-- connections has no policy and no grant at all for users.

-- Whether the calling user is a current participant of a conversation.
-- SECURITY DEFINER so that policies on participants (and on tables whose
-- policies consult participants) do not recurse into participants' own RLS.
create function public.is_participant(p_conversation_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.user_id = auth.uid()
      and p.left_at is null
  )
$$;

comment on function public.is_participant(uuid) is
  'RLS helper: is auth.uid() a current participant of the conversation?';

-- Policies run it with the querying user's privileges, so authenticated needs
-- EXECUTE; it only ever answers about the caller's own membership.
revoke execute on function public.is_participant(uuid) from public, anon;
grant execute on function public.is_participant(uuid) to authenticated, service_role;

-- ---------------------------------------------------------------------------
-- profiles
-- ---------------------------------------------------------------------------
grant select on table public.profiles to authenticated;
-- id and last_seen_at are not the user's to change (presence is server-side).
grant update (username, display_name, avatar_url) on table public.profiles to authenticated;

create policy "profiles are readable by signed-in users"
  on public.profiles
  for select
  to authenticated
  using (true);

create policy "profiles are updatable by their owner"
  on public.profiles
  for update
  to authenticated
  using (id = (select auth.uid()))
  with check (id = (select auth.uid()));

-- ---------------------------------------------------------------------------
-- conversations
-- ---------------------------------------------------------------------------
grant select on table public.conversations to authenticated;

create policy "conversations are readable by their participants"
  on public.conversations
  for select
  to authenticated
  using (public.is_participant(id));

-- Public rooms can be browsed (and then joined) by anyone signed in.
create policy "rooms are readable by signed-in users"
  on public.conversations
  for select
  to authenticated
  using (kind = 'room');

-- ---------------------------------------------------------------------------
-- participants
-- ---------------------------------------------------------------------------
grant select on table public.participants to authenticated;

create policy "participants are readable by fellow participants"
  on public.participants
  for select
  to authenticated
  using (public.is_participant(conversation_id));

-- ---------------------------------------------------------------------------
-- messages
-- ---------------------------------------------------------------------------
grant select on table public.messages to authenticated;

create policy "messages are readable by participants"
  on public.messages
  for select
  to authenticated
  using (public.is_participant(conversation_id));

-- ---------------------------------------------------------------------------
-- conversation_events
-- ---------------------------------------------------------------------------
grant select on table public.conversation_events to authenticated;

create policy "conversation events are readable by participants"
  on public.conversation_events
  for select
  to authenticated
  using (public.is_participant(conversation_id));

-- ---------------------------------------------------------------------------
-- connections: deliberately no policy; revoked again so the intent is
-- visible here too.
-- ---------------------------------------------------------------------------
revoke all on table public.connections from anon, authenticated;

-- service_role bypasses RLS and works on every table (as on Supabase).
grant all on table
  public.profiles,
  public.conversations,
  public.participants,
  public.messages,
  public.conversation_events,
  public.connections
to service_role;
