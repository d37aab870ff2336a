#!/usr/bin/env bash
# sipp-load.sh — signaling load through parapet: SIPp's stock UAC calls
# SIPp's stock UAS through a parapet zone on UDP (a hairpin route), at each
# rate given, 10 s per rate. Reports successful/failed calls and parapet's
# CPU per call (user+sys, from /proc), then verifies the compliance log.
#
# usage: bench/sipp-load.sh [RATE ...]        (default: 100 200 400 800)
# needs: sipp (Debian sip-tester), go
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${*:-100 200 400 800}
T=$(mktemp -d -t parapet-load.XXXXXX)
trap 'kill $PP $UAS 2>/dev/null || true; rm -rf "$T"' EXIT
go build -o "$T/parapet" ./cmd/parapet
base=$((20000 + RANDOM % 300 * 100))
cat > "$T/p.hcl" <<HCL
state_dir = "state"
zone "pbx" {
  listen = ["udp://127.0.0.1:$((base))"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
route "loop" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1:$((base + 10))"
}
media {
  address = "127.0.0.1"
  ports   = "30000-39999"
}
HCL
"$T/parapet" run -c "$T/p.hcl" -log-level warn >"$T/run.log" 2>&1 & PP=$!
sipp -sn uas -i 127.0.0.1 -p $((base + 10)) -nostdin -buff_size 8388608 >/dev/null 2>&1 & UAS=$!
sleep 1
ticks() { awk '{print $14+$15}' /proc/$PP/stat; }
hz=$(getconf CLK_TCK)
for rate in $RATES; do
  calls=$((rate * 10)); t0=$(ticks)
  rc=0
  sipp 127.0.0.1:$base -sn uac -s 15551230000 -i 127.0.0.1 -p $((base + 20)) -m $calls -r "$rate" -l 4000 \
    -nostdin -timeout 60s -timeout_error -recv_timeout 10s -buff_size 8388608 -trace_stat -stf "$T/uac_stat.csv" -fd 1 >"$T/uac.out" 2>&1 || rc=$?
  t1=$(ticks)
  ok=$(awk -F'|' '/Successful call/ {gsub(/ /, "", $3); print $3}' "$T/uac.out")
  bad=$(awk -F'|' '/Failed call/ {gsub(/ /, "", $3); print $3}' "$T/uac.out")
  echo "rate=$rate/s calls=$calls ok=$ok failed=$bad sipp_rc=$rc parapet_cpu_per_call=$(( (t1 - t0) * 1000000 / hz / calls ))us"
done
kill -INT $PP; wait $PP || true
"$T/parapet" verify -log "$T/state/compliance.jsonl" -key "$T/state/signing.pub"
