# Guest-side test library for the nvmed QEMU bench (sourced by /init, busybox sh).
#
# Controllers (fixed PCI slots set by run.sh):
#   0000:00:04.0  "kpath"  stays on the stock nvme driver (kernel path, /dev/nvme0n1)
#   0000:00:05.0  "nvmed"  rebound to nvmed through driver_override (/dev/nvmed0)

KPATH_ADDR=0000:00:04.0
NVMED_ADDR=0000:00:05.0
MODDIR=/modules
T=/bin/nvmed_test
NVME_STACK="crct10dif_common crct10dif_generic crc-t10dif crc64 crc64_rocksoft_generic crc64-rocksoft t10-pi nvme-core"
FAILED=0

ok() { echo "PASS $1"; }
ko() { echo "FAIL $1${2:+: $2}"; FAILED=1; }
info() { echo "INFO $*"; }

# wait_for 'shell condition' seconds
wait_for() {
	_i=0
	_n=$(($2 * 10))
	while ! eval "$1"; do
		_i=$((_i + 1))
		[ $_i -ge $_n ] && return 1
		sleep 0.1
	done
	return 0
}

driver_of() {
	_l=$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null) || return 0
	echo "${_l##*/}"
}

# block device of the namespace of the controller at PCI address $1 (stock driver)
blk_of_addr() {
	_c=$(ls "/sys/bus/pci/devices/$1/nvme" 2>/dev/null | head -n 1)
	[ -n "$_c" ] || return 1
	for _s in /sys/class/nvme-subsystem/nvme-subsys*; do
		[ -e "$_s/$_c" ] || continue
		for _n in "$_s"/nvme*n1; do
			[ -e "$_n" ] && { echo "/dev/${_n##*/}"; return 0; }
		done
	done
	for _n in /sys/class/nvme/$_c/${_c}n1; do
		[ -e "$_n" ] && { echo "/dev/${_n##*/}"; return 0; }
	done
	return 1
}

load_nvme_stack() {
	for _m in $NVME_STACK; do
		_a=
		[ "$_m" = nvme-core ] && _a=${NT_NVME_CORE_ARGS:-}
		insmod "$MODDIR/$_m.ko" $_a 2>/tmp/insmod.err || {
			grep -q "File exists" /tmp/insmod.err || { cat /tmp/insmod.err; return 1; }
		}
	done
	# one poll queue so io_uring IOPOLL works on the kernel path
	insmod "$MODDIR/nvme.ko" ${NT_NVME_ARGS:-poll_queues=1} || return 1
	wait_for '[ -n "$(blk_of_addr $KPATH_ADDR)" ]' 20 || return 1
	KBLK=$(blk_of_addr $KPATH_ADDR)
	return 0
}

# bind the controller at $NVMED_ADDR to nvmed (loading it if needed)
bind_nvmed() {
	grep -q '^nvmed ' /proc/modules || insmod "$MODDIR/nvmed.ko" ${NT_NVMED_ARGS:-} || return 1
	echo nvmed > "/sys/bus/pci/devices/$NVMED_ADDR/driver_override"
	_d=$(driver_of $NVMED_ADDR)
	if [ "$_d" != nvmed ]; then
		[ -n "$_d" ] && echo $NVMED_ADDR > "/sys/bus/pci/drivers/$_d/unbind"
		echo $NVMED_ADDR > /sys/bus/pci/drivers_probe
	fi
	wait_for '[ -c /dev/nvmed0 ]' 10
}

# give the controller at $NVMED_ADDR back to the stock nvme driver
bind_nvme() {
	echo > "/sys/bus/pci/devices/$NVMED_ADDR/driver_override"
	_d=$(driver_of $NVMED_ADDR)
	[ -n "$_d" ] && [ "$_d" != nvme ] && echo $NVMED_ADDR > "/sys/bus/pci/drivers/$_d/unbind"
	[ "$(driver_of $NVMED_ADDR)" = nvme ] || echo $NVMED_ADDR > /sys/bus/pci/drivers_probe
	wait_for '[ -n "$(blk_of_addr $NVMED_ADDR)" ]' 20 && wait_for '[ -b "$(blk_of_addr $NVMED_ADDR)" ]' 10
}

