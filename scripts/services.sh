#!/usr/bin/env bash
# Make sure the database services the tests talk to are running (CI machines start them; this restarts one that stopped).
set -u

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
maria_up() { mariadb-admin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1 || mysqladmin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; }

if ! pg_up; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! maria_up; then
    echo "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
for _ in $(seq 1 30); do
    if pg_up && maria_up; then exit 0; fi
    sleep 1
done
pg_up || echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2
maria_up || echo "MariaDB is not answering on 127.0.0.1:3306" >&2
exit 1
