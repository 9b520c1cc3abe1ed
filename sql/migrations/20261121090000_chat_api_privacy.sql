-- Privacy of the tables users can read directly, and unique room names.
--
-- Signed-in users read profiles and participants through PostgREST as well as
-- through the RPCs. Two kinds of columns must not be readable that way:
--   - profiles.last_seen_at: presence is visible only to people who share a
--     conversation with the user, which a column grant cannot express, so it
--     is readable only through the presence RPCs (profile_json, get_presence).
--   - participants.archived and participants.muted: a member's own settings;
--     fellow participants must not learn who muted them. The owner reads them
--     through get_conversation and list_conversations.
-- Column privileges do the hiding: a request for such a column (or for *)
-- fails instead of silently returning nulls, so nothing can leak through a
-- policy mistake later. Row visibility stays with the existing policies.

-- ---------------------------------------------------------------------------
-- profiles
-- ---------------------------------------------------------------------------
revoke select on table public.profiles from authenticated;
grant select (id, username, display_name, avatar_url, created_at) on table public.profiles to authenticated;

-- ---------------------------------------------------------------------------
-- participants
-- ---------------------------------------------------------------------------
revoke select on table public.participants from authenticated;
-- last_read_seq stays readable: fellow participants see read receipts.
grant select (conversation_id, user_id, role, joined_at, left_at, last_read_seq)
  on table public.participants to authenticated;

-- ---------------------------------------------------------------------------
-- Room names are how rooms are found, so two rooms may not share one, in any
-- letter case. Enforced by the database, not only by the RPCs' checks, because
-- two creators can race for the same name; the RPCs turn the violation into
-- room_name_taken. Groups and direct conversations may share names.
-- ---------------------------------------------------------------------------
create unique index conversations_room_name_key
  on public.conversations (lower(name))
  where kind = 'room';
