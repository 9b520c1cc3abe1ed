-- People in the API: the public profile of each participant in a
-- conversation's JSON, a direct conversation's counterpart in the list,
-- profiles by id (get_profiles), and who may see a profile decided in one
-- function (can_see_profile) that the profiles policy, search_users and
-- get_profiles ask. A lookup's user ids are checked once (check_user_ids).

-- Who may see whose profile (its public part: username, display name,
-- avatar). Every signed-in user may see every user's: that is how people find
-- each other to start a conversation (search_users), and a chat screen names
-- everyone it shows (get_profiles, and the participants and counterparts that
-- the conversation RPCs embed). The one place this rule is written: the select
-- policy below, search_users and get_profiles all ask it, so a narrower rule
-- (hidden accounts, blocking) is a change here. It names whose profile so such
-- a rule can use it, and asks about the caller only (auth.uid()), like
-- is_participant, so calling it directly reveals nothing about others.
-- Presence is a different rule (presence_visible).
create or replace function public.can_see_profile(p_user_id uuid)
returns boolean
language sql
stable
set search_path = ''
as $$
  select auth.uid() is not null and p_user_id is not null
$$;
-- Policies run it with the querying user's privileges, so authenticated
-- needs EXECUTE.
revoke execute on function public.can_see_profile(uuid) from public, anon;
grant execute on function public.can_see_profile(uuid) to authenticated, service_role;

drop policy "profiles are readable by signed-in users" on public.profiles;
create policy "profiles are readable by signed-in users"
  on public.profiles
  for select
  to authenticated
  using (public.can_see_profile(id));

-- The public part of a profile, as embedded wherever a user is named
-- (participants, a direct conversation's counterpart) and as the base of the
-- Profile shape (profile_json adds presence, for those who may see it).
create or replace function public.public_profile_json(p_profile public.profiles)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', p_profile.id,
    'username', p_profile.username,
    'display_name', p_profile.display_name,
    'avatar_url', p_profile.avatar_url
  )
$$;
revoke execute on function public.public_profile_json(public.profiles) from public, anon, authenticated, service_role;

-- The Conversation JSON shape, with its current participants; each carries
-- last_read_seq, which is how clients show read receipts, and the public part
-- of the participant's profile (never presence: that has its own rule), so a
-- chat screen can name everyone it shows. Former members are not listed.
create or replace function public.conversation_json(p_conversation_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', c.id,
    'kind', c.kind,
    'name', c.name,
    'context_type', c.context_type,
    'context_id', c.context_id,
    'created_by', c.created_by,
    'created_at', c.created_at,
    'last_seq', c.last_seq,
    'participants', coalesce((
      select jsonb_agg(
        jsonb_build_object('user_id', p.user_id, 'role', p.role, 'joined_at', p.joined_at, 'last_read_seq', p.last_read_seq,
                           'profile', public.public_profile_json(u))
        order by p.joined_at, p.user_id
      )
      from public.participants p
      join public.profiles u on u.id = p.user_id
      where p.conversation_id = c.id
        and p.left_at is null
    ), '[]'::jsonb)
  )
  from public.conversations c
  where c.id = p_conversation_id
$$;
revoke execute on function public.conversation_json(uuid) from public, anon, authenticated, service_role;

