#!/usr/bin/env bash
# Installs what Ferry's schema migration tests run: Apicurio Registry (its
# Confluent-compatible API under /apis/ccompat/v7), assembled from Maven
# Central by ./pom.xml, and a Python venv with confluent-kafka's
# SchemaRegistryClient and AvroSerializer/AvroDeserializer, the registry
# clients applications use.
#
#   bash tests/registry/install.sh     # prints the registry home
#
# Target: ${FERRY_REGISTRY_HOME:-$HOME/.cache/ferry/apicurio-<version>}:
#   app/runner.jar + app/lib/   the registry (`java -jar app/runner.jar`)
#   venv/                       python3 with confluent-kafka and fastavro
#   .installed                  marker: the sha256 of this folder's inputs
#
# Idempotent: when the marker matches nothing is built or downloaded. Each
# part is built in a scratch folder and moved into place when complete.
set -euo pipefail

die() {
    echo "registry/install.sh: $*" >&2
    exit 1
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"
[ -f "$pom" ] || die "missing $pom"
version="$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' "$pom" | head -n 1)"
[ -n "$version" ] || die "no <apicurio.version> property in $pom"

# The Python clients the tests decode with, pinned.
python_packages=(confluent-kafka==2.16.1 fastavro==1.13.1 httpx==0.28.1 attrs cachetools authlib)

home="${FERRY_REGISTRY_HOME:-$HOME/.cache/ferry/apicurio-$version}"
marker="$home/.installed"
want="inputs-sha256=$( (cd "$here" && find pom.xml install.sh src -type f | sort | xargs sha256sum; echo "${python_packages[*]}") | sha256sum | cut -d ' ' -f 1)"

mkdir -p "$home" || die "cannot create $home"
exec 9>"$home/.lock"
flock 9 || die "cannot lock $home/.lock"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && [ -f "$home/app/runner.jar" ] && [ -x "$home/venv/bin/python" ]; then
    echo "$home"
    exit 0
fi

command -v java >/dev/null || die "java not found: the registry needs a Java 17+ runtime"
command -v mvn >/dev/null || die "mvn not found: install Maven to build the registry"
command -v python3 >/dev/null || die "python3 not found"

rm -f "$marker"
build="$home/build"
rm -rf "$build" "$home/app.partial"
mkdir -p "$build"
cp -r "$here/pom.xml" "$here/src" "$build/"
echo "registry/install.sh: building Apicurio Registry $version into $home/app" >&2
if ! mvn -q -B -f "$build/pom.xml" package -DskipTests >&2; then
    die "mvn could not build the registry from $pom (is Maven Central reachable?)"
fi
mkdir -p "$home/app.partial"
mv "$build/target/lib" "$home/app.partial/lib"
mv "$build/target/ferry-test-registry-1-runner.jar" "$home/app.partial/runner.jar"
rm -rf "$home/app" "$build"
mv "$home/app.partial" "$home/app"

echo "registry/install.sh: creating the Python venv in $home/venv" >&2
rm -rf "$home/venv.partial"
python3 -m venv "$home/venv.partial" || die "python3 -m venv failed (apt-get install python3-venv)"
"$home/venv.partial/bin/pip" install -q --disable-pip-version-check "${python_packages[@]}" >&2 ||
    die "pip could not install ${python_packages[*]}"
rm -rf "$home/venv"
mv "$home/venv.partial" "$home/venv"
# A venv records its own path in its scripts; the interpreter itself is
# fine after the move, which is all the tests call.
echo "$want" >"$marker"
echo "$home"
