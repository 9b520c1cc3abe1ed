-- Baseline: the whole schema, made by sql/baseline.sh from sql/schemas/.
-- Applied, it leaves the database exactly as the schema files do; the
-- end-to-end tests compare the two.

-- ===========================================================================
-- sql/schemas/00_foundation.sql
-- ===========================================================================

-- Foundation: the helpers every feature uses (errors, blank text, event
-- envelopes, paging cursors). No tables.
--
-- Conventions of the whole schema (sql/schemas/*.sql, applied in file-name
-- order):
--
-- - Every RPC returns jsonb and reports a refusal as
--     raise exception using errcode = 'P0001', message = '<code>', detail = '<sentence>'
--   (public.api_error), which PostgREST returns as
--   {"code":"P0001","message":"<code>","details":"…"}.
-- - Functions are SECURITY DEFINER (RPCs) or run inside one (helpers), with
--   an empty search_path and schema-qualified names, so a caller cannot
--   redirect them to objects of its own.
-- - Supabase grants EXECUTE on every new function in public to anon and
--   authenticated, so every function's grants follow it: helpers are revoked
--   from every API role; internal RPCs (the Lambda functions verify the token
--   and pass the user id as p_user_id) are executable by service_role only;
--   user-facing RPCs, which take the caller from public.caller_id() (never
--   auth.uid() itself), by authenticated and service_role.
-- - Every table enables row level security and revokes Supabase's blanket
--   grants where it is created, then grants exactly what its policies are
--   written for. RLS is not forced: the table owner (the SECURITY DEFINER
--   functions) and service_role bypass it.
-- - Internal RPCs that change something return
--     {"result": {...}, "deliveries": [{"event": <envelope>, "recipients": [...]}, ...]}
--   so one round trip tells the function what to answer and what to push.
-- - Locking: every change of a conversation's membership or content locks the
--   conversation row first (directly, or through next_conversation_seq) and
--   only then its participants or messages. One order everywhere means no
--   deadlocks, and the row lock serializes the changes in seq order.
-- - Tables, row types, policies and SQL-language function bodies refer only
--   to objects of this file or earlier files. A PL/pgSQL body is resolved
--   when it first runs, so it may call what a later file defines.

-- Raises the API error every RPC uses.
create function public.api_error(p_code text, p_detail text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception using errcode = 'P0001', message = p_code, detail = p_detail;
end;
$$;
revoke execute on function public.api_error(text, text) from public, anon, authenticated, service_role;

-- The same with a hint for programs: a JSON object, which PostgREST returns
-- as the error's `hint` (e.g. rate_limited's {"retry_after_ms": n}).
create function public.api_error(p_code text, p_detail text, p_hint jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception using errcode = 'P0001', message = p_code, detail = p_detail, hint = p_hint::text;
end;
$$;
revoke execute on function public.api_error(text, text, jsonb) from public, anon, authenticated, service_role;

-- The input rules are decided in the chat functions' domain module; these
-- helpers and the checks that use them repeat them for callers that reach the
-- database directly, and the end-to-end test `rules` holds both to one table
-- of cases.

-- A text without the blank characters at either end. Blank: Unicode
-- White_Space, listed rather than `\s` (which follows the server's locale),
-- plus the invisible zero-width space, word joiner and byte-order mark.
create function public.trim_blank(p_text text)
returns text
language sql
immutable
set search_path = ''
as $$
  select regexp_replace(
    p_text,
    '^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]+|[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]+$',
    '',
    'g'
  )
$$;

-- Whether a text is null, empty or only blank characters. Shared by the
-- messages check and the RPCs so they agree.
create function public.is_blank(p_text text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select p_text is null or public.trim_blank(p_text) = ''
$$;

-- Whether a text holds a control character (Unicode Cc; NUL cannot be in a
-- text at all), listed rather than [[:cntrl:]], which follows the locale.
create function public.has_control(p_text text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select p_text ~ '[\u0001-\u001f\u007f-\u009f]'
$$;

-- Whether a text holds a bidirectional embedding, override or isolate
-- (U+202A-U+202E, U+2066-U+2069): they reorder what follows them, so that
-- "txt.exe" shows as "exe.txt" or a name shows as someone else's. The marks
-- (U+200E, U+200F, U+061C) are not among them: they reorder nothing, and
-- right-to-left text mixed with left-to-right needs them.
create function public.has_bidi_control(p_text text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select p_text ~ '[\u202a-\u202e\u2066-\u2069]'
$$;

-- A text without the characters that show nothing, or change how the text
-- around them shows, so that a name could pose as another ("ali" U+200B
-- "ce", "alice" U+202E) or look empty: control characters, bidi controls and
-- marks, zero-width and other invisible format characters, soft hyphen, the
-- Hangul fillers and the blank braille pattern (U+2800, which shows as
-- nothing but is no White_Space). Variation selectors are not among them:
-- emoji need them. Rust: chat::domain::is_invisible.
create function public.strip_invisible(p_text text)
returns text
language sql
immutable
set search_path = ''
as $$
  select regexp_replace(p_text,
    '[\u0001-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufeff\uffa0\ufff9-\ufffb]',
    '', 'g')
$$;

-- Whether a text holds any of the characters strip_invisible removes.
create function public.has_invisible(p_text text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select public.strip_invisible(p_text) <> p_text
$$;

-- The signed-in user an API request acts for, or null: auth.uid(), unless the
-- token is one the chat refuses although PostgREST accepts it:
-- - an anonymous sign-in (claim is_anonymous = true, as Supabase Auth issues
--   them), unless the database allows them: app.allow_anonymous_users = 'on'
--   (e.g. `alter role authenticator set app.allow_anonymous_users = 'on'`),
--   the database's half of the template parameter AllowAnonymousUsers;
-- - a token past its exp by more than 5 seconds (or without a numeric exp):
--   PostgREST tolerates 30 seconds of clock skew on exp, the chat's functions
--   5 (LEEWAY_SECONDS in functions/chat/src/auth), and every path must agree.
-- Every policy and every user-facing RPC asks this, never auth.uid() itself.
create function public.caller_id()
returns uuid
language sql
stable
set search_path = ''
as $$
  select auth.uid()
  from (select auth.jwt() as claims) j
  where ((j.claims ->> 'is_anonymous') is distinct from 'true'
         or current_setting('app.allow_anonymous_users', true) = 'on')
    and case when jsonb_typeof(j.claims -> 'exp') = 'number'
          then (j.claims ->> 'exp')::numeric >= extract(epoch from now()) - 5
          else false
        end
$$;

-- Policies run it with the querying user's privileges; it only ever answers
-- about the caller.
revoke execute on function public.caller_id() from public, anon;
grant execute on function public.caller_id() to authenticated, service_role;

-- Search text as used: trimmed of blank characters, at most p_max_chars
-- characters and no control characters, or invalid_query. Empty when blank.
create function public.validated_query_text(p_query text, p_max_chars int)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_query text := coalesce(public.trim_blank(p_query), '');
begin
  if char_length(v_query) > p_max_chars or public.has_control(v_query) then
    perform public.api_error('invalid_query',
      format('The query must be at most %s characters, without control characters.', p_max_chars));
  end if;
  return v_query;
end;
$$;
revoke execute on function public.validated_query_text(text, int) from public, anon, authenticated, service_role;

-- Not an API: check constraints evaluate them with the writer's privileges,
-- and only the table owner and service_role write messages. Users update
-- their own profile, whose constraints call has_invisible (and through it
-- strip_invisible) and is_blank (and through it trim_blank): all four are
-- pure, so executing them tells nobody anything.
revoke execute on function public.trim_blank(text) from public, anon;
revoke execute on function public.is_blank(text) from public, anon;
revoke execute on function public.has_control(text) from public, anon, authenticated, service_role;
revoke execute on function public.strip_invisible(text) from public, anon;
grant execute on function public.strip_invisible(text) to authenticated, service_role;
revoke execute on function public.has_invisible(text) from public, anon;
grant execute on function public.has_invisible(text) to authenticated, service_role;
revoke execute on function public.has_bidi_control(text) from public, anon, authenticated, service_role;
grant execute on function public.trim_blank(text) to authenticated, service_role;
grant execute on function public.is_blank(text) to authenticated, service_role;

-- The envelope of every server -> client event. A key that does not apply is
-- absent rather than null, so a client can tell a durable event (it has a
-- seq) from a transient one by the key alone.
create function public.event_envelope(p_type text, p_conversation_id uuid, p_seq bigint, p_data jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object('type', p_type, 'data', coalesce(p_data, '{}'::jsonb))
      || case when p_conversation_id is null then '{}'::jsonb
              else jsonb_build_object('conversation_id', p_conversation_id) end
      || case when p_seq is null then '{}'::jsonb
              else jsonb_build_object('seq', p_seq) end
$$;
revoke execute on function public.event_envelope(text, uuid, bigint, jsonb) from public, anon, authenticated, service_role;

-- One event and the connections to push it to.
create function public.delivery(p_event jsonb, p_recipients jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object('event', p_event, 'recipients', coalesce(p_recipients, '[]'::jsonb))
$$;
revoke execute on function public.delivery(jsonb, jsonb) from public, anon, authenticated, service_role;

-- Paging cursors: the (activity time, id) of the last row of a page, opaque
-- to clients. The time is written as UTC ISO 8601 with microseconds, so it
-- reads back exactly whatever the session's TimeZone and DateStyle.
create function public.encode_cursor(p_at timestamptz, p_id uuid)
returns text
language sql
stable
set search_path = ''
as $$
  -- base64url without padding; encode() wraps lines, so newlines go too.
  select rtrim(
    translate(
      encode(convert_to(to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '|' || p_id::text, 'UTF8'), 'base64'),
      E'+/\n',
      '-_'
    ),
    '='
  )
$$;
revoke execute on function public.encode_cursor(timestamptz, uuid) from public, anon, authenticated, service_role;

-- The (time, id) of a cursor, or invalid_cursor for anything a client made up.
create function public.decode_cursor(p_cursor text, out o_at timestamptz, out o_id uuid)
language plpgsql
stable
set search_path = ''
as $$
declare
  v_base64 text;
  v_text text;
begin
  if p_cursor is null or char_length(p_cursor) > 200 or p_cursor !~ '^[A-Za-z0-9_-]+$' then
    perform public.api_error('invalid_cursor', 'The cursor is not one this API returned.');
  end if;
  begin
    v_base64 := translate(p_cursor, '-_', '+/');
    v_base64 := v_base64 || repeat('=', (4 - char_length(v_base64) % 4) % 4);
    v_text := convert_from(decode(v_base64, 'base64'), 'UTF8');
    if v_text !~ '^[^|]+\|[0-9a-fA-F-]{36}$' then
      raise exception using errcode = '22000', message = 'malformed cursor';
    end if;
    o_at := split_part(v_text, '|', 1)::timestamptz;
    o_id := split_part(v_text, '|', 2)::uuid;
  exception
    -- Bad base64, bad UTF-8, a bad time or id: all data exceptions.
    when data_exception then
      perform public.api_error('invalid_cursor', 'The cursor is not one this API returned.');
  end;
end;
$$;
revoke execute on function public.decode_cursor(text) from public, anon, authenticated, service_role;

-- One page of a cursor-paged list: p_rows holds up to p_limit + 1 items in
-- page order, each with its last_activity_at and id (the paging key); the
-- extra one only says that another page follows, whose cursor is the key of
-- the last item kept.
create function public.cursor_page(p_key text, p_rows jsonb, p_limit int)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    p_key, coalesce((
      select jsonb_agg(t.item order by t.n)
      from jsonb_array_elements(p_rows) with ordinality as t(item, n)
      where t.n <= p_limit
    ), '[]'::jsonb),
    'next_cursor', case when jsonb_array_length(p_rows) > p_limit then public.encode_cursor(
      (p_rows -> (p_limit - 1) ->> 'last_activity_at')::timestamptz,
      (p_rows -> (p_limit - 1) ->> 'id')::uuid
    ) end
  )
$$;
revoke execute on function public.cursor_page(text, jsonb, int) from public, anon, authenticated, service_role;

-- ===========================================================================
-- sql/schemas/10_profiles.sql
-- ===========================================================================

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

-- ===========================================================================
-- sql/schemas/12_rate_limits.sql
-- ===========================================================================

-- Rate limits: a token bucket per user and action, taken inside the write it
-- guards ('message': send_message, edit_message; 'typing':
-- send_typing; 'conversation': create_conversation,
-- open_direct_conversation, update_conversation's rename, add_members;
-- 'join': join_room), so that a refused call costs the same
-- one round trip, stores nothing (the refusal rolls the whole call back, the
-- bucket's own update with it) and cannot be raced past.
--
-- The limits are the deployment's (template.yaml parameters, given to the
-- chat functions as environment variables): the functions pass them with
-- every call, so the database holds no configuration to keep in step with the
-- template. The guarded RPCs are internal (service_role only), so no user can
-- pass limits of their own; a call without limits (null, as from SQL tests
-- and maintenance scripts) is not limited.
--
-- Refill is computed from the bucket's last update (no background job): a
-- bucket holds at most `burst` tokens and gains `per_minute` a minute.

create table public.rate_limit_buckets (
  user_id uuid not null references public.profiles (id) on delete cascade,
  action text not null
    constraint rate_limit_buckets_action check (action in ('message', 'typing', 'conversation', 'join')),
  -- What was left after the last take (fractions accumulate between takes).
  tokens double precision not null,
  updated_at timestamptz not null,
  primary key (user_id, action)
);

-- Deliberately no policy and no grant for any API role: only the functions
-- below change it, inside the write they guard. Reading it would tell a user
-- nothing the 429s do not; resetting it would lift the limit.
alter table public.rate_limit_buckets enable row level security;
revoke all on table public.rate_limit_buckets from anon, authenticated, service_role;

-- Takes one token of p_user_id's bucket for p_action, or refuses with
-- rate_limited and, in the hint, {"retry_after_ms": n}: how long until a
-- token is there. A refusal raises, so the caller's transaction (and this
-- bucket's update) rolls back: refused calls do not drain the bucket further.
-- The bucket's row lock serializes one user's concurrent takes of one action;
-- every guarded RPC takes it before any other lock, so the order is the same
-- everywhere.
create function public.take_token(p_user_id uuid, p_action text, p_per_minute int, p_burst int)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_bucket public.rate_limit_buckets;
  v_available double precision;
  v_retry_after_ms bigint;
begin
  if p_per_minute is null and p_burst is null then
    return;
  end if;
  if p_per_minute is null or p_per_minute < 1 or p_burst is null or p_burst < 1 then
    perform public.api_error('invalid_argument', 'A rate limit needs at least 1 per minute and a burst of at least 1.');
  end if;

  insert into public.rate_limit_buckets (user_id, action, tokens, updated_at)
  values (p_user_id, p_action, p_burst, v_now)
  on conflict (user_id, action) do nothing;

  select b.* into strict v_bucket
  from public.rate_limit_buckets b
  where b.user_id = p_user_id
    and b.action = p_action
  for update;

  -- Never negative: a transaction that started before the last take sees
  -- an updated_at after its own clock.
  v_available := least(
    p_burst::double precision,
    v_bucket.tokens + greatest(0, extract(epoch from v_now - v_bucket.updated_at)) * p_per_minute / 60.0
  );

  if v_available < 1 then
    v_retry_after_ms := ceil((1 - v_available) * 60000.0 / p_per_minute);
    perform public.api_error('rate_limited',
      format('Too many %s requests; try again in %s ms.', p_action, v_retry_after_ms),
      jsonb_build_object('retry_after_ms', v_retry_after_ms));
  end if;

  update public.rate_limit_buckets b
     set tokens = v_available - 1,
         updated_at = greatest(b.updated_at, v_now)
   where b.user_id = p_user_id
     and b.action = p_action;
end;
$$;
revoke execute on function public.take_token(uuid, text, int, int) from public, anon, authenticated, service_role;

-- ===========================================================================
-- sql/schemas/15_blocks.sql
-- ===========================================================================

-- Blocks: a user stops another. A block is one-sided to make (only the
-- blocker can lift it) and cuts both ways once made: neither of the two can
-- open a direct conversation with the other, send or edit in their direct
-- conversations (blocked; deleting stays allowed), or put the other in a
-- group or room (create_conversation, add_members), and neither sees the
-- other's presence, typing or read receipts (presence_visible,
-- without_blocked). In groups and rooms they already share both stay
-- members and messages flow; the blocker's client hides the blocked user's
-- messages, knowing whom from list_blocks.
--
-- A user reads only the blocks they made: the blocked user is never told, and
-- learns only what a refused direct message must say (that the two of them
-- cannot message each other, not who decided it). Writes go through
-- block_user and unblock_user, which check the other user and the cap.

create table public.blocks (
  blocker_id uuid not null references public.profiles (id) on delete cascade,
  blocked_id uuid not null references public.profiles (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (blocker_id, blocked_id),
  constraint blocks_not_self check (blocker_id <> blocked_id)
);

comment on table public.blocks is
  'Who blocked whom; each user reads their own. Written by block_user and unblock_user.';

-- "Who blocked me" (blocked_between asks both ways; deleting a user).
create index blocks_blocked_id_idx on public.blocks (blocked_id);

alter table public.blocks enable row level security;
revoke all on table public.blocks from anon, authenticated;
grant select on table public.blocks to authenticated;
grant all on table public.blocks to service_role;

create policy "blocks are readable by the user who made them"
  on public.blocks
  for select
  to authenticated
  using (blocker_id = (select public.caller_id()));

-- Whether either of two users blocked the other: what a block cuts is cut
-- both ways.
create function public.blocked_between(p_user_id uuid, p_other_user_id uuid)
returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (
    select 1
    from public.blocks b
    where (b.blocker_id = p_user_id and b.blocked_id = p_other_user_id)
       or (b.blocker_id = p_other_user_id and b.blocked_id = p_user_id)
  )
$$;
revoke execute on function public.blocked_between(uuid, uuid) from public, anon, authenticated, service_role;

-- ===========================================================================
-- User-facing RPCs (authenticated; the caller is public.caller_id())
-- ===========================================================================

-- Blocks a user. Blocking again is not an error (created = false). At most
-- 1000 blocks per user: enough for anyone, and it bounds list_blocks.
create function public.block_user(p_user_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
  v_block public.blocks;
  v_created boolean := false;
begin
  if p_user_id is null then
    perform public.api_error('invalid_argument', 'user_id is required.');
  end if;
  if p_user_id = v_me then
    perform public.api_error('invalid_argument', 'You cannot block yourself.');
  end if;
  if not exists (select 1 from public.profiles p where p.id = p_user_id) then
    perform public.api_error('user_not_found', 'No such user.');
  end if;

  -- The caller's profile row serializes the caller's blocks, so two at once
  -- cannot both pass the cap.
  perform 1 from public.profiles p where p.id = v_me for no key update;
  if not found then
    perform public.api_error('user_not_found', 'Your profile does not exist.');
  end if;

  select b.* into v_block
  from public.blocks b
  where b.blocker_id = v_me
    and b.blocked_id = p_user_id;
  if not found then
    if (select count(*) from public.blocks b where b.blocker_id = v_me) >= 1000 then
      perform public.api_error('too_many_blocks', 'At most 1000 users can be blocked; unblock someone first.');
    end if;
    -- The pair's direct conversations, locked as every write into them
    -- locks them (refuse_if_blocked): a send or edit under way commits
    -- before the block does, and one that comes after sees the block.
    perform 1
    from public.conversations c
    where c.kind = 'direct'
      and c.direct_user_low = least(v_me, p_user_id)
      and c.direct_user_high = greatest(v_me, p_user_id)
    order by c.id
    for no key update;
    insert into public.blocks (blocker_id, blocked_id)
    values (v_me, p_user_id)
    returning * into v_block;
    v_created := true;
  end if;

  return jsonb_build_object(
    'block', jsonb_build_object('user_id', v_block.blocked_id, 'created_at', v_block.created_at),
    'created', v_created
  );
end;
$$;
revoke execute on function public.block_user(uuid) from public, anon;
grant execute on function public.block_user(uuid) to authenticated, service_role;

-- Lifts the caller's block of a user. Lifting a block that does not exist is
-- not an error (removed = false): the result is the same.
create function public.unblock_user(p_user_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
begin
  if p_user_id is null then
    perform public.api_error('invalid_argument', 'user_id is required.');
  end if;

  delete from public.blocks b
   where b.blocker_id = v_me
     and b.blocked_id = p_user_id;

  return jsonb_build_object('user_id', p_user_id, 'removed', found);
end;
$$;
revoke execute on function public.unblock_user(uuid) from public, anon;
grant execute on function public.unblock_user(uuid) to authenticated, service_role;

-- The users the caller blocks, newest first, each with the public profile a
-- client needs to show and hide them (all of them: block_user caps them).
create function public.list_blocks()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
begin
  return jsonb_build_object('blocks', (
    select coalesce(jsonb_agg(
      jsonb_build_object('user_id', b.blocked_id, 'created_at', b.created_at, 'profile', public.public_profile_json(p))
      order by b.created_at desc, b.blocked_id
    ), '[]'::jsonb)
    from public.blocks b
    join public.profiles p on p.id = b.blocked_id
    where b.blocker_id = v_me
  ));
end;
$$;
revoke execute on function public.list_blocks() from public, anon;
grant execute on function public.list_blocks() to authenticated, service_role;

-- ===========================================================================
-- sql/schemas/20_connections.sql
-- ===========================================================================

-- Connections: the WebSocket registry. Internal: only service_role and the
-- SECURITY DEFINER functions touch it; users never see connection ids (they
-- address someone's devices). Who goes online and offline when a connection
-- comes or goes is presence (70_presence.sql).

create table public.connections (
  connection_id text primary key
    constraint connections_connection_id_length check (char_length(connection_id) between 1 and 128),
  user_id uuid not null references public.profiles (id) on delete cascade,
  connected_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  -- Expiry of the token the socket connected with; past it the socket is
  -- no longer live and gets nothing more.
  token_exp timestamptz
);

create index connections_user_id_idx on public.connections (user_id);

-- Deliberately no policy and no grant for users.
alter table public.connections enable row level security;
revoke all on table public.connections from anon, authenticated;
grant all on table public.connections to service_role;

-- Whether a registered connection may still receive events: the token it
-- connected with has not expired. A row whose $disconnect never came stays
-- until a push to it is answered 410 Gone (remove_connections).
create function public.connection_is_live(p_token_exp timestamptz)
returns boolean
language sql
stable
set search_path = ''
as $$
  select p_token_exp is null or p_token_exp > now()
$$;
revoke execute on function public.connection_is_live(timestamptz) from public, anon, authenticated, service_role;

-- Live connections of the given users, as Recipient JSON (for events meant
-- for particular users: the one who left, the ones just added, a reader).
create function public.user_recipients(p_user_ids uuid[])
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
  where c.user_id = any (coalesce(p_user_ids, '{}'::uuid[]))
    and public.connection_is_live(c.token_exp)
$$;
revoke execute on function public.user_recipients(uuid[]) from public, anon, authenticated, service_role;

-- Whether a user has a live connection.
create function public.is_online(p_user_id uuid)
returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (
    select 1
    from public.connections c
    where c.user_id = p_user_id
      and public.connection_is_live(c.token_exp)
  )
$$;
revoke execute on function public.is_online(uuid) from public, anon, authenticated, service_role;

-- ping: refreshes the connection's and the user's last seen time.
create function public.touch_connection(p_connection_id text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_now timestamptz := now();
begin
  select c.user_id into v_user_id
  from public.connections c
  where c.connection_id = p_connection_id;
  if v_user_id is null then
    perform public.api_error('unknown_connection', 'No such connection.');
  end if;

  -- Same lock order as register_connection: profile, then connection.
  update public.profiles
     set last_seen_at = v_now
   where id = v_user_id;

  update public.connections c
     set last_seen_at = v_now
   where c.connection_id = p_connection_id;
  if not found then
    perform public.api_error('unknown_connection', 'No such connection.');
  end if;

  return jsonb_build_object('user_id', v_user_id, 'last_seen_at', v_now);
end;
$$;
revoke execute on function public.touch_connection(text) from public, anon, authenticated;
grant execute on function public.touch_connection(text) to service_role;

-- Forgets connections a push found gone: API Gateway answered 410 Gone.
-- A push to a connection whose $connect has not returned yet is answered 410
-- too, although that connection is already registered (its $connect registers
-- before it returns); forgetting it would leave a socket about to open with
-- nothing until it reconnected. So only connections older than any $connect
-- can take are forgotten (API Gateway's integration timeout is 29 seconds); a
-- young one that really went away is removed by its $disconnect, or by a
-- later 410.
create function public.remove_connections(p_connection_ids text[])
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_removed int;
begin
  delete from public.connections c
   where c.connection_id = any (coalesce(p_connection_ids, '{}'::text[]))
     and c.connected_at < now() - interval '30 seconds';
  get diagnostics v_removed = row_count;
  return jsonb_build_object('removed', v_removed);
end;
$$;
revoke execute on function public.remove_connections(text[]) from public, anon, authenticated;
grant execute on function public.remove_connections(text[]) to service_role;

-- ===========================================================================
-- sql/schemas/30_conversations.sql
-- ===========================================================================

-- Conversations and their participants: direct (1:1), group, or public room,
-- optionally about a thing; membership, and the RPCs that change it.
--
-- Users read through RLS and never write conversations or participants
-- directly: every durable change goes through a SECURITY DEFINER function that
-- checks, takes the next seq and writes the event in one transaction.
--
-- participants.archived and participants.muted are a member's own settings;
-- fellow participants must not learn who muted them, so those columns are not
-- granted (a request for them, or for *, fails); the owner reads them through
-- get_conversation and list_conversations. Neither is last_read_seq: a room
-- member's read position is theirs alone, which a column grant cannot say per
-- kind of conversation, so read receipts (groups and direct conversations)
-- are read through the RPCs (conversation_json).

create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  kind text not null
    constraint conversations_kind_check check (kind in ('direct', 'group', 'room')),
  -- Shown in lists and notifications, and how rooms are found: nothing
  -- invisible or reordering (public.has_invisible), so that a name can
  -- neither look empty nor pose as another (validated_conversation_name).
  name text
    constraint conversations_name_length check (char_length(name) between 1 and 200)
    constraint conversations_name_text check (not public.has_invisible(name)),
  context_type text
    constraint conversations_context_type_length check (char_length(context_type) between 1 and 100),
  context_id text
    constraint conversations_context_id_length check (char_length(context_id) between 1 and 100),
  created_by uuid references public.profiles (id) on delete set null,
  created_at timestamptz not null default now(),
  -- The sequence number of the latest durable event; the next event takes
  -- last_seq + 1 in the same transaction (the row lock serializes writers).
  last_seq bigint not null default 0
    constraint conversations_last_seq_nonnegative check (last_seq >= 0),
  -- The ordered pair of a direct conversation, so the pair is unique.
  direct_user_low uuid,
  direct_user_high uuid,
  constraint conversations_context_pair check ((context_type is null) = (context_id is null)),
  constraint conversations_direct_pair check (
    case when kind = 'direct'
      then direct_user_low is not null
       and direct_user_high is not null
       and direct_user_low < direct_user_high
      else direct_user_low is null and direct_user_high is null
    end
  )
);

-- One 1:1 per pair and context, even when both users open it at once:
-- open_direct_conversation inserts with ON CONFLICT on this index.
create unique index conversations_direct_pair_key
  on public.conversations (direct_user_low, direct_user_high, coalesce(context_type, ''), coalesce(context_id, ''))
  where kind = 'direct';

-- Public rooms are listed for everyone.
create index conversations_room_idx on public.conversations (created_at) where kind = 'room';

-- Room names are how rooms are found, so two rooms may not share one, in any
-- letter case. Enforced by the database, not only by the RPCs' checks, because
-- two creators can race for the same name; the RPCs turn the violation into
-- room_name_taken. Groups and direct conversations may share names. A name
-- holds nothing invisible (conversations_name_text), so two names that show
-- alike are alike here too: "Lima" and "Li" U+200B "ma" cannot both exist.
create unique index conversations_room_name_key
  on public.conversations (lower(name))
  where kind = 'room';

-- Deleting a user sets created_by to null in their conversations.
create index conversations_created_by_idx on public.conversations (created_by) where created_by is not null;

alter table public.conversations enable row level security;
revoke all on table public.conversations from anon, authenticated;
grant select on table public.conversations to authenticated;
grant all on table public.conversations to service_role;

-- Membership; left_at set means a former member.
create table public.participants (
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  role text not null default 'member'
    constraint participants_role_check check (role in ('owner', 'member')),
  joined_at timestamptz not null default now(),
  left_at timestamptz,
  -- Read watermark: unread = messages by others with seq > last_read_seq.
  last_read_seq bigint not null default 0
    constraint participants_last_read_seq_nonnegative check (last_read_seq >= 0),
  archived boolean not null default false,
  muted boolean not null default false,
  -- When the member first sent a message here (send_message): having taken
  -- part, which is what makes two members contacts (presence_visible).
  -- Private like archived and muted: not granted to users.
  first_sent_at timestamptz,
  primary key (conversation_id, user_id)
);

create index participants_user_id_idx on public.participants (user_id);

alter table public.participants enable row level security;
revoke all on table public.participants from anon, authenticated;
-- Not archived, muted and last_read_seq (see above).
grant select (conversation_id, user_id, role, joined_at, left_at)
  on table public.participants to authenticated;
grant all on table public.participants to service_role;

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
      and p.user_id = (select public.caller_id())
      and p.left_at is null
  )
$$;

comment on function public.is_participant(uuid) is
  'RLS helper: is the caller (public.caller_id()) a current participant of the conversation?';

-- Policies run it with the querying user's privileges, so authenticated needs
-- EXECUTE; it only ever answers about the caller's own membership.
revoke execute on function public.is_participant(uuid) from public, anon;
grant execute on function public.is_participant(uuid) to authenticated, service_role;

-- Public rooms can be browsed (and then joined) by anyone signed in. One
-- policy, not one per audience: every permissive policy runs for every row.
create policy "conversations are readable by their participants, rooms by signed-in users"
  on public.conversations
  for select
  to authenticated
  using ((kind = 'room' and (select public.caller_id()) is not null) or public.is_participant(id));

-- Current members only, as the API lists them: someone who left is not
-- shown to the members, whether they joined before or after (the simplest
-- rule that hides a former member from newcomers; the conversation's events
-- still say who joined and left while the reader was a member).
create policy "current participants are readable by fellow participants"
  on public.participants
  for select
  to authenticated
  using (left_at is null and public.is_participant(conversation_id));

-- ===========================================================================
-- Helpers
-- ===========================================================================

-- The Conversation JSON shape, with its current participants; each carries
-- last_read_seq, which is how clients show read receipts (null in a room: a
-- room's members did not sign up for each other's receipts, and mark_read
-- tells only the reader; a member's own is in me_json), and the public part
-- of the participant's profile (never presence: that has its own rule), so a
-- chat screen can name everyone it shows. Former members are not listed.
create function public.conversation_json(p_conversation_id uuid)
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
        jsonb_build_object('user_id', p.user_id, 'role', p.role, 'joined_at', p.joined_at,
                           'last_read_seq', case when c.kind <> 'room' then p.last_read_seq end,
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

-- Live connections of a conversation's current participants, as Recipient
-- JSON, optionally leaving one user out (typing goes to the others only).
create function public.live_recipients(p_conversation_id uuid, p_except_user_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select public.user_recipients(array(
    select p.user_id
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.left_at is null
      and (p_except_user_id is null or p.user_id <> p_except_user_id)
  ))
$$;
revoke execute on function public.live_recipients(uuid, uuid) from public, anon, authenticated, service_role;

-- Recipients (Recipient JSON) but for the users with a block between them
-- and p_user_id, either way: what a block hides of a user (typing, read
-- receipts) reaches neither of the two.
create function public.without_blocked(p_recipients jsonb, p_user_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_agg(r order by r ->> 'user_id', r ->> 'connection_id'), '[]'::jsonb)
  from jsonb_array_elements(p_recipients) as r
  where not public.blocked_between(p_user_id, (r ->> 'user_id')::uuid)
$$;
revoke execute on function public.without_blocked(jsonb, uuid) from public, anon, authenticated, service_role;

-- The caller of a user-facing RPC. service_role without a user's claims has
-- no caller, and must not be mistaken for one.
create function public.require_caller()
returns uuid
language plpgsql
stable
set search_path = ''
as $$
declare
  v_me uuid := public.caller_id();
begin
  if v_me is null then
    perform public.api_error('invalid_argument', 'A signed-in user is required.');
  end if;
  return v_me;
end;
$$;
revoke execute on function public.require_caller() from public, anon, authenticated, service_role;

-- A user's current participation, or not_a_participant. The same refusal for
-- a conversation that does not exist, so the answer reveals nothing.
create function public.require_participant(p_conversation_id uuid, p_user_id uuid)
returns public.participants
language plpgsql
stable
set search_path = ''
as $$
declare
  v_participant public.participants;
begin
  select p.* into v_participant
  from public.participants p
  where p.conversation_id = p_conversation_id
    and p.user_id = p_user_id
    and p.left_at is null;
  if not found then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;
  return v_participant;
end;
$$;
revoke execute on function public.require_participant(uuid, uuid) from public, anon, authenticated, service_role;

-- Locks the conversation row for a change made by one of its participants and
-- returns the participation as of the lock. Outsiders are refused before any
-- lock is taken (they must not be able to hold up someone else's
-- conversation); the check is repeated under the lock because a concurrent
-- leave may have committed in between, and every membership change takes this
-- lock first.
create function public.lock_as_participant(p_conversation_id uuid, p_user_id uuid)
returns public.participants
language plpgsql
set search_path = ''
as $$
begin
  perform public.require_participant(p_conversation_id, p_user_id);
  -- The lock next_conversation_seq's update takes; it does not block inserts
  -- of rows referencing the conversation, as FOR UPDATE would.
  perform 1
  from public.conversations c
  where c.id = p_conversation_id
  for no key update;
  return public.require_participant(p_conversation_id, p_user_id);
end;
$$;
revoke execute on function public.lock_as_participant(uuid, uuid) from public, anon, authenticated, service_role;

-- A conversation name as stored: trimmed of blank characters, 1 to 200
-- characters, nothing invisible or reordering (has_invisible: control
-- characters, bidi controls and marks, zero-width characters, fillers; names
-- are shown in lists and notifications, and find rooms), or invalid_name.
-- Rust: chat::domain's NewConversation and ConversationPatch.
create function public.validated_conversation_name(p_name text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_name text := public.trim_blank(p_name);
begin
  if v_name is null
     or v_name = ''
     or char_length(v_name) > 200
     or public.has_invisible(v_name) then
    perform public.api_error('invalid_name',
      'The name must be 1 to 200 characters, without control, invisible or bidirectional formatting characters.');
  end if;
  return v_name;
end;
$$;
revoke execute on function public.validated_conversation_name(text) from public, anon, authenticated, service_role;

-- The data of a member.joined event: who joined, as what, added by whom, and
-- the newcomer's public profile, so clients need no lookup to name them.
create function public.member_joined_data(p_member public.participants, p_added_by uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'user_id', p_member.user_id, 'role', p_member.role,
    'joined_at', p_member.joined_at, 'added_by', p_added_by,
    'profile', (select public.public_profile_json(u) from public.profiles u where u.id = p_member.user_id))
$$;
revoke execute on function public.member_joined_data(public.participants, uuid) from public, anon, authenticated, service_role;

-- Refuses (blocked) to put users in a conversation with p_user_id when a
-- block stands between p_user_id and any of them, either way
-- (15_blocks.sql): a new group would otherwise carry what the block cuts
-- from their direct conversation. Like that refusal, it says neither who
-- blocked whom nor which of the users it is.
create function public.refuse_blocked_members(p_user_id uuid, p_member_ids uuid[])
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if exists (select 1 from unnest(p_member_ids) as m where public.blocked_between(p_user_id, m)) then
    perform public.api_error('blocked', 'You and one of these users cannot message each other.');
  end if;
end;
$$;
revoke execute on function public.refuse_blocked_members(uuid, uuid[]) from public, anon, authenticated, service_role;

-- ===========================================================================
-- Internal RPCs (service_role only; the caller is p_user_id)
-- ===========================================================================

-- Finds or creates the 1:1 between the caller and another user, optionally
-- about a context (e.g. 'listing' + id). Concurrency-safe: the unique index on
-- the ordered pair (+ context) lets exactly one creator win; the other finds it.
-- Opening a 1:1 the caller had left brings the caller back (member.joined);
-- the other side is never pulled back by someone else.
-- Rate limited per user, finding included (take_token's 'conversation' bucket).
create function public.open_direct_conversation(
  p_user_id uuid,
  p_other_user_id uuid,
  p_context_type text default null,
  p_context_id text default null,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_low uuid;
  v_high uuid;
  v_id uuid;
  v_created boolean := false;
  v_rejoined public.participants;
  v_payload jsonb;
  v_seq bigint;
  v_json jsonb;
  v_deliveries jsonb := '[]'::jsonb;
begin
  if p_user_id is null then
    perform public.api_error('invalid_argument', 'A signed-in user is required.');
  end if;
  if p_other_user_id is null then
    perform public.api_error('invalid_argument', 'other_user_id is required.');
  end if;
  if (p_context_type is null) <> (p_context_id is null) then
    perform public.api_error('invalid_argument', 'context_type and context_id must be given together.');
  end if;
  if char_length(p_context_type) not between 1 and 100 or char_length(p_context_id) not between 1 and 100 then
    perform public.api_error('invalid_argument', 'context_type and context_id must be 1 to 100 characters.');
  end if;
  if p_other_user_id = p_user_id then
    perform public.api_error('invalid_participant', 'You cannot open a direct conversation with yourself.');
  end if;
  if not exists (select 1 from public.profiles where id = p_other_user_id) then
    perform public.api_error('user_not_found', 'No such user.');
  end if;
  if not exists (select 1 from public.profiles where id = p_user_id) then
    perform public.api_error('user_not_found', 'Your profile does not exist.');
  end if;
  -- Neither finds nor creates: a block cuts the pair's direct conversations.
  -- The refusal does not say which of the two blocked the other.
  if public.blocked_between(p_user_id, p_other_user_id) then
    perform public.api_error('blocked', 'You and this user cannot message each other.');
  end if;
  -- Shares the 'conversation' bucket with create_conversation.
  perform public.take_token(p_user_id, 'conversation', p_rate_per_minute, p_rate_burst);

  v_low := least(p_user_id, p_other_user_id);
  v_high := greatest(p_user_id, p_other_user_id);

  insert into public.conversations
    (kind, context_type, context_id, created_by, direct_user_low, direct_user_high, last_seq)
  values
    ('direct', p_context_type, p_context_id, p_user_id, v_low, v_high, 1)
  on conflict (direct_user_low, direct_user_high, coalesce(context_type, ''), coalesce(context_id, ''))
    where kind = 'direct'
    do nothing
  returning id into v_id;

  if v_id is not null then
    v_created := true;

    insert into public.participants (conversation_id, user_id, role)
    values (v_id, p_user_id, 'owner'),
           (v_id, p_other_user_id, 'member');

    v_json := public.conversation_json(v_id);
    insert into public.conversation_events (conversation_id, seq, type, actor_id, payload)
    values (v_id, 1, 'conversation.created', p_user_id, v_json);

    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('conversation.created', v_id, 1, v_json),
      public.live_recipients(v_id, null)
    ));
  else
    -- Someone created it before (possibly a moment ago, concurrently).
    select c.id into strict v_id
    from public.conversations c
    where c.kind = 'direct'
      and c.direct_user_low = v_low
      and c.direct_user_high = v_high
      and coalesce(c.context_type, '') = coalesce(p_context_type, '')
      and coalesce(c.context_id, '') = coalesce(p_context_id, '');

    -- Conversation row first, then the participant: the order of every
    -- membership change.
    perform 1 from public.conversations c where c.id = v_id for no key update;

    -- A member who comes back has not taken part yet (presence_visible):
    -- what they wrote before leaving does not make contacts again.
    update public.participants p
       set left_at = null,
           joined_at = now(),
           first_sent_at = null
     where p.conversation_id = v_id
       and p.user_id = p_user_id
       and p.left_at is not null
    returning p.* into v_rejoined;

    if found then
      v_payload := public.member_joined_data(v_rejoined, null);
      v_seq := public.append_conversation_event(v_id, 'member.joined', p_user_id, null, v_payload);
      v_deliveries := jsonb_build_array(public.delivery(
        public.event_envelope('member.joined', v_id, v_seq, v_payload),
        public.live_recipients(v_id, null)
      ));
    end if;
  end if;

  return jsonb_build_object(
    'result', jsonb_build_object('conversation', public.conversation_json(v_id), 'created', v_created),
    'deliveries', v_deliveries
  );
end;
$$;
revoke execute on function public.open_direct_conversation(uuid, uuid, text, text, int, int) from public, anon, authenticated;
grant execute on function public.open_direct_conversation(uuid, uuid, text, text, int, int) to service_role;

-- Creates a group or a public room with the caller as owner and the given
-- users as members, its conversation.created event as seq 1. Refused
-- (blocked) when a block stands between the caller and any of the members.
-- Rate limited per user (take_token's 'conversation' bucket).
create function public.create_conversation(
  p_user_id uuid,
  p_kind text,
  p_name text,
  p_member_ids uuid[] default '{}',
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_name text;
  v_members uuid[];
  v_id uuid;
  v_json jsonb;
  v_constraint text;
begin
  if p_user_id is null or not exists (select 1 from public.profiles where id = p_user_id) then
    perform public.api_error('user_not_found', 'Your profile does not exist.');
  end if;
  perform public.take_token(p_user_id, 'conversation', p_rate_per_minute, p_rate_burst);
  if p_kind is null or p_kind not in ('group', 'room') then
    perform public.api_error('invalid_argument', 'kind must be group or room.');
  end if;
  v_name := public.validated_conversation_name(p_name);

  if array_position(p_member_ids, null) is not null then
    perform public.api_error('invalid_argument', 'member_ids must be user ids.');
  end if;
  -- The caller is the owner, not one of the members.
  v_members := array(
    select distinct m
    from unnest(coalesce(p_member_ids, '{}'::uuid[])) as m
    where m <> p_user_id
    order by m
  );
  if cardinality(v_members) > 100 then
    perform public.api_error('too_many_members', 'At most 100 members can be added at once.');
  end if;
  if exists (
    select 1
    from unnest(v_members) as m
    where not exists (select 1 from public.profiles p where p.id = m)
  ) then
    perform public.api_error('user_not_found', 'No such user.');
  end if;
  perform public.refuse_blocked_members(p_user_id, v_members);
  if p_kind = 'room' and exists (
    select 1 from public.conversations c where c.kind = 'room' and lower(c.name) = lower(v_name)
  ) then
    perform public.api_error('room_name_taken', 'A room with this name already exists.');
  end if;

  -- A subtransaction: a concurrent creator may take the room name between
  -- the check above and this insert; the unique index decides.
  begin
    insert into public.conversations (kind, name, created_by, last_seq)
    values (p_kind, v_name, p_user_id, 1)
    returning id into v_id;
  exception
    when unique_violation then
      get stacked diagnostics v_constraint = constraint_name;
      if v_constraint is distinct from 'conversations_room_name_key' then
        raise;
      end if;
      perform public.api_error('room_name_taken', 'A room with this name already exists.');
  end;

  insert into public.participants (conversation_id, user_id, role)
  values (v_id, p_user_id, 'owner');
  insert into public.participants (conversation_id, user_id, role)
  select v_id, m, 'member' from unnest(v_members) as m;

  v_json := public.conversation_json(v_id);
  insert into public.conversation_events (conversation_id, seq, type, actor_id, payload)
  values (v_id, 1, 'conversation.created', p_user_id, v_json);

  return jsonb_build_object(
    'result', jsonb_build_object('conversation', v_json),
    'deliveries', jsonb_build_array(public.delivery(
      public.event_envelope('conversation.created', v_id, 1, v_json),
      public.live_recipients(v_id, null)
    ))
  );
end;
$$;
revoke execute on function public.create_conversation(uuid, text, text, uuid[], int, int) from public, anon, authenticated;
grant execute on function public.create_conversation(uuid, text, text, uuid[], int, int) to service_role;

-- Renames a group or room (owner only, a durable event for everyone) and/or
-- changes the caller's own archived / muted settings (private, no event).
-- Every check comes before the first write. A rename is rate limited per user
-- (take_token's 'conversation' bucket); the settings are not.
create function public.update_conversation(
  p_user_id uuid,
  p_conversation_id uuid,
  p_name text default null,
  p_archived boolean default null,
  p_muted boolean default null,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me public.participants;
  v_conversation public.conversations;
  v_name text;
  v_payload jsonb;
  v_seq bigint;
  v_constraint text;
  v_deliveries jsonb := '[]'::jsonb;
begin
  if p_name is null and p_archived is null and p_muted is null then
    perform public.api_error('invalid_argument', 'Give name, archived or muted.');
  end if;

  if p_name is null then
    -- Only the caller's own row changes: no need to hold up the conversation.
    v_me := public.require_participant(p_conversation_id, p_user_id);
  else
    -- The bucket before the conversation's lock (12_rate_limits.sql); an
    -- outsider is refused before either.
    perform public.require_participant(p_conversation_id, p_user_id);
    perform public.take_token(p_user_id, 'conversation', p_rate_per_minute, p_rate_burst);
    v_me := public.lock_as_participant(p_conversation_id, p_user_id);
    select c.* into v_conversation from public.conversations c where c.id = p_conversation_id;
    if v_conversation.kind = 'direct' then
      perform public.api_error('unsupported_for_kind', 'A direct conversation has no name.');
    end if;
    if v_me.role <> 'owner' then
      perform public.api_error('not_owner', 'Only the owner can rename the conversation.');
    end if;
    v_name := public.validated_conversation_name(p_name);
    if v_conversation.kind = 'room' and exists (
      select 1
      from public.conversations c
      where c.kind = 'room'
        and lower(c.name) = lower(v_name)
        and c.id <> p_conversation_id
    ) then
      perform public.api_error('room_name_taken', 'A room with this name already exists.');
    end if;
  end if;

  if v_name is not null and v_name is distinct from v_conversation.name then
    begin
      update public.conversations c set name = v_name where c.id = p_conversation_id;
    exception
      when unique_violation then
        get stacked diagnostics v_constraint = constraint_name;
        if v_constraint is distinct from 'conversations_room_name_key' then
          raise;
        end if;
        perform public.api_error('room_name_taken', 'A room with this name already exists.');
    end;
    v_payload := jsonb_build_object('name', v_name, 'updated_by', p_user_id);
    v_seq := public.append_conversation_event(p_conversation_id, 'conversation.updated', p_user_id, null, v_payload);
    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('conversation.updated', p_conversation_id, v_seq, v_payload),
      public.live_recipients(p_conversation_id, null)
    ));
  end if;

  if p_archived is not null or p_muted is not null then
    update public.participants p
       set archived = coalesce(p_archived, p.archived),
           muted = coalesce(p_muted, p.muted)
     where p.conversation_id = p_conversation_id
       and p.user_id = p_user_id
    returning p.* into v_me;
  end if;

  return jsonb_build_object(
    'result', jsonb_build_object('conversation', public.conversation_json(p_conversation_id), 'me', public.me_json(v_me)),
    'deliveries', v_deliveries
  );
end;
$$;
revoke execute on function public.update_conversation(uuid, uuid, text, boolean, boolean, int, int) from public, anon, authenticated;
grant execute on function public.update_conversation(uuid, uuid, text, boolean, boolean, int, int) to service_role;

-- Adds users to a group or room (owner only). Current members are skipped;
-- former members come back as members. Each addition is a durable
-- member.joined event; the added users are also sent the conversation itself,
-- which they did not know. Refused (blocked) when a block stands between the
-- owner and any of the users. Rate limited per user, per call (take_token's
-- 'conversation' bucket).
create function public.add_members(
  p_user_id uuid,
  p_conversation_id uuid,
  p_user_ids uuid[],
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me public.participants;
  v_kind text;
  v_ids uuid[];
  v_user uuid;
  v_row public.participants;
  v_payload jsonb;
  v_seq bigint;
  v_added uuid[] := '{}'::uuid[];
  v_events jsonb := '[]'::jsonb;
  v_json jsonb;
  v_recipients jsonb;
  v_deliveries jsonb := '[]'::jsonb;
begin
  v_me := public.require_participant(p_conversation_id, p_user_id);
  select c.kind into v_kind from public.conversations c where c.id = p_conversation_id;
  if v_kind = 'direct' then
    perform public.api_error('unsupported_for_kind', 'A direct conversation has exactly its two users.');
  end if;
  if v_me.role <> 'owner' then
    perform public.api_error('not_owner', 'Only the owner can add members.');
  end if;
  if p_user_ids is null or cardinality(p_user_ids) = 0 then
    perform public.api_error('invalid_argument', 'user_ids must name at least one user.');
  end if;
  if array_position(p_user_ids, null) is not null then
    perform public.api_error('invalid_argument', 'user_ids must be user ids.');
  end if;
  -- Deduplicated, in the order given.
  v_ids := array(
    select u
    from unnest(p_user_ids) with ordinality as t (u, i)
    group by u
    order by min(i)
  );
  if cardinality(v_ids) > 100 then
    perform public.api_error('too_many_members', 'At most 100 members can be added at once.');
  end if;
  if exists (
    select 1
    from unnest(v_ids) as u
    where not exists (select 1 from public.profiles p where p.id = u)
  ) then
    perform public.api_error('user_not_found', 'No such user.');
  end if;
  perform public.refuse_blocked_members(p_user_id, v_ids);
  -- The bucket before the conversation's lock (12_rate_limits.sql).
  perform public.take_token(p_user_id, 'conversation', p_rate_per_minute, p_rate_burst);

  -- Ownership as of the lock: the owner may have left meanwhile.
  v_me := public.lock_as_participant(p_conversation_id, p_user_id);
  if v_me.role <> 'owner' then
    perform public.api_error('not_owner', 'Only the owner can add members.');
  end if;

  foreach v_user in array v_ids loop
    insert into public.participants (conversation_id, user_id, role, joined_at)
    values (p_conversation_id, v_user, 'member', now())
    -- A former member comes back as someone who has not taken part yet:
    -- what they wrote before leaving does not make contacts again
    -- (presence_visible), or being added back would show their presence
    -- without their doing anything.
    on conflict (conversation_id, user_id) do update
       set left_at = null,
           joined_at = excluded.joined_at,
           role = 'member',
           first_sent_at = null
     where public.participants.left_at is not null
    returning * into v_row;

    if found then
      v_added := v_added || v_user;
      v_payload := public.member_joined_data(v_row, p_user_id);
      v_seq := public.append_conversation_event(p_conversation_id, 'member.joined', p_user_id, null, v_payload);
      v_events := v_events || jsonb_build_array(public.event_envelope('member.joined', p_conversation_id, v_seq, v_payload));
    end if;
  end loop;

  v_json := public.conversation_json(p_conversation_id);
  if cardinality(v_added) > 0 then
    -- The conversation first: an added user's client learns of it before
    -- the events that refer to it. Not durable (no seq): it is a snapshot.
    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('conversation.created', p_conversation_id, null, v_json),
      public.user_recipients(v_added)
    ));
    v_recipients := public.live_recipients(p_conversation_id, null);
    v_deliveries := v_deliveries || coalesce((
      select jsonb_agg(public.delivery(e, v_recipients) order by (e ->> 'seq')::bigint)
      from jsonb_array_elements(v_events) as e
    ), '[]'::jsonb);
  end if;

  return jsonb_build_object(
    'result', jsonb_build_object('conversation', v_json, 'added', to_jsonb(v_added)),
    'deliveries', v_deliveries
  );
end;
$$;
revoke execute on function public.add_members(uuid, uuid, uuid[], int, int) from public, anon, authenticated;
grant execute on function public.add_members(uuid, uuid, uuid[], int, int) to service_role;

-- Joins a public room. Joining again is not an error (joined = false).
-- A room whose members all left has no owner; whoever joins it next becomes
-- the owner, so a room with members always has one (as leave_conversation
-- keeps it).
-- Rate limited per user (take_token's 'join' bucket), joining again included.
create function public.join_room(
  p_user_id uuid,
  p_conversation_id uuid,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_role text;
  v_row public.participants;
  v_payload jsonb;
  v_seq bigint;
begin
  if p_user_id is null or not exists (select 1 from public.profiles where id = p_user_id) then
    perform public.api_error('user_not_found', 'Your profile does not exist.');
  end if;
  perform public.take_token(p_user_id, 'join', p_rate_per_minute, p_rate_burst);

  -- Only rooms are open to join; anything else looks like nothing at all.
  perform 1
  from public.conversations c
  where c.id = p_conversation_id
    and c.kind = 'room'
  for no key update;
  if not found then
    perform public.api_error('conversation_not_found', 'No such room.');
  end if;

  if exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.user_id = p_user_id
      and p.left_at is null
  ) then
    return jsonb_build_object(
      'result', jsonb_build_object('conversation', public.conversation_json(p_conversation_id), 'joined', false),
      'deliveries', '[]'::jsonb
    );
  end if;

  v_role := case when exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.left_at is null
      and p.role = 'owner'
  ) then 'member' else 'owner' end;

  insert into public.participants (conversation_id, user_id, role, joined_at)
  values (p_conversation_id, p_user_id, v_role, now())
  -- A former member has not taken part since coming back (see add_members).
  on conflict (conversation_id, user_id) do update
     set left_at = null,
         joined_at = excluded.joined_at,
         role = excluded.role,
         first_sent_at = null
  returning * into v_row;

  v_payload := public.member_joined_data(v_row, null);
  v_seq := public.append_conversation_event(p_conversation_id, 'member.joined', p_user_id, null, v_payload);

  return jsonb_build_object(
    'result', jsonb_build_object('conversation', public.conversation_json(p_conversation_id), 'joined', true),
    'deliveries', jsonb_build_array(public.delivery(
      public.event_envelope('member.joined', p_conversation_id, v_seq, v_payload),
      public.live_recipients(p_conversation_id, null)
    ))
  );
end;
$$;
revoke execute on function public.join_room(uuid, uuid, int, int) from public, anon, authenticated;
grant execute on function public.join_room(uuid, uuid, int, int) to service_role;

-- Leaves a conversation. If that leaves no owner among the current members,
-- the longest-standing member becomes the owner, so someone can still manage
-- it. The leaver's own devices get the event too (to drop the conversation).
create function public.leave_conversation(p_user_id uuid, p_conversation_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_left_at timestamptz;
  v_new_owner uuid;
  v_payload jsonb;
  v_seq bigint;
begin
  perform public.lock_as_participant(p_conversation_id, p_user_id);

  update public.participants p
     set left_at = now()
   where p.conversation_id = p_conversation_id
     and p.user_id = p_user_id
  returning p.left_at into v_left_at;

  if not exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.left_at is null
      and p.role = 'owner'
  ) then
    update public.participants p
       set role = 'owner'
     where (p.conversation_id, p.user_id) = (
       select q.conversation_id, q.user_id
       from public.participants q
       where q.conversation_id = p_conversation_id
         and q.left_at is null
       order by q.joined_at, q.user_id
       limit 1
     )
    returning p.user_id into v_new_owner;
  end if;

  v_payload := jsonb_build_object('user_id', p_user_id, 'left_at', v_left_at, 'new_owner_id', v_new_owner);
  v_seq := public.append_conversation_event(p_conversation_id, 'member.left', p_user_id, null, v_payload);

  return jsonb_build_object(
    'result', jsonb_build_object('conversation_id', p_conversation_id, 'left', true, 'seq', v_seq),
    'deliveries', jsonb_build_array(public.delivery(
      public.event_envelope('member.left', p_conversation_id, v_seq, v_payload),
      public.live_recipients(p_conversation_id, null) || public.user_recipients(array[p_user_id])
    ))
  );
end;
$$;
revoke execute on function public.leave_conversation(uuid, uuid) from public, anon, authenticated;
grant execute on function public.leave_conversation(uuid, uuid) to service_role;

-- ===========================================================================
-- User-facing RPCs (authenticated; the caller is public.caller_id())
-- ===========================================================================

-- Public rooms, most recently active first, a page at a time.
create function public.list_rooms(p_limit int default 50, p_cursor text default null)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
  v_limit int := least(greatest(coalesce(p_limit, 50), 1), 100);
  v_after_at timestamptz;
  v_after_id uuid;
begin
  if p_cursor is not null then
    select d.o_at, d.o_id into v_after_at, v_after_id from public.decode_cursor(p_cursor) d;
  end if;

  return public.cursor_page('rooms', (
    select coalesce(jsonb_agg(jsonb_build_object(
      'id', r.id,
      'name', r.name,
      'created_by', r.created_by,
      'created_at', r.created_at,
      'member_count', (select count(*) from public.participants p where p.conversation_id = r.id and p.left_at is null),
      'message_count', (select count(*) from public.messages m where m.conversation_id = r.id and m.deleted_at is null),
      'last_activity_at', r.last_activity_at,
      'joined', exists (
        select 1 from public.participants p
        where p.conversation_id = r.id and p.user_id = v_me and p.left_at is null
      )
    ) order by r.last_activity_at desc, r.id desc), '[]'::jsonb)
    from (
      select c.id, c.name, c.created_by, c.created_at, a.at as last_activity_at
      from public.conversations c
      left join public.conversation_events e on e.conversation_id = c.id and e.seq = c.last_seq
      cross join lateral (select coalesce(e.created_at, c.created_at) as at) a
      where c.kind = 'room'
        and (v_after_id is null or (a.at, c.id) < (v_after_at, v_after_id))
      order by a.at desc, c.id desc
      -- One row more than the page says whether there is another page.
      limit v_limit + 1
    ) r
  ), v_limit);
end;
$$;
revoke execute on function public.list_rooms(int, text) from public, anon;
grant execute on function public.list_rooms(int, text) to authenticated, service_role;

-- The caller's current conversations, most recently active first, a page at
-- a time, each with what a conversation list shows (last message, unread
-- count, the caller's own settings, and for a direct conversation the
-- public profile of the other user: the counterpart, also after they left;
-- null once their account is gone).
create function public.list_conversations(
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

-- One conversation and the caller's own settings in it.
create function public.get_conversation(p_conversation_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me public.participants := public.require_participant(p_conversation_id, public.caller_id());
begin
  return jsonb_build_object('conversation', public.conversation_json(p_conversation_id), 'me', public.me_json(v_me));
end;
$$;
revoke execute on function public.get_conversation(uuid) from public, anon;
grant execute on function public.get_conversation(uuid) to authenticated, service_role;

-- Counts about one conversation, for its participants.
create function public.conversation_stats(p_conversation_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform public.require_participant(p_conversation_id, public.caller_id());

  return (
    select jsonb_build_object(
      'conversation_id', c.id,
      'kind', c.kind,
      'name', c.name,
      'message_count', (
        select count(*) from public.messages m where m.conversation_id = c.id and m.deleted_at is null
      ),
      'participant_count', (
        select count(*) from public.participants p where p.conversation_id = c.id and p.left_at is null
      ),
      -- Of the members whose presence the caller may see (the caller too).
      'online_count', (
        select count(*)
        from public.participants p
        where p.conversation_id = c.id
          and p.left_at is null
          and public.is_online(p.user_id)
          and public.presence_visible(public.caller_id(), p.user_id)
      ),
      'last_message', (
        select public.message_json(m) from public.messages m where m.conversation_id = c.id order by m.seq desc limit 1
      ),
      'last_activity_at', coalesce(e.created_at, c.created_at),
      'last_seq', c.last_seq
    )
    from public.conversations c
    left join public.conversation_events e on e.conversation_id = c.id and e.seq = c.last_seq
    where c.id = p_conversation_id
  );
end;
$$;
revoke execute on function public.conversation_stats(uuid) from public, anon;
grant execute on function public.conversation_stats(uuid) to authenticated, service_role;

-- How many live connections each current participant has: enough to show
-- who is around, never the connection ids (those address someone's devices).
-- Being connected is presence, so only members whose presence the caller may
-- see are counted (presence_visible).
create function public.conversation_connections(p_conversation_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_users jsonb;
begin
  perform public.require_participant(p_conversation_id, public.caller_id());

  select coalesce(jsonb_agg(jsonb_build_object('user_id', u.user_id, 'connections', u.connections) order by u.user_id), '[]'::jsonb)
  into v_users
  from (
    select p.user_id, count(*)::int as connections
    from public.participants p
    join public.connections c on c.user_id = p.user_id
    where p.conversation_id = p_conversation_id
      and p.left_at is null
      and public.connection_is_live(c.token_exp)
      and public.presence_visible(public.caller_id(), p.user_id)
    group by p.user_id
  ) u;

  return jsonb_build_object(
    'conversation_id', p_conversation_id,
    'users', v_users,
    'total_connections', (select coalesce(sum((u ->> 'connections')::int), 0) from jsonb_array_elements(v_users) as u)
  );
end;
$$;
revoke execute on function public.conversation_connections(uuid) from public, anon;
grant execute on function public.conversation_connections(uuid) to authenticated, service_role;

-- ===========================================================================
-- sql/schemas/40_messages.sql
-- ===========================================================================

-- Messages: sending (idempotent per client_msg_id), typing, history, edits
-- and deletes. Participants read them through RLS; every write goes through
-- an RPC that also writes the conversation's event (50_events.sql).

create table public.messages (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  seq bigint not null
    constraint messages_seq_positive check (seq > 0),
  -- Null for system messages, and after the author's account is deleted.
  sender_id uuid references public.profiles (id) on delete set null,
  client_msg_id text
    constraint messages_client_msg_id_length check (char_length(client_msg_id) between 1 and 100),
  kind text not null default 'text'
    constraint messages_kind_check check (kind in ('text', 'image', 'file', 'system')),
  body text
    constraint messages_body_length check (char_length(body) <= 5000),
  attachment jsonb
    constraint messages_attachment_object check (attachment is null or jsonb_typeof(attachment) = 'object'),
  reply_to_id uuid references public.messages (id) on delete set null,
  created_at timestamptz not null default now(),
  edited_at timestamptz,
  deleted_at timestamptz,
  -- What search_messages (80_search.sql) matches: both stemmings at once.
  search tsvector generated always as (
    to_tsvector('english'::regconfig, coalesce(body, ''))
    || to_tsvector('spanish'::regconfig, coalesce(body, ''))
  ) stored,
  -- A live text message says something; a deleted one may have its body wiped.
  constraint messages_text_body_not_blank check (
    kind <> 'text'
    or deleted_at is not null
    or not public.is_blank(body)
  ),
  constraint messages_conversation_seq_key unique (conversation_id, seq),
  -- Idempotency key of a send: a retry finds the stored message.
  constraint messages_sender_client_msg_id_key unique (sender_id, client_msg_id)
);

comment on column public.messages.client_msg_id is
  'Idempotency key chosen by the sending client; unique per sender.';

create index messages_reply_to_id_idx on public.messages (reply_to_id) where reply_to_id is not null;

alter table public.messages enable row level security;
revoke all on table public.messages from anon, authenticated;
grant select on table public.messages to authenticated;
grant all on table public.messages to service_role;

create policy "messages are readable by participants"
  on public.messages
  for select
  to authenticated
  using (public.is_participant(conversation_id));

-- ===========================================================================
-- Helpers
-- ===========================================================================

-- The Message JSON shape. A deleted message keeps its place (id, seq) but
-- shows no content.
create function public.message_json(p_message public.messages)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', p_message.id,
    'conversation_id', p_message.conversation_id,
    'seq', p_message.seq,
    'sender_id', p_message.sender_id,
    'client_msg_id', p_message.client_msg_id,
    'kind', p_message.kind,
    'body', case when p_message.deleted_at is null then p_message.body end,
    'attachment', case when p_message.deleted_at is null then p_message.attachment end,
    'reply_to_id', p_message.reply_to_id,
    'created_at', p_message.created_at,
    'edited_at', p_message.edited_at,
    'deleted_at', p_message.deleted_at
  )
$$;
revoke execute on function public.message_json(public.messages) from public, anon, authenticated, service_role;

-- The body of a message of a kind, as stored: a text needs one that is not
-- blank; for an image or file it is an optional caption, and a blank caption
-- is no caption. No control characters but newline and tab (a terminal or a
-- log would obey them), no bidi embeddings, overrides or isolates
-- (has_bidi_control: they make text show other than it reads; the marks are
-- allowed). At most 5000 characters (code points), or message_too_long.
create function public.validated_body(p_kind text, p_body text)
returns text
language plpgsql
stable
set search_path = ''
as $$
begin
  if p_kind = 'text' and public.is_blank(p_body) then
    perform public.api_error('invalid_body', 'A text message needs a non-blank body.');
  end if;
  if public.has_control(translate(p_body, E'\n\t', '')) or public.has_bidi_control(p_body) then
    perform public.api_error('invalid_body',
      'The body must not contain control characters other than newline and tab, nor bidirectional overrides or isolates (U+202A-U+202E, U+2066-U+2069).');
  end if;
  if char_length(p_body) > 5000 then
    perform public.api_error('message_too_long', 'The body must be at most 5000 characters.');
  end if;
  if public.is_blank(p_body) then
    return null;
  end if;
  return p_body;
end;
$$;
revoke execute on function public.validated_body(text, text) from public, anon, authenticated, service_role;

-- Validates an attachment for a message kind and returns the stored form
-- ({url, name, mime_type, size_bytes}, nothing else), or null for text.
create function public.validated_attachment(p_kind text, p_attachment jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_url text;
  v_name text;
  v_mime text;
  v_size numeric;
begin
  if p_kind = 'text' then
    if p_attachment is not null and jsonb_typeof(p_attachment) <> 'null' then
      perform public.api_error('invalid_attachment', 'A text message cannot carry an attachment.');
    end if;
    return null;
  end if;

  if p_attachment is null or jsonb_typeof(p_attachment) <> 'object' then
    perform public.api_error('invalid_attachment',
      format('A %s message needs an attachment object {url, name, mime_type, size_bytes}.', p_kind));
  end if;

  if jsonb_typeof(p_attachment -> 'url') is distinct from 'string'
     or jsonb_typeof(p_attachment -> 'name') is distinct from 'string'
     or jsonb_typeof(p_attachment -> 'mime_type') is distinct from 'string'
     or jsonb_typeof(p_attachment -> 'size_bytes') is distinct from 'number' then
    perform public.api_error('invalid_attachment',
      'The attachment needs url, name and mime_type strings and a size_bytes number.');
  end if;

  v_url := p_attachment ->> 'url';
  v_name := public.trim_blank(p_attachment ->> 'name');
  v_mime := public.trim_blank(p_attachment ->> 'mime_type');
  v_size := (p_attachment ->> 'size_bytes')::numeric;

  -- The URL is stored and shown as given: https, a host, no spaces or
  -- control characters anywhere.
  if octet_length(v_url) > 2048
     or v_url !~ '^https://[^/?#\u0001-\u0020\u007f-\u009f]+[^\u0001-\u0020\u007f-\u009f]*$' then
    perform public.api_error('invalid_attachment', 'The attachment url must be an https URL of at most 2048 bytes.');
  end if;
  if v_name = '' or char_length(v_name) > 255 or v_name ~ '[/\\]' or public.has_control(v_name) then
    perform public.api_error('invalid_attachment',
      'The attachment name must be a file name of 1 to 255 characters without /, \ or control characters.');
  end if;
  -- RFC 6838 restricted names: type and subtype each a letter or digit and up
  -- to 126 more, so at most 255 in all. Checked before lower-casing: lower()
  -- follows the locale and could turn a non-ASCII letter into an ASCII one.
  if v_mime !~ '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$' then
    perform public.api_error('invalid_attachment', 'The attachment mime_type must be type/subtype, each 1 to 127 characters.');
  end if;
  v_mime := lower(v_mime);
  if p_kind = 'image' and v_mime not like 'image/%' then
    perform public.api_error('invalid_attachment', 'An image message needs an image/* mime_type.');
  end if;
  -- Files are stored elsewhere (e.g. Supabase Storage); this caps the metadata.
  if v_size <= 0 or v_size <> trunc(v_size) or v_size > 104857600 then
    perform public.api_error('invalid_attachment', 'The attachment size_bytes must be a whole number from 1 to 104857600.');
  end if;

  return jsonb_build_object('url', v_url, 'name', v_name, 'mime_type', v_mime, 'size_bytes', v_size::bigint);
end;
$$;
revoke execute on function public.validated_attachment(text, jsonb) from public, anon, authenticated, service_role;

-- Finds a message the caller may act on, locked for the change: the
-- conversation row first (through lock_as_participant, the order of every
-- durable change), then the message. A message that does not exist and one
-- in a conversation the caller is not in are the same message_not_found.
create function public.lock_message_for_change(p_user_id uuid, p_message_id uuid)
returns public.messages
language plpgsql
set search_path = ''
as $$
declare
  v_conversation_id uuid;
  v_message public.messages;
begin
  select m.conversation_id into v_conversation_id
  from public.messages m
  where m.id = p_message_id;

  if v_conversation_id is null or p_user_id is null or not exists (
    select 1
    from public.participants p
    where p.conversation_id = v_conversation_id
      and p.user_id = p_user_id
      and p.left_at is null
  ) then
    perform public.api_error('message_not_found', 'No such message.');
  end if;

  perform public.lock_as_participant(v_conversation_id, p_user_id);

  select m.* into v_message
  from public.messages m
  where m.id = p_message_id
  for update;

  if v_message.kind = 'system' or v_message.sender_id is distinct from p_user_id then
    perform public.api_error('not_author', 'Only the author can change a message.');
  end if;
  return v_message;
end;
$$;
revoke execute on function public.lock_message_for_change(uuid, uuid) from public, anon, authenticated, service_role;

-- Refuses (blocked) a new message or an edit in a direct conversation whose
-- two users have a block between them, either way (15_blocks.sql); the
-- refusal does not say who blocked whom. Asked with the conversation's row
-- locked: block_user takes that lock before it inserts the block, so a write
-- either commits before the block exists or sees it.
create function public.refuse_if_blocked(p_conversation_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if exists (
    select 1
    from public.conversations c
    where c.id = p_conversation_id
      and c.kind = 'direct'
      and public.blocked_between(c.direct_user_low, c.direct_user_high)
  ) then
    perform public.api_error('blocked', 'You and this user cannot message each other.');
  end if;
end;
$$;
revoke execute on function public.refuse_if_blocked(uuid) from public, anon, authenticated, service_role;

-- Records a change of a message (message.updated or message.deleted) as the
-- conversation's next durable event, rewrites the payloads of the message's
-- earlier events to its new content (participants replay them, and an old or
-- deleted text must not survive anywhere they can read), and returns the
-- delivery of the new event to the members.
create function public.record_message_change(p_type text, p_user_id uuid, p_message public.messages)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_json jsonb := public.message_json(p_message);
  v_seq bigint := public.append_conversation_event(p_message.conversation_id, p_type, p_user_id, p_message.id, v_json);
begin
  update public.conversation_events e
     set payload = v_json
   where e.conversation_id = p_message.conversation_id
     and e.message_id = p_message.id
     and e.seq < v_seq;

  return public.delivery(
    public.event_envelope(p_type, p_message.conversation_id, v_seq, v_json),
    public.live_recipients(p_message.conversation_id, null)
  );
end;
$$;
revoke execute on function public.record_message_change(text, uuid, public.messages) from public, anon, authenticated, service_role;

-- ===========================================================================
-- Internal RPCs (service_role only; the caller is p_user_id or p_sender)
-- ===========================================================================

-- Stores a message and its message.created event under the next seq, and
-- returns, like every write, {result, deliveries}: the stored message, and
-- the event with every live connection of the members, in one round trip.
-- Idempotent per (sender, client_msg_id): a repeat returns the stored message
-- with duplicate = true and takes no seq, and delivers message.created again
-- (the stored message as it is now, under its own seq) to the members' live
-- connections: a send whose function died after the commit and before the
-- fan-out reaches the members when the sender retries. Clients de-duplicate
-- by seq, so one that had it already drops it.
-- Rate limited per sender (p_rate_per_minute, p_rate_burst: take_token's
-- 'message' bucket); a repeat is not limited.
create function public.send_message(
  p_sender uuid,
  p_conversation_id uuid,
  p_client_msg_id text,
  p_kind text default 'text',
  p_body text default null,
  p_attachment jsonb default null,
  p_reply_to_id uuid default null,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_kind text := coalesce(p_kind, 'text');
  v_body text;
  v_attachment jsonb;
  v_message public.messages;
  v_duplicate boolean := false;
  v_seq bigint;
  v_now timestamptz;
  v_json jsonb;
  v_constraint text;
begin
  if p_sender is null or p_conversation_id is null or not exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.user_id = p_sender
      and p.left_at is null
  ) then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;

  -- Plain ASCII, so that it can travel in a header and a log line as it is.
  if p_client_msg_id is null or p_client_msg_id !~ '^[A-Za-z0-9_.:-]{1,100}$' then
    perform public.api_error('invalid_client_msg_id', 'client_msg_id must be 1 to 100 characters of A-Z a-z 0-9 - _ . :');
  end if;

  select m.* into v_message
  from public.messages m
  where m.sender_id = p_sender
    and m.client_msg_id = p_client_msg_id;
  v_duplicate := found;

  if not v_duplicate then
    -- A repeat (a retry after a lost ack) is answered whatever the bucket
    -- holds, and takes nothing from it.
    perform public.take_token(p_sender, 'message', p_rate_per_minute, p_rate_burst);

    -- The lock next_conversation_seq takes, taken now so that the block
    -- check below sees a block committed while this send waited for it.
    perform 1 from public.conversations c where c.id = p_conversation_id for no key update;
    -- A block cuts the pair's direct conversation both ways. Checked for new
    -- messages only: a retry of one sent before the block still finds it.
    perform public.refuse_if_blocked(p_conversation_id);

    if v_kind not in ('text', 'image', 'file') then
      perform public.api_error('invalid_kind', 'kind must be text, image or file.');
    end if;

    v_body := public.validated_body(v_kind, p_body);
    v_attachment := public.validated_attachment(v_kind, p_attachment);

    if p_reply_to_id is not null and not exists (
      select 1
      from public.messages m
      where m.id = p_reply_to_id
        and m.conversation_id = p_conversation_id
    ) then
      perform public.api_error('invalid_reply', 'reply_to_id must be a message of this conversation.');
    end if;

    -- A subtransaction: if a concurrent send with the same client_msg_id
    -- wins the unique key, the seq taken here is rolled back with the insert.
    begin
      v_seq := public.next_conversation_seq(p_conversation_id);
      v_now := clock_timestamp();

      insert into public.messages
        (conversation_id, seq, sender_id, client_msg_id, kind, body, attachment, reply_to_id, created_at)
      values
        (p_conversation_id, v_seq, p_sender, p_client_msg_id, v_kind, v_body, v_attachment, p_reply_to_id, v_now)
      returning * into v_message;

      v_json := public.message_json(v_message);

      insert into public.conversation_events (conversation_id, seq, type, message_id, actor_id, payload, created_at)
      values (p_conversation_id, v_seq, 'message.created', v_message.id, p_sender, v_json, v_now);

      -- The sender has now taken part here (presence_visible).
      update public.participants p
         set first_sent_at = v_now
       where p.conversation_id = p_conversation_id
         and p.user_id = p_sender
         and p.first_sent_at is null;
    exception
      when unique_violation then
        get stacked diagnostics v_constraint = constraint_name;
        if v_constraint is distinct from 'messages_sender_client_msg_id_key' then
          raise;
        end if;
        select m.* into v_message
        from public.messages m
        where m.sender_id = p_sender
          and m.client_msg_id = p_client_msg_id;
        if not found then
          raise;
        end if;
        v_duplicate := true;
    end;
  end if;

  if v_duplicate then
    if v_message.conversation_id <> p_conversation_id then
      perform public.api_error('idempotency_conflict',
        'This client_msg_id was already used for a message in another conversation.');
    end if;
    v_json := public.message_json(v_message);
  end if;

  -- A repeat delivers message.created again, the same envelope as the first
  -- send's (with the message's current state, as a replay of its event has:
  -- record_message_change rewrites that payload on an edit or a delete): the
  -- first send's fan-out may never have run.
  return jsonb_build_object(
    'result', jsonb_build_object('message', v_json, 'duplicate', v_duplicate),
    'deliveries', jsonb_build_array(public.delivery(
      public.event_envelope('message.created', p_conversation_id, v_message.seq, v_json),
      public.live_recipients(p_conversation_id, null)
    ))
  );
end;
$$;
revoke execute on function public.send_message(uuid, uuid, text, text, text, jsonb, uuid, int, int) from public, anon, authenticated;
grant execute on function public.send_message(uuid, uuid, text, text, text, jsonb, uuid, int, int) to service_role;

-- A typing indicator (or its stop) from p_user_id: the typing event to the
-- other current participants' live connections (not the typist's own), but
-- for users with a block between them and the typist. Transient: not in the
-- event log, so no seq. It lasts c_ttl unless renewed, so a client that
-- vanishes mid-sentence does not type forever; a stop expires now.
-- Rate limited per user (take_token's 'typing' bucket).
create function public.send_typing(
  p_user_id uuid,
  p_conversation_id uuid,
  p_is_typing boolean default true,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  c_ttl constant interval := interval '6 seconds';
  v_expires_at timestamptz;
begin
  if p_user_id is null or p_conversation_id is null or not exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.user_id = p_user_id
      and p.left_at is null
  ) then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;
  if p_is_typing is null then
    perform public.api_error('invalid_argument', 'is_typing must be true or false.');
  end if;

  perform public.take_token(p_user_id, 'typing', p_rate_per_minute, p_rate_burst);

  v_expires_at := case when p_is_typing then now() + c_ttl else now() end;
  return jsonb_build_object(
    'result', jsonb_build_object('expires_at', v_expires_at),
    'deliveries', jsonb_build_array(public.delivery(
      public.event_envelope('typing', p_conversation_id, null, jsonb_build_object(
        'user_id', p_user_id, 'is_typing', p_is_typing, 'expires_at', v_expires_at)),
      public.without_blocked(public.live_recipients(p_conversation_id, p_user_id), p_user_id)
    ))
  );
end;
$$;
revoke execute on function public.send_typing(uuid, uuid, boolean, int, int) from public, anon, authenticated;
grant execute on function public.send_typing(uuid, uuid, boolean, int, int) to service_role;

-- Edits the text (or an attachment's caption) of the caller's message. The
-- message.updated event is durable; the earlier events of the message are
-- rewritten to the new content, because participants replay them and the
-- old text must not survive anywhere they can read.
-- An edit says something new, so it is refused where a new message would be:
-- in a direct conversation with a block (deleting stays allowed), and past
-- the sender's 'message' bucket, which sends and edits share.
create function public.edit_message(
  p_user_id uuid,
  p_message_id uuid,
  p_body text,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_message public.messages;
  v_body text;
begin
  if p_user_id is null then
    perform public.api_error('message_not_found', 'No such message.');
  end if;
  -- The bucket before the conversation's lock (12_rate_limits.sql).
  perform public.take_token(p_user_id, 'message', p_rate_per_minute, p_rate_burst);
  v_message := public.lock_message_for_change(p_user_id, p_message_id);
  perform public.refuse_if_blocked(v_message.conversation_id);

  if v_message.deleted_at is not null then
    perform public.api_error('message_deleted', 'A deleted message cannot be edited.');
  end if;

  v_body := public.validated_body(v_message.kind, p_body);

  if v_body is not distinct from v_message.body then
    return jsonb_build_object(
      'result', jsonb_build_object('message', public.message_json(v_message), 'changed', false),
      'deliveries', '[]'::jsonb
    );
  end if;

  update public.messages m
     set body = v_body,
         edited_at = now()
   where m.id = p_message_id
  returning m.* into v_message;

  return jsonb_build_object(
    'result', jsonb_build_object('message', public.message_json(v_message), 'changed', true),
    'deliveries', jsonb_build_array(public.record_message_change('message.updated', p_user_id, v_message))
  );
end;
$$;
revoke execute on function public.edit_message(uuid, uuid, text, int, int) from public, anon, authenticated;
grant execute on function public.edit_message(uuid, uuid, text, int, int) to service_role;

-- Deletes the caller's message: it keeps its place (id, seq) as a tombstone,
-- its content is wiped from the row (the search column follows, so it never
-- matches again) and from every earlier event of the message.
create function public.delete_message(p_user_id uuid, p_message_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_message public.messages := public.lock_message_for_change(p_user_id, p_message_id);
begin
  if v_message.deleted_at is not null then
    return jsonb_build_object(
      'result', jsonb_build_object('message', public.message_json(v_message), 'deleted', false),
      'deliveries', '[]'::jsonb
    );
  end if;

  update public.messages m
     set deleted_at = now(),
         body = null,
         attachment = null
   where m.id = p_message_id
  returning m.* into v_message;

  return jsonb_build_object(
    'result', jsonb_build_object('message', public.message_json(v_message), 'deleted', true),
    'deliveries', jsonb_build_array(public.record_message_change('message.deleted', p_user_id, v_message))
  );
end;
$$;
revoke execute on function public.delete_message(uuid, uuid) from public, anon, authenticated;
grant execute on function public.delete_message(uuid, uuid) to service_role;

-- ===========================================================================
-- User-facing RPCs (authenticated; the caller is public.caller_id())
-- ===========================================================================

-- A page of history, always in ascending seq order.
-- With p_after_seq: the oldest messages after it (catching up), has_more
-- meaning newer ones remain. Otherwise: the newest before p_before_seq (or
-- the newest overall), has_more meaning older ones remain.
create function public.list_messages(
  p_conversation_id uuid,
  p_before_seq bigint default null,
  p_after_seq bigint default null,
  p_limit int default 50
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_limit int := least(greatest(coalesce(p_limit, 50), 1), 100);
  v_rows public.messages[];
begin
  if p_conversation_id is null or not exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.user_id = public.caller_id()
      and p.left_at is null
  ) then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;
  if p_before_seq is not null and p_after_seq is not null then
    perform public.api_error('invalid_argument', 'Give before_seq or after_seq, not both.');
  end if;

  -- One row more than the page says whether there is more.
  if p_after_seq is not null then
    v_rows := array(
      select m
      from public.messages m
      where m.conversation_id = p_conversation_id
        and m.seq > p_after_seq
      order by m.seq
      limit v_limit + 1
    );
  else
    v_rows := array(
      select m
      from public.messages m
      where m.conversation_id = p_conversation_id
        and (p_before_seq is null or m.seq < p_before_seq)
      order by m.seq desc
      limit v_limit + 1
    );
  end if;

  return jsonb_build_object(
    'messages', (
      select coalesce(jsonb_agg(public.message_json(r) order by r.seq), '[]'::jsonb)
      from unnest(v_rows[1:v_limit]) as r
    ),
    'has_more', coalesce(array_length(v_rows, 1), 0) > v_limit
  );
end;
$$;
revoke execute on function public.list_messages(uuid, bigint, bigint, int) from public, anon;
grant execute on function public.list_messages(uuid, bigint, bigint, int) to authenticated, service_role;

-- ===========================================================================
-- sql/schemas/50_events.sql
-- ===========================================================================

-- Conversation events: the durable, gap-free log of each conversation, which
-- a client replays to catch up. Every durable change of a conversation takes
-- the next last_seq in the same transaction and writes its event with it.

create table public.conversation_events (
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  seq bigint not null
    constraint conversation_events_seq_positive check (seq > 0),
  type text not null
    constraint conversation_events_type_length check (char_length(type) between 1 and 64),
  message_id uuid references public.messages (id) on delete set null,
  actor_id uuid references public.profiles (id) on delete set null,
  payload jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  primary key (conversation_id, seq)
);

comment on column public.conversation_events.payload is
  'What the event pushed to clients. Participants can replay it, so whatever '
  'deletes or edits a message must rewrite the payloads of that message''s earlier events.';

-- health_stats counts conversations with an event in the last 24 hours.
create index conversation_events_created_at_idx on public.conversation_events (created_at);
create index conversation_events_message_id_idx on public.conversation_events (message_id) where message_id is not null;
-- Deleting a user sets actor_id to null in their events.
create index conversation_events_actor_id_idx on public.conversation_events (actor_id) where actor_id is not null;

alter table public.conversation_events enable row level security;
revoke all on table public.conversation_events from anon, authenticated;
grant select on table public.conversation_events to authenticated;
grant all on table public.conversation_events to service_role;

create policy "conversation events are readable by participants"
  on public.conversation_events
  for select
  to authenticated
  using (public.is_participant(conversation_id));

-- Takes the conversation's next sequence number. The row lock this update
-- takes serializes every durable change of one conversation until commit,
-- which is what keeps seq gap-free and in commit order.
create function public.next_conversation_seq(p_conversation_id uuid)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_seq bigint;
begin
  update public.conversations
     set last_seq = last_seq + 1
   where id = p_conversation_id
  returning last_seq into v_seq;

  if v_seq is null then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;
  return v_seq;
end;
$$;
revoke execute on function public.next_conversation_seq(uuid) from public, anon, authenticated, service_role;

-- Appends a durable event (other than message.created, which send_message
-- writes together with its message, and conversation.created, seq 1 of a new
-- conversation) and returns its seq, so every change numbers events the same
-- way.
create function public.append_conversation_event(
  p_conversation_id uuid,
  p_type text,
  p_actor_id uuid,
  p_message_id uuid,
  p_payload jsonb
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_seq bigint := public.next_conversation_seq(p_conversation_id);
begin
  insert into public.conversation_events (conversation_id, seq, type, message_id, actor_id, payload, created_at)
  values (p_conversation_id, v_seq, p_type, p_message_id, p_actor_id, coalesce(p_payload, '{}'::jsonb), clock_timestamp());
  return v_seq;
end;
$$;
revoke execute on function public.append_conversation_event(uuid, text, uuid, uuid, jsonb) from public, anon, authenticated, service_role;

-- The durable events after a seq, in order, as the envelopes the WebSocket
-- pushed (with their payloads as rewritten by later edits and deletes): how a
-- client that was offline catches up.
create function public.list_events(p_conversation_id uuid, p_after_seq bigint default 0, p_limit int default 100)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_limit int := least(greatest(coalesce(p_limit, 100), 1), 500);
  v_rows public.conversation_events[];
begin
  perform public.require_participant(p_conversation_id, public.caller_id());
  if p_after_seq < 0 then
    perform public.api_error('invalid_argument', 'after_seq must not be negative.');
  end if;

  -- One row more than the page says whether there is more.
  v_rows := array(
    select e
    from public.conversation_events e
    where e.conversation_id = p_conversation_id
      and e.seq > coalesce(p_after_seq, 0)
    order by e.seq
    limit v_limit + 1
  );

  return jsonb_build_object(
    'events', (
      select coalesce(jsonb_agg(
        public.event_envelope(r.type, r.conversation_id, r.seq, r.payload)
          || jsonb_build_object('actor_id', r.actor_id, 'created_at', r.created_at)
        order by r.seq
      ), '[]'::jsonb)
      from unnest(v_rows[1:v_limit]) as r
    ),
    'has_more', coalesce(array_length(v_rows, 1), 0) > v_limit,
    'last_seq', (select c.last_seq from public.conversations c where c.id = p_conversation_id)
  );
end;
$$;
revoke execute on function public.list_events(uuid, bigint, int) from public, anon;
grant execute on function public.list_events(uuid, bigint, int) to authenticated, service_role;

-- ===========================================================================
-- sql/schemas/60_read_state.sql
-- ===========================================================================

-- Read state: each participant's read watermark (participants.last_read_seq),
-- unread counts, and read receipts. A receipt is not durable: the watermark
-- itself is the state, the read event only tells the devices now.

-- Unread messages of a participant: others' messages after the watermark that
-- still say something (a deleted message is nothing left to read).
create function public.unread_count(p_conversation_id uuid, p_user_id uuid, p_last_read_seq bigint)
returns bigint
language sql
stable
set search_path = ''
as $$
  select count(*)
  from public.messages m
  where m.conversation_id = p_conversation_id
    and m.seq > coalesce(p_last_read_seq, 0)
    and m.sender_id is distinct from p_user_id
    and m.deleted_at is null
$$;
revoke execute on function public.unread_count(uuid, uuid, bigint) from public, anon, authenticated, service_role;

-- The "me" settings of a participant: private to that participant.
create function public.me_json(p_participant public.participants)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'role', p_participant.role,
    'joined_at', p_participant.joined_at,
    'archived', p_participant.archived,
    'muted', p_participant.muted,
    'last_read_seq', p_participant.last_read_seq,
    'unread_count', public.unread_count(p_participant.conversation_id, p_participant.user_id, p_participant.last_read_seq)
  )
$$;
revoke execute on function public.me_json(public.participants) from public, anon, authenticated, service_role;

-- Moves the caller's read watermark forward (never back) to p_seq, or to the
-- latest event. A read receipt is not durable: the watermark itself is the
-- state (participants' last_read_seq), the read event only tells the devices
-- now. In a room only the reader's own devices hear of it: a room's members
-- did not sign up for each other's receipts. Elsewhere the members hear of
-- it, but for those with a block between them and the reader, either way.
create function public.mark_read(p_user_id uuid, p_conversation_id uuid, p_seq bigint default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me public.participants;
  v_conversation public.conversations;
  v_target bigint;
  v_watermark bigint;
  v_changed boolean;
  v_read_at timestamptz := now();
  v_deliveries jsonb := '[]'::jsonb;
begin
  perform public.require_participant(p_conversation_id, p_user_id);
  if p_seq < 0 then
    perform public.api_error('invalid_argument', 'seq must not be negative.');
  end if;

  select c.* into v_conversation from public.conversations c where c.id = p_conversation_id;
  v_target := least(coalesce(p_seq, v_conversation.last_seq), v_conversation.last_seq);

  -- Only the reader's own row is locked: concurrent marks of one reader are
  -- serialized, so the watermark cannot go back.
  select p.* into v_me
  from public.participants p
  where p.conversation_id = p_conversation_id
    and p.user_id = p_user_id
    and p.left_at is null
  for update;
  if not found then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;

  v_watermark := greatest(v_me.last_read_seq, v_target);
  v_changed := v_watermark > v_me.last_read_seq;

  if v_changed then
    update public.participants p
       set last_read_seq = v_watermark
     where p.conversation_id = p_conversation_id
       and p.user_id = p_user_id;

    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('read', p_conversation_id, null,
        jsonb_build_object('user_id', p_user_id, 'last_read_seq', v_watermark, 'read_at', v_read_at)),
      case when v_conversation.kind = 'room'
        then public.user_recipients(array[p_user_id])
        else public.without_blocked(public.live_recipients(p_conversation_id, null), p_user_id)
      end
    ));
  end if;

  return jsonb_build_object(
    'result', jsonb_build_object(
      'conversation_id', p_conversation_id,
      'last_read_seq', v_watermark,
      'unread_count', public.unread_count(p_conversation_id, p_user_id, v_watermark),
      'changed', v_changed
    ),
    'deliveries', v_deliveries
  );
end;
$$;
revoke execute on function public.mark_read(uuid, uuid, bigint) from public, anon, authenticated;
grant execute on function public.mark_read(uuid, uuid, bigint) to service_role;

-- The caller's unread counts, for a badge: the conversations with something
-- unread and the total (muted ones included; each says whether it is muted).
create function public.unread_counts()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
  v_conversations jsonb;
begin
  select coalesce(jsonb_agg(
           jsonb_build_object('conversation_id', u.conversation_id, 'unread_count', u.unread_count, 'muted', u.muted)
           order by u.conversation_id
         ), '[]'::jsonb)
  into v_conversations
  from (
    select p.conversation_id, p.muted, public.unread_count(p.conversation_id, p.user_id, p.last_read_seq) as unread_count
    from public.participants p
    where p.user_id = v_me
      and p.left_at is null
  ) u
  where u.unread_count > 0;

  return jsonb_build_object(
    'total', (select coalesce(sum((c ->> 'unread_count')::bigint), 0) from jsonb_array_elements(v_conversations) as c),
    'conversations', v_conversations
  );
end;
$$;
revoke execute on function public.unread_counts() from public, anon;
grant execute on function public.unread_counts() to authenticated, service_role;

-- ===========================================================================
-- sql/schemas/70_presence.sql
-- ===========================================================================

-- Presence: who is online and when they were last seen, visible only to the
-- user and their contacts: the people with whom they share a direct
-- conversation or a group in which both have sent a message, with no block
-- between them. Opening a direct conversation, adding someone to a group or
-- joining a room reveals nothing by itself; an answer does. Public rooms never
-- make contacts: anyone may join one and post. A user's first connection
-- tells the contacts the user is online, the last one going away that the
-- user is offline. Profiles as a viewer sees them.

-- Whether two users are contacts: both current participants of a direct
-- conversation or group in which both have taken part (sent a message,
-- participants.first_sent_at).
create function public.are_contacts(p_user_id uuid, p_other_user_id uuid)
returns boolean
language sql
stable
set search_path = ''
as $$
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
$$;
revoke execute on function public.are_contacts(uuid, uuid) from public, anon, authenticated, service_role;

-- Whether a viewer may see a user's presence (online, last seen, live
-- connections): their own, or a contact's with no block either way. The one
-- place this rule is written: get_presence, the Profile shape (get_me,
-- search_users, get_profiles), presence events (contact_recipients) and a
-- conversation's online counts all ask it.
create function public.presence_visible(p_viewer uuid, p_user_id uuid)
returns boolean
language sql
stable
set search_path = ''
as $$
  select p_viewer is not null
     and p_user_id is not null
     and (
       p_viewer = p_user_id
       or (public.are_contacts(p_viewer, p_user_id) and not public.blocked_between(p_viewer, p_user_id))
     )
$$;
revoke execute on function public.presence_visible(uuid, uuid) from public, anon, authenticated, service_role;

-- Where a user's presence changes go: the live connections of those who may
-- see it. Only users sharing a conversation with the user can, so only their
-- connections are asked.
create function public.contact_recipients(p_user_id uuid)
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
      where a.user_id = p_user_id
        and b.user_id <> p_user_id
    )
    and public.connection_is_live(c.token_exp)
    and public.presence_visible(c.user_id, p_user_id)
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
-- last_connection: no other live connection remains; then the user's
-- contacts are told the user went offline.
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

  v_last := not exists (
    select 1
    from public.connections c
    where c.user_id = v_user_id
      and public.connection_is_live(c.token_exp)
  );

  if v_last then
    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('presence', null, null,
        jsonb_build_object('user_id', v_user_id, 'online', false, 'last_seen_at', v_seen)),
      public.contact_recipients(v_user_id)
    ));
  end if;

  return jsonb_build_object('user_id', v_user_id, 'last_connection', v_last, 'deliveries', v_deliveries);
end;
$$;
revoke execute on function public.unregister_connection(text) from public, anon, authenticated;
grant execute on function public.unregister_connection(text) to service_role;

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

-- ===========================================================================
-- sql/schemas/80_search.sql
-- ===========================================================================

-- Full-text search of messages (messages.search, a generated column of both
-- the English and the Spanish stemming of the body).

create index messages_search_idx on public.messages using gin (search);

-- Full-text search of the messages the caller can read (current
-- conversations only), in English and Spanish at once: messages.search holds
-- both stemmings, and the query is stemmed both ways. Deleted messages never
-- match (their body is gone, and they are excluded besides).
create function public.search_messages(
  p_query text,
  p_conversation_id uuid default null,
  p_limit int default 20,
  p_offset int default 0
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.caller_id();
  v_limit int := least(greatest(coalesce(p_limit, 20), 1), 50);
  v_offset int := coalesce(p_offset, 0);
  v_text text := public.validated_query_text(p_query, 200);
  v_query tsquery;
  v_results jsonb;
  v_rows int;
begin
  if v_text = '' then
    perform public.api_error('invalid_query', 'The query must be 1 to 200 characters.');
  end if;
  if v_offset < 0 or v_offset > 10000 then
    perform public.api_error('invalid_argument', 'offset must be 0 to 10000.');
  end if;
  if p_conversation_id is not null then
    perform public.require_participant(p_conversation_id, v_me);
  end if;

  v_query := websearch_to_tsquery('english', v_text) || websearch_to_tsquery('spanish', v_text);

  -- One row more than the page says whether there is more.
  select coalesce(jsonb_agg(jsonb_build_object('message', public.message_json(h.m), 'rank', h.rank) order by h.n), '[]'::jsonb),
         count(*)
  into v_results, v_rows
  from (
    select m, ts_rank(m.search, v_query) as rank,
           row_number() over (order by ts_rank(m.search, v_query) desc, m.seq desc, m.id desc) as n
    from public.messages m
    join public.participants p
      on p.conversation_id = m.conversation_id
     and p.user_id = v_me
     and p.left_at is null
    where (p_conversation_id is null or m.conversation_id = p_conversation_id)
      and m.deleted_at is null
      and m.search @@ v_query
    order by n
    limit v_limit + 1
    offset v_offset
  ) h;

  if v_rows > v_limit then
    v_results := v_results - v_limit;
  end if;

  return jsonb_build_object(
    'results', v_results,
    'next_offset', case when v_rows > v_limit then v_offset + v_limit end
  );
end;
$$;
revoke execute on function public.search_messages(text, uuid, int, int) from public, anon;
grant execute on function public.search_messages(text, uuid, int, int) to authenticated, service_role;

-- ===========================================================================
-- sql/schemas/90_health.sql
-- ===========================================================================

-- Health: counts for GET /v1/health.

-- For GET /v1/health; callable without signing in, reveals only counts.
create function public.health_stats()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'live_connections', (
      select count(*)
      from public.connections c
      where public.connection_is_live(c.token_exp)
    ),
    'users_online', (
      select count(distinct c.user_id)
      from public.connections c
      where public.connection_is_live(c.token_exp)
    ),
    'active_conversations', (
      select count(distinct e.conversation_id)
      from public.conversation_events e
      where e.created_at > now() - interval '24 hours'
    )
  )
$$;
revoke execute on function public.health_stats() from public;
grant execute on function public.health_stats() to anon, authenticated, service_role;
