#!/bin/sh
# The MariaDB server of the example stack, run by faasd as the service "mariadb": its files
# live in the data dir faasd gives the service (DATA_DIR), and it listens on loopback only,
# on a port and socket of its own, so that it never meets a system MariaDB.
set -eu
exec /usr/sbin/mariadbd --no-defaults \
	--datadir="$DATA_DIR/db" \
	--socket="$DATA_DIR/mysqld.sock" \
	--pid-file="$DATA_DIR/mysqld.pid" \
	--bind-address=127.0.0.1 \
	--port="${MARIADB_PORT:-3307}" \
	--skip-name-resolve \
	--innodb-buffer-pool-size=64M