nvmed_stats_info() {
	[ -r /sys/class/misc/nvmed0/stats ] || return 0
	echo "INFO sysfs stats: $(tr '\n' ' ' < /sys/class/misc/nvmed0/stats)"
}

# start 'nvmed_test hold' in the background; sets HOLD_PID
start_holder() {
	: > /tmp/hold.log
	$T hold /dev/nvmed0 > /tmp/hold.log 2>&1 &
	HOLD_PID=$!
	wait_for 'grep -q HOLDING /tmp/hold.log' 30 || { cat /tmp/hold.log; return 1; }
	info "holder: $(cat /tmp/hold.log)"
	return 0
}

# ---------------------------------------------------------------------------

test_kill9() {
	start_holder || { ko kill9.hold "holder did not start"; return; }
	nvmed_stats_info
	kill -9 $HOLD_PID
	wait $HOLD_PID
	_st=$?
	[ $_st = 137 ] || info "holder exit status $_st"
	nvmed_stats_info
	NVMED_TEST_PREFIX=kill9. $T stats /dev/nvmed0 --expect-idle
	NVMED_TEST_PREFIX=kill9. $T maxq /dev/nvmed0
}

test_unbind_open() {
	start_holder || { ko unbind-open.hold "holder did not start"; return; }
	if ! timeout 30 sh -c "echo $NVMED_ADDR > /sys/bus/pci/drivers/nvmed/unbind"; then
		ko unbind-open.unbind "unbind with open queues failed or hung"
		return
	fi
	if wait_for '! kill -0 $HOLD_PID 2>/dev/null' 10; then
		wait $HOLD_PID
		_st=$?
		if [ $_st = 135 ]; then
			ok unbind-open.holder-sigbus
		else
			ko unbind-open.holder-sigbus "holder exit status $_st, want 135 (SIGBUS)"
		fi
	else
		ko unbind-open.holder-sigbus "holder still running after unbind"
		kill -9 $HOLD_PID
		wait $HOLD_PID
	fi
	[ -e /dev/nvmed0 ] && ko unbind-open.node "/dev/nvmed0 still present"
	echo $NVMED_ADDR > /sys/bus/pci/drivers_probe
	if wait_for '[ -c /dev/nvmed0 ]' 10; then
		NVMED_TEST_PREFIX=unbind-open. $T stats /dev/nvmed0 --expect-idle
	else
		ko unbind-open.rebind "/dev/nvmed0 did not come back"
	fi
}

test_cross_driver() {
	if ! $T fill /dev/nvmed0 500000 64 7; then
		ko cross.fill "write through nvmed failed"
		return
	fi
	if ! bind_nvme; then
		ko cross.rebind-nvme "stock driver did not take the controller back"
		return
	fi
	_b=$(blk_of_addr $NVMED_ADDR)
	info "controller $NVMED_ADDR back on nvme as $_b"
	if $T checkblk "$_b" 500000 64 7; then ok cross.nvmed-to-kernel; else ko cross.nvmed-to-kernel; fi
	$T fillblk "$_b" 510000 64 8 || ko cross.fillblk
	if ! bind_nvmed; then
		ko cross.rebind-nvmed "nvmed did not take the controller back"
		return
	fi
	if $T check /dev/nvmed0 510000 64 8; then ok cross.kernel-to-nvmed; else ko cross.kernel-to-nvmed; fi
}

