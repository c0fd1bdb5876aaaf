#!/bin/sh
# Run by faasd once, in the empty data dir of the service "mariadb": creates the system
# tables, then the guestbook's database and account. root may only log in through the
# socket as the system's root; the guestbook connects over TCP with its password, the
# faasd secret guestbook-db-password, which faasd passes here as GUESTBOOK_PASSWORD.
set -eu
db="$DATA_DIR/db"
mariadb-install-db --no-defaults --datadir="$db" --auth-root-authentication-method=socket \
	--skip-test-db --skip-name-resolve >/dev/null
# The password goes through SQL as a string literal: keep it to characters that need no
# escaping there.
case "$GUESTBOOK_PASSWORD" in
*[!A-Za-z0-9._-]* | "")
	echo "init: GUESTBOOK_PASSWORD must be letters, digits, '.', '_' or '-'" >&2
	exit 1
	;;
esac
# Bootstrap mode starts without the grant tables; FLUSH PRIVILEGES loads them, which
# CREATE USER needs.
/usr/sbin/mariadbd --no-defaults --datadir="$db" --bootstrap --skip-networking <<SQL
FLUSH PRIVILEGES;
CREATE DATABASE guestbook CHARACTER SET utf8mb4;
CREATE USER 'guestbook'@'127.0.0.1' IDENTIFIED BY '$GUESTBOOK_PASSWORD';
GRANT ALL PRIVILEGES ON guestbook.* TO 'guestbook'@'127.0.0.1';
SQL
echo "init: database guestbook and its account are ready"
