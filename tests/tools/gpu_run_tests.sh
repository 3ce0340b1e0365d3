#!/usr/bin/env bash
# tools/gpu-run.sh without a GPU: its summary names each failing test case with its count of
# failures, it passes the test binary's exit status through, GPU_RUN_LIMIT stops a long run and
# still summarises it, and bad use exits 2; compare runs both binaries in turn, each with its own
# kernel cache; stalls summarises a (fake) ncu report; tools/gpu-prep.sh refuses a missing build
# or revision.
# usage: gpu_run_tests.sh <repository root>
set -u
script=$1/tools/gpu-run.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
check() { # check <description> <command...>
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; fails=$((fails + 1)); fi
}

cat >"$work/failing" <<'FAKE'
#!/usr/bin/env bash
for i in 1 2 3; do
  printf '%s\n' "=====" "x.cpp:10:" "TEST CASE:  case A" "" "x.cpp:12: ERROR: CHECK( a == b ) is NOT correct!" "  values: CHECK( 1 == 2 )"
done
printf '%s\n' "=====" "y.cpp:20:" "TEST CASE:  case B" "" "y.cpp:21: ERROR: CHECK( z ) is NOT correct!"
printf '%s\n' "[doctest] test cases: 3 | 1 passed | 2 failed |" "[doctest] Status: FAILURE!"
exit 1
FAKE
cat >"$work/passing" <<'FAKE'
#!/usr/bin/env bash
echo "args: $*"
printf '%s\n' "[doctest] test cases: 1 | 1 passed | 0 failed |" "[doctest] Status: SUCCESS!"
FAKE
chmod +x "$work/failing" "$work/passing"

TEST_GPU=$work/failing "$script" tests "$work/f" >/dev/null
check "a failing run exits 1" test $? -eq 1
check "case A counted three times" grep -Eq '^ +3 TEST CASE:  case A$' "$work/f/tests.txt"
check "case B counted once" grep -Eq '^ +1 TEST CASE:  case B$' "$work/f/tests.txt"
check "the first failure is quoted" grep -q 'x.cpp:12: ERROR' "$work/f/tests.txt"
check "the whole log is kept" sh -c "gzip -dc '$work/f/tests.log.gz' | grep -c 'ERROR:' | grep -qx 4"

TEST_GPU=$work/passing "$script" tests "$work/p" -tc='some case*' >/dev/null
check "a passing run exits 0" test $? -eq 0
check "arguments reach the test binary" sh -c "gzip -dc '$work/p/tests.log.gz' | grep -qx 'args: -tc=some case\*'"
check "no failing case listed" sh -c "! grep -q 'TEST CASE' '$work/p/tests.txt'"

cat >"$work/slow" <<'FAKE'
#!/usr/bin/env bash
printf '%s\n' "=====" "z.cpp:5:" "TEST CASE:  case C" "" "z.cpp:6: ERROR: CHECK( w ) is NOT correct!" "  case 0 done"
sleep 30
echo "never printed"
FAKE
chmod +x "$work/slow"
start=$SECONDS
GPU_RUN_LIMIT=1 TEST_GPU=$work/slow "$script" tests "$work/t" >/dev/null
check "a run past GPU_RUN_LIMIT exits 124" test $? -eq 124
check "it is stopped at the limit, not at its end" test $((SECONDS - start)) -lt 20
check "its summary says it was stopped" grep -q 'stopped after GPU_RUN_LIMIT=1 s' "$work/t/tests.txt"
check "its failures before the stop are listed" grep -Eq '^ +1 TEST CASE:  case C$' "$work/t/tests.txt"
check "the log's end is quoted" grep -q 'case 0 done' "$work/t/tests.txt"
GPU_RUN_LIMIT=soon TEST_GPU=$work/passing "$script" tests "$work/t2" >/dev/null 2>&1
check "a GPU_RUN_LIMIT that is not whole seconds exits 2" test $? -eq 2
GPU_RUN_LIMIT=60 TEST_GPU=$work/passing "$script" tests "$work/t3" >/dev/null
check "a run within GPU_RUN_LIMIT exits 0" test $? -eq 0
check "a run within GPU_RUN_LIMIT is not called stopped" sh -c "! grep -q 'stopped after' '$work/t3/tests.txt'"

TEST_GPU=$work/missing "$script" tests "$work/m" >/dev/null 2>&1
check "a missing test binary exits 2" test $? -eq 2
"$script" nonsense "$work/n" >/dev/null 2>&1
check "an unknown mode exits 2" test $? -eq 2
"$script" compare "$work/c" "$work/missing" "$work/missing" 1 >/dev/null 2>&1
check "compare with a missing binary exits 2" test $? -eq 2

