#!/usr/bin/env bash
# The whole test suite: unit tests, and integration tests that start real sandboxes
# (as the invoking user and, when that is root, again as nobody).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
