#!/usr/bin/env bash
# QEMU bench for the nvmed kernel driver (and, later, anything else that needs
# a guest with emulated NVMe).  Needs root.  Scratch files go to test/nvme/.work/.
#
#   test/nvme/run.sh [MODE] [OPTIONS]
#
# Modes
#   all       (default) test + backends + crash
#   test      build, boot once: functional/errno tests, kill -9 leak test, unbind with
#             open files, data across nvme<->nvmed rebinding, insmod/rmmod loop, dmesg check
#   backends  boot once with Node: for each native backend (nvmed, uring-cmd, uring, psync)
#             the native library's tests (ffs_test), the device suite, an engine smoke
#             test and the engine's test files (ENGINE_FILES below) through the TypeScript
#             layers (ava); kill -9 of a library user on nvmed
#   crash     boot five write+flush workloads at once (the driver's raw queue, and the
#             library on every backend), kill QEMU mid-run, boot again, verify every
#             acknowledged write of each
#   bench     4 KiB random read/write IOPS and latency, QD 1 and 32, per backend through
#             the native library and through the TypeScript device layer, with the raw
#             nvmed queue and io_uring IOPOLL as references; writes .work/bench-nvme.md
#   bench-raw the driver-only bench: nvmed's raw queue vs the kernel path (nvmed_test)
#   run       boot and run the --run commands (see below) in the guest
#   shell     boot to an interactive guest shell on the serial console
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
#   --timeout S          hard limit per boot (default 240; backends 1500; bench modes 900)
#   --secs S             (bench) seconds per point and backend (default 0.5)
#   --reps N             (bench) rounds; the backend order rotates each round (default 3;
#                        bench-raw 5)
#   --backends 'B ...'   (backends) only these backends (default: nvmed uring-cmd uring psync)
#   --no-node            (backends, bench) skip everything that needs Node in the guest
#   --engine-files 'F:N ...'  (backends) the engine test files to run per backend, each with
#                        the least number of its tests that must pass (default: ENGINE_FILES);
#                        '' runs none
#   --test-scale S       (backends) FORESTFS_TEST_SCALE for the engine test files: the share
#                        of their operations the long randomized tests run (default 0.05)
#   --env 'A=1,B=2'      (backends) environment for the guest's tests, e.g. FFS_NVMED_SPIN_US=-1
#   --smp N              guest CPUs (default 1)
#   --pin / --no-pin     run QEMU on one host CPU (default: pinned, except the bench modes).
#                        When QEMU's vCPU thread and its device-emulation thread run at the
#                        same time on two host CPUs, the emulated controller on the stock nvme
#                        driver (shadow doorbells) sometimes stops fetching commands: I/O
#                        timeouts, controller resets, hung tests. nvmed's queues never stalled.
#   --verbose            echo the whole serial log, not only the marker lines
#   --no-install         do not apt-get anything
#   --keep               keep the disk images (.work/disk-*.img) after a passing run
#
# Environment (experiments): NVME_KPATH_OPTS and NVME_KPATH_DRIVE_OPTS append options to
# the kernel-path controller's -device and -drive (e.g. ioeventfd=on, aio=io_uring).
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
BOOT_TIMEOUT=
SECS=0.5
REPS=""
SMP=1
PIN=""
NODE=1
BACKENDS_SEL=""
GUEST_ENV=""
# The engine's test files run per backend, test images on the backend's device
# (test/helpers/test-image.ts), with the least number of tests of each that must pass there
# (the rest are memory-only and skip; see README.md).
ENGINE_FILES="engine-model:1 engine-mvcc:1 engine-iterators:2 engine-history:3 engine-compact:3 engine-txn:5 engine-errors:3"
# TCG runs the engine 10-30x slower than the host: the long randomized tests run a
# twentieth of their operations there (npm test runs them in full), to keep the whole
# npm run test:nvme near 12 minutes on two host CPUs.
TEST_SCALE=0.05
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
	--smp) SMP=$2; shift 2 ;;
	--pin) PIN=1; shift ;;
	--no-pin) PIN=0; shift ;;
	--no-node) NODE=0; shift ;;
	--env) GUEST_ENV=$2; shift 2 ;;
	--backends) BACKENDS_SEL=$2; shift 2 ;;
	--engine-files) ENGINE_FILES=$2; shift 2 ;;
	--test-scale) TEST_SCALE=$2; shift 2 ;;
	--verbose) VERBOSE=1; shift ;;
	--no-install) INSTALL=0; shift ;;
	--keep) KEEP=1; shift ;;
	-h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
