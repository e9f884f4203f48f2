#!/usr/bin/env bash
# fuzz-campaign.sh runs every Go fuzz target in the module for a fixed time,
# LANES targets at a time with one fuzzing worker each, and then copies the
# inputs each run found interesting from the build cache into
# <pkg>/testdata/fuzz/<Target>/, so that every plain `go test` replays them
# as regression seeds. Crashers land there by themselves (go test writes
# them); the script reports them and exits 1.
#
# Usage: scripts/fuzz-campaign.sh [-t DURATION] [-l LANES] [-o LOGDIR] [-n] [TARGET-REGEXP]
#   -t  how long each target runs (go test -fuzztime), default 10m
#   -l  how many targets run at once, default 2
#   -o  where the per-target logs and summary.tsv go, default a temp dir
#   -n  do not copy the corpus into testdata/fuzz
#   TARGET-REGEXP  only targets whose "pkg Target" matches (grep -E)
#
# The fuzzers run under `nice -n 19`, so a benchmark or soak running beside
# them keeps its CPU. The summary is tab-separated: package, target, start
# (UTC), fuzztime, execs, new interesting, corpus total, inputs copied,
# result. See docs/fuzzing.md for the campaigns run with it.
set -euo pipefail
cd "$(dirname "$0")/.."

dur=10m
lanes=2
logdir=
save=1
while getopts "t:l:o:n" opt; do
	case $opt in
	t) dur=$OPTARG ;;
	l) lanes=$OPTARG ;;
	o) logdir=$OPTARG ;;
	n) save=0 ;;
	*) sed -n '2,20p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
filter=${1:-.}
if ! [[ $lanes =~ ^[1-9][0-9]*$ ]]; then
	echo "fuzz-campaign: -l wants a positive number, got '$lanes'" >&2
	exit 2
fi
[[ -n $logdir ]] || logdir=$(mktemp -d /tmp/custos-fuzz.XXXXXX)
mkdir -p "$logdir"
module=$(go list -m)
cache=$(go env GOCACHE)/fuzz

# "dir importpath Target" for every fuzz target.
targets=()
while read -r dir imp; do
	while read -r name; do
		[[ $name == Fuzz* ]] || continue
		line="$dir $imp $name"
		if grep -qE -- "$filter" <<<"${imp#"$module"/} $name"; then
			targets+=("$line")
		fi
	done < <(cd "$dir" && go test -list '^Fuzz' . 2>/dev/null | grep '^Fuzz' || true)
done < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.Dir}} {{.ImportPath}}{{end}}' ./...)
if ((${#targets[@]} == 0)); then
	echo "fuzz-campaign: no fuzz target matches '$filter'" >&2
	exit 2
fi
echo "fuzz-campaign: ${#targets[@]} targets, $dur each, $lanes at a time; logs in $logdir"
printf 'package\ttarget\tstart_utc\tfuzztime\texecs\tnew_interesting\tcorpus_total\tcopied\tresult\n' >"$logdir/summary.tsv"

# run_one DIR IMPORTPATH TARGET: fuzz one target, copy its corpus, append a
# summary line. Never fails (the result column says what happened).
run_one() {
	local dir=$1 imp=$2 name=$3
	local rel=./${imp#"$module"/}
	local log="$logdir/${rel//\//_}.$name.log"
	local start rc=0
	start=$(date -u +%H:%M)
	(cd "$dir" && nice -n 19 go test -run '^$' -fuzz "^$name\$" -fuzztime "$dur" \
		-fuzzminimizetime 5s -parallel 1 . >"$log" 2>&1) || rc=$?
	local last execs newi total
	last=$(grep -E '^fuzz: elapsed' "$log" | tail -1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	newi=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	total=$(sed -nE 's/.*\(total: ([0-9]+)\).*/\1/p' <<<"$last")
	local copied=0
	if ((save)) && [[ -d $cache/$imp/$name ]]; then
		mkdir -p "$dir/testdata/fuzz/$name"
		local f
		for f in "$cache/$imp/$name"/*; do
			[[ -e $dir/testdata/fuzz/$name/${f##*/} ]] && continue
			cp "$f" "$dir/testdata/fuzz/$name/"
			copied=$((copied + 1))
		done
	fi
	local result=PASS
	if ((rc != 0)); then
		result=FAIL
		if grep -q 'Failing input written to' "$log"; then
			result="FAIL: $(grep -o 'testdata/fuzz/[^ ]*' "$log" | head -1)"
		fi
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rel" "$name" "$start" "$dur" \
		"${execs:-?}" "${newi:-?}" "${total:-?}" "$copied" "$result" >>"$logdir/summary.tsv"
	echo "fuzz-campaign: $rel $name: $result, ${execs:-?} execs, ${newi:-?} new"
}

# Lanes take targets round-robin, each lane one target after another.
pids=()
for ((lane = 0; lane < lanes; lane++)); do
	(
		for ((i = lane; i < ${#targets[@]}; i += lanes)); do
			# shellcheck disable=SC2086
			run_one ${targets[$i]}
		done
	) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

column -t -s $'\t' "$logdir/summary.tsv"
if grep -q $'\tFAIL' "$logdir/summary.tsv"; then
	echo "fuzz-campaign: failures; see $logdir and the crashers under testdata/fuzz" >&2
	exit 1
fi
