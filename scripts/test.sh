#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls it).
# Builds and runs every test of the workspace: unit, integration, doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# The MiniLM tests need the model folder (gitignored); fetched once.
scripts/fetch-minilm.sh
cargo test --workspace --all-targets
cargo test --workspace --doc