-- The caller's current conversations, most recently active first, a page at
-- a time, each with what a conversation list shows (last message, unread
-- count, the caller's own settings, and for a direct conversation the
-- public profile of the other user: the counterpart, also after they left;
-- null once their account is gone).
create or replace function public.list_conversations(
  p_limit int default 20,
  p_cursor text default null,
  p_archived boolean default null
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
  v_limit int := least(greatest(coalesce(p_limit, 20), 1), 100);
  v_after_at timestamptz;
  v_after_id uuid;
begin
  if p_cursor is not null then
    select d.o_at, d.o_id into v_after_at, v_after_id from public.decode_cursor(p_cursor) d;
  end if;

  return public.cursor_page('conversations', (
    select coalesce(jsonb_agg(jsonb_build_object(
      'id', r.id,
      'kind', r.kind,
      'name', r.name,
      'context_type', r.context_type,
      'context_id', r.context_id,
      'created_at', r.created_at,
      'last_seq', r.last_seq,
      'last_activity_at', r.last_activity_at,
      'member_count', (select count(*) from public.participants q where q.conversation_id = r.id and q.left_at is null),
      'other_user_id', r.other_user_id,
      'counterpart', case when u.id is not null then public.public_profile_json(u) end,
      'last_message', (
        select public.message_json(m)
        from public.messages m
        where m.conversation_id = r.id
        order by m.seq desc
        limit 1
      ),
      'unread_count', public.unread_count(r.id, v_me, r.last_read_seq),
      'last_read_seq', r.last_read_seq,
      'archived', r.archived,
      'muted', r.muted,
      'role', r.role
    ) order by r.last_activity_at desc, r.id desc), '[]'::jsonb)
    from (
      select c.id, c.kind, c.name, c.context_type, c.context_id, c.created_at, c.last_seq,
             case when c.direct_user_low = v_me then c.direct_user_high else c.direct_user_low end as other_user_id,
             a.at as last_activity_at,
             p.role, p.last_read_seq, p.archived, p.muted
      from public.participants p
      join public.conversations c on c.id = p.conversation_id
      left join public.conversation_events e on e.conversation_id = c.id and e.seq = c.last_seq
      cross join lateral (select coalesce(e.created_at, c.created_at) as at) a
      where p.user_id = v_me
        and p.left_at is null
        and (p_archived is null or p.archived = p_archived)
        and (v_after_id is null or (a.at, c.id) < (v_after_at, v_after_id))
      order by a.at desc, c.id desc
      limit v_limit + 1
    ) r
    -- The counterpart's profile, joined to the page's rows in the same query.
    left join public.profiles u on u.id = r.other_user_id
  ), v_limit);
end;
$$;
revoke execute on function public.list_conversations(int, text, boolean) from public, anon;
grant execute on function public.list_conversations(int, text, boolean) to authenticated, service_role;

-- The Profile JSON shape as a viewer may see it: the public profile, and
-- presence (online, last_seen_at) only for the user themself and their
-- contacts, else null.
create or replace function public.profile_json(p_profile public.profiles, p_viewer uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select public.public_profile_json(p_profile) || jsonb_build_object(
    'online', case when v.visible then public.is_online(p_profile.id) end,
    'last_seen_at', case when v.visible then p_profile.last_seen_at end
  )
  from (select public.presence_visible(p_viewer, p_profile.id) as visible) v
$$;
revoke execute on function public.profile_json(public.profiles, uuid) from public, anon, authenticated, service_role;

-- The user ids of one lookup by id (get_presence, get_profiles): at least
-- one, at most 100 (a chat screen's worth; more is a list to page).
create or replace function public.check_user_ids(p_user_ids uuid[])
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if p_user_ids is null or cardinality(p_user_ids) = 0 then
    perform public.api_error('invalid_argument', 'user_ids must name at least one user.');
  end if;
  if cardinality(p_user_ids) > 100 then
    perform public.api_error('invalid_argument', 'At most 100 user_ids at once.');
  end if;
end;
$$;
revoke execute on function public.check_user_ids(uuid[]) from public, anon, authenticated, service_role;

-- Finds other users by a piece of their username or display name, to start
-- a conversation with, among the profiles the caller may see
-- (can_see_profile). The query is matched literally (% and _ are not
-- wildcards). Presence shows only for contacts.
create or replace function public.search_users(p_query text default null, p_limit int default 20)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
  v_limit int := least(greatest(coalesce(p_limit, 20), 1), 50);
  v_pattern text := '%' || replace(replace(replace(public.validated_query_text(p_query, 100), '\', '\\'), '%', '\%'), '_', '\_') || '%';
begin
  return jsonb_build_object('users', (
    with found as (
      select p
      from public.profiles p
      where p.id <> v_me
        and public.can_see_profile(p.id)
        and (p.username ilike v_pattern escape '\' or p.display_name ilike v_pattern escape '\')
      order by p.username
      limit v_limit
    )
    select coalesce(jsonb_agg(public.profile_json(f.p, v_me) order by (f.p).username), '[]'::jsonb)
    from found f
  ));
end;
$$;
revoke execute on function public.search_users(text, int) from public, anon;
grant execute on function public.search_users(text, int) to authenticated, service_role;

-- Presence of the given users, for those the caller may see (the caller and
-- contacts); the others are left out, indistinguishable from unknown ids.
create or replace function public.get_presence(p_user_ids uuid[])
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
begin
  perform public.check_user_ids(p_user_ids);

  return jsonb_build_object('presence', (
    select coalesce(jsonb_agg(
      jsonb_build_object('user_id', p.id, 'online', public.is_online(p.id), 'last_seen_at', p.last_seen_at)
      order by p.id
    ), '[]'::jsonb)
    from public.profiles p
    where p.id = any (p_user_ids)
      and public.presence_visible(v_me, p.id)
  ));
end;
$$;
revoke execute on function public.get_presence(uuid[]) from public, anon;
grant execute on function public.get_presence(uuid[]) to authenticated, service_role;

-- Profiles by id, for a client that holds ids (a message's sender_id, a
-- typing user_id, a member.joined event) and wants names: the ones the caller
-- may see (can_see_profile, as search_users), the caller's own included;
-- unknown ids are left out. The Profile shape, so presence shows for
-- contacts only, as in search_users.
create or replace function public.get_profiles(p_user_ids uuid[])
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
begin
  perform public.check_user_ids(p_user_ids);

  return jsonb_build_object('users', (
    select coalesce(jsonb_agg(public.profile_json(p, v_me) order by p.username), '[]'::jsonb)
    from public.profiles p
    where p.id = any (p_user_ids)
      and public.can_see_profile(p.id)
  ));
end;
$$;
revoke execute on function public.get_profiles(uuid[]) from public, anon;
grant execute on function public.get_profiles(uuid[]) to authenticated, service_role;