test_reload() {
	_bad=0
	for _i in 1 2 3 4 5 6; do
		rmmod nvmed || { ko module.reload "rmmod failed (round $_i)"; return; }
		[ -e /dev/nvmed0 ] && { ko module.reload "/dev/nvmed0 left after rmmod"; _bad=1; }
		if [ $((_i % 2)) = 0 ]; then
			# round trip through the stock driver while nvmed is unloaded
			bind_nvme || { ko module.reload "nvme rebind failed (round $_i)"; _bad=1; }
			echo nvmed > "/sys/bus/pci/devices/$NVMED_ADDR/driver_override"
			echo $NVMED_ADDR > /sys/bus/pci/drivers/nvme/unbind
		fi
		insmod "$MODDIR/nvmed.ko" ${NT_NVMED_ARGS:-} || { ko module.reload "insmod failed (round $_i)"; return; }
		wait_for '[ -c /dev/nvmed0 ]' 10 || { ko module.reload "no /dev/nvmed0 after insmod (round $_i)"; return; }
		$T check /dev/nvmed0 500000 64 7 || { ko module.reload "data check failed (round $_i)"; _bad=1; }
	done
	[ $_bad = 0 ] && ok module.reload-x6
	# the doorbell policy knob: refuse queues on a shared doorbell page
	rmmod nvmed && insmod "$MODDIR/nvmed.ko" strict_doorbells=1 &&
		wait_for '[ -c /dev/nvmed0 ]' 10 && $T strict /dev/nvmed0
	rmmod nvmed && insmod "$MODDIR/nvmed.ko" ${NT_NVMED_ARGS:-} && wait_for '[ -c /dev/nvmed0 ]' 10 ||
		ko module.reload "reload after the strict round failed"
}

check_dmesg() {
	dmesg | tail -n +$(($1 + 1)) > /tmp/dmesg.new
	if grep -E -i 'WARNING|BUG|Oops|leak|Call Trace|nobody cared|general protection|hung_task' /tmp/dmesg.new > /tmp/dmesg.bad; then
		sed 's/^/INFO dmesg: /' /tmp/dmesg.bad | head -n 40
		ko dmesg.clean "kernel reported problems"
	else
		ok dmesg.clean
	fi
	grep -E 'nvmed' /tmp/dmesg.new | head -n 5 | sed 's/^/INFO dmesg: /'
}

mode_test() {
	if load_nvme_stack; then ok boot.nvme-stack; else ko boot.nvme-stack; return 1; fi
	info "kernel path: $KPATH_ADDR $KBLK; nvmed controller: $NVMED_ADDR (on $(driver_of $NVMED_ADDR))"
	_base=$(dmesg | wc -l)
	if bind_nvmed && [ "$(driver_of $NVMED_ADDR)" = nvmed ]; then
		ok bind.driver-override
	else
		ko bind.driver-override
		dmesg | tail -n 20
		return 1
	fi
	[ -n "$(driver_of $KPATH_ADDR)" ] && [ "$(driver_of $KPATH_ADDR)" = nvme ] && ok bind.stock-driver-kept ||
		ko bind.stock-driver-kept "kernel-path controller not on nvme"
	$T func /dev/nvmed0
	test_kill9
	test_unbind_open
	test_cross_driver
	test_reload
	nvmed_stats_info
	check_dmesg $_base
	return $FAILED
}

mode_crash_write() {
	load_nvme_stack && bind_nvmed || { ko crash.setup; return 1; }
	$T crash-write /dev/nvmed0
	ko crash.write "workload ended by itself (rc $?)"
	return 1
}

mode_crash_verify() {
	load_nvme_stack && bind_nvmed || { ko crash.setup; return 1; }
	NVMED_TEST_PREFIX=crash. $T crash-verify /dev/nvmed0 "${NT_ACKED:-0}"
}

