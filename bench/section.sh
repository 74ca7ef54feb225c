# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the benchmarks: each owns one section of BENCHMARKS.md, between
# "<!-- bench/NAME.sh: begin -->" and "<!-- bench/NAME.sh: end -->".

# bench_write_section NAME TEXT FILE: TEXT becomes NAME's section of FILE, in
# place when FILE has its markers, appended otherwise; the rest is left alone.
bench_write_section() {
        local begin="<!-- bench/$1.sh: begin -->" end="<!-- bench/$1.sh: end -->" block page
        block=$(mktemp) page=$(mktemp)
        printf '%s\n%s\n%s\n' "$begin" "$2" "$end" >"$block"
        if [[ -f $3 ]] && grep -qF "$begin" "$3"; then
                awk -v b="$begin" -v e="$end" -v f="$block" '
                        $0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
                        $0 == e { skip = 0; next }
                        !skip' "$3" >"$page" && cat "$page" >"$3"
        else
                { [[ -s $3 ]] && printf '\n'; cat "$block"; } >>"$3"
        fi
        rm -f "$block" "$page"
}

# bench_private_binaries: netbumpd and netbumpctl run from copies in $NB_TMP (after nb_setup):
# a rebuild in the tree during the run must not swap the binaries under it.
bench_private_binaries() {
        cp "$NB_NETBUMPD" "$NB_TMP/netbumpd"
        cp "$NB_NETBUMPCTL" "$NB_TMP/netbumpctl"
        NB_NETBUMPD=$NB_TMP/netbumpd
        NB_NETBUMPCTL=$NB_TMP/netbumpctl
}
