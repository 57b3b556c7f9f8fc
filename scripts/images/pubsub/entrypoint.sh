#!/bin/sh
# Entrypoint of the locally built vibedev-test/pubsub-emulator image: Google's Cloud Pub/Sub
# emulator (from the Debian package google-cloud-cli-pubsub-emulator) run by java as PID 1.
# Accepts either no arguments / emulator flags (--host=, --port=, --projects=, --iam_host=,
# --iam_port=), or the command given to the production image
# gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators:
#   gcloud beta emulators pubsub start --host-port=0.0.0.0:8085 --project=my-project
# (--host-port=H:P is honoured as gcloud passes it on; gcloud's positional words, --project (which
# gcloud does not pass to the emulator either), --data-dir and unknown flags are ignored).
# Listens on 0.0.0.0:8085 unless told otherwise (gcloud's default port; its default host ::1 would
# be unreachable from outside the container).
# Installed as /usr/local/bin/gcloud too, so `--entrypoint gcloud` works the same way.
set -e

dir=/opt/pubsub-emulator
case "$1" in
'' | -* | gcloud | alpha | beta | emulators | pubsub | start) ;;
*) exec "$@" ;; # any other command, e.g. sh
esac

host=0.0.0.0
port=8085
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
	--projects=* | --iam_host=* | --iam_port=*) extra="$extra $a" ;;
	*) ;; # gcloud, beta, emulators, pubsub, start, --project=..., --data-dir=..., --quiet, ...
	esac
	if [ -n "${hp:-}" ]; then
		# as gcloud splits it ([v6]:port, host:port, host, :port); what it leaves out, gcloud does
		# not pass on, so the emulator's own default applies (localhost, 8080)
		case "$hp" in
		\[*\]) h="$hp" p= ;;
		\[*\]:*) h="${hp%]:*}]" p="${hp##*]:}" ;;
		*:*) h="${hp%:*}" p="${hp##*:}" ;;
		*) h="$hp" p= ;;
		esac
		host="${h:-localhost}"
		port="${p:-8080}"
		hp=
	fi
done

jsa=
if [ -f "$dir/pubsub-emulator.jsa" ]; then
	# class-data archive made at build time by this very JVM: a faster start
	jsa="-XX:SharedArchiveFile=$dir/pubsub-emulator.jsa"
fi
# shellcheck disable=SC2086
exec java -Duser.language=en -Xshare:auto $jsa ${PUBSUB_JAVA_OPTS--XX:TieredStopAtLevel=1 -XX:+UseSerialGC} \
	-cp "$dir/lib/cloud-pubsub-emulator.jar" com.google.cloud.pubsub.testing.v1.Main \
	--host="$host" --port="$port" $extra
