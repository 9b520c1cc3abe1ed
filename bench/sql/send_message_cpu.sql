-- The CPU time of the server process that runs :sends sends, each its own
-- transaction (\gexec runs every generated statement on its own), read from
-- /proc before and after: less disturbed by other work on the machine than
-- wall time, though not immune to it (run before and after alternately).
-- :target is room or group; :clk_tck the kernel's ticks a second. The
-- client_msg_ids carry the run's start time, so that a second run on the same
-- database sends new messages rather than repeats.
\set ON_ERROR_STOP 1
select 'cpu-' || :'target' || '-' || (extract(epoch from clock_timestamp()) * 1000)::bigint || '-' as id_prefix \gset
select pg_backend_pid() as backend_pid \gset
select (f[12]::bigint + f[13]::bigint) as ticks_before
from (select string_to_array(split_part(pg_read_file('/proc/' || :backend_pid || '/stat'), ') ', 2), ' ') as f) s \gset
\o /dev/null
select format('select length(public.send_message(%L, %L, %L, ''text'', ''a message of ordinary length for the benchmark'', null, null, 100000, 100000)::text)',
              s.user_id, s.conversation_id, (:'id_prefix' || g))
from generate_series(1, :sends) g
join bench.room_senders s on :'target' = 'room' and s.n = 1 + (g * 7919) % 1000
union all
select format('select length(public.send_message(%L, %L, %L, ''text'', ''a message of ordinary length for the benchmark'', null, null, 100000, 100000)::text)',
              s.user_id, s.conversation_id, (:'id_prefix' || g))
from generate_series(1, :sends) g
join bench.group_senders s on :'target' = 'group'
  and s.n = 1 + (g * 7919) % (select count(*) from bench.group_senders)
\gexec
\o
select :'target' as sends_into, :sends as sends,
       round((f[12]::bigint + f[13]::bigint - :ticks_before) * 1000.0 / :clk_tck / :sends, 3) as server_cpu_ms_per_send
from (select string_to_array(split_part(pg_read_file('/proc/' || :backend_pid || '/stat'), ') ', 2), ' ') as f) s;
