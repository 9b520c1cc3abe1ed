-- What the advisors (sql/lints/advisors.sql) found in the baseline.

-- multiple_permissive_policies: one policy for both audiences of
-- conversations, since every permissive policy runs for every row.
drop policy "conversations are readable by their participants" on public.conversations;
drop policy "rooms are readable by signed-in users" on public.conversations;

-- Public rooms can be browsed (and then joined) by anyone signed in. One
-- policy, not one per audience: every permissive policy runs for every row.
create policy "conversations are readable by their participants, rooms by signed-in users"
  on public.conversations
  for select
  to authenticated
  using (kind = 'room' or public.is_participant(id));

-- unindexed_foreign_keys: deleting a user sets these to null.
create index conversations_created_by_idx on public.conversations (created_by) where created_by is not null;
create index conversation_events_actor_id_idx on public.conversation_events (actor_id) where actor_id is not null;