case $MODE in all|test|backends|crash|bench|bench-raw|run|shell) ;; *) echo "run.sh: unknown mode $MODE" >&2; exit 2 ;; esac
[[ $MODE = backends || $MODE = bench || $MODE = all ]] || NODE=0
[[ -n $REPS ]] || { [[ $MODE = bench-raw ]] && REPS=5 || REPS=3; }
BACKENDS_TIMEOUT=${BOOT_TIMEOUT:-1500}
[[ -n $BOOT_TIMEOUT ]] || { [[ $MODE = bench* ]] && BOOT_TIMEOUT=900 || BOOT_TIMEOUT=240; }
[[ -n $PIN ]] || { [[ $MODE = bench* || $MODE = shell ]] && PIN=0 || PIN=1; }
PIN_CMD=()
if [[ $PIN = 1 ]]; then
	command -v taskset >/dev/null || { echo "run.sh: --pin needs taskset (util-linux)" >&2; exit 2; }
	PIN_CMD=(taskset -c "$(($(nproc) - 1))")
fi

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
say "INFO kernel $KVER, QEMU $(qemu-system-x86_64 --version | head -n 1 | awk '{print $4}')$([[ $PIN = 1 ]] && echo ", pinned to host CPU $(($(nproc) - 1))")"

# --------------------------------------------------------------------------
# builds

