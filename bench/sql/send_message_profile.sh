#!/usr/bin/env bash
# The database side of a send: builds a scratch cluster from sql/ (bootstrap,
# then every schema file in order, as the schema-equivalence test does), seeds
# realistic data (seed.sql beside this script), prints the nested plans of one
# send into the 1,000-member room and one into a group (auto_explain), and
# measures the server's CPU time per send over N sends into each
# (send_message_cpu.sql), then times N more with pgbench. With postrust on
# PATH, it also sends N into each through the PostgREST server, as the
# functions call it, and reads the CPU time of that server and of the
# Postgres backends serving it (send_message_rest.py), after as many calls of
# an RPC that does nothing: the floor of that path.
#
#   bench/sql/send_message_profile.sh [N]     (N sends each, default 200)
#   SQL_DIR=dir bench/sql/send_message_profile.sh   (another checkout's sql/)
#
# The cluster lives in a temporary directory and is removed at exit. As root,
# the server runs as the `postgres` user (PostgreSQL refuses root).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
sql_dir=${SQL_DIR:-$(cd "$here/../../sql" && pwd)}
sends=${1:-200}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
bin=${bin:-$(dirname "$(command -v initdb)")}

work=$(mktemp -d)
as_server=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$work"
  as_server=(runuser -u postgres --)
fi
port=$((20000 + RANDOM % 20000))
cleanup() {
  "${as_server[@]}" "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"${as_server[@]}" "$bin/initdb" -D "$work/data" -U postgres --auth trust --encoding UTF8 --no-sync >/dev/null
"${as_server[@]}" "$bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w start -o "\
  -p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work -c fsync=off \
  -c shared_preload_libraries=pg_stat_statements,auto_explain \
  -c log_min_messages=warning" >/dev/null

psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
"${psql[@]}" -c "create database chat" postgres
"${psql[@]}" -1 -f "$sql_dir/bootstrap/local_supabase.sql" chat >/dev/null
for file in "$sql_dir"/schemas/*.sql; do
  "${psql[@]}" -1 -f "$file" chat >/dev/null
done
"${psql[@]}" -1 -f "$here/seed.sql" chat
"${psql[@]}" -c "vacuum analyze" chat
"${psql[@]}" -c "select (select count(*) from public.profiles) as users,
  (select count(*) from public.conversations) as conversations, (select count(*) from public.participants) as participants,
  (select count(*) from public.messages) as messages, (select count(*) from public.connections) as connections,
  (select count(*) from public.typing_indicators) as typing, (select count(*) from public.blocks) as blocks" chat

"${psql[@]}" -f "$here/send_message_profile.sql" chat

# N sends each, one transaction a send, one client, as PostgREST calls it.
group_senders=$("${psql[@]}" -tA -c "select count(*) from bench.group_senders" chat)
cat > "$work/room.pgbench" <<'SQL'
\set n random(1, 1000)
select length(public.send_message(s.user_id, s.conversation_id, 'room-' || gen_random_uuid(), 'text', 'a message of ordinary length for the benchmark', null, null, 100000, 100000)::text) from bench.room_senders s where s.n = :n;
SQL
cat > "$work/group.pgbench" <<'SQL'
\set n random(1, :group_senders)
select length(public.send_message(s.user_id, s.conversation_id, 'group-' || gen_random_uuid(), 'text', 'a message of ordinary length for the benchmark', null, null, 100000, 100000)::text) from bench.group_senders s where s.n = :n;
SQL
for target in room group; do
  "${psql[@]}" -v sends="$sends" -v target="$target" -v clk_tck="$(getconf CLK_TCK)" -f "$here/send_message_cpu.sql" chat
done

if command -v postrust >/dev/null; then
  echo "=== $sends sends into each through the PostgREST server (CPU per send) ==="
  # The floor: as many calls of an RPC that does nothing, as the functions'
  # service role, through the same server.
  "${psql[@]}" -c "create function public.bench_noop() returns jsonb language sql volatile as 'select ''{}''::jsonb'" \
    -c "grant execute on function public.bench_noop() to service_role" chat
  for target in floor room group; do
    python3 "$here/send_message_rest.py" "postgresql://postgres@127.0.0.1:$port/chat" "$target" "$sends"
  done
fi

pgbench=("$bin/pgbench" -n -h 127.0.0.1 -p "$port" -U postgres -c 1 -t "$sends" -D group_senders="$group_senders")
for target in room group; do
  # Timed without statement tracking (tracking every nested statement has a
  # cost of its own), then again with it for the breakdown.
  echo "=== $sends sends into the $target ==="
  PGOPTIONS="-c pg_stat_statements.track=none" "${pgbench[@]}" -f "$work/$target.pgbench" chat |
    grep -E "latency average|tps"
  "${psql[@]}" -c "select extensions.pg_stat_statements_reset()" chat >/dev/null
  PGOPTIONS="-c pg_stat_statements.track=all" "${pgbench[@]}" -f "$work/$target.pgbench" chat >/dev/null
  echo "--- the statements inside, by total time over another $sends (pg_stat_statements, nested included) ---"
  "${psql[@]}" -c "select calls, round(total_exec_time::numeric / $sends, 3) as ms_per_send,
      round(mean_exec_time::numeric, 3) as ms_per_call, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) as query
    from extensions.pg_stat_statements
    where dbid = (select oid from pg_database where datname = 'chat')
    order by total_exec_time desc limit 15" chat
done
