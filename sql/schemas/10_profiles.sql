-- Profiles: one per auth user, created by a trigger on auth.users.
--
-- Signed-in users read profiles through PostgREST as well as through the
-- RPCs. last_seen_at is not readable that way: presence is visible only to
-- people who share a conversation with the user, which a column grant cannot
-- express, so it is read only through the presence RPCs (profile_json,
-- get_presence). Column privileges do the hiding: a request for that column
-- (or for *) fails instead of silently returning nulls, so nothing can leak
-- through a policy mistake later.

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  -- How people find and name each other, so it must not pose as someone
  -- else's: 3 to 32 of the ASCII letters, digits, "_", "." and "-" (no
  -- look-alike letters from other scripts, nothing invisible), unique in any
  -- letter case (profiles_username_lower_key), shown as its owner wrote it.
  username text not null
    constraint profiles_username_format check (username ~ '^[A-Za-z0-9_.-]{3,32}$'),
  -- Free text in any script, but nothing invisible or reordering
  -- (public.has_invisible): a display name cannot hide or mimic another.
  -- None, or one that shows something: a blank one would name nobody.
  display_name text
    constraint profiles_display_name_length check (char_length(display_name) <= 200)
    constraint profiles_display_name_text check (not public.has_invisible(display_name))
    constraint profiles_display_name_not_blank check (display_name is null or not public.is_blank(display_name)),
  avatar_url text
    constraint profiles_avatar_url_length check (char_length(avatar_url) <= 2048)
    -- Rendered by clients as an image source: https only, no javascript: or data:.
    constraint profiles_avatar_url_https check (avatar_url ~ '^https://[^[:space:][:cntrl:]]+$'),
  last_seen_at timestamptz,
  created_at timestamptz not null default now()
);

comment on table public.profiles is
  'Public profile of an auth user; created by the create_profile_for_new_user trigger.';

-- "ALICE" is not another user than "alice".
create unique index profiles_username_lower_key on public.profiles (lower(username));
comment on column public.profiles.last_seen_at is
  'Presence: set when a connection registers, pings or goes away.';

alter table public.profiles enable row level security;
revoke all on table public.profiles from anon, authenticated;
-- Everything but last_seen_at (see above).
grant select (id, username, display_name, avatar_url, created_at) on table public.profiles to authenticated;
-- id and last_seen_at are not the user's to change (presence is server-side).
grant update (username, display_name, avatar_url) on table public.profiles to authenticated;
-- service_role bypasses RLS and works on every table (as on Supabase).
grant all on table public.profiles to service_role;

-- Who may see whose profile (its public part: username, display name,
-- avatar). Every signed-in user may see every user's: that is how people find
-- each other to start a conversation (search_users), and a chat screen names
-- everyone it shows (get_profiles, and the participants and counterparts that
-- the conversation RPCs embed). The one place this rule is written: the select
-- policy below, search_users and get_profiles all ask it, so a narrower rule
-- (hidden accounts, blocking) is a change here. It names whose profile so such
-- a rule can use it, and asks about the caller only (public.caller_id()), like
-- is_participant, so calling it directly reveals nothing about others.
-- Presence is a different rule (presence_visible).
create function public.can_see_profile(p_user_id uuid)
returns boolean
language sql
stable
set search_path = ''
as $$
  select public.caller_id() is not null and p_user_id is not null
$$;

-- Policies run it with the querying user's privileges, so authenticated
-- needs EXECUTE.
revoke execute on function public.can_see_profile(uuid) from public, anon;
grant execute on function public.can_see_profile(uuid) to authenticated, service_role;

create policy "profiles are readable by signed-in users"
  on public.profiles
  for select
  to authenticated
  using (public.can_see_profile(id));

create policy "profiles are updatable by their owner"
  on public.profiles
  for update
  to authenticated
  using (id = (select public.caller_id()))
  with check (id = (select public.caller_id()));

-- Creates the profile of a new auth user. The username comes from the sign-up
-- metadata, kept to the characters a username may have (profiles_username_format),
-- else it is "user_" and the start of the id; when it is taken (in any
-- letter case), a suffix from the user's id makes it unique, then a random
-- one (retried, because two sign-ups can race for the same name, and a user
-- may have taken any name as theirs): sign-up never fails on a name. Never
-- from the e-mail: profiles are readable by every signed-in user. The
-- display name is the first of the metadata's names that is not blank once
-- it has lost what has_invisible refuses, else the username.
create function public.handle_new_auth_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_meta jsonb := coalesce(new.raw_user_meta_data, '{}'::jsonb);
  v_base text;
  v_candidate text;
  v_hex text := replace(new.id::text, '-', '');
  v_attempt int := 0;
begin
  -- Never the email: profiles are readable by every signed-in user.
  v_base := left(regexp_replace(coalesce(v_meta ->> 'username', ''), '[^A-Za-z0-9_.-]', '', 'g'), 32);
  if char_length(v_base) < 3 then
    v_base := 'user_' || left(v_hex, 8);
  end if;
  v_candidate := v_base;

  loop
    begin
      insert into public.profiles (id, username, display_name, avatar_url)
      values (
        new.id,
        v_candidate,
        left(coalesce(
          nullif(public.trim_blank(public.strip_invisible(v_meta ->> 'display_name')), ''),
          nullif(public.trim_blank(public.strip_invisible(v_meta ->> 'full_name')), ''),
          nullif(public.trim_blank(public.strip_invisible(v_meta ->> 'name')), ''),
          v_base
        ), 200),
        case when v_meta ->> 'avatar_url' ~ '^https://[^[:space:][:cntrl:]]+$'
             then left(v_meta ->> 'avatar_url', 2048) end
      )
      on conflict (id) do nothing;
      return new;
    exception
      when unique_violation then
        v_attempt := v_attempt + 1;
        if v_attempt > 10 then
          raise;
        end if;
        -- 4, then 8 hex digits of the id, then random ones (another user
        -- may have chosen any of the former as their name); the base cut so
        -- that the suffix fits in 32 characters.
        v_candidate := case v_attempt
          when 1 then left(v_base, 27) || '_' || left(v_hex, 4)
          when 2 then left(v_base, 23) || '_' || left(v_hex, 8)
          else 'user_' || left(md5(random()::text || clock_timestamp()::text), 16)
        end;
    end;
  end loop;
end;
$$;

revoke execute on function public.handle_new_auth_user() from public, anon, authenticated, service_role;

-- The public part of a profile, as embedded wherever a user is named
-- (participants, a direct conversation's counterpart) and as the base of the
-- Profile shape (profile_json adds presence, for those who may see it).
create function public.public_profile_json(p_profile public.profiles)
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

create trigger create_profile_for_new_user
  after insert on auth.users
  for each row execute function public.handle_new_auth_user();
