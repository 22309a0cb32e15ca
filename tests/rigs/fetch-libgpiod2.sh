#!/bin/bash
# fetch-libgpiod2.sh DEST: unpacks Debian trixie's libgpiod 2.x (libgpiod-dev + libgpiod3) into DEST, so
# telecentred can be built and tested against libgpiod 2 on a bookworm machine:
#   cmake -DTELECENTRED_GPIOD_ROOT=DEST ...
# Afterwards DEST/usr/include/gpiod.h, DEST/usr/lib/<multiarch>/libgpiod.so.3 and
# DEST/usr/lib/<multiarch>/pkgconfig/libgpiod.pc exist.
#
# The packages cannot be installed on bookworm (libgpiod3 declares libstdc++6 >= 13 for its C++ part), but the
# C library needs only bookworm's libc, so they are downloaded and unpacked with dpkg -x. apt runs with a
# throwaway configuration of its own: a sources list naming trixie on the same Debian mirror this machine
# uses (read from /etc/apt/sources.list and sources.list.d, deb822 .sources included), its own lists and cache
# directories under DEST/.apt. Nothing on the system changes. Idempotent: a second run does nothing.
set -euo pipefail

SUITE=${TC_GPIOD2_SUITE:-trixie}
PACKAGES=(libgpiod-dev libgpiod3)

die() { echo "fetch-libgpiod2: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 DEST"
mkdir -p "$1"
DEST=$(cd "$1" && pwd)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null) ||
    die "cannot tell this machine's multiarch triplet"
[ -n "$MULTIARCH" ] || die "cannot tell this machine's multiarch triplet"
LIBDIR="$DEST/usr/lib/$MULTIARCH"
STAMP="$DEST/.apt/unpacked"

if [ -f "$STAMP" ] && [ -f "$DEST/usr/include/gpiod.h" ] && [ -e "$LIBDIR/libgpiod.so.3" ]; then
    exit 0
fi

# The Debian mirror this machine uses: the first URI of a main-archive entry (not the security archive).
# One "URI SUITES..." pair per entry, from one-line .list files and deb822 .sources stanzas alike.
debian_entries() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [options] URI SUITE COMPONENTS...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2, $3 }'
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # Stanzas separated by blank lines; only enabled "deb" stanzas count.
        awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no" && uris != "")
                                    { n = split(uris, u, " "); for (i = 1; i <= n; i++) print u[i], suites }
                                types = ""; uris = ""; suites = ""; enabled = "" }
             /^[ \t]*#/ { next }
             /^[ \t]*$/ { flush(); next }
             { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
               if (key == "types") types = $0; else if (key == "uris") uris = $0
               else if (key == "suites") suites = $0; else if (key == "enabled") enabled = tolower($0) }
             END { flush() }' "$f"
    done
}
MIRROR=""
while read -r uri suites; do
    case "$uri" in *debian-security*|*security.debian.org*) continue ;; esac
    case " $suites " in *-security*) continue ;; esac
    case "$uri" in */debian|*/debian/|*debian*) MIRROR=${uri%/}; break ;; esac
done < <(debian_entries)
[ -n "$MIRROR" ] || die "no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d"

KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$KEYRING" ] || die "$KEYRING is missing (package debian-archive-keyring)"

APTDIR="$DEST/.apt"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/debs"
cat > "$APTDIR/sources.list" <<SOURCES
deb [signed-by=$KEYRING] $MIRROR $SUITE main
SOURCES
: > "$APTDIR/preferences"
APT_OPTS=(
    -o "Dir::Etc::SourceList=$APTDIR/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::Etc::Preferences=$APTDIR/preferences"
    -o "Dir::Etc::PreferencesParts=/dev/null"
    -o "Dir::State::Lists=$APTDIR/lists"
    -o "Dir::Cache=$APTDIR/cache"
    -o "APT::Get::List-Cleanup=false"
    -o "Acquire::Languages=none"
    # Downloads land in a build tree the sandbox user may not be able to write.
    -o "APT::Sandbox::User=root"
)

need_download=false
for p in "${PACKAGES[@]}"; do
    compgen -G "$APTDIR/debs/${p}_*.deb" >/dev/null || need_download=true
done
if $need_download; then
    echo "==> fetch-libgpiod2: ${PACKAGES[*]} from $MIRROR $SUITE"
    apt-get -q "${APT_OPTS[@]}" update >"$APTDIR/update.log" 2>&1 ||
        { cat "$APTDIR/update.log" >&2; die "apt-get update for $SUITE failed"; }
    (cd "$APTDIR/debs" && apt-get -q "${APT_OPTS[@]}" download "${PACKAGES[@]}") ||
        die "apt-get download ${PACKAGES[*]} failed"
fi

for deb in "$APTDIR"/debs/*.deb; do
    dpkg -x "$deb" "$DEST"
done
[ -f "$DEST/usr/include/gpiod.h" ] || die "no usr/include/gpiod.h in the unpacked packages"
[ -e "$LIBDIR/libgpiod.so.3" ] || die "no usr/lib/$MULTIARCH/libgpiod.so.3 in the unpacked packages"
(cd "$APTDIR/debs" && printf "%s\n" *.deb) > "$STAMP"
echo "==> fetch-libgpiod2: libgpiod $(sed -n 's/^Version: *//p' "$LIBDIR/pkgconfig/libgpiod.pc") in $DEST"
