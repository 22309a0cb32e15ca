#!/usr/bin/env bash
# A real power cut: telecentred in a qemu VM with its database on an ext4 file system on a virtio disk (a raw
# image on the host), fed taps; the host kills qemu with SIGKILL at a random moment (no flush, no unmount:
# the guest's page cache and anything it had not flushed are lost), checks the image, and boots the next
# run on the same image. docs/reliability.md ("A real power cut (qemu)") says what this proves and what it
# does not; the rig is tests/rigs/powercut-vm/ (and the gpio-sim VM's kernel and initramfs builder).
#
# After each cut, on a copy of the image (the original goes on to the next boot, which replays its journal
# itself, as a real boot would):
#   - e2fsck -fp (replays the ext4 journal; exit 0 or 1: nothing or something fixed, reported), then
#     e2fsck -fn must find nothing;
#   - the database (and its WAL) copied out with debugfs: PRAGMA integrity_check is "ok";
#   - every tap acknowledged on the guest's serial port before the cut (the daemon's "access seq=N" log
#     line, written after the commit) is an access_log row, in this cut and every earlier one;
#   - the next boot's daemon starts on the image (checked by the next cut, or the final boot).
# TC_CUTS (default 10): the number of cuts. TC_SEED: the random seed (printed, to replay a run).
# TC_POWERCUT_CACHE: qemu's cache mode for the disk (default none; see tests/rigs/powercut-vm/run-vm.sh).
# TC_POWERCUT_DEBUG=DIR: each cut's serial output, the console and e2fsck's output are copied there.
# Exit 77 (skipped) on a host that is not x86_64, and in the sanitizer build (TC_SANITIZE=ON, or an ASan
# binary): the guest would need the sanitizer runtimes, and the point here is the file system, not memory.
set -euo pipefail

: "${TELECENTRED:?set TELECENTRED to the telecentred binary}"
: "${TELECENTRECTL:?set TELECENTRECTL to the telecentrectl binary}"
: "${TC_SOURCE_DIR:?set TC_SOURCE_DIR to the source tree}"

skip() { echo "SKIP: powercut_vm: $*"; exit 77; }
[ "$(uname -m)" = x86_64 ] || skip "the VM boots Debian's amd64 kernel under qemu-system-x86_64; this host is $(uname -m)"
case "${TC_SANITIZE:-OFF}" in
    ON|on|1|TRUE|true|YES|yes) skip "sanitizer build (the power cut tests the file system, not memory)" ;;
esac
ldd "$TELECENTRED" 2>/dev/null | grep -q 'libasan\|libubsan' && skip "sanitizer build of $TELECENTRED"

. "$(dirname "$0")/../lib/daemon-test.sh"
for tool in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static cpio:cpio apt-get:apt dpkg-deb:dpkg \
            flock:util-linux xz:xz-utils make:make cc:gcc mkfs.ext4:e2fsprogs e2fsck:e2fsprogs \
            debugfs:e2fsprogs sqlite3:sqlite3 modinfo:kmod; do
    command -v "${tool%%:*}" >/dev/null || fail "powercut_vm: ${tool%%:*} not found (package ${tool#*:})"
done
setup_work powercut-vm

cuts=${TC_CUTS:-10}
seed=${TC_SEED:-$RANDOM}
RANDOM=$seed
build=$(cd "$(dirname "$TELECENTRED")" && pwd)
cache=${TC_GPIOSIM_CACHE:-$build/gpiosim-vm-cache}
downloads=${TC_GPIOSIM_DOWNLOADS:-$cache}
rig=$TC_SOURCE_DIR/tests/rigs/powercut-vm
boot_limit=${TC_POWERCUT_BOOT_S:-120}   # bound on a boot to the daemon's "started" (emulated, shared host)
mkdir -p "$cache"
t_start=$SECONDS
echo "==> powercut_vm: $cuts cuts, seed $seed"

# ---- kernel (the gpio-sim VM's, cached), modules, initramfs ----
bash "$TC_SOURCE_DIR/tests/rigs/gpiosim-vm/build-kernel.sh" "$downloads" || fail "powercut_vm: no kernel"
kdir=$downloads/kernel
mods=$cache/powercut-modules
bash "$rig/build-modules.sh" "$downloads" "$mods" || fail "powercut_vm: could not take the modules from the .deb"
initrd=$work/initramfs.cpio
bash "$TC_SOURCE_DIR/tests/rigs/gpiosim-vm/build-initramfs.sh" "$initrd" "$kdir" powercut "$TELECENTRED" ||
    fail "powercut_vm: building the initramfs failed"
