-- Chat schema: profiles, conversations, participants, messages,
-- conversation_events, connections.
--
-- Row Level Security is enabled on every table as it is created, and the
-- blanket grants Supabase gives the API roles on new tables are revoked here,
-- so no table is ever reachable through PostgREST before its policies exist
-- (the next migration grants exactly what the policies are written for).
-- RLS is not forced: the table owner (the SECURITY DEFINER functions) and
-- service_role bypass it.

-- Whether a text is empty or only whitespace, counting the Unicode spaces
-- and invisible separators a client can send (not only ASCII blanks).
-- Shared by the messages check and send_message so both agree.
create function public.is_blank(p_text text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select p_text is null
      or p_text ~ '^[\s\u0085\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]*$'
$$;

-- Not an API: check constraints evaluate it with the writer's privileges, and
-- only the table owner and service_role write messages.
revoke execute on function public.is_blank(text) from public, anon, authenticated;
grant execute on function public.is_blank(text) to service_role;

-- ---------------------------------------------------------------------------
-- profiles: one per auth user, created by a trigger on auth.users.
-- ---------------------------------------------------------------------------
create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  username text not null unique
    constraint profiles_username_length check (char_length(username) between 1 and 100)
    constraint profiles_username_text check (btrim(username) <> '' and username !~ '[[:cntrl:]]'),
  display_name text
    constraint profiles_display_name_length check (char_length(display_name) <= 200)
    constraint profiles_display_name_text check (display_name !~ '[[:cntrl:]]'),
  avatar_url text
    constraint profiles_avatar_url_length check (char_length(avatar_url) <= 2048)
    -- Rendered by clients as an image source: https only, no javascript: or data:.
    constraint profiles_avatar_url_https check (avatar_url ~ '^https://[^[:space:][:cntrl:]]+$'),
  last_seen_at timestamptz,
  created_at timestamptz not null default now()
);

comment on table public.profiles is
  'Public profile of an auth user; created by the create_profile_for_new_user trigger.';
comment on column public.profiles.last_seen_at is
  'Presence: set when a connection registers, pings or goes away.';

alter table public.profiles enable row level security;
revoke all on table public.profiles from anon, authenticated;

-- Creates the profile of a new auth user. The username comes from the sign-up
-- metadata, else the e-mail's local part, else the id; when it is taken, a
-- suffix from the user's id makes it unique (retried, because two sign-ups
-- can race for the same name).
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
  v_base := coalesce(
    nullif(btrim(regexp_replace(v_meta ->> 'username', '[[:cntrl:]]', '', 'g')), ''),
    'user_' || left(v_hex, 8)
  );
  v_base := left(v_base, 60);
  v_candidate := v_base;

  loop
    begin
      insert into public.profiles (id, username, display_name, avatar_url)
      values (
        new.id,
        v_candidate,
        left(regexp_replace(coalesce(
          nullif(btrim(v_meta ->> 'display_name'), ''),
          nullif(btrim(v_meta ->> 'full_name'), ''),
          nullif(btrim(v_meta ->> 'name'), ''),
          v_base
        ), '[[:cntrl:]]', '', 'g'), 200),
        case when v_meta ->> 'avatar_url' ~ '^https://[^[:space:][:cntrl:]]+$'
             then left(v_meta ->> 'avatar_url', 2048) end
      )
      on conflict (id) do nothing;
      return new;
    exception
      when unique_violation then
        v_attempt := v_attempt + 1;
        if v_attempt > 3 then
          raise;
        end if;
        -- 4, then 8 hex digits of the id, then the id itself, which no
        -- other user can have generated.
        v_candidate := case v_attempt
          when 1 then v_base || '_' || left(v_hex, 4)
          when 2 then v_base || '_' || left(v_hex, 8)
          else new.id::text
        end;
    end;
  end loop;
end;
$$;

revoke execute on function public.handle_new_auth_user() from public, anon, authenticated, service_role;

create trigger create_profile_for_new_user
  after insert on auth.users
  for each row execute function public.handle_new_auth_user();

-- ---------------------------------------------------------------------------
-- conversations: direct (1:1), group, or public room; optionally about a thing.
-- ---------------------------------------------------------------------------
create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  kind text not null
    constraint conversations_kind_check check (kind in ('direct', 'group', 'room')),
  name text
    constraint conversations_name_length check (char_length(name) between 1 and 200),
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

alter table public.conversations enable row level security;
revoke all on table public.conversations from anon, authenticated;

-- ---------------------------------------------------------------------------
-- participants: membership; left_at set means a former member.
-- ---------------------------------------------------------------------------
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
  primary key (conversation_id, user_id)
);

create index participants_user_id_idx on public.participants (user_id);

alter table public.participants enable row level security;
revoke all on table public.participants from anon, authenticated;

-- ---------------------------------------------------------------------------
-- messages
-- ---------------------------------------------------------------------------
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

create index messages_search_idx on public.messages using gin (search);
create index messages_reply_to_id_idx on public.messages (reply_to_id) where reply_to_id is not null;

alter table public.messages enable row level security;
revoke all on table public.messages from anon, authenticated;

-- ---------------------------------------------------------------------------
-- conversation_events: the durable, gap-free log a client replays.
-- ---------------------------------------------------------------------------
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

alter table public.conversation_events enable row level security;
revoke all on table public.conversation_events from anon, authenticated;

-- ---------------------------------------------------------------------------
-- connections: the WebSocket registry. Internal: only service_role and the
-- SECURITY DEFINER functions touch it; users never see connection ids.
-- ---------------------------------------------------------------------------
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

alter table public.connections enable row level security;
revoke all on table public.connections from anon, authenticated;