# Every point (op x depth) runs each backend for NT_SECS, one after the other, the
# starting backend rotating from round to round, so host noise hits all of them alike.
mode_bench() {
	load_nvme_stack && bind_nvmed || { ko bench.setup; return 1; }
	_secs=${NT_SECS:-0.5}
	info "bench: nvmed on $NVMED_ADDR, kernel path $KBLK; ${_secs} s per point and backend, ${NT_REPS:-5} rounds"
	$T bench-nvmed /dev/nvmed0 0.3 randwrite 32 > /dev/null	# warm-up (host page cache, image allocation)
	$T bench-kernel "$KBLK" 0.3 uring randwrite 32 > /dev/null
	_r=1
	while [ $_r -le "${NT_REPS:-5}" ]; do
		echo "BENCH-REP $_r"
		for _p in "randwrite 1" "randwrite 32" "randread 1" "randread 32"; do
			_b="nvmed psync uring uring-poll"
			_k=$(( (_r - 1) % 4 ))
			while [ $_k -gt 0 ]; do _b="${_b#* } ${_b%% *}"; _k=$((_k - 1)); done
			for _x in $_b; do
				case "$_x" in
				nvmed) $T bench-nvmed /dev/nvmed0 "$_secs" $_p || ko bench.nvmed ;;
				psync) [ "${_p#* }" = 1 ] && { $T bench-kernel "$KBLK" "$_secs" psync $_p || ko bench.kernel; } ;;
				*) $T bench-kernel "$KBLK" "$_secs" "$_x" $_p || ko bench.kernel ;;
				esac
			done
		done
		_r=$((_r + 1))
	done
	return $FAILED
}

# Run every /run.d/*.sh in order; each one's exit status gives PASS/FAIL run.<name>.
# nvmedtest.bind=0 leaves both controllers on the stock driver.
mode_run() {
	load_nvme_stack || { ko run.setup "nvme stack"; return 1; }
	if [ "${NT_BIND:-1}" = 1 ]; then
		bind_nvmed || { ko run.setup "bind nvmed"; return 1; }
	fi
	export KBLK NVMED_DEV=/dev/nvmed0
	for _s in /run.d/*.sh; do
		[ -e "$_s" ] || continue
		_n=${_s##*/}
		_n=${_n%.sh}
		echo "INFO run.$_n: start"
		if sh "$_s"; then ok "run.$_n"; else ko "run.$_n" "exit status $?"; fi
	done
	return $FAILED
}

# ===========================================================================
# The native library's backends (ffs_test) and the TypeScript layers (Node + ava in
# /project) on every backend:
#   nvmed      /dev/nvmed0     user-space queues through the nvmed driver (controller 05.0)
#   uring-cmd  /dev/ngXnY      io_uring NVMe passthrough          (controller 04.0)
#   uring      /dev/nvmeXnY    io_uring on the block device       (controller 04.0)
#   psync      /dev/nvmeXnY    pread/pwrite worker threads        (controller 04.0)

FT=/bin/ffs_test
BACKENDS_ALL="nvmed uring-cmd uring psync"

# When QEMU's vCPU and device-emulation threads run in parallel on two host CPUs, the
# controller on the stock nvme driver sometimes stops fetching commands (kernel: "I/O n QID 1
# timeout, aborting", resets that do not always recover), most readily under psync's 16
# threads of synchronous I/O. run.sh therefore pins QEMU to one host CPU for the tests; the
# bench runs unpinned (the device works beside a polling vCPU) and leaves psync at QD 32 out.

# the NVMe generic character device of the kernel-path namespace: /dev/nvme0n1 -> /dev/ng0n1
ng_of() { echo "/dev/ng${1#/dev/nvme}"; }

backend_dev() {
	case "$1" in
	nvmed) echo /dev/nvmed0 ;;
	uring-cmd) ng_of "$KBLK" ;;
	*) echo "$KBLK" ;;
	esac
}

