#!/usr/bin/env bash
# The `full` guest image: built from its recipe (debootstrap and apt from
# Debian's archive), booted as a micro-VM with its read-only ext4 root under a
# tmpfs overlay, and used as the process backend's root: python3, node, npm
# and git work, and every sandbox starts from the pristine image.
# Usage: tests/integration/test_full.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
T_SUITE=test_full
. tests/lib.sh

it_setup "${1:-build}"

t_begin "luminaguard image build full (debootstrap + apt from Debian's archive)"
t0=$(date +%s)
if ! "$LG" image build full >"$TMP/build.log" 2>&1; then
        if grep -qiE "could not resolve|temporary failure|connection (refused|timed out)" "$TMP/build.log"; then
                t_skip "Debian's archive is not reachable: $(tail -2 "$TMP/build.log")"; t_summary; exit 0
        fi
        t_fail "$(tail -3 "$TMP/build.log")"; t_summary; exit 1
fi
IMG=$LUMINAGUARD_HOME/images/full
if [ -s "$IMG/rootfs.ext4" ] && grep -q "^package_count=" "$IMG/manifest" &&
        grep -q "^nodejs " "$IMG/packages" && grep -q "^python3 " "$IMG/packages" &&
        [ -x "$IMG/rootfs/usr/bin/git" ]; then
        T_NAME="$T_NAME — $(($(date +%s) - t0)) s, $(du -h "$IMG/rootfs.ext4" | cut -f1) disk, $(wc -l <"$IMG/packages") packages recorded"
        t_pass
else t_fail "image incomplete: $(ls "$IMG") $(cat "$IMG/manifest")"; fi

# The same checks on both backends.
SCRIPT='set -e
python3 -c "import json,hashlib; d={\"n\": sum(i*i for i in range(1000))}; open(\"/tmp/o.json\",\"w\").write(json.dumps(d)); print(hashlib.sha256(open(\"/tmp/o.json\",\"rb\").read()).hexdigest()[:12], d[\"n\"])"
node -e "console.log(\"node\", [1,2,3].map(x => x * 2).join(\",\"))"
npm --version >/dev/null && echo npm-ok
cd /tmp && git init -q repo && cd repo && git config user.email a@b && git config user.name t &&
        echo hi >f && git add f && git commit -qm one && git log --oneline | wc -l
echo scribble >/var/tmp/lg-scribble && echo root-writable'
for backend in vm process; do
        t_begin "python3, node, npm and git in a $backend sandbox of the full image"
        "$LG" run --backend "$backend" --image full -- sh -c "$SCRIPT" >"$TMP/out" 2>"$TMP/err" </dev/null; rc=$?
        want="$(printf '%s 332833500\nnode 2,4,6\nnpm-ok\n1\nroot-writable' \
                "$(printf '{"n": 332833500}' | sha256sum | cut -c1-12)")"
        if [ $rc -eq 0 ] && [ "$(cat "$TMP/out")" = "$want" ]; then t_pass
        else t_fail "rc=$rc out=[$(cat "$TMP/out")] want=[$want] $(tail -3 "$TMP/err")"; fi

        t_begin "the next $backend sandbox starts pristine (the overlay died with the last)"
        "$LG" run --backend "$backend" --image full -- sh -c 'test ! -e /var/tmp/lg-scribble && test ! -e /tmp/repo && echo clean' \
                >"$TMP/out" 2>"$TMP/err" </dev/null; rc=$?
        [ $rc -eq 0 ] && [ "$(cat "$TMP/out")" = clean ] && t_pass || t_fail "rc=$rc $(cat "$TMP/out") $(tail -3 "$TMP/err")"
done

t_begin "\$LUMINAGUARD_HOME/config's image = full is run's default; a typo in it is an error naming the line"
printf '# the agents here write Python\nimage = full\n' >"$LUMINAGUARD_HOME/config"
"$LG" run -- python3 -c 'print(6 * 7)' >"$TMP/out" 2>"$TMP/err" </dev/null; rc=$?
printf 'imgae = full\n' >"$LUMINAGUARD_HOME/config"
"$LG" run -- true >/dev/null 2>"$TMP/err2" </dev/null; rc2=$?
rm -f "$LUMINAGUARD_HOME/config"
"$LG" run -- sh -c 'command -v python3 || echo no-python' >"$TMP/out3" 2>"$TMP/err3" </dev/null
if [ $rc -eq 0 ] && [ "$(cat "$TMP/out")" = 42 ] && [ $rc2 -eq 120 ] &&
        grep -q "line 1: unknown key 'imgae'" "$TMP/err2" && [ "$(cat "$TMP/out3")" = no-python ]; then t_pass
else t_fail "rc=$rc $(cat "$TMP/out") $(tail -2 "$TMP/err") / rc2=$rc2 $(cat "$TMP/err2") / $(cat "$TMP/out3")"; fi

t_begin "the VM sees its root read-only underneath: the disk is never written"
sum0=$(stat -c '%s %Y' "$IMG/rootfs.ext4")
"$LG" run --image full -- sh -c 'grep -q " /mnt/lower ext4 ro" /proc/mounts 2>/dev/null || grep -q "^overlay / overlay" /proc/mounts && echo overlay' \
        >"$TMP/out" 2>"$TMP/err" </dev/null; rc=$?
if [ $rc -eq 0 ] && [ "$(cat "$TMP/out")" = overlay ] && [ "$(stat -c '%s %Y' "$IMG/rootfs.ext4")" = "$sum0" ]; then t_pass
else t_fail "rc=$rc $(cat "$TMP/out") $(tail -3 "$TMP/err")"; fi

t_begin "luminaguard bench workload checks every result and measures (a short run)"
denied0=$("$LG" audit show --event egress.deny 2>/dev/null | grep -c "127.0.0.2:.* is not in the allow-list")
"$LG" bench workload --runs 1 --ops 1000 >"$TMP/bench" 2>"$TMP/berr"; rc=$?
denied1=$("$LG" audit show --event egress.deny 2>/dev/null | grep -c "127.0.0.2:.* is not in the allow-list")
# Every row has a vm and a process figure; npm needs the registry, and says so when it cannot.
rows=$(grep -cE "^  (files-1000|file-64m|workspace|python|python-venv|node|npm|git|http) +1 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ " "$TMP/bench")
npm_skip=$(grep -cE "^  npm +skipped: registry.npmjs.org" "$TMP/bench")
if [ $rc -eq 0 ] && [ $((rows + npm_skip)) -eq 9 ] && grep -q "stability: 1000 operations" "$TMP/bench" &&
        grep -qE "second half \(ops 500 to 1000, medians of 3 samples\): VMM PSS" "$TMP/bench" &&
        [ "$denied1" -ge $((denied0 + 2)) ] && ! ls -d "${TMPDIR:-/tmp}"/lg-bench-ws.* >/dev/null 2>&1; then
        T_NAME="$T_NAME ($(grep -E "^  (python|node|npm|http) +1 " "$TMP/bench" | awk '{printf "%s vm %s / process %s ms; ", $1, $3, $5}'))"
        [ "$npm_skip" = 1 ] && T_NAME="$T_NAME [npm: $(grep -E "^  npm +skipped" "$TMP/bench" | sed 's/^ *npm *//')]"
        t_pass
else t_fail "rc=$rc rows=$rows npm_skip=$npm_skip denials $denied0 -> $denied1 $(cat "$TMP/bench") $(tail -5 "$TMP/berr")"; fi

t_begin "nothing left behind"
sleep 0.5
leftovers >"$TMP/left" && t_pass || t_fail "$(cat "$TMP/left")"

t_summary
