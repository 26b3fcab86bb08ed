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
		insmod "$MODDIR/$_m.ko" 2>/tmp/insmod.err || {
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
