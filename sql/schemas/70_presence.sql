-- Presence: who is online and when they were last seen, visible only to the
-- user and their contacts: the people with whom they share a direct
-- conversation or a group in which both have sent a message, with no block
-- between them. Opening a direct conversation, adding someone to a group or
-- joining a room reveals nothing by itself; an answer does. Public rooms never
-- make contacts: anyone may join one and post. A user's first connection
-- tells the contacts the user is online, the last one going away that the
-- user is offline, however it went: $disconnect, a push answered 410, or the
-- sweep. Profiles as a viewer sees them.

-- Whether two users are contacts: both current participants of a direct
-- conversation or group in which both have taken part (sent a message,
-- participants.first_sent_at).
create function public.are_contacts(p_user_id uuid, p_other_user_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select exists (
      select 1
      from public.participants a
      join public.participants b on b.conversation_id = a.conversation_id
      join public.conversations c on c.id = a.conversation_id
      where a.user_id = p_user_id
        and a.left_at is null
        and a.first_sent_at is not null
        and b.user_id = p_other_user_id
        and b.left_at is null
        and b.first_sent_at is not null
        and c.kind <> 'room'
    )
  );
end;
$$;
revoke execute on function public.are_contacts(uuid, uuid) from public, anon, authenticated, service_role;