build_kmod() {
	local b=$WORK/kmod-build log=$WORK/kmod-build.log
	rm -rf "$b"
	mkdir -p "$b"
	cp "$ROOT"/kmod/*.c "$ROOT"/kmod/Makefile "$ROOT"/native/nvmed_uapi.h "$b"/
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

# the test programs link the native library's sources statically (the queue layer
# nvmed_queue.c and the NVMe definitions are the library's)
build_test() {
	local log=$WORK/nvmed_test-build.log srcs
	if ! gcc -O2 -g -static -Wall -Wextra -Wshadow -I"$ROOT/native" -o "$WORK/nvmed_test" \
		"$HERE/nvmed_test.c" "$ROOT/native/nvmed_queue.c" "$ROOT/native/nvme_status.c" >"$log" 2>&1; then
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
	log=$WORK/ffs_test-build.log
	srcs=$(make -C "$ROOT/native" --no-print-directory -s -f Makefile -f - print-srcs <<<'print-srcs: ; @echo $(SRCS)')
	if ! (cd "$ROOT/native" && gcc -O2 -g -static -pthread -Wall -Wextra -Wshadow -Werror -I. \
		-o "$WORK/ffs_test" "$HERE/ffs_test.c" $srcs) >"$log" 2>&1; then
		cat "$log"
		hfail build.ffs_test "gcc failed"
		return 1
	fi
	hpass build.ffs_test
}

# the native library for Node (-Wall -Wextra -Werror, as npm run build)
build_native() {
	local log=$WORK/native-build.log
	if ! (cd "$ROOT" && node scripts/build-native.mjs --strict) >"$log" 2>&1; then
		cat "$log"
		hfail build.native "scripts/build-native.mjs --strict failed"
		return 1
	fi
	hpass build.native
}

# the project as the guest's Node tests need it: sources, tests, the built library and
# node_modules without the packages only the host benchmarks and the compiler use
stage_project() {
	local dst=$1/project
	mkdir -p "$dst"
	(cd "$ROOT" && tar cf - --exclude='node_modules/better-sqlite3' --exclude='node_modules/@typescript' \
		--exclude='node_modules/@lmdb' --exclude='node_modules/lmdb' --exclude='node_modules/classic-level' \
		--exclude='node_modules/typescript' --exclude='node_modules/msgpackr' --exclude='node_modules/abstract-level' \
		--exclude='node_modules/@types' --exclude='node_modules/.cache' --exclude='test/nvme/.work' \
		package.json tsconfig.json src test bench/nvme-ts.ts native/build/libforestfs.so node_modules) |
		(cd "$dst" && tar xf -)
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

# build_initramfs OUT [node]: the base image, plus Node and the project with 'node'
build_initramfs() {
	local out=$1 with_node=${2:-} root=$WORK/initramfs m f i=0 src dst
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
	cp "$WORK/nvmed_test" "$WORK/ffs_test" "$root/bin/"
	if [[ $with_node = node ]]; then
		stage_bin "$root" "$(command -v node)"
		ln -sf "$(command -v node)" "$root/bin/node" 2>/dev/null || true
		stage_project "$root"
	fi
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
	(cd "$root" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null) | gzip -1 >"$out"
	rm -rf "$root"
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

INITRD=$WORK/initrd.gz
INITRD_NODE=$WORK/initrd-node.gz

qemu_args() {
	# $1 = kernel command line additions, $2 = initramfs (default: the base one)
	local initrd=${2:-$INITRD} mem=$MEM
	[[ $initrd = "$INITRD_NODE" && $MEM -lt 2048 ]] && mem=2048
	QEMU=("${PIN_CMD[@]}" qemu-system-x86_64 -accel tcg -m "$mem" -smp "$SMP"
		-nographic -nodefaults -no-reboot -serial stdio
		-kernel "$KIMG/boot/vmlinuz-$KVER" -initrd "$initrd"
		-append "console=ttyS0 panic=-1 loglevel=4 $1 $APPEND_EXTRA"
		-drive "file=$DISK_K,if=none,id=nvk,format=raw,discard=unmap${NVME_KPATH_DRIVE_OPTS:+,$NVME_KPATH_DRIVE_OPTS}"
		-device "nvme,serial=kpath0,drive=nvk,logical_block_size=4096,physical_block_size=4096,addr=4${NVME_KPATH_OPTS:+,$NVME_KPATH_OPTS}"
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
		tr -d '\r' <"$1" | grep -a -E '^(PASS|FAIL|INFO|BENCH|NVMEDTEST-|CRASH-)' || true
	fi
}

# boot MODE-ARGS LOG [INITRD [TIMEOUT]]: runs QEMU to the end (or the timeout)
boot() {
	local args=$1 log=$2 rc=0 limit=${4:-$BOOT_TIMEOUT}
	qemu_args "$args" "${3:-}"
	if [[ $VERBOSE = 1 ]]; then
		timeout -k 5 "$limit" "${QEMU[@]}" </dev/null 2>&1 | tee "$log" | tr -d '\r' || rc=$?
	else
		timeout -k 5 "$limit" "${QEMU[@]}" </dev/null >"$log" 2>&1 || rc=$?
		show_log "$log"
	fi
	if [[ $rc = 124 || $rc = 137 ]]; then
		hfail "boot.timeout" "QEMU killed after ${limit}s ($log)"
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

# highest acknowledged sequence of one library backend ("ACKB <backend> <seq>"), -1 if none
last_ackb() {
	complete_lines "$1" | tr -d '\r' | awk -v b="$2" '$1 == "ACKB" && $2 == b && $3 ~ /^[0-9]+$/ { a = $3 } END { print (a == "" ? -1 : a) }'
}

CRASH_BACKENDS="nvmed uring-cmd uring psync"

run_crash() {
	local log=$WORK/serial-crash-write.log pid acked=0 t0 killed=0 want=3000 wantb=1000 b a ready args
	say "== crash: kill QEMU during five write+flush workloads (raw nvmed queue; library on nvmed, uring-cmd, uring, psync), verify after reboot"
	fresh_disks
	qemu_args "nvmedtest.mode=crash-write-all $KPATH_TIMEOUT=10"
	"${QEMU[@]}" </dev/null >"$log" 2>&1 &
	pid=$!
	BG_QEMU=$pid
	t0=$(date +%s)
	while kill -0 "$pid" 2>/dev/null; do
		# only complete lines count: the last one may be cut
		ready=1
		(($(last_ack "$log") >= want)) || ready=0
		for b in $CRASH_BACKENDS; do (($(last_ackb "$log" "$b") >= wantb)) || ready=0; done
		if ((ready)) || (($(date +%s) - t0 > 120)); then
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
	say "INFO crash: QEMU killed with SIGKILL after $(($(date +%s) - t0)) s: $killed; raw nvmed queue acknowledged seq 0..$acked"
	args="nvmedtest.mode=crash-verify-all nvmedtest.acked=$acked"
	for b in $CRASH_BACKENDS; do
		a=$(last_ackb "$log" "$b")
		say "INFO crash: backend $b acknowledged seq 0..$a ($(tr -d '\r' <"$log" | grep -a -c "^ACKB $b " || true) ACK lines)"
		args+=" nvmedtest.acked_$b=$a"
		((a > 0)) || hfail "crash.$b-acked" "no acknowledged writes through $b before the kill (see $log)"
	done
	if [[ $killed != 1 ]] || ! grep -a -q '^CRASH-START slots' "$log"; then
		hfail crash.kill "workload did not run until the kill (see $log)"
		return
	fi
	if ((acked <= 0)); then
		hfail crash.acked "no acknowledged writes before the kill (see $log)"
		return
	fi
	hpass crash.kill-mid-write
	boot "$args" "$WORK/serial-crash-verify.log"
	score "$WORK/serial-crash-verify.log" crash-verify-all crash.crash-verify \
		$(for b in $CRASH_BACKENDS; do echo "ffs.$b.crash-verify"; done)
}

BACKENDS_ALL="nvmed uring-cmd uring psync"
# QEMU 7.2's emulated controller sometimes stops fetching commands from the stock driver's
# queues under sustained concurrent load (the driver's queues use shadow doorbells; nvmed's
# never stalled): the kernel then aborts and resets after io_timeout (30 s by default).
# A shorter timeout turns such a stall into a hiccup (block I/O is retried; a passthrough
# command fails with EINTR) instead of eating the boot's time limit.
KPATH_TIMEOUT=nvmedtest.nvme_core_args=io_timeout
FFS_EXPECT="geometry rw-basic sizes big-alloc many-allocs qd-overflow flush-fua trim notify errors lock"

run_backends() {
	local b n f names=() sel=${BACKENDS_SEL:-$BACKENDS_ALL} engine=
	say "== backends: native library and TypeScript layers on ${sel// /, } (Node in the guest: $([[ $NODE = 1 ]] && echo "yes; engine test files at scale $TEST_SCALE" || echo no))"
	for b in $sel; do
		for n in $FFS_EXPECT; do names+=("ffs.$b.$n"); done
		[[ $NODE = 1 ]] && names+=("ts.$b.ava")
		# each engine test file reports PASS/FAIL ts.<b>.<file>: missing means it never ran
		[[ $NODE = 1 ]] && for f in $ENGINE_FILES; do names+=("ts.$b.${f%%:*}"); done
	done
	[[ " $sel " = *" nvmed "* ]] && names+=(ffs.nvmed.split ffs.nvmed.teardown)
	names+=(ffs.nvmed.kill9-idle dmesg.clean)
	[[ -n $ENGINE_FILES ]] && engine=" nvmedtest.engine_files=$(tr ' ' ',' <<<"$ENGINE_FILES") nvmedtest.test_scale=$TEST_SCALE"
	fresh_disks
	boot "nvmedtest.mode=backends nvmedtest.node=$NODE nvmedtest.backends=${sel// /,} $KPATH_TIMEOUT=10${GUEST_ENV:+ nvmedtest.env=$GUEST_ENV}$engine" "$WORK/serial-backends.log" \
		"$([[ $NODE = 1 ]] && echo "$INITRD_NODE")" "$BACKENDS_TIMEOUT"
	score "$WORK/serial-backends.log" backends "${names[@]}"
}

run_bench_raw() {
	say "== bench-raw: 4 KiB random I/O, nvmed's raw queue vs kernel path (TCG: compare ratios, not absolutes)"
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

run_bench() {
	local log=$WORK/serial-bench-nvme.log
	say "== bench: 4 KiB random I/O per backend, native library and TypeScript layer (TCG: compare ratios, not absolutes)"
	fresh_disks
	boot "nvmedtest.mode=bench-all nvmedtest.secs=$SECS nvmedtest.reps=$REPS nvmedtest.node=$NODE $KPATH_TIMEOUT=5" "$log" \
		"$([[ $NODE = 1 ]] && echo "$INITRD_NODE")"
	score "$log" bench-all
	tr -d '\r' <"$log" | grep -a -E '^(BENCH|INFO dmesg)' >"$WORK/bench-nvme.txt" || true
	bench_table "$WORK/bench-nvme.txt" | tee "$WORK/bench-nvme.md"
}

# medians over the rounds per layer, backend, op and depth; IOPS ratio to uring per round
bench_table() {
	awk -v secs="$SECS" -v reps="$REPS" -v smp="$SMP" '
	/^BENCH-REP/ { rep = $2; next }
	/^BENCH-ERROR/ { errors = errors "\n- " $0; next }
	/^BENCH / {
	  delete f
	  for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	  if (f["layer"] == "") next
	  # a sample that contains a controller stall (see KPATH_TIMEOUT) measures QEMU, not us
	  if (f["lat_p99_us"] + 0 > 1000000) { stalled++; stalls = stalls " " f["layer"] "/" f["backend"] "/" f["op"] "/qd" f["qd"]; next }
	  r = (f["rep"] != "") ? f["rep"] : rep
	  k = f["layer"] SUBSEP f["backend"] SUBSEP f["op"] SUBSEP f["qd"]
	  n[k]++; iops[k, n[k]] = f["iops"]; p50[k, n[k]] = f["lat_p50_us"]; p99[k, n[k]] = f["lat_p99_us"]; cpu[k, n[k]] = f["cpu_us_per_io"]
	  byrep[f["layer"], f["backend"], f["op"], f["qd"], r] = f["iops"]
	  if (!(f["layer"] SUBSEP f["backend"] in seen)) { seen[f["layer"] SUBSEP f["backend"]] = 1; order[f["layer"]] = order[f["layer"]] " " f["backend"] }
	}
	function med(arr, k, m,   i, j, t, a) {
	  for (i = 1; i <= m; i++) a[i] = arr[k, i] + 0
	  for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	  return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
	}
	function ratio(layer, b, op, qd,   r, m, x, i, j, t, lo, hi) {
	  m = 0
	  for (r = 1; r <= 99; r++) if ((layer, b, op, qd, r) in byrep && (layer, "uring", op, qd, r) in byrep && byrep[layer, "uring", op, qd, r] > 0) {
	    m++; x[m] = byrep[layer, b, op, qd, r] / byrep[layer, "uring", op, qd, r] }
	  if (!m) return "-"
	  for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
	  return sprintf("%.2f", m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2)
	}
	END {
	  split("c ref ts", layers, " ")
	  name["c"] = "native library (C, ffs_submit/ffs_reap; QD 1 waits in ffs_reap)"
	  name["ref"] = "references without the library (nvmed_test: raw nvmed queue; io_uring IOPOLL on the block device)"
	  name["ts"] = "TypeScript device layer (openDevice/NativeDevice: submit() promises, readSync(); one Node process)"
	  printf "4 KiB random I/O, %s s per point, %s rounds (medians), guest CPUs %s. ratio = IOPS / uring IOPS of the same layer and round (ref: / library uring).\n\n", secs, reps, smp
	  for (li = 1; li <= 3; li++) {
	    L = layers[li]; if (order[L] == "") continue
	    printf "### %s\n\n| backend | op | QD | IOPS | x uring | p50 us | p99 us | CPU us/IO |\n|---|---|---|---:|---:|---:|---:|---:|\n", name[L]
	    # the usual order first, then anything else in order of appearance
	    nb = 0; split("nvmed uring-cmd uring psync raw-nvmed uring-poll " order[L], cand, " ")
	    for (ci = 1; ci in cand; ci++) if (cand[ci] != "" && !((L, cand[ci]) in listed) && ((L, cand[ci]) in seen)) { listed[L, cand[ci]] = 1; bs[++nb] = cand[ci] }
	    split("randread randread-sync randwrite", ops, " ")
	    for (oi = 1; oi <= 3; oi++) for (qi = 1; qi <= 2; qi++) {
	      qd = qi == 1 ? 1 : 32
	      for (bi = 1; bi <= nb; bi++) {
	        b = bs[bi]; k = L SUBSEP b SUBSEP ops[oi] SUBSEP qd
	        if (!(k in n)) continue
	        rl = (L == "ref") ? ratio_ref(b, ops[oi], qd) : ratio(L, b, ops[oi], qd)
	        printf "| %s | %s | %d | %.0f | %s | %.1f | %.1f | %s |\n", b, ops[oi], qd, med(iops, k, n[k]), rl, med(p50, k, n[k]), med(p99, k, n[k]), (cpu[k, 1] == "" ? "-" : sprintf("%.1f", med(cpu, k, n[k])))
	      }
	    }
	    print ""
	  }
	  if (stalled) printf "%d sample(s) left out: a kernel-path controller stall (p99 > 1 s) fell into them:%s\n\n", stalled, stalls
	  if (errors != "") printf "Points that failed:%s\n\n", errors
	}
	function ratio_ref(b, op, qd,   r, m, x, i, j, t) {
	  m = 0
	  for (r = 1; r <= 99; r++) if (("ref", b, op, qd, r) in byrep && ("c", "uring", op, qd, r) in byrep && byrep["c", "uring", op, qd, r] > 0) {
	    m++; x[m] = byrep["ref", b, op, qd, r] / byrep["c", "uring", op, qd, r] }
	  if (!m) return "-"
	  for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
	  return sprintf("%.2f", m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2)
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
build_initramfs "$INITRD"
if [[ $NODE = 1 ]]; then
	build_native || { say "RESULT FAIL (build)"; exit 1; }
	command -v node >/dev/null || die "node is not installed on the host (needed for the guest's Node tests; --no-node skips them)"
	build_initramfs "$INITRD_NODE" node
fi
say "INFO initramfs $(du -h "$INITRD" | cut -f1)$([[ $NODE = 1 ]] && echo ", with Node and the project $(du -h "$INITRD_NODE" | cut -f1)"), built in $(($(date +%s) - T_START)) s"

phase() {
	local t=$(date +%s)
	"$@"
	say "INFO phase ${1#run_}: $(($(date +%s) - t)) s"
}

case $MODE in
all) phase run_test; phase run_backends; phase run_crash ;;
test) run_test ;;
backends) run_backends ;;
crash) run_crash ;;
bench) run_bench ;;
bench-raw) run_bench_raw ;;
run) run_run ;;
shell) run_shell ;;
esac

# the sparse images fill up to a GiB or two during a run: drop them unless asked or failed
[[ $KEEP = 1 || $NFAIL != 0 ]] || rm -f "$DISK_K" "$DISK_N"
say "RESULT $([[ $NFAIL = 0 ]] && echo PASS || echo FAIL): $NPASS passed, $NFAIL failed${FAILS[*]:+ (${FAILS[*]})}, $(($(date +%s) - T_START)) s"
[[ $NFAIL = 0 ]]
