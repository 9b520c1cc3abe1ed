-- Realistic data for send_message_profile.sh, on a scratch database only:
-- 5,000 users; a room of 1,000 members; 2,000 groups of 6; 3,000 direct
-- conversations; message history in all of them; connections for most users
-- (some live, some with an expired token, some several per user); typing rows
-- in the room; blocks, a few of them between room members; some mutes.
-- The senders the timing picks from are in schema bench.
select setseed(0.42);

create schema bench;

-- Users (their profiles come from the auth trigger).
insert into auth.users (id, email, raw_user_meta_data)
select gen_random_uuid(), 'user' || n || '@example.com',
       jsonb_build_object('username', 'user' || n, 'display_name', 'User ' || n)
from generate_series(1, 5000) n;

create table bench.users as
select row_number() over (order by p.id) as n, p.id as user_id from public.profiles p;
create unique index on bench.users (n);

-- The room: users 1..1000.
insert into public.conversations (id, kind, name, created_by)
select gen_random_uuid(), 'room', 'Lobby', u.user_id from bench.users u where u.n = 1;
create table bench.room as select c.id as conversation_id from public.conversations c where c.kind = 'room';
insert into public.participants (conversation_id, user_id, role, joined_at, muted, first_sent_at)
select r.conversation_id, u.user_id, case when u.n = 1 then 'owner' else 'member' end,
       now() - (u.n || ' minutes')::interval, random() < 0.1,
       case when random() < 0.3 then now() - interval '1 day' end
from bench.room r cross join bench.users u where u.n <= 1000;

-- Groups of 6 random users.
insert into public.conversations (id, kind, name, created_by)
select gen_random_uuid(), 'group', 'Group ' || g, null from generate_series(1, 2000) g;
insert into public.participants (conversation_id, user_id, role, muted, first_sent_at)
select c.id, u.user_id, 'member', random() < 0.1, case when random() < 0.5 then now() - interval '1 day' end
from public.conversations c
cross join lateral (
  -- The condition on c.id makes the pick depend on the group, so it is drawn
  -- again for each one (an output column alone is dropped by the planner, and
  -- every group got the same six).
  select distinct on (x.n) x.n from (
    select 1 + floor(random() * 5000)::int as n from generate_series(1, 8) where c.id is not null
  ) x limit 6
) pick
join bench.users u on u.n = pick.n
where c.kind = 'group'
on conflict do nothing;

-- Direct conversations between random pairs.
insert into public.conversations (kind, direct_user_low, direct_user_high)
select distinct 'direct', least(a.user_id, b.user_id), greatest(a.user_id, b.user_id)
from (select 1 + floor(random() * 5000)::int as x, 1 + floor(random() * 5000)::int as y
      from generate_series(1, 3000)) pair
join bench.users a on a.n = pair.x
join bench.users b on b.n = pair.y
where a.user_id <> b.user_id
on conflict do nothing;
insert into public.participants (conversation_id, user_id)
select c.id, u from public.conversations c, unnest(array[c.direct_user_low, c.direct_user_high]) u
where c.kind = 'direct';

-- History: 20,000 messages in the room, 20 in each group, 10 in each direct
-- conversation, with their events.
insert into public.messages (conversation_id, seq, sender_id, client_msg_id, body, created_at)
select p.conversation_id, row_number() over (partition by p.conversation_id order by random()), p.user_id,
       'seed-' || gen_random_uuid(), 'hello number ' || k, now() - interval '2 days'
from public.participants p
join public.conversations c on c.id = p.conversation_id
cross join lateral generate_series(1, case c.kind when 'room' then 20 when 'group' then 4 else 10 end) k;
insert into public.conversation_events (conversation_id, seq, type, message_id, actor_id, payload, created_at)
select m.conversation_id, m.seq, 'message.created', m.id, m.sender_id, public.message_json(m), m.created_at
from public.messages m;
update public.conversations c
   set last_seq = s.max_seq
  from (select conversation_id, max(seq) as max_seq from public.messages group by 1) s
 where s.conversation_id = c.id;

-- Connections: 45% of users have one live, 10% a second live one, 15% one
-- whose token expired (never disconnected), the rest none.
with u as (select n, user_id, random() as r from bench.users)
insert into public.connections (connection_id, user_id, connected_at, last_seen_at, token_exp)
select 'conn-' || u.n || '-' || k, u.user_id, now() - interval '10 minutes', now() - interval '1 minute',
       case when kind = 'expired' then now() - interval '1 hour' else now() + interval '1 hour' end
from u
cross join lateral (values
  (1, case when u.r < 0.45 then 'live' when u.r < 0.60 then 'expired' end),
  (2, case when u.r < 0.10 then 'live' end)
) as v(k, kind)
where kind is not null;

-- Typing in the room and in some groups.
insert into public.typing_indicators (conversation_id, user_id, expires_at)
select p.conversation_id, p.user_id, now() + interval '5 seconds'
from public.participants p
where random() < 0.02;

-- Blocks: 2,000 random ones, and 50 within the room.
insert into public.blocks (blocker_id, blocked_id)
select a.user_id, b.user_id
from (select 1 + floor(random() * 5000)::int as x, 1 + floor(random() * 5000)::int as y
      from generate_series(1, 2000)) pair
join bench.users a on a.n = pair.x
join bench.users b on b.n = pair.y
where a.user_id <> b.user_id
on conflict do nothing;
insert into public.blocks (blocker_id, blocked_id)
select a.user_id, b.user_id
from (select 1 + floor(random() * 1000)::int as x, 1 + floor(random() * 1000)::int as y
      from generate_series(1, 50)) pair
join bench.users a on a.n = pair.x
join bench.users b on b.n = pair.y
where a.user_id <> b.user_id
on conflict do nothing;

-- Who sends in the timing: room members, and members of groups.
create table bench.room_senders as
select row_number() over (order by p.user_id) as n, p.conversation_id, p.user_id
from public.participants p join bench.room r using (conversation_id);
create unique index on bench.room_senders (n);
create table bench.group_senders as
select row_number() over (order by p.conversation_id, p.user_id) as n, p.conversation_id, p.user_id
from public.participants p join public.conversations c on c.id = p.conversation_id and c.kind = 'group';
create unique index on bench.group_senders (n);
