#!/usr/bin/env bash
# Instructions per send, and per connect, counted by callgrind: repeatable on
# a busy machine, where CPU time is not. Builds a scratch cluster from sql/
# and seeds it as send_message_profile.sh does, then runs a single-user
# backend under `valgrind --tool=callgrind` twice per target (a send into the
# room, into a group, and a user's first connection: register_connection),
# with W and W + N calls (each its own transaction; the first W fill the plan
# caches), and prints the difference divided by N: the instructions of one
# call in a long-lived session, startup and warm-up left out.
#
#   bench/sql/send_message_callgrind.sh [N] [W]   (default 40 and 10)
#   SQL_DIR=dir bench/sql/send_message_callgrind.sh   (another checkout's sql/)
#   KEEP=dir ...   keeps the callgrind output of both runs in dir
#                  (callgrind.TARGET.warmup.out and callgrind.TARGET.out; compare
#                  them function by function with callgrind_annotate --inclusive=yes)
#
# The cluster lives in a temporary directory and is removed at exit. As root,
# the server runs as the `postgres` user (PostgreSQL refuses root).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
sql_dir=${SQL_DIR:-$(cd "$here/../../sql" && pwd)}
sends=${1:-40}
warmup=${2:-10}
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
  -c log_min_messages=warning" >/dev/null

psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
"${psql[@]}" -c "create database chat" postgres
"${psql[@]}" -1 -f "$sql_dir/bootstrap/local_supabase.sql" chat >/dev/null
for file in "$sql_dir"/schemas/*.sql; do
  "${psql[@]}" -1 -f "$file" chat >/dev/null
done
"${psql[@]}" -1 -f "$here/seed.sql" chat >/dev/null
"${psql[@]}" -c "vacuum analyze" chat

# The statements, one a line (single-user mode ends a statement at a newline).
# A send into the room or a group; and a connect: the first connection of a
# group member who has sent there (so has contacts to tell) and has none open.
statements() { # target count
  case $1 in
    connect) "${psql[@]}" -tA -c "
      with offline as (
        select row_number() over (order by m.user_id) as n, m.user_id
        from (
          select distinct p.user_id
          from public.participants p
          join public.conversations c on c.id = p.conversation_id and c.kind = 'group'
          where p.first_sent_at is not null
            and not exists (select 1 from public.connections k where k.user_id = p.user_id and public.connection_is_live(k.token_exp))
        ) m
      )
      select format('select length(public.register_connection(%L, %L, now() + interval ''1 hour'', 10)::text);',
                    'callgrind-connect-$2-' || g, o.user_id)
      from generate_series(1, $2) g
      join offline o on o.n = g
      order by g" chat ;;
    *) "${psql[@]}" -tA -c "
      select format('select length(public.send_message(%L, %L, %L, ''text'', ''a message of ordinary length for the benchmark'', null, null, 100000, 100000)::text);',
                    s.user_id, s.conversation_id, 'callgrind-$1-$2-' || g)
      from generate_series(1, $2) g
      join bench.$1_senders s
        on s.n = 1 + (g * 7919) % (select count(*) from bench.$1_senders)
      order by g" chat ;;
  esac
}
for target in room group connect; do
  for count in "$warmup" $((warmup + sends)); do
    statements "$target" "$count" > "$work/$target.$count.sql"
    [ "$(wc -l < "$work/$target.$count.sql")" -eq "$count" ] || { echo "$target: fewer than $count statements" >&2; exit 1; }
  done
done
chmod a+r "$work"/*.sql
"${as_server[@]}" "$bin/pg_ctl" -D "$work/data" -w stop >/dev/null

instructions() { # target count -> total instructions of a single-user run
  local out="$work/callgrind.$1.$2.out"
  "${as_server[@]}" valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$bin/postgres" --single -D "$work/data" -c fsync=off chat < "$work/$1.$2.sql" >/dev/null 2>&1
  awk '/^summary:/ { print $2 }' "$out"
}

for target in room group connect; do
  short=$(instructions "$target" "$warmup")
  long=$(instructions "$target" $((warmup + sends)))
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    cp "$work/callgrind.$target.$warmup.out" "$KEEP/callgrind.$target.warmup.out"
    cp "$work/callgrind.$target.$((warmup + sends)).out" "$KEEP/callgrind.$target.out"
  fi
  if [ "$target" = connect ]; then
    echo "{\"call\": \"register_connection\", \"calls\": $sends, \"instructions_per_call\": $(((long - short) / sends))}"
  else
    echo "{\"sends_into\": \"$target\", \"sends\": $sends, \"instructions_per_send\": $(((long - short) / sends))}"
  fi
done