# ava's plain output -> PASS/FAIL ts.<backend>.<file>.<title-slug> (file without .test.ts and
# without a trailing -env: device-env -> device), INFO ... skipped for a skipped test
ava_markers() {
	_b=$1
	# ava marks a passed test with ✔ (√ without a UTF-8 terminal), a failed one with ✘ (×), a skipped one with -
	sed -n 's/^ *\(✔\|✘\|√\|×\|- \[skip\]\) \(\[fail\]: \)\{0,1\}\([a-z0-9-]*\) › \(.*\)$/\1|\3|\4/p' "$2" | while IFS='|' read -r _m _f _t; do
		case "$_f" in *-env) _t=${_t#*: } ;; esac   # drop "backend:/dev/x: " / "engine on ...: "
		_f=${_f%-env}
		_t=$(echo "$_t" | sed 's/ ([0-9][0-9. ms]*)$//')
		_s=$(echo "$_t" | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9]\{1,\}/-/g; s/^-//; s/-$//' | cut -c1-48)
		case "$_m" in
		✔|√) echo "PASS ts.$_b.$_f.$_s" ;;
		-*) echo "INFO ts.$_b.$_f.$_s: skipped (memory-only)" ;;
		*) echo "FAIL ts.$_b.$_f.$_s: $_t"; FAILED=1 ;;
		esac
	done
}

# ava_run LOG FILES...: ava in /project, serially, on backend $_b and device $_d, with
# FORESTFS_TEST_SCALE=$_scale (default 1); sets _rc
ava_run() {
	_log=$1
	shift
	(cd /project && FORESTFS_TEST_DEVICE=$_d FORESTFS_TEST_BACKEND=$_b FORESTFS_TEST_SCALE=${_scale:-1} \
		timeout "${NT_AVA_TIMEOUT:-900}" \
		node node_modules/ava/entrypoints/cli.mjs -c 1 --serial --timeout 5m "$@") > "$_log" 2>&1
	_rc=$?
}

# ava's summary for a run that did not pass: the failures' details, not the stack frames
ava_tail() {
	grep -v '^ *$' "$1" | grep -v '^ *at ' | tail -n 40 | sed 's/^/INFO ava: /'
}

# the slower tests with their durations, and ava's notes (t.log)
ava_info() {
	grep -a -E '^ *(ℹ|i) ' "$1" | sed 's/^ */INFO ava: /'
	grep -a -E '\([0-9][0-9. ms]*\)$' "$1" | sed 's/^ *[^ ]* /INFO ava: /'
}

