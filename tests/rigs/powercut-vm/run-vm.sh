#!/usr/bin/env bash
# run-vm.sh KERNELDIR INITRAMFS DISK RESULTS CONSOLE: boots KERNELDIR/vmlinux with the initramfs under qemu's
# software emulation, DISK (a raw ext4 image) as a virtio disk, the guest's /dev/ttyS1 written to RESULTS
# and its console to CONSOLE. It execs qemu: the caller's $! is qemu itself, which the caller kills with
# SIGKILL to cut the power. No timeout here: the caller bounds the run.
#
# cache=none (TC_POWERCUT_CACHE): qemu opens DISK with O_DIRECT and tells the guest the disk has a volatile
# write cache; the guest's flushes (ext4's journal commits, SQLite's fsync: REQ_PREFLUSH/FUA) become
# fdatasync on DISK. So what the guest has not written and flushed is in the guest's RAM only (its page
# cache) and dies with qemu; nothing is held in qemu's own buffers. cache=unsafe (flushes ignored) or
# writeback would be just as durable against a SIGKILL of qemu (the host's page cache survives it) but
# would not exercise the flush path; directsync would hide the write cache from the guest.
set -euo pipefail

[ $# -eq 5 ] || { echo "usage: $0 KERNELDIR INITRAMFS DISK RESULTS CONSOLE" >&2; exit 2; }
kdir=$1 initrd=$2 disk=$3 results=$4 console=$5
rm -f "$results" "$console"
exec qemu-system-x86_64 \
    -kernel "$kdir/vmlinux" -initrd "$initrd" \
    -append "console=ttyS0 quiet panic=-1" \
    -m 256M -nographic -no-reboot -net none -monitor none \
    -drive "file=$disk,format=raw,if=virtio,cache=${TC_POWERCUT_CACHE:-none}" \
    -serial "file:$console" -serial "file:$results" </dev/null