# A second cpio archive after the first (the kernel unpacks them in turn, a later file replacing an
# earlier one): this rig's /init, the modules, the daemon's configuration.
over=$work/overlay
mkdir -p "$over/lib/modules/powercut" "$over/etc"
cp "$rig/init" "$over/init"
chmod 755 "$over/init"
cp "$mods"/*.ko "$mods/order" "$over/lib/modules/powercut/"
# site_conf DBPATH FIFO
site_conf() {
    cat <<CONF
[site]
id = pc-site
name = Power-cut VM
timezone = Europe/Paris

[database]
path = $1

[hours]
mon = 00:00-24:00
tue = 00:00-24:00
wed = 00:00-24:00
thu = 00:00-24:00
fri = 00:00-24:00
sat = 00:00-24:00
sun = 00:00-24:00

[policy]
max_reader_denials = 10000

[door.entrance]
relay = GPIO17
unlock_ms = 100

[reader.entrance]
driver = sim
fifo = $2
door = entrance
direction = in

[gpio]
driver = sim
fifo = /tmp/gpio.fifo
CONF
}
site_conf /data/db/site.db /tmp/reader.fifo >"$over/etc/telecentred.conf"
(cd "$over" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner 0:0 --quiet) >>"$initrd"

# ---- the disk: ext4 made on the host, the database created on it by telecentrectl ----
mkdir -p "$work/seed/db"
site_conf "$work/seed/db/site.db" "$work/unused.fifo" >"$conf"
"$TELECENTRECTL" -c "$conf" init >/dev/null
for i in 0 1 2; do
    "$TELECENTRECTL" -c "$conf" member add "k-$i" --name "Keyholder $i" --role keyholder >/dev/null
    "$TELECENTRECTL" -c "$conf" badge add "04B0000$i" --member "k-$i" >/dev/null
done
disk=$work/disk.img
truncate -s 32M "$disk"
mkfs.ext4 -q -F -b 4096 -L pcdata -d "$work/seed" "$disk" || fail "powercut_vm: mkfs.ext4 failed"
echo "==> powercut_vm: ready after $((SECONDS - t_start)) s (kernel, modules, initramfs, disk)"

# ---- the cuts ----
results=$work/results.txt console=$work/console.txt
acked=$work/acked.txt
: >"$acked"
dump_files+=("$results" "$console")
qemu_pid=""
# has PATTERN: the guest's serial port shows PATTERN
has() { grep -q -- "$1" "$results" 2>/dev/null; }
# wait_guest PATTERN: 0 once the serial port shows PATTERN; fails the test if qemu ends or the bound passes
wait_guest() {
    local deadline=$((SECONDS + boot_limit))
    until has "$1"; do
        has '^FAIL ' && fail "powercut_vm: cut $cut: the guest: $(grep -A 20 '^FAIL ' "$results")"
        kill -0 "$qemu_pid" 2>/dev/null || fail "powercut_vm: cut $cut: qemu ended before '$1'"
        ((SECONDS < deadline)) || fail "powercut_vm: cut $cut: no '$1' from the guest within ${boot_limit} s"
        sleep 0.05
    done
}
# boot: starts qemu on the image
boot() {
    rm -f "$results" "$console"     # before qemu starts: a wait must not see the last boot's lines
    bash "$rig/run-vm.sh" "$kdir" "$initrd" "$disk" "$results" "$console" &
    qemu_pid=$!
    other_pids=("$qemu_pid")        # cleanup_work kills it if the test ends early
}
total_found=0 replays=0 fixes=0 early=0
for ((cut = 1; cut <= cuts; cut++)); do
    boot
    # One cut in five lands 0 to 1 s after the guest's first line (module loading, the mount and its
    # journal replay, the daemon's start, its first taps); the others while taps are being committed,
    # 0.2 to 3.2 s after the daemon started. RANDOM is read in this shell, never inside $(...): a
    # subshell's draws would not advance the seeded sequence (TC_SEED replays a run).
    if ((RANDOM % 5 == 0)); then
        wait_guest '^BOOTED '
        ms=$((RANDOM % 1000))
        early=$((early + 1))
        when=" (soon after power-on)"
    else
        wait_guest 'started: site pc-site'
        when=""
        ms=$((200 + RANDOM % 3000))
    fi
    delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
    sleep "$delay"
    kill -KILL "$qemu_pid" 2>/dev/null ||   # the power cut
        fail "powercut_vm: cut $cut: qemu had ended by itself before the cut: $(grep '^FAIL' "$results")"
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid="" other_pids=()
    # A line is an ack only if it is complete: a last line without its newline is dropped (the cut
    # may fall in the middle of its transmission; its seq could be short of digits).
    tr -d '\r' <"$results" >"$work/serial-$cut.txt"
    if [ -s "$work/serial-$cut.txt" ] && [ "$(tail -c 1 "$work/serial-$cut.txt" | od -An -c | tr -d ' ')" != '\n' ]; then
        sed -i '$d' "$work/serial-$cut.txt"
    fi
    sed -n 's/.*access seq=\([0-9][0-9]*\) door=entrance .*/\1/p' "$work/serial-$cut.txt" >"$work/acked-$cut.txt"
    n_acked=$(wc -l <"$work/acked-$cut.txt")
    cat "$work/acked-$cut.txt" >>"$acked"
    sort -n -u -o "$acked" "$acked"
    [ -n "${TC_POWERCUT_DEBUG:-}" ] && cp "$work/serial-$cut.txt" "$console" "$TC_POWERCUT_DEBUG/"

    # ---- the image, as the cut left it: a copy, its journal replayed by e2fsck as a boot would ----
    cp --sparse=always "$disk" "$work/check.img"
    rc=0
    e2fsck -fp "$work/check.img" >"$work/e2fsck-$cut.log" 2>&1 || rc=$?
    ((rc <= 1)) || fail "powercut_vm: cut $cut: e2fsck -fp exited $rc: $(cat "$work/e2fsck-$cut.log")"
    grep -qi 'recovering journal' "$work/e2fsck-$cut.log" && replays=$((replays + 1))
    # anything e2fsck did beyond the journal replay (its summary line aside)
    if grep -vi -e 'recovering journal' -e 'files (.*non-contiguous)' "$work/e2fsck-$cut.log" | grep -q .; then
        fixes=$((fixes + 1))
        echo "cut $cut: e2fsck -fp: $(tr '\n' ';' <"$work/e2fsck-$cut.log")"
    fi
    [ -n "${TC_POWERCUT_DEBUG:-}" ] && cp "$work/e2fsck-$cut.log" "$TC_POWERCUT_DEBUG/"
    e2fsck -fn "$work/check.img" >"$work/e2fsck-n-$cut.log" 2>&1 ||
        fail "powercut_vm: cut $cut: e2fsck -fn finds errors after the replay: $(cat "$work/e2fsck-n-$cut.log")"
    rm -rf "$work/dump"
    mkdir "$work/dump"
    debugfs -R "rdump /db $work/dump" "$work/check.img" >/dev/null 2>&1
    [ -f "$work/dump/db/site.db" ] || fail "powercut_vm: cut $cut: no /db/site.db on the image"
    ic=$(sqlite3 "$work/dump/db/site.db" 'PRAGMA integrity_check' 2>&1)
    [ "$ic" = ok ] || fail "powercut_vm: cut $cut: PRAGMA integrity_check: $ic"
    sqlite3 "$work/dump/db/site.db" 'SELECT seq FROM access_log ORDER BY seq' >"$work/found.txt"
    missing=$(comm -23 <(sort "$acked") <(sort "$work/found.txt") | sort -n | tr '\n' ' ')
    total_found=$(wc -l <"$work/found.txt")
    echo "cut $cut: after ${delay} s$when; acked this boot $n_acked," \
         "acked in all $(wc -l <"$acked"), rows on the image $total_found; e2fsck -p exit $rc"
    [ -z "$missing" ] ||
        fail "powercut_vm: cut $cut: acknowledged taps missing from the database after the cut: seq ${missing}(seed $seed)"
done

# ---- a last boot on the image: the daemon starts and commits taps ----
cut=final
boot
wait_guest 'started: site pc-site'
wait_guest 'access seq='
kill -KILL "$qemu_pid"
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=""

echo "powercut_vm: $cuts power cuts ($early soon after power-on), $(wc -l <"$acked") taps acknowledged," \
     "all found ($total_found rows on the image); journal replayed by e2fsck after $replays cuts," \
     "e2fsck fixed more than that after $fixes; $((SECONDS - t_start)) s (seed $seed, cache=${TC_POWERCUT_CACHE:-none})"
pass powercut_vm