# The device suite and the engine smoke test, then the engine's own test files (test images
# on windows of the device, see test/helpers/test-image.ts; memory-only tests skip) through
# Node on backend $1, device $2. NT_ENGINE_FILES = file:min,... (from run.sh): for each file
# PASS ts.<b>.<file> when ava ran it with no failure and at least min tests passed.
run_node_tests() {
	_b=$1
	_d=$2
	_scale=1
	ava_run /tmp/ava.log test/nvme/device-env.test.ts test/nvme/engine-env.test.ts
	ava_markers "$_b" /tmp/ava.log > /tmp/ava.markers
	cat /tmp/ava.markers
	_np=$(grep -c '^PASS ts.*\.device\.' /tmp/ava.markers)
	_ne=$(grep -c '^PASS ts.*\.engine\.' /tmp/ava.markers)
	if [ $_rc != 0 ] || [ "$_np" -lt 9 ] || [ "$_ne" -lt 1 ]; then
		ko "ts.$_b.ava" "ava exit $_rc, $_np device and $_ne engine tests passed (want 9 and 1)"
		ava_tail /tmp/ava.log
	else
		ok "ts.$_b.ava"
		ava_info /tmp/ava.log
	fi
	[ -n "${NT_ENGINE_FILES:-}" ] || return 0
	_files=
	for _fm in $(echo "$NT_ENGINE_FILES" | tr ',' ' '); do _files="$_files test/${_fm%%:*}.test.ts"; done
	_te=$(date +%s)
	# the long randomized tests run FORESTFS_TEST_SCALE of their operations here (TCG)
	_scale=${NT_TEST_SCALE:-1}
	ava_run /tmp/ava-engine.log $_files
	info "backend $_b: engine test files: ava exit $_rc in $(($(date +%s) - _te)) s (FORESTFS_TEST_SCALE=$_scale)"
	ava_markers "$_b" /tmp/ava-engine.log > /tmp/ava-engine.markers
	cat /tmp/ava-engine.markers
	_bad=0
	for _fm in $(echo "$NT_ENGINE_FILES" | tr ',' ' '); do
		_f=${_fm%%:*}
		_min=${_fm#*:}
		_p=$(grep -c "^PASS ts\.$_b\.$_f\." /tmp/ava-engine.markers)
		_x=$(grep -c "^FAIL ts\.$_b\.$_f\." /tmp/ava-engine.markers)
		_s=$(grep -c "^INFO ts\.$_b\.$_f\..*: skipped" /tmp/ava-engine.markers)
		# a crash or timeout of the file leaves its tests unreported: fewer than min passed
		if [ "$_x" = 0 ] && [ "$_p" -ge "$_min" ]; then
			ok "ts.$_b.$_f"
		else
			ko "ts.$_b.$_f" "$_p passed (want at least $_min), $_x failed, $_s skipped"
			_bad=1
		fi
	done
	if [ $_rc != 0 ] && [ $_bad = 0 ]; then
		ko "ts.$_b.engine-files" "ava exit $_rc though every file passed"
		_bad=1
	fi
	ava_info /tmp/ava-engine.log
	[ $_bad = 0 ] || ava_tail /tmp/ava-engine.log
}

# kill -9 of a process driving nvmed through the library (poller thread, DMA arenas,
# commands in flight): the driver must free everything
test_ffs_kill9() {
	: > /tmp/fhold.log
	$FT hold nvmed /dev/nvmed0 > /tmp/fhold.log 2>&1 &
	_p=$!
	if ! wait_for 'grep -q HOLDING /tmp/fhold.log' 30; then
		cat /tmp/fhold.log
		ko ffs.nvmed.kill9 "holder did not start"
		kill -9 $_p 2>/dev/null
		return
	fi
	nvmed_stats_info
	kill -9 $_p
	wait $_p
	NVMED_TEST_PREFIX=ffs.nvmed.kill9- $T stats /dev/nvmed0 --expect-idle
}

mode_backends() {
	# nvmedtest.env=A=1,B=2: environment for the tests (e.g. FFS_NVMED_SPIN_US=-1)
	for _kv in $(echo "${NT_ENV:-}" | tr ',' ' '); do export "$_kv"; info "env $_kv"; done
	load_nvme_stack && bind_nvmed || { ko backends.setup; return 1; }
	_base=$(dmesg | wc -l)
	_ng=$(ng_of "$KBLK")
	wait_for "[ -c $_ng ]" 10 || ko backends.setup "no $_ng"
	info "kernel path $KBLK ($_ng), nvmed /dev/nvmed0; node $(node --version 2>/dev/null)"
	for _b in $(echo "${NT_BACKENDS:-$BACKENDS_ALL}" | tr ',' ' '); do
		_d=$(backend_dev "$_b")
		echo "INFO ===== backend $_b on $_d"
		_t0=$(date +%s)
		$FT func "$_b" "$_d" || true
		_t1=$(date +%s)
		[ "${NT_NODE:-1}" = 1 ] && run_node_tests "$_b" "$_d"
		info "backend $_b: native tests $((_t1 - _t0)) s, TypeScript tests $(($(date +%s) - _t1)) s"
	done
	test_ffs_kill9
	check_dmesg $_base
	return $FAILED
}

# crash: five writers at once, each printing acknowledgements on the console (the host
# keeps the log, so it survives the kill): the driver's own test program on nvmed (raw
# queue, "ACK <seq>") and ffs_test through the library on every backend ("ACKB b <seq>");
# the three kernel-path backends share one namespace, each in its own LBA range.
CRASH_BASE_nvmed=327680
CRASH_BASE_uring_cmd=262144
CRASH_BASE_uring=278528
CRASH_BASE_psync=294912

crash_base() { eval "echo \$CRASH_BASE_$(echo "$1" | tr '-' '_')"; }

mode_crash_write_all() {
	load_nvme_stack && bind_nvmed || { ko crash.setup; return 1; }
	$T crash-write /dev/nvmed0 &
	for _b in $BACKENDS_ALL; do
		$FT crash-write "$_b" "$(backend_dev "$_b")" "$(crash_base "$_b")" &
	done
	wait
	ko crash.write "the writers ended by themselves"
	return 1
}

mode_crash_verify_all() {
	load_nvme_stack && bind_nvmed || { ko crash.setup; return 1; }
	NVMED_TEST_PREFIX=crash. $T crash-verify /dev/nvmed0 "${NT_ACKED:-0}"
	for _b in $BACKENDS_ALL; do
		eval "_a=\${NT_ACKED_$(echo "$_b" | tr 'a-z-' 'A-Z_'):--1}"
		$FT crash-verify "$_b" "$(backend_dev "$_b")" "$(crash_base "$_b")" "$_a"
	done
	return $FAILED
}

# bench: 4 KiB random I/O per backend through the native library (ffs_test bench) and
# through the TypeScript device layer (bench/nvme-ts.ts), QD 1 and 32; references without
# the library: the raw queue (nvmed_test bench-nvmed) and io_uring IOPOLL on the block device.
# psync runs at QD 1 only (see above: unpinned, its 16 threads at QD 32 stall the controller).
mode_bench_all() {
	load_nvme_stack && bind_nvmed || { ko bench.setup; return 1; }
	_secs=${NT_SECS:-0.5}
	_span=${NT_SPAN_MIB:-256}
	export NVMED_BENCH_SPAN=$((_span * 256))
	_ng=$(ng_of "$KBLK")
	wait_for "[ -c $_ng ]" 10
	info "bench: ${_secs} s per point and backend, ${NT_REPS:-3} rounds, random 4 KiB blocks in the first $_span MiB (prefilled)"
	$FT fill nvmed /dev/nvmed0 "$_span" || ko bench.fill
	$FT fill uring "$KBLK" "$_span" || ko bench.fill
	for _b in nvmed uring-cmd uring; do $FT bench "$_b" "$(backend_dev "$_b")" 0.2 randread 32 > /dev/null; done
	_r=1
	while [ $_r -le "${NT_REPS:-3}" ]; do
		echo "BENCH-REP $_r"
		for _p in "randwrite 1" "randwrite 32" "randread 1" "randread 32"; do
			_all="nvmed uring-cmd uring psync raw-nvmed uring-poll"
			_k=$(( (_r - 1) % 6 ))
			while [ $_k -gt 0 ]; do _all="${_all#* } ${_all%% *}"; _k=$((_k - 1)); done
			for _x in $_all; do
				case "$_x" in
				raw-nvmed) $T bench-nvmed /dev/nvmed0 "$_secs" $_p | sed 's/backend=nvmed */backend=raw-nvmed /; s/^BENCH /BENCH layer=ref /' ;;
				uring-poll) $T bench-kernel "$KBLK" "$_secs" uring-poll $_p | sed 's/backend=kernel-uring-poll */backend=uring-poll /; s/^BENCH /BENCH layer=ref /' ;;
				psync) [ "${_p#* }" = 32 ] || $FT bench psync "$KBLK" "$_secs" $_p || ko bench.psync ;;
				*) $FT bench "$_x" "$(backend_dev "$_x")" "$_secs" $_p || ko "bench.$_x" ;;
				esac
			done
		done
		_r=$((_r + 1))
	done
	if [ "${NT_NODE:-1}" = 1 ] && [ -d /project ]; then
		(cd /project && node --import tsx bench/nvme-ts.ts --secs "$_secs" --span-mib "$_span" --rounds "${NT_REPS:-3}" --skip psync:32 \
			nvmed=/dev/nvmed0 uring-cmd="$_ng" uring="$KBLK" psync="$KBLK") || ko bench.ts
	fi
	dmesg | grep -i -E 'nvme|timeout|abort' | grep -v -E 'nvmed [0-9:.]+: (nvmed0|bound)' | tail -n 10 | sed 's/^/INFO dmesg: /'
	return $FAILED
}
