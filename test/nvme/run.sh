#!/usr/bin/env bash
# QEMU bench for the nvmed kernel driver (and, later, anything else that needs
# a guest with emulated NVMe).  Needs root.  Scratch files go to test/nvme/.work/.
#
#   test/nvme/run.sh [MODE] [OPTIONS]
#
# Modes
#   all     (default) test + crash
#   test    build, boot once: functional/errno tests, kill -9 leak test, unbind with
#           open files, data across nvme<->nvmed rebinding, insmod/rmmod loop, dmesg check
#   crash   boot a write+flush workload, kill QEMU mid-run, boot again, verify every
#           acknowledged write
#   bench   4 KiB random read/write IOPS and latency, QD 1 and 32: nvmed vs the kernel
#           path (psync, io_uring, io_uring IOPOLL) on the other controller
#   run     boot and run the --run commands (see below) in the guest
#   shell   boot to an interactive guest shell on the serial console
#
# Options
#   --run CMD            (run mode) a shell command to run in the guest; repeatable; each
#                        gives PASS/FAIL run.NN.  In the guest: $KBLK = kernel-path block
#                        device, $NVMED_DEV = /dev/nvmed0
#   --include SRC[:DST]  copy a file or directory into the initramfs (DST defaults to SRC)
#   --include-bin PATH   copy an executable and the shared libraries ldd lists
#   --no-bind            (run mode) leave both controllers on the stock nvme driver
#   --append ARGS        extra kernel command line
#   --mem MB             guest memory (default 1024)
#   --timeout S          hard limit per boot (default 240)
#   --secs S             (bench) seconds per point and backend (default 0.5)
#   --reps N             (bench) rounds; the backend order rotates each round (default 5)
#   --verbose            echo the whole serial log, not only the marker lines
#   --no-install         do not apt-get anything
#   --keep               keep the disk images (.work/disk-*.img) after a passing run
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$HERE/.work

MODE=all
if [[ $# -gt 0 && $1 != -* ]]; then MODE=$1; shift; fi
RUN_CMDS=()
INCLUDES=()
INCLUDE_BINS=()
BIND=1
APPEND_EXTRA=""
MEM=1024
BOOT_TIMEOUT=240
SECS=0.5
REPS=5
VERBOSE=0
INSTALL=1
KEEP=0
while [[ $# -gt 0 ]]; do
	case $1 in
	--run) RUN_CMDS+=("$2"); shift 2 ;;
	--include) INCLUDES+=("$2"); shift 2 ;;
	--include-bin) INCLUDE_BINS+=("$2"); shift 2 ;;
	--no-bind) BIND=0; shift ;;
	--append) APPEND_EXTRA="$2"; shift 2 ;;
	--mem) MEM=$2; shift 2 ;;
	--timeout) BOOT_TIMEOUT=$2; shift 2 ;;
	--secs) SECS=$2; shift 2 ;;
	--reps) REPS=$2; shift 2 ;;
	--verbose) VERBOSE=1; shift ;;
	--no-install) INSTALL=0; shift ;;
	--keep) KEEP=1; shift ;;
	-h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
case $MODE in all|test|crash|bench|run|shell) ;; *) echo "run.sh: unknown mode $MODE" >&2; exit 2 ;; esac

NPASS=0
NFAIL=0
FAILS=()
say() { printf '%s\n' "$*"; }
hpass() { say "PASS $1"; NPASS=$((NPASS + 1)); }
hfail() { say "FAIL $1${2:+: $2}"; NFAIL=$((NFAIL + 1)); FAILS+=("$1"); }
die() { say "FAIL harness: $*"; exit 1; }

# never leave a background QEMU behind (crash mode runs one in the background)
BG_QEMU=""
cleanup() {
	if [[ -n $BG_QEMU ]] && kill -0 "$BG_QEMU" 2>/dev/null; then
		kill -9 "$BG_QEMU" 2>/dev/null || true
		wait "$BG_QEMU" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) = 0 ]] || die "needs root (driver binding happens in the guest, but apt-get and images need root here)"
mkdir -p "$WORK"
T_START=$(date +%s)

# --------------------------------------------------------------------------
# host prerequisites

