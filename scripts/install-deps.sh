#!/bin/sh
# Installs the Debian packages that the example stack runs on: Ruby with Sinatra, the Puma
# server and the MySQL client library, MariaDB's server programs, and the Node.js and
# Python runtimes of the `faasd new` templates. Packages named as arguments are installed
# too (`make test` adds chromium, the browser of the web UI's test, and systemd, whose
# systemd-analyze checks the unit `faasd install` writes). Does nothing when they
# are all there, so `make run` and `make test` call it every time.
#
# faasd runs its own mariadbd as a supervised service (see [services.mariadb] in
# faasd.toml). When this script is the one installing mariadb-server, it keeps the
# package from starting a system MariaDB, now or at boot.
set -eu

PACKAGES="ruby ruby-sinatra puma ruby-mysql2 mariadb-server nodejs python3 $*"

missing=""
for p in $PACKAGES; do
	if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: these Debian packages are missing:$missing" >&2
	echo "install-deps: installing them needs root, once: sudo make deps (faasd itself then runs without root: make run)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive

case " $missing " in
*" mariadb-server "*) new_mariadb=true ;;
*) new_mariadb=false ;;
esac
# invoke-rc.d (and deb-systemd-invoke) ask policy-rc.d whether a package may start its
# service; 101 says no. Only a policy of our own is put in place, and taken away again.
if $new_mariadb && [ ! -e /usr/sbin/policy-rc.d ]; then
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	printf '#!/bin/sh\n# Temporary, from faasd scripts/install-deps.sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
fi

# The package lists are refreshed only when they are missing or out of date (an install
# from stale lists fails to find the files).
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
	apt-get update
fi
# shellcheck disable=SC2086 # one word per package
if ! apt-get install -y --no-install-recommends $missing; then
	apt-get update
	apt-get install -y --no-install-recommends $missing
fi

if $new_mariadb && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	systemctl disable --now mariadb.service >/dev/null 2>&1 || true
fi