-- Whether a viewer may see a user's presence (online, last seen, live
-- connections): their own, or a contact's with no block either way. The one
-- place this rule is written: get_presence, the Profile shape (get_me,
-- search_users, get_profiles), presence events (contact_recipients) and a
-- conversation's online counts all ask it.
create function public.presence_visible(p_viewer uuid, p_user_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return p_viewer is not null
     and p_user_id is not null
     and (
       p_viewer = p_user_id
       or (public.are_contacts(p_viewer, p_user_id) and not public.blocked_between(p_viewer, p_user_id))
     );
end;
$$;
revoke execute on function public.presence_visible(uuid, uuid) from public, anon, authenticated, service_role;

-- Where a user's presence changes go: the live connections of those who may
-- see it (presence_visible decides). Only a contact can, that is someone in a
-- direct or group conversation where both have taken part, so only their
-- connections are asked: in a public room of thousands, asking every member's
-- connections made connecting and disconnecting cost a rule check per member.
create function public.contact_recipients(p_user_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
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
  );
end;
$$;
revoke execute on function public.contact_recipients(uuid) from public, anon, authenticated, service_role;

-- The Profile JSON shape as a viewer may see it: the public profile, and
-- presence (online, last_seen_at) only for the user themself and their
-- contacts, else null.
create function public.profile_json(p_profile public.profiles, p_viewer uuid)
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
create function public.check_user_ids(p_user_ids uuid[])
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

-- What the others are told when p_user_id's last live connection has gone,
-- however it went ($disconnect, a 410, the sweep): presence offline, with the
-- user's last seen time, to the contacts; and typing stopped in every
-- conversation where the user was still typing (typing_indicators, whose
-- rows of the user are forgotten). The caller holds the user's profile lock.
create function public.went_offline(p_user_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_deliveries jsonb;
begin
  v_deliveries := jsonb_build_array(public.delivery(
    public.event_envelope('presence', null, null, jsonb_build_object(
      'user_id', p_user_id,
      'online', false,
      'last_seen_at', (select p.last_seen_at from public.profiles p where p.id = p_user_id))),
    public.contact_recipients(p_user_id)
  ));

  with stopped as (
    delete from public.typing_indicators t
     where t.user_id = p_user_id
    returning t.conversation_id, t.expires_at
  )
  select v_deliveries || coalesce(jsonb_agg(public.delivery(
      public.event_envelope('typing', s.conversation_id, null, jsonb_build_object(
        'user_id', p_user_id, 'is_typing', false, 'expires_at', now())),
      public.without_blocked(public.live_recipients(s.conversation_id, p_user_id), p_user_id)
    ) order by s.conversation_id), '[]'::jsonb)
    into v_deliveries
  from stopped s
  where s.expires_at > now();

  return v_deliveries;
end;
$$;
revoke execute on function public.went_offline(uuid) from public, anon, authenticated, service_role;

-- Forgets the given connections (API Gateway answered 410 for them, or the
-- sweep found them gone): those past their $connect only
-- (connection_is_settled). A user was last seen when one of them last was
-- (connect, ping, a sweep that found it open), if that is later than what
-- the profile says. Every user whose last live connection goes with them goes
-- offline (went_offline), exactly as by $disconnect, told to the connections
-- that remain; one of several connections going tells nobody. The users'
-- profiles are locked first, in id order, then their connections, as
-- register_connection does. Returns {removed, deliveries}.
create function public.forget_connections(p_connection_ids text[])
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_ids text[] := coalesce(p_connection_ids, '{}'::text[]);
  v_users uuid[];
  v_user_id uuid;
  v_removed int;
  v_deliveries jsonb := '[]'::jsonb;
begin
  perform 1
  from public.profiles p
  where p.id in (
      select c.user_id
      from public.connections c
      where c.connection_id = any (v_ids)
        and public.connection_is_settled(c.connected_at)
    )
  order by p.id
  for update of p;

  with removed as (
    delete from public.connections c
     where c.connection_id = any (v_ids)
       and public.connection_is_settled(c.connected_at)
    returning c.user_id, c.last_seen_at
  ),
  users as (
    select r.user_id, count(*) as removed, max(r.last_seen_at) as last_seen_at
    from removed r
    group by r.user_id
  ),
  seen as (
    update public.profiles p
       set last_seen_at = greatest(p.last_seen_at, u.last_seen_at)
      from users u
     where p.id = u.user_id
  )
  select coalesce(sum(u.removed), 0), coalesce(array_agg(u.user_id order by u.user_id), '{}'::uuid[])
    into v_removed, v_users
  from users u;

  foreach v_user_id in array v_users loop
    if not public.is_online(v_user_id) then
      v_deliveries := v_deliveries || public.went_offline(v_user_id);
    end if;
  end loop;
  return jsonb_build_object('removed', v_removed, 'deliveries', v_deliveries);
end;
$$;
revoke execute on function public.forget_connections(text[]) from public, anon, authenticated, service_role;

-- ===========================================================================
-- Internal RPCs (service_role only)
-- ===========================================================================

-- $connect: records the connection and marks the user seen.
-- first_connection: the user had no other live connection; then the user's
-- contacts are told the user is online.
-- The profile row is locked first so a user's connects and disconnects are
-- serialized and exactly one of them sees the first/last connection (and the
-- count below is exact).
-- p_max_connections: refused with too_many_connections when the user already
-- has that many other live connections (every one of them costs a push per
-- event, so the cap bounds what one account makes each message cost); null
-- sets no cap. A retried $connect of a registered connection is not refused.
create function public.register_connection(
  p_connection_id text,
  p_user_id uuid,
  p_token_exp timestamptz,
  p_max_connections int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_first boolean;
  v_seen timestamptz := now();
  v_deliveries jsonb := '[]'::jsonb;
begin
  if p_connection_id is null or char_length(p_connection_id) not between 1 and 128 then
    perform public.api_error('invalid_argument', 'connection_id must be 1 to 128 characters.');
  end if;

  update public.profiles
     set last_seen_at = v_seen
   where id = p_user_id;
  if not found then
    perform public.api_error('user_not_found', 'No such user.');
  end if;

  if p_max_connections is not null and (
    select count(*)
    from public.connections c
    where c.user_id = p_user_id
      and c.connection_id <> p_connection_id
      and public.connection_is_live(c.token_exp)
  ) >= p_max_connections then
    perform public.api_error('too_many_connections',
      format('At most %s connections per user are open at once; close one first.', p_max_connections));
  end if;

  -- $connect may be retried with the same connection id.
  insert into public.connections (connection_id, user_id, token_exp)
  values (p_connection_id, p_user_id, p_token_exp)
  on conflict (connection_id) do update
     set user_id = excluded.user_id,
         token_exp = excluded.token_exp,
         last_seen_at = now();

  v_first := not exists (
    select 1
    from public.connections c
    where c.user_id = p_user_id
      and c.connection_id <> p_connection_id
      and public.connection_is_live(c.token_exp)
  );

  if v_first then
    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('presence', null, null,
        jsonb_build_object('user_id', p_user_id, 'online', true, 'last_seen_at', v_seen)),
      public.contact_recipients(p_user_id)
    ));
  end if;

  return jsonb_build_object('user_id', p_user_id, 'first_connection', v_first, 'deliveries', v_deliveries);
end;
$$;
revoke execute on function public.register_connection(text, uuid, timestamptz, int) from public, anon, authenticated;
grant execute on function public.register_connection(text, uuid, timestamptz, int) to service_role;

-- $disconnect: forgets the connection and marks the user seen.
-- last_connection: no other live connection remains; then the user goes
-- offline (went_offline: presence to the contacts, typing stopped).
-- An unknown id is not an error: $disconnect may run twice.
create function public.unregister_connection(p_connection_id text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_last boolean;
  v_seen timestamptz := now();
  v_deliveries jsonb := '[]'::jsonb;
begin
  select c.user_id into v_user_id
  from public.connections c
  where c.connection_id = p_connection_id;
  if v_user_id is null then
    return jsonb_build_object('user_id', null, 'last_connection', false, 'deliveries', v_deliveries);
  end if;

  -- Same lock order as register_connection: profile, then connection.
  update public.profiles
     set last_seen_at = v_seen
   where id = v_user_id;

  delete from public.connections c
   where c.connection_id = p_connection_id
     and c.user_id = v_user_id;
  if not found then
    -- A concurrent $disconnect of the same connection got there first.
    return jsonb_build_object('user_id', null, 'last_connection', false, 'deliveries', v_deliveries);
  end if;

  v_last := not public.is_online(v_user_id);
  if v_last then
    v_deliveries := public.went_offline(v_user_id);
  end if;

  return jsonb_build_object('user_id', v_user_id, 'last_connection', v_last, 'deliveries', v_deliveries);
end;
$$;
revoke execute on function public.unregister_connection(text) from public, anon, authenticated;
grant execute on function public.unregister_connection(text) to service_role;

-- Forgets connections a push found gone: API Gateway answered 410 Gone
-- (forget_connections: only those past their $connect; presence offline and
-- typing stopped for users whose last connection they were).
create function public.remove_connections(p_connection_ids text[])
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_forgotten jsonb := public.forget_connections(p_connection_ids);
begin
  return jsonb_build_object(
    'result', jsonb_build_object('removed', v_forgotten -> 'removed'),
    'deliveries', v_forgotten -> 'deliveries'
  );
end;
$$;
revoke execute on function public.remove_connections(text[]) from public, anon, authenticated;
grant execute on function public.remove_connections(text[]) to service_role;

-- ===========================================================================
-- User-facing RPCs (authenticated; the caller is public.caller_id())
-- ===========================================================================

-- The caller's own profile, presence included.
create function public.get_me()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_profile public.profiles;
begin
  select p.* into v_profile from public.profiles p where p.id = public.caller_id();
  if not found then
    perform public.api_error('user_not_found', 'Your profile does not exist.');
  end if;
  return jsonb_build_object('user', public.profile_json(v_profile, v_profile.id));
end;
$$;
revoke execute on function public.get_me() from public, anon;
grant execute on function public.get_me() to authenticated, service_role;

-- Finds other users by a piece of their username or display name, to start
-- a conversation with, among the profiles the caller may see
-- (can_see_profile). The query is matched literally (% and _ are not
-- wildcards). Presence shows only for contacts.
create function public.search_users(p_query text default null, p_limit int default 20)
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
create function public.get_presence(p_user_ids uuid[])
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
create function public.get_profiles(p_user_ids uuid[])
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
