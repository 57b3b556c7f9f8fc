#!/bin/sh
# Entrypoint of the locally built vibedev-test/redis:7 image (Debian's redis-server 7.0).
# Like the official redis image: a first argument starting with '-' (or ending in .conf) means
# `redis-server <args>`; redis-server runs as user redis, as PID 1, in /data (WORKDIR).
# Debian's redis-server keeps protected mode on, which refuses clients on a bridged network,
# so `--protected-mode no` is added unless the command sets --protected-mode itself.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ]; then
	case " $* " in
	*' --protected-mode '*) ;;
	*) set -- "$@" --protected-mode no ;;
	esac
	if [ "$(id -u)" = '0' ]; then
		find . \! -user redis -exec chown redis '{}' + 2>/dev/null || :
		exec gosu redis "$@"
	fi
	um="$(umask)"
	if [ "$um" = '0022' ]; then
		umask 0077
	fi
fi

exec "$@"
