#!/usr/bin/env bash
# run-vm.sh KERNELDIR INITRAMFS RESULTS CONSOLE TIMEOUT_S: boots KERNELDIR/vmlinux (through PVH) with the
# initramfs under qemu's software emulation (KVM does not work inside the build machines), bounded by
# TIMEOUT_S. The guest's results (its /dev/ttyS1) go to RESULTS, its console (ttyS0) to CONSOLE.
# preempt=full: the guest kernel preempts the daemon, even inside a system call, as soon as the
# SCHED_FIFO sampling probe wakes, so that its samples are not late (Debian's default is voluntary).
# Exit status: qemu's (0 after the guest's poweroff), or 124 when the timeout expired.
set -euo pipefail

[ $# -eq 5 ] || { echo "usage: $0 KERNELDIR INITRAMFS RESULTS CONSOLE TIMEOUT_S" >&2; exit 2; }
kdir=$1 initrd=$2 results=$3 console=$4 limit=$5
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 not found (package qemu-system-x86)" >&2; exit 2; }
rm -f "$results" "$console"
# -kernel with an ELF vmlinux: qemu enters it through its PVH note (4-5 s to userspace instead of 8-10 s).
exec timeout -k 5 "$limit" qemu-system-x86_64 \
    -kernel "$kdir/vmlinux" -initrd "$initrd" \
    -append "console=ttyS0 quiet panic=-1 preempt=full" \
    -m 256M -nographic -no-reboot -net none -monitor none \
    -serial "file:$console" -serial "file:$results" </dev/null
