-- The nested plans of send_message: one send into the room of 1,000 and one
-- into a group, each after a warm-up send (plan caches filled, as in a
-- long-lived PostgREST connection), through auto_explain at NOTICE level.
-- Run by send_message_profile.sh on its seeded scratch database.
\pset pager off
select s.user_id as room_sender, s.conversation_id as room
from bench.room_senders s where s.n = 500 \gset
select s.user_id as group_sender, s.conversation_id as group_id
from bench.group_senders s where s.n = 500 \gset

-- Warm-up (not explained).
select length(public.send_message(:'room_sender', :'room', 'warm-room', 'text', 'warming up', null, null, 100000, 100000)::text) as room_json_bytes;
select length(public.send_message(:'group_sender', :'group_id', 'warm-group', 'text', 'warming up', null, null, 100000, 100000)::text) as group_json_bytes;

set auto_explain.log_min_duration = 0;
set auto_explain.log_analyze = on;
set auto_explain.log_buffers = on;
set auto_explain.log_timing = on;
set auto_explain.log_verbose = on;
set auto_explain.log_nested_statements = on;
set auto_explain.log_level = notice;
set client_min_messages = notice;

\echo '=== send into the room of 1,000 ==='
select length(public.send_message(:'room_sender', :'room', 'explain-room', 'text', 'a message of ordinary length', null, null, 100000, 100000)::text) as room_json_bytes;
\echo '=== send into a group ==='
select length(public.send_message(:'group_sender', :'group_id', 'explain-group', 'text', 'a message of ordinary length', null, null, 100000, 100000)::text) as group_json_bytes;
