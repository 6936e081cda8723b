#!/usr/bin/env bash
# Installs the pinned Apache Kafka broker (and MirrorMaker 2) jars that Ferry's
# tests and benchmarks run, resolved from Maven Central by ./pom.xml.
#
#   bash tests/brokers/install.sh      # prints the libs directory
#
# Target: ${FERRY_KAFKA_HOME:-$HOME/.cache/ferry/kafka-<version>}, laid out as
#   libs/*.jar               the runtime classpath (`java -cp 'libs/*' ...`)
#   log4j2.properties        WARN and above to stdout, so broker logs stay short
#   .installed               marker: the sha256 of the pom the jars came from
#
# Idempotent: when the marker matches this pom nothing is downloaded. The jars
# are resolved into a scratch directory and moved into place only when
# complete, so an interrupted run never leaves a half-filled libs/ behind.
set -euo pipefail

die() {
    echo "install.sh: $*" >&2
    exit 1
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"
[ -f "$pom" ] || die "missing $pom"

version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n 1)"
[ -n "$version" ] || die "no <kafka.version> property in $pom"

home="${FERRY_KAFKA_HOME:-$HOME/.cache/ferry/kafka-$version}"
libs="$home/libs"
marker="$home/.installed"
want="pom-sha256=$(sha256sum "$pom" | cut -d ' ' -f 1)"

mkdir -p "$home" || die "cannot create $home"

# Two test runs may install at once (e.g. a developer and a CI job sharing
# $HOME); the second waits for the first and then finds the marker.
exec 9>"$home/.lock"
flock 9 || die "cannot lock $home/.lock"

write_log4j_config() {
    # Brokers and tools find this through -Dlog4j2.configurationFile.
    cat >"$home/log4j2.properties" <<'EOF'
# Written by tests/brokers/install.sh: brokers started by ferry-testkit log
# WARN and above to stdout, which the harness captures per broker.
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
EOF
}

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && [ -d "$libs" ]; then
    write_log4j_config
    echo "$libs"
    exit 0
fi

command -v java >/dev/null || die "java not found: Kafka $version needs a Java 17+ runtime (apt-get install openjdk-17-jre-headless)"
command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven) to resolve the Kafka jars"

partial="$home/libs.partial"
rm -rf "$partial" "$marker"
echo "install.sh: resolving Apache Kafka $version jars into $libs" >&2
if ! mvn -q -B -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$partial" >&2; then
    rm -rf "$partial"
    die "mvn could not resolve the jars listed in $pom (is Maven Central reachable?)"
fi
for jar in "kafka_2.13-$version.jar" "kafka-clients-$version.jar" "connect-mirror-$version.jar"; do
    [ -f "$partial/$jar" ] || die "mvn finished but $jar is missing from $partial"
done

rm -rf "$libs"
mv "$partial" "$libs"
write_log4j_config
echo "$want" >"$marker"
echo "$libs"