# compare: two fake mhc-jit binaries that print their name, arguments and kernel cache
for side in old new; do
  cat >"$work/mhc-jit-$side" <<FAKE
#!/usr/bin/env bash
echo "| $side | \$* | cache=\${MHCJIT_CACHE_DIR-unset} |"
FAKE
  chmod +x "$work/mhc-jit-$side"
done
OLD_CACHE="$work/old cache" NEW_CACHE=$work/new "$script" compare "$work/c2" "$work/mhc-jit-old" "$work/mhc-jit-new" 2 --op scale >/dev/null
check "compare exits 0" test $? -eq 0
check "compare alternates old and new, two rounds" sh -c "grep '^|' '$work/c2/compare.txt' | cut -d' ' -f2 | tr '\n' ' ' | grep -qx 'old new old new '"
check "compare passes the bench arguments" grep -q '^| new | bench --op scale | ' "$work/c2/compare.txt"
check "each binary gets its own cache (a path with a space too)" sh -c "grep -q '^| old .*cache=$work/old cache |' '$work/c2/compare.txt' && grep -q '^| new .*cache=$work/new |' '$work/c2/compare.txt'"
env -u MHCJIT_CACHE_DIR "$script" compare "$work/c3" "$work/mhc-jit-old" "$work/mhc-jit-new" 1 >/dev/null
check "without a cache set the variable stays unset" sh -c "[ \$(grep -c 'cache=unset' '$work/c3/compare.txt') -eq 2 ]"

# stalls: a fake ncu that writes a report, a details page (4 blocks of 64 threads: 8 warps) and
# a source page of 4 SASS lines: two straight (8 executions each: once a warp), a two-line loop
# body run 5 times a warp
mkdir -p "$work/bin"
cat >"$work/bin/ncu" <<'FAKE'
#!/usr/bin/env bash
case " $* " in
*" -o "*) while [ "$1" != -o ]; do shift; done; : >"$2.ncu-rep" ;;
*"--page details"*) printf '%s\n' "    Block Size                                                    64" "    Grid Size                                                      4" ;;
*"--page source"*)
  echo '"Kernel Name","void fake_kernel(Args)",'
  echo '"Address","Source","Warp Stall Sampling (All Samples)","Instructions Executed","stall_long_sb","stall_wait","stall_long_sb (Not Issued)"'
  echo '"0x1000","  LDG.E R0, [R2.64]","2","8","0","2","0"'
  echo '"0x1010","  FADD R1, R0, R0","30","40","30","0","30"'
  echo '"0x1020","  MUFU.RCP R1, R1","8","40","0","8","0"'
  echo '"0x1030","  EXIT","0","8","0","0","0"' ;;
esac
FAKE
chmod +x "$work/bin/ncu"
PATH=$work/bin:$PATH MHC_JIT=$work/passing "$script" stalls "$work/s" fake --op scale >/dev/null
check "stalls exits 0" test $? -eq 0
check "stalls counts 8 warps" grep -q '(12 a warp over 8 warps)' "$work/s/stalls.txt"
check "stalls totals the reasons" grep -Eq '^  long_sb +30 +75.0%$' "$work/s/stalls.txt"
check "stalls finds the loop body" grep -Eq '^ +0x10 +0x20 +5.00 +2 +10 +95.0%$' "$work/s/stalls.txt"
check "stalls ranks the hottest line first" sh -c "grep -A1 'the 25 lines' '$work/s/stalls.txt' | grep -q 'FADD R1, R0, R0 .*long_sb 30'"
check "stalls keeps the source page" sh -c "gzip -dc '$work/s/stalls_source.csv.gz' | grep -q MUFU"

# tools/gpu-prep.sh refuses what it cannot use before it builds anything
prep=$1/tools/gpu-prep.sh
# a repository with a commit but no build: only the build check can refuse it
git init -q "$work/empty" && git -C "$work/empty" -c user.name=t -c user.email=t@t commit -q --allow-empty -m empty
(cd "$work/empty" && "$prep" HEAD >/dev/null 2>&1)
check "gpu-prep without a build exits 2" test $? -eq 2
"$prep" >/dev/null 2>&1
check "gpu-prep without a revision exits 2" test $? -eq 2
if [ -x "$1/build/mhc-jit" ]; then
  (cd "$1" && "$prep" no-such-revision-xyz >/dev/null 2>&1)
  check "gpu-prep with an unknown revision exits 2" test $? -eq 2
fi

[ $fails -eq 0 ] && echo "all checks passed" || echo "$fails checks failed"
exit $((fails > 0))
