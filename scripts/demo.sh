#!/usr/bin/env bash
# Installs what is missing, builds a release otk, and shows the strict sandbox from inside.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --static-swift-stdlib
otk=.build/release/otk
"$otk" doctor || true
echo
echo '$ otk sandbox run --profile strict -- sh -c "id; hostname; ls /; cat /proc/self/status | grep -E ^Cap; ..."'
"$otk" sandbox run --profile strict -- /bin/sh -c '
  echo "whoami:   $(id)"; echo "hostname: $(hostname)"; echo "root:     $(ls / | tr "\n" " ")"
  grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status
  echo "pids:     $(ls /proc | grep -E "^[0-9]+$" | tr "\n" " ")"
  cat /etc/shadow 2>&1 | head -1; touch /usr/x 2>&1; echo ok > /workspace/hello && echo "workspace: writable"'
echo
echo '$ otk sandbox run --profile strict --json -- sh -c "exit 3"'
"$otk" sandbox run --profile strict --json -- sh -c 'exit 3' || echo "(exit status $?)"
