#!/bin/sh
# Entrypoint of the locally built vibedev-test/firestore-emulator image: Google's Cloud Firestore
# emulator (from the Debian package google-cloud-cli-firestore-emulator) run by java as PID 1.
# Accepts either no arguments / emulator flags (--host=, --port=, --rules=, ...), or the command
# given to the production image gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators:
#   gcloud emulators firestore start --host-port=0.0.0.0:8080
# (--host-port=H:P is honoured, gcloud's positional words and unknown flags are ignored).
# Installed as /usr/local/bin/gcloud too, so `--entrypoint gcloud` works the same way.
set -e

dir=/opt/cloud-firestore-emulator
case "$1" in
'' | -* | gcloud | emulators | firestore | start) ;;
*) exec "$@" ;; # any other command, e.g. sh
esac

host=0.0.0.0
port=8080
set -f
extra=
while [ $# -gt 0 ]; do
	a="$1"
	shift
	case "$a" in
	--host-port=*) hp="${a#*=}" ;;
	--host-port) hp="${1:-}"; shift || : ;;
	--host=*) host="${a#*=}"; hp= ;;
	--port=*) port="${a#*=}"; hp= ;;
	--rules=* | --import-data=* | --export-on-exit=* | --project_id=* | --seed_from_export=* | \
		--single_project_mode=* | --single_project_mode_error=* | --websocket_port=* | \
		--webchannel_port=* | --functions_emulator=*)
		extra="$extra $a" ;;
	--database-mode=*) extra="$extra $a" ;;
	--project=*) extra="$extra --project_id=${a#*=}" ;;
	*) ;; # gcloud, emulators, firestore, start, --quiet, --verbosity=..., ...
	esac
	if [ -n "${hp:-}" ]; then
		host="${hp%:*}"
		port="${hp##*:}"
		hp=
	fi
done

jsa=
if [ -f "$dir/cloud-firestore-emulator.jsa" ]; then
	# class-data archive made at build time by this very JVM: start ≈1 s faster
	jsa="-XX:SharedArchiveFile=$dir/cloud-firestore-emulator.jsa"
fi
# shellcheck disable=SC2086
exec java -Duser.language=en -Xshare:auto $jsa ${FIRESTORE_JAVA_OPTS--XX:TieredStopAtLevel=1 -XX:+UseSerialGC} \
	-cp "$dir/cloud-firestore-emulator.jar" com.google.cloud.datastore.emulator.firestore.CloudFirestore \
	start --host="$host" --port="$port" $extra