ensure_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[[ ${#missing[@]} = 0 ]] && return 0
	[[ $INSTALL = 1 ]] || die "missing packages: ${missing[*]} (and --no-install given)"
	say "INFO installing ${missing[*]}"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_pkgs qemu-system-x86 busybox-static linux-headers-amd64 gcc make libc6-dev
KVER=$(apt-cache depends linux-headers-amd64 | sed -n 's/^ *Depends: linux-headers-\([^ ]*\)$/\1/p' | head -n 1)
[[ -n $KVER ]] || die "cannot find the kernel version from 'apt-cache depends linux-headers-amd64'"
KDIR=/usr/src/linux-headers-$KVER
[[ -d $KDIR ]] || ensure_pkgs "linux-headers-$KVER"
BUSYBOX=$(command -v busybox)

KIMG=$WORK/kernel-$KVER
NVME_MODULES="crct10dif_common crct10dif_generic crc-t10dif crc64 crc64_rocksoft_generic crc64-rocksoft t10-pi nvme-core nvme"
if [[ ! -f $KIMG/boot/vmlinuz-$KVER ]]; then
	say "INFO downloading linux-image-$KVER"
	rm -rf "$KIMG" "$WORK"/linux-image-*.deb
	(cd "$WORK" && apt-get download -q "linux-image-$KVER" >/dev/null 2>&1) ||
		die "apt-get download linux-image-$KVER failed"
	mkdir -p "$KIMG"
	dpkg -x "$WORK"/linux-image-"$KVER"_*.deb "$KIMG"
	rm -f "$WORK"/linux-image-*.deb
	# keep only the kernel and the NVMe module chain (400 MB -> a few MB)
	find "$KIMG/lib/modules/$KVER/kernel" -type f | grep -v -E "/($(echo $NVME_MODULES | tr ' ' '|'))\.ko(\.xz|\.zst)?\$" | xargs rm -f
	find "$KIMG/lib/modules/$KVER" -depth -type d -empty -delete
	rm -rf "$KIMG/usr"
fi
KMODS=$KIMG/lib/modules/$KVER/kernel
say "INFO kernel $KVER, QEMU $(qemu-system-x86_64 --version | head -n 1 | awk '{print $4}')"

# --------------------------------------------------------------------------
# builds

build_kmod() {
	local b=$WORK/kmod-build log=$WORK/kmod-build.log
	rm -rf "$b"
	mkdir -p "$b"
	cp "$ROOT"/kmod/*.c "$ROOT"/kmod/*.h "$ROOT"/kmod/Makefile "$b"/
	if ! make -C "$KDIR" M="$b" modules W=1 >"$log" 2>&1; then
		cat "$log"
		hfail build.kmod "make failed"
		return 1
	fi
	if grep -E 'warning:|error:' "$log"; then
		hfail build.kmod-w1 "compiler warnings (W=1)"
	else
		hpass build.kmod-w1
	fi
}

build_test() {
	local log=$WORK/nvmed_test-build.log
	if ! gcc -O2 -g -static -Wall -Wextra -Wshadow -I"$ROOT/kmod" -o "$WORK/nvmed_test" \
		"$HERE/nvmed_test.c" "$HERE/nvmed_queue.c" >"$log" 2>&1; then
		cat "$log"
		hfail build.nvmed_test "gcc failed"
		return 1
	fi
	if grep -q 'warning:' "$log"; then
		cat "$log"
		hfail build.nvmed_test "warnings"
	else
		hpass build.nvmed_test
	fi
}

# copy one executable and its shared libraries (ldd) into the staging root
stage_bin() {
	local root=$1 bin=$2 lib
	mkdir -p "$root$(dirname "$bin")"
	cp -L "$bin" "$root$bin"
	for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do
		[[ -e $lib ]] || continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

build_initramfs() {
	local root=$WORK/initramfs m f i=0 src dst
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,modules,guest,run.d,usr/bin,usr/sbin}
	cp "$BUSYBOX" "$root/bin/busybox"
	for f in $("$BUSYBOX" --list); do
		[[ $f = busybox ]] || ln -sf busybox "$root/bin/$f"
	done
	for m in $NVME_MODULES; do
		f=$(find "$KMODS" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -n 1)
		[[ -n $f ]] || die "module $m not found in linux-image-$KVER"
		case $f in
		*.xz) xz -dc "$f" >"$root/modules/$m.ko" ;;
		*.zst) zstd -qdc "$f" >"$root/modules/$m.ko" ;;
		*) cp "$f" "$root/modules/$m.ko" ;;
		esac
	done
	cp "$WORK/kmod-build/nvmed.ko" "$root/modules/"
	cp "$WORK/nvmed_test" "$root/bin/"
	cp "$HERE/guest/init" "$root/init"
	cp "$HERE/guest/lib.sh" "$root/guest/"
	chmod 755 "$root/init"
	for src in "${INCLUDE_BINS[@]}"; do stage_bin "$root" "$src"; done
	for src in "${INCLUDES[@]}"; do
		dst=${src#*:}
		src=${src%%:*}
		[[ $dst = "$src" || -z $dst ]] && dst=$src
		[[ $dst = /* ]] || dst=/$dst
		mkdir -p "$root$(dirname "$dst")"
		cp -a "$src" "$root$dst"
	done
	for f in "${RUN_CMDS[@]}"; do
		i=$((i + 1))
		printf '#!/bin/sh\nset -e\n%s\n' "$f" >"$root/run.d/$(printf '%02d' $i).sh"
	done
	(cd "$root" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null) | gzip -1 >"$WORK/initrd.gz"
}

# --------------------------------------------------------------------------
# QEMU

DISK_K=$WORK/disk-kpath.img
DISK_N=$WORK/disk-nvmed.img

fresh_disks() {
	rm -f "$DISK_K" "$DISK_N"
	truncate -s 2G "$DISK_K"
	truncate -s 2G "$DISK_N"
}

qemu_args() {
	# $1 = kernel command line additions
	QEMU=(qemu-system-x86_64 -accel tcg -m "$MEM" -smp 1
		-nographic -nodefaults -no-reboot -serial stdio
		-kernel "$KIMG/boot/vmlinuz-$KVER" -initrd "$WORK/initrd.gz"
		-append "console=ttyS0 panic=-1 loglevel=4 $1 $APPEND_EXTRA"
		-drive "file=$DISK_K,if=none,id=nvk,format=raw,discard=unmap"
		-device "nvme,serial=kpath0,drive=nvk,logical_block_size=4096,physical_block_size=4096,addr=4"
		-drive "file=$DISK_N,if=none,id=nvd,format=raw,discard=unmap"
		-device "nvme,serial=nvmed0,drive=nvd,logical_block_size=4096,physical_block_size=4096,max_ioqpairs=12,mdts=10,addr=5")
}

# print the marker lines of a serial log (all of it with --verbose; in run mode
# everything the guest printed after its begin marker)
show_log() {
	if [[ $VERBOSE = 1 ]]; then
		tr -d '\r' <"$1"
	elif [[ $MODE = run ]]; then
		tr -d '\r' <"$1" | sed -n '/^NVMEDTEST-BEGIN/,$p'
	else
		tr -d '\r' <"$1" | grep -a -E '^(PASS|FAIL|INFO|BENCH|NVMEDTEST-)' || true
	fi
}

# boot MODE-ARGS LOG: runs QEMU to the end (or the timeout)
boot() {
	local args=$1 log=$2 rc=0
	qemu_args "$args"
	if [[ $VERBOSE = 1 ]]; then
		timeout -k 5 "$BOOT_TIMEOUT" "${QEMU[@]}" </dev/null 2>&1 | tee "$log" | tr -d '\r' || rc=$?
	else
		timeout -k 5 "$BOOT_TIMEOUT" "${QEMU[@]}" </dev/null >"$log" 2>&1 || rc=$?
		show_log "$log"
	fi
	if [[ $rc = 124 || $rc = 137 ]]; then
		hfail "boot.timeout" "QEMU killed after ${BOOT_TIMEOUT}s ($log)"
	fi
	return 0
}

# count guest PASS/FAIL lines; require the begin/end markers and the expected tests
score() {
	local log=$1 mode=$2 name
	shift 2
	local clean
	clean=$(tr -d '\r' <"$log")
	grep -a -q "^NVMEDTEST-BEGIN mode=$mode" <<<"$clean" || hfail "marker.$mode-begin" "guest did not start the $mode run (see $log)"
	grep -a -q "^NVMEDTEST-END mode=$mode" <<<"$clean" || hfail "marker.$mode-end" "guest did not finish the $mode run (see $log)"
	NPASS=$((NPASS + $(grep -a -c '^PASS ' <<<"$clean" || true)))
	while read -r name; do
		[[ -n $name ]] && { NFAIL=$((NFAIL + 1)); FAILS+=("$name"); }
	done < <(grep -a '^FAIL ' <<<"$clean" | awk '{print $2}' | tr -d ':')
	for name in "$@"; do
		grep -a -q "^PASS $name\$" <<<"$clean" || grep -a -q "^FAIL $name" <<<"$clean" ||
			hfail "$name" "missing from the guest output"
	done
	if grep -a -q -E 'Kernel panic|BUG:|Oops' <<<"$clean"; then
		hfail "guest.kernel" "panic/BUG/Oops on the console (see $log)"
	fi
}

TEST_EXPECT=(boot.nvme-stack bind.driver-override bind.stock-driver-kept nvmed.info nvmed.errno
	nvmed.queue-limits nvmed.rw-basic nvmed.prp nvmed.qd32 nvmed.multiqueue nvmed.flush nvmed.dsm
	nvmed.queue-full nvmed.errors nvmed.teardown kill9.idle kill9.maxq unbind-open.holder-sigbus
	unbind-open.idle cross.nvmed-to-kernel cross.kernel-to-nvmed module.reload-x6 nvmed.strict-doorbells
	dmesg.clean)

run_test() {
	say "== test: functional, errno, kill -9, unbind, rebind, reload (backend nvmed, kernel $KVER)"
	fresh_disks
	boot "nvmedtest.mode=test" "$WORK/serial-test.log"
	score "$WORK/serial-test.log" test "${TEST_EXPECT[@]}"
}

# a file without its last line if that line is not terminated (cut by a kill)
complete_lines() {
	if [[ -s $1 && $(tail -c 1 "$1" | od -An -tx1 | tr -d ' ') != 0a ]]; then
		head -n -1 "$1"
	else
		cat "$1"
	fi
}

# highest acknowledged sequence number in a crash-write log (0 if none)
last_ack() {
	complete_lines "$1" | tr -d '\r' | awk '/^ACK [0-9]+$/ { a = $2 } END { print a + 0 }'
}

run_crash() {
	local log=$WORK/serial-crash-write.log pid acked=0 t0 killed=0 want=3000
	say "== crash: kill QEMU during a write+flush workload, verify acknowledged writes after reboot"
	fresh_disks
	qemu_args "nvmedtest.mode=crash-write"
	"${QEMU[@]}" </dev/null >"$log" 2>&1 &
	pid=$!
	BG_QEMU=$pid
	t0=$(date +%s)
	while kill -0 "$pid" 2>/dev/null; do
		# only complete lines count: the last one may be cut
		acked=$(last_ack "$log")
		if ((acked >= want)) || (($(date +%s) - t0 > 90)); then
			kill -9 "$pid"
			killed=1
			break
		fi
		sleep 0.2
	done
	wait "$pid" 2>/dev/null || true
	BG_QEMU=""
	# recompute from complete lines after the kill
	acked=$(last_ack "$log")
	show_log "$log" | grep -v '^ACK' || true
	say "INFO crash: QEMU killed with SIGKILL: $killed; acknowledged writes: seq 0..$acked ($(grep -a -c '^ACK' "$log" || true) ACK lines)"
	if [[ $killed != 1 ]] || ! grep -a -q '^CRASH-START' "$log"; then
		hfail crash.kill "workload did not run until the kill (see $log)"
		return
	fi
	if ((acked <= 0)); then
		hfail crash.acked "no acknowledged writes before the kill (see $log)"
		return
	fi
	hpass crash.kill-mid-write
	boot "nvmedtest.mode=crash-verify nvmedtest.acked=$acked" "$WORK/serial-crash-verify.log"
	score "$WORK/serial-crash-verify.log" crash-verify crash.crash-verify
}

run_bench() {
	say "== bench: 4 KiB random I/O, nvmed vs kernel path (TCG: compare ratios, not absolutes)"
	fresh_disks
	boot "nvmedtest.mode=bench nvmedtest.secs=$SECS nvmedtest.reps=$REPS" "$WORK/serial-bench.log"
	score "$WORK/serial-bench.log" bench
	tr -d '\r' <"$WORK/serial-bench.log" | grep -a '^BENCH' >"$WORK/bench.txt" || true
	bench_summary "$WORK/bench.txt"
}

# per round, ratio nvmed / kernel path for each op and depth; report the median and range
bench_summary() {
	awk '
	/^BENCH-REP/ { rep = $2; nrep = rep; next }
	{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	  k = f["op"] " qd=" f["qd"]; iops[rep, f["backend"], k] = f["iops"]; lat[rep, f["backend"], k] = f["lat_avg_us"] }
	function median(a, n,   i, j, t) {
	  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
	  print "SUMMARY medians over " nrep " rounds; ratio = nvmed IOPS / other IOPS per round, median [min-max]; >1 means nvmed is faster"
	  n = split("randwrite qd=1,randwrite qd=32,randread qd=1,randread qd=32", order, ",")
	  split("kernel-psync kernel-uring kernel-uring-poll", others, " ")
	  for (j = 1; j <= n; j++) {
	    k = order[j]; c = 0
	    for (r = 1; r <= nrep; r++) if ((r, "nvmed", k) in iops) { c++; ni[c] = iops[r, "nvmed", k]; nl[c] = lat[r, "nvmed", k] }
	    if (!c) continue
	    line = sprintf("SUMMARY %-14s nvmed %6d IOPS %7.1f us", k, median(ni, c), median(nl, c))
	    for (o = 1; o <= 3; o++) {
	      b = others[o]; m = 0; lo = 1e9; hi = 0
	      for (r = 1; r <= nrep; r++) if ((r, b, k) in iops && iops[r, b, k] > 0 && (r, "nvmed", k) in iops) {
	        m++; x[m] = iops[r, "nvmed", k] / iops[r, b, k]; if (x[m] < lo) lo = x[m]; if (x[m] > hi) hi = x[m] }
	      if (m) line = line sprintf(" | vs %s x%.2f [%.2f-%.2f]", b, median(x, m), lo, hi)
	    }
	    print line
	  }
	}' "$1"
}

run_run() {
	say "== run: ${#RUN_CMDS[@]} command(s) in the guest"
	fresh_disks
	boot "nvmedtest.mode=run nvmedtest.bind=$BIND" "$WORK/serial-run.log"
	local names=() i
	for ((i = 1; i <= ${#RUN_CMDS[@]}; i++)); do names+=("run.$(printf '%02d' $i)"); done
	score "$WORK/serial-run.log" run "${names[@]}"
}

run_shell() {
	fresh_disks
	qemu_args "nvmedtest.mode=shell"
	exec "${QEMU[@]}"
}

# --------------------------------------------------------------------------

build_kmod || { say "RESULT FAIL (build)"; exit 1; }
build_test || { say "RESULT FAIL (build)"; exit 1; }
build_initramfs
say "INFO initramfs $(du -h "$WORK/initrd.gz" | cut -f1), built in $(($(date +%s) - T_START)) s"

case $MODE in
all) run_test; run_crash ;;
test) run_test ;;
crash) run_crash ;;
bench) run_bench ;;
run) run_run ;;
shell) run_shell ;;
esac

# the sparse images fill up to a GiB or two during a run: drop them unless asked or failed
[[ $KEEP = 1 || $NFAIL != 0 ]] || rm -f "$DISK_K" "$DISK_N"
say "RESULT $([[ $NFAIL = 0 ]] && echo PASS || echo FAIL): $NPASS passed, $NFAIL failed${FAILS[*]:+ (${FAILS[*]})}, $(($(date +%s) - T_START)) s"
[[ $NFAIL = 0 ]]
